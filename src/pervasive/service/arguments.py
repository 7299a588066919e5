"""A binding's arguments: where each input of a contract function comes from (sans-I/O).

A spec binds a function to a thing (paper 001, section 3.1, "thing communication"):
``args = ["shipment", "$device"]`` says, input by input, where the value comes from
(:func:`pervasive.service.spec.parse_argument` decides what each entry means: a reading
or body field, a path parameter, ``$device``/``$time``/``$sequence``/``$key``, or a
literal). :meth:`ArgumentPlan.compile` reads such a list once, against the function's
ABI input types, and converts the literals.

``$time`` is the reading's own ``time`` field when its sensor declares one, else the
moment the service accepted it (either way fixed in the inbox with the calldata, so a
retry sends the same bytes).

:meth:`ArgumentPlan.resolve` then turns one call's values into the ABI types
(:func:`to_abi`: decimal strings of a URL path become integers, ``"true"`` a bool,
hex strings bytes, addresses checksummed) or raises
:class:`~pervasive.errors.SchemaViolation` saying which input and why.

Example::

    plan = ArgumentPlan.compile(["shipment", "$device"], ("string", "string"), origin="mqtt")
    plan.resolve({"shipment": "ship-1"}, {"device": "container-1"})    # ('ship-1', 'container-1')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pervasive.crypto import checksum_address
from pervasive.errors import InvalidInput, SchemaViolation
from pervasive.service.spec import Argument, ArgumentValue, SpecError, parse_argument

__all__ = ["ArgumentPlan", "InputSource", "Origin", "to_abi"]

Origin = Literal["mqtt", "rest", "trigger"]

_INTEGER = re.compile(r"(u?)int(\d*)")
_FIXED_BYTES = re.compile(r"bytes(\d+)")
_HEX = re.compile(r"0x([0-9a-fA-F]{2})*")
_DECIMAL = re.compile(r"-?[0-9]{1,78}")
_SUPPORTED = "uint<M>, int<M>, bool, address, bytes<M>, bytes, string"


def _integer(kind: str, value: object, what: str) -> int:
    found = _INTEGER.fullmatch(kind)
    assert found is not None  # callers check
    bits = int(found.group(2) or 256)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaViolation(f"{what} must be an integer ({kind}), got {value!r}")
    low, high = (0, 2**bits - 1) if found.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if not low <= value <= high:
        raise SchemaViolation(f"{what} = {value} does not fit {kind} ({low}..{high})")
    return value


def _bytes(kind: str, value: object, what: str, size: int | None) -> bytes:
    if isinstance(value, str) and _HEX.fullmatch(value):
        value = bytes.fromhex(value[2:])
    if not isinstance(value, bytes):
        raise SchemaViolation(f"{what} must be 0x-hex bytes ({kind}), got {value!r}")
    if size is not None and len(value) != size:
        raise SchemaViolation(f"{what} must be {size} bytes ({kind}), got {len(value)}")
    return value


def to_abi(kind: str, value: object, what: str = "the value") -> object:
    """``value`` as the ABI type ``kind`` wants it; :class:`SchemaViolation` when it cannot be.

    Example: ``to_abi("uint64", "42") == 42``; ``to_abi("bytes32", "0x" + "ab" * 32)``.
    """
    if _INTEGER.fullmatch(kind):
        return _integer(kind, value, what)
    if kind == "bool":
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise SchemaViolation(f"{what} must be true or false, got {value!r}")
        return value
    if kind == "address":
        if not isinstance(value, str):
            raise SchemaViolation(f"{what} must be a 0x address, got {value!r}")
        try:
            return checksum_address(value)
        except InvalidInput as exc:
            raise SchemaViolation(f"{what}: {exc}") from exc
    if kind == "string":
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise SchemaViolation(f"{what} must be a string, got {value!r}")
        return value
    if kind == "bytes":
        return _bytes(kind, value, what, None)
    fixed = _FIXED_BYTES.fullmatch(kind)
    if fixed:
        return _bytes(kind, value, what, int(fixed.group(1)))
    raise SchemaViolation(f"{what} has the ABI type {kind}, which bindings do not fill")


def _supported(kind: str) -> bool:
    return bool(
        _INTEGER.fullmatch(kind)
        or _FIXED_BYTES.fullmatch(kind)
        or kind in ("bool", "address", "string", "bytes")
    )


@dataclass(frozen=True)
class InputSource:
    """Where one input comes from: a spec :class:`Argument` and the input's ABI type."""

    argument: Argument
    abi_type: str
    literal: object = None
    """A literal's value, already in its ABI type."""

    @property
    def label(self) -> str:
        """How messages name the source: ``shipment``, ``$device``, ``'ship-1'``."""
        if self.argument.kind == "literal":
            return repr(self.argument.value)
        if self.argument.kind in ("field", "path"):
            return str(self.argument.value)
        return f"${self.argument.kind}"


@dataclass(frozen=True)
class ArgumentPlan:
    """The compiled ``args`` of one binding: one :class:`InputSource` per function input."""

    function: str
    origin: Origin
    inputs: tuple[InputSource, ...]

    @property
    def abi_types(self) -> tuple[str, ...]:
        """The function's input types, in order."""
        return tuple(i.abi_type for i in self.inputs)

    @classmethod
    def compile(
        cls,
        args: Sequence[ArgumentValue],
        inputs: Sequence[str],
        *,
        origin: Origin,
        function: str = "the function",
        path_parameters: Sequence[str] = (),
    ) -> ArgumentPlan:
        """Read ``args`` against the function's ABI ``inputs``; :class:`SpecError` if wrong.

        Example: ``ArgumentPlan.compile(["ship-1", "$key"], ("string", "bytes32"),
        origin="trigger")``.
        """
        if len(args) != len(inputs):
            raise SpecError(
                f"{function} takes {len(inputs)} arguments but the binding gives {len(args)}: "
                f"{list(args)!r}; give one per input",
                reason="arity",
            )
        out = []
        for index, (arg, kind) in enumerate(zip(args, inputs, strict=True)):
            what = f"argument {index + 1} of {function}"
            if not _supported(kind):
                raise SpecError(
                    f"{what} is a {kind}; bindings fill only {_SUPPORTED}", reason="argument_type"
                )
            try:
                argument = parse_argument(origin, arg, parameters=path_parameters)
            except InvalidInput as exc:
                raise SpecError(f"{what}: {exc}", reason="bad_argument") from None
            literal = None
            if argument.kind == "literal":
                try:
                    literal = to_abi(kind, argument.value, what)
                except SchemaViolation as exc:
                    raise SpecError(str(exc), reason="argument_type") from None
            out.append(InputSource(argument, kind, literal))
        return cls(function, origin, tuple(out))

    def resolve(
        self,
        fields: Mapping[str, object],
        specials: Mapping[str, object],
        path: Mapping[str, object] | None = None,
    ) -> tuple[object, ...]:
        """The call's arguments in ABI types; :class:`SchemaViolation` for a missing or bad one.

        ``fields`` are the reading's values (mqtt) or the JSON body's fields (rest),
        ``specials`` the references by kind (``device``, ``time``, ``sequence``, ``key``),
        ``path`` the REST path parameters.

        Example: ``plan.resolve({"shipment": "ship-1"}, {"device": "c-1"})``.
        """
        values: list[object] = []
        for index, source in enumerate(self.inputs):
            argument = source.argument
            what = f"argument {index + 1} ({source.label}) of {self.function}"
            if argument.kind == "literal":
                values.append(source.literal)
                continue
            if argument.kind == "field":
                table, key, where = fields, str(argument.value), _WHERE[self.origin]
            elif argument.kind == "path":
                table, key, where = path or {}, str(argument.value), "the path"
            else:
                table, key, where = specials, argument.kind, "this call"
            if key not in table:
                raise SchemaViolation(f"{what} needs {key!r}, which {where} does not have")
            values.append(to_abi(source.abi_type, table[key], what))
        return tuple(values)


_WHERE = {"mqtt": "the reading", "rest": "the JSON body", "trigger": "the trigger"}
