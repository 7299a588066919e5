"""The service spec: one TOML file declaring a pervasive contract (paper 001, Fig. 1).

A pervasive contract has four parts and the spec names each: ``[contract]`` (1. the
contract functions: a Vyper source and its constructor arguments), ``[[mqtt]]``,
``[[rest]]`` and ``[[trigger]]`` (2. thing communication), ``[database]`` (3. the
contract database C_d) and ``[[events]]`` (4. interoperability: events as CloudEvents).

:func:`load_spec` reads and checks everything that does not need the compiled
contract (syntax, field types, names, versions, topics, record types, argument
kinds, the source file); :func:`check_against_abi` checks the rest against the ABI
(functions, events, arity, argument types). Every refusal is one :class:`SpecError`
line naming the file, the entry and the fix, e.g.::

    shipping.toml: mqtt[0].function: 'confirm_deliver' is not a function of shipping.vy;
    functions: confirm_delivery, quote

Arguments (``args`` of a binding or trigger, the contract's ``constructor``) are
literals (int, bool, string) or references; :func:`parse_argument` says which:

- mqtt: a bare name is a field of the signed reading; ``$device``, ``$time``,
  ``$sequence``; ``=text`` is the literal string ``text``.
- rest: a bare name is a path parameter (``{name}`` in the path) or else a JSON body
  field; ``$device`` (the certificate's identity); ``=text`` a literal string.
- trigger: ``$key`` (the episode's idempotency key, bytes32); any other string is a
  literal.
- constructor: ``$database``, ``$oracle``, ``$operator``, ``$contract:<name>``; any
  other string is a literal (an ``0x`` address, a string).

Example::

    spec = load_spec("services/shipping.toml")
    spec.name, spec.version, spec.root          # ('shipping', 1, PosixPath('services'))
    check_against_abi(spec, artifact.abi)       # SpecError if a binding does not fit
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from pervasive.contracts.compiler import contract_source
from pervasive.contracts.contract_database import RECORD_VALUE_TYPES
from pervasive.errors import InvalidInput, NotFound
from pervasive.interop import EventMapping

__all__ = [
    "SHIPPED",
    "Argument",
    "ArgumentValue",
    "CoLocatedSpec",
    "ContractSection",
    "DatabaseSection",
    "MqttBinding",
    "RestBinding",
    "ServiceSpec",
    "SpecError",
    "TriggerSpec",
    "check_against_abi",
    "load_spec",
    "parse_argument",
]

SHIPPED = "pervasive:"
"""``source = "pervasive:<name>"`` names a contract shipped in ``contracts/vyper/``."""

_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ID = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
_DEVICE_ID = re.compile(_ID)
_TOPIC = re.compile(rf"pervasive/devices/(\+|{_ID})/sensors/({_ID})")
_PATH = re.compile(r"(/([A-Za-z0-9._~-]+|\{[A-Za-z_][A-Za-z0-9_]*\}))+")
_PATH_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LOCATION = re.compile(r" - at `\$\.?(.*)`$")

ArgumentValue = str | int | bool
"""A literal or a reference, as written in the TOML file."""


class SpecError(InvalidInput):
    """A service spec is malformed or does not fit its contract: file, entry and fix.

    ``reason`` is a short key (``unknown_function``, ``bad_topic`` ...) for counters.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ContractSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[contract]``: the logic contract's Vyper source and constructor arguments."""

    source: str
    """Vyper 0.4 file relative to the spec, or ``pervasive:<name>`` for a shipped contract."""
    constructor: list[ArgumentValue] = []
    """``$database``, ``$oracle``, ``$operator``, ``$contract:<name>`` or literals."""

    @property
    def shipped(self) -> str | None:
        """The shipped contract's name when ``source`` is ``pervasive:<name>``."""
        return self.source.removeprefix(SHIPPED) if self.source.startswith(SHIPPED) else None

    @property
    def label(self) -> str:
        """How messages name the source: ``shipping.vy`` or ``pervasive:asset_tracking``."""
        return self.source if self.shipped is not None else Path(self.source).name


class DatabaseSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[database]``: the records the contract keeps in its C_d, by name and value type."""

    records: dict[str, str]
    """Record name -> one of :data:`RECORD_VALUE_TYPES`."""


class MqttBinding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[[mqtt]]``: signed readings on a device sensor topic call ``function(args)``."""

    topic: str
    """``pervasive/devices/<device id or +>/sensors/<sensor>``."""
    function: str
    args: list[ArgumentValue] = []
    devices: list[str] | None = None
    """With a ``+`` topic: only these devices (default: any device declaring the sensor)."""

    @property
    def device(self) -> str | None:
        """The topic's device id, ``None`` for ``+``."""
        device = self.topic.split("/")[2]
        return None if device == "+" else device

    @property
    def sensor(self) -> str:
        """The topic's sensor name."""
        return self.topic.split("/")[4]


class RestBinding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[[rest]]``: an HTTPS route (device certificate) calling ``function(args)``."""

    method: Literal["GET", "POST"]
    """POST sends a transaction; GET calls a view function and answers JSON."""
    path: str
    """``/shipments/{shipment}/delivered``: ``{name}`` segments are path parameters."""
    function: str
    args: list[ArgumentValue] = []

    @property
    def parameters(self) -> tuple[str, ...]:
        """The path parameters, in order."""
        return tuple(_PATH_PARAMETER.findall(self.path))


class CoLocatedSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``when``: every listed device reports the same ``attribute`` of ``sensor`` in ``window``."""

    co_located: list[str]
    sensor: str
    attribute: str = "cell"
    window: int = 300
    """Seconds the readings may lie apart."""


class TriggerSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[[trigger]]``: run ``function(args)`` once per episode of ``when``."""

    name: str
    when: CoLocatedSpec
    function: str
    args: list[ArgumentValue] = []
    done: str
    """A view ``(bytes32) -> bool``: is this episode's key already done on-chain?"""


class ServiceSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A whole spec file; build it with :func:`load_spec`."""

    name: str
    """``[a-z][a-z0-9-]{0,39}``: the service's and its deployment's name."""
    version: int
    """The logic's version (>= 1); ``pervasive service upgrade`` needs a higher one."""
    description: str = ""
    contract: ContractSection
    database: DatabaseSection | None = None
    mqtt: list[MqttBinding] = []
    rest: list[RestBinding] = []
    trigger: list[TriggerSpec] = []
    events: list[EventMapping] = []
    spec_file: str = ""
    """The file this spec was read from (set by :func:`load_spec`, not by the TOML)."""

    @property
    def root(self) -> Path:
        """The folder of the spec file: relative paths in the spec start here."""
        return Path(self.spec_file).parent

    @property
    def file_label(self) -> str:
        """How messages name the spec file."""
        return self.spec_file or "<spec>"

    def logic_source(self) -> str:
        """The logic contract's Vyper source text.

        Example: ``compile_source(spec.name, spec.logic_source())``.
        """
        shipped = self.contract.shipped
        if shipped is not None:
            return contract_source(shipped)
        return (self.root / self.contract.source).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Argument:
    """One argument as the runtime resolves it.

    ``kind`` is ``literal`` (``value`` is the value), ``field`` (a reading field or
    REST body field named ``value``), ``path`` (a REST path parameter), or a
    reference: ``device``, ``time``, ``sequence``, ``key``, ``database``, ``oracle``,
    ``operator``, ``contract`` (``value`` is the contract's name).
    """

    kind: str
    value: ArgumentValue


_REFERENCES: dict[str, tuple[str, ...]] = {
    "mqtt": ("device", "time", "sequence"),
    "rest": ("device",),
    "trigger": ("key",),
    "constructor": ("database", "oracle", "operator"),
}


def parse_argument(
    section: Literal["mqtt", "rest", "trigger", "constructor"],
    value: ArgumentValue,
    *,
    parameters: Sequence[str] = (),
) -> Argument:
    """What ``value`` means as an argument in ``section`` (see the module docstring).

    ``parameters`` are the REST path's parameters. :class:`InvalidInput` when ``value``
    is no valid argument there.

    Example: ``parse_argument("mqtt", "$device") == Argument("device", "$device")``.
    """
    if not isinstance(value, str):
        return Argument("literal", value)
    if value.startswith("$"):
        name = value[1:]
        if section == "constructor" and name.startswith("contract:"):
            other = name.removeprefix("contract:")
            if not _NAME.fullmatch(other):
                raise InvalidInput(f"{value!r} does not name a service: use $contract:<name>")
            return Argument("contract", other)
        allowed = _REFERENCES[section]
        if name not in allowed:
            extra = ", $contract:<name>" if section == "constructor" else ""
            choices = ", ".join(f"${a}" for a in allowed) + extra
            raise InvalidInput(f"{value!r} is not known here: use one of {choices} or a literal")
        return Argument(name, value)
    if section in ("trigger", "constructor"):
        return Argument("literal", value)
    if value.startswith("="):
        return Argument("literal", value[1:])
    if not _IDENT.fullmatch(value):
        raise InvalidInput(
            f"{value!r} is no field name: name a field ([A-Za-z_][A-Za-z0-9_]*), "
            "or write a literal string as '=text'"
        )
    if section == "rest" and value in parameters:
        return Argument("path", value)
    return Argument("field", value)


# -- loading ------------------------------------------------------------------------------
def load_spec(path: Path | str, *, refusals: Counter[str] | None = None) -> ServiceSpec:
    """Read and check the spec file ``path``; :class:`SpecError` on the first problem.

    A refusal is counted in ``refusals`` under its reason when given.

    Example: ``spec = load_spec("shipping.toml")``.
    """
    try:
        return _load(Path(path))
    except SpecError as exc:
        if refusals is not None:
            refusals[exc.reason] += 1
        raise


def _load(path: Path) -> ServiceSpec:
    label = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{label}: no such spec file", reason="missing_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{label}: cannot read the spec: {exc}", reason="unreadable") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{label}: not valid TOML: {exc}", reason="syntax") from None
    if "spec_file" in raw:
        raise SpecError(f"{label}: unknown field 'spec_file': remove it", reason="unknown_field")
    try:
        spec = msgspec.convert({**raw, "spec_file": label}, ServiceSpec)
    except msgspec.ValidationError as exc:
        message, reason = _validation_message(str(exc))
        raise SpecError(f"{label}: {message}", reason=reason) from None
    _check(spec)
    return spec


def _validation_message(text: str) -> tuple[str, str]:
    """msgspec's "Expected `int`, got `str` - at `$.mqtt[0].args`" as "mqtt[0].args: ...".

    Returns the message and the refusal's reason.
    """
    match = _LOCATION.search(text)
    where = match.group(1) if match else ""
    what = text[: match.start()] if match else text
    reason = "field"
    if found := re.fullmatch(r"Object contains unknown field `(.+)`", what):
        what, reason = (
            f"unknown field {found.group(1)!r}: remove it or check its spelling",
            ("unknown_field"),
        )
    elif found := re.fullmatch(r"Object missing required field `(.+)`", what):
        what, reason = f"missing required field {found.group(1)!r}: add it", "missing_field"
    elif found := re.fullmatch(r"Invalid enum value (.+)", what):
        what = f"invalid value {found.group(1)}" + (
            ": use GET or POST" if where.endswith("method") else ""
        )
    else:
        what = what[:1].lower() + what[1:]
    return (f"{where}: {what}" if where else what), reason


def _fail(spec: ServiceSpec, entry: str, message: str, reason: str) -> SpecError:
    return SpecError(f"{spec.file_label}: {entry}: {message}", reason=reason)


def _check(spec: ServiceSpec) -> None:
    if not _NAME.fullmatch(spec.name):
        raise _fail(
            spec,
            "name",
            f"{spec.name!r} is no service name: use [a-z][a-z0-9-]{{0,39}}",
            "bad_name",
        )
    if spec.version < 1:
        raise _fail(
            spec, "version", f"{spec.version} is no version: use an integer >= 1", "bad_version"
        )
    _check_source(spec)
    for index, value in enumerate(spec.contract.constructor):
        _argument(spec, f"contract.constructor[{index}]", "constructor", value)
    if spec.database is not None:
        for record, kind in spec.database.records.items():
            entry = f"database.records.{record}"
            if not _IDENT.fullmatch(record):
                raise _fail(
                    spec,
                    entry,
                    f"{record!r} is no record name: use [A-Za-z_][A-Za-z0-9_]*",
                    "bad_record",
                )
            if kind not in RECORD_VALUE_TYPES:
                raise _fail(
                    spec,
                    entry,
                    f"unknown type {kind!r}: use one of " + ", ".join(RECORD_VALUE_TYPES),
                    "bad_type",
                )
    elif "$database" in spec.contract.constructor:
        raise _fail(
            spec,
            "contract.constructor",
            "'$database' needs a [database] table declaring the records",
            "no_database",
        )
    for index, mqtt in enumerate(spec.mqtt):
        _check_mqtt(spec, f"mqtt[{index}]", mqtt)
    for index, rest in enumerate(spec.rest):
        _check_rest(spec, f"rest[{index}]", rest)
    seen: set[str] = set()
    for index, trigger in enumerate(spec.trigger):
        _check_trigger(spec, f"trigger[{index}]", trigger, seen)


def _check_source(spec: ServiceSpec) -> None:
    shipped = spec.contract.shipped
    if shipped is not None:
        try:
            contract_source(shipped)
        except NotFound:
            raise _fail(
                spec,
                "contract.source",
                f"no contract named {shipped!r} ships with "
                "pervasive: name a file relative to the spec instead",
                "missing_source",
            ) from None
        return
    source = spec.root / spec.contract.source
    if not source.is_file():
        raise _fail(
            spec,
            "contract.source",
            f"no such file {str(source)!r}: the source is relative to the spec file",
            "missing_source",
        )


def _argument(
    spec: ServiceSpec,
    entry: str,
    section: Any,
    value: ArgumentValue,
    parameters: Sequence[str] = (),
) -> Argument:
    try:
        return parse_argument(section, value, parameters=parameters)
    except InvalidInput as exc:
        raise _fail(spec, entry, str(exc), "bad_argument") from None


def _check_mqtt(spec: ServiceSpec, entry: str, mqtt: MqttBinding) -> None:
    if not _TOPIC.fullmatch(mqtt.topic):
        raise _fail(
            spec,
            f"{entry}.topic",
            f"{mqtt.topic!r} is no device sensor topic: use "
            "pervasive/devices/<device id or +>/sensors/<sensor>",
            "bad_topic",
        )
    for device in mqtt.devices or ():
        if not _DEVICE_ID.fullmatch(device):
            raise _fail(spec, f"{entry}.devices", f"{device!r} is no device id", "bad_device")
    if mqtt.devices is not None and mqtt.device is not None:
        raise _fail(
            spec,
            f"{entry}.devices",
            "a topic naming one device takes no devices list: use '+' in the topic",
            "bad_device",
        )
    for index, value in enumerate(mqtt.args):
        _argument(spec, f"{entry}.args[{index}]", "mqtt", value)


def _check_rest(spec: ServiceSpec, entry: str, rest: RestBinding) -> None:
    if not _PATH.fullmatch(rest.path):
        raise _fail(
            spec,
            f"{entry}.path",
            f"{rest.path!r} is no route: use /segment/{{name}}/..."
            " (letters, digits, '.', '_', '~', '-')",
            "bad_path",
        )
    parameters = rest.parameters
    if len(set(parameters)) != len(parameters):
        raise _fail(spec, f"{entry}.path", "a path parameter appears twice", "bad_path")
    for index, value in enumerate(rest.args):
        _argument(spec, f"{entry}.args[{index}]", "rest", value, parameters)
    routes = [(r.method, _PATH_PARAMETER.sub("{}", r.path)) for r in spec.rest]
    if routes.count((rest.method, _PATH_PARAMETER.sub("{}", rest.path))) > 1:
        raise _fail(spec, entry, f"{rest.method} {rest.path} is bound twice", "duplicate_route")


def _check_trigger(spec: ServiceSpec, entry: str, trigger: TriggerSpec, seen: set[str]) -> None:
    if not _IDENT.fullmatch(trigger.name):
        raise _fail(
            spec,
            f"{entry}.name",
            f"{trigger.name!r} is no trigger name: use [A-Za-z_][A-Za-z0-9_]*",
            "bad_name",
        )
    if trigger.name in seen:
        raise _fail(
            spec,
            f"{entry}.name",
            f"trigger {trigger.name!r} is declared twice: give each trigger its own name",
            "duplicate_trigger",
        )
    seen.add(trigger.name)
    when = trigger.when
    if len(when.co_located) < 2 or len(set(when.co_located)) != len(when.co_located):
        raise _fail(
            spec, f"{entry}.when.co_located", "name two or more different devices", "bad_trigger"
        )
    for device in when.co_located:
        if not _DEVICE_ID.fullmatch(device):
            raise _fail(
                spec, f"{entry}.when.co_located", f"{device!r} is no device id", "bad_trigger"
            )
    if not _DEVICE_ID.fullmatch(when.sensor) or not _IDENT.fullmatch(when.attribute):
        raise _fail(
            spec,
            f"{entry}.when",
            "sensor must be a sensor name and attribute a field name",
            "bad_trigger",
        )
    if when.window <= 0:
        raise _fail(
            spec,
            f"{entry}.when.window",
            f"{when.window} is no window: use seconds > 0",
            "bad_trigger",
        )
    for index, value in enumerate(trigger.args):
        _argument(spec, f"{entry}.args[{index}]", "trigger", value)


# -- against the ABI ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Function:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    view: bool


def _type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in param["components"]) + ")" + kind[5:]
    return kind


def check_against_abi(spec: ServiceSpec, abi: Iterable[Mapping[str, Any]]) -> None:
    """Check every function, event and argument the spec names against ``abi``.

    :class:`SpecError` names the entry: an unknown function or event, a wrong number
    of arguments, an argument that cannot have the input's type, a GET bound to a
    function that writes (or a POST to a view), a ``done`` that is no ``(bytes32) ->
    bool`` view, constructor arguments that do not fit the constructor.

    Example: ``check_against_abi(spec, compile_source(spec.name, spec.logic_source()).abi)``.
    """
    functions: dict[str, list[_Function]] = {}
    events: set[str] = set()
    constructor: tuple[str, ...] = ()
    for item in abi:
        inputs = tuple(_type(p) for p in item.get("inputs", ()))
        if item.get("type") == "function":
            view = item.get("stateMutability") in ("view", "pure")
            outputs = tuple(_type(p) for p in item.get("outputs", ()))
            name = str(item["name"])
            functions.setdefault(name, []).append(_Function(name, inputs, outputs, view))
        elif item.get("type") == "event":
            events.add(str(item["name"]))
        elif item.get("type") == "constructor":
            constructor = inputs
    checker = _AbiChecker(spec, functions)
    checker.arguments(
        "contract.constructor",
        "the constructor",
        constructor,
        spec.contract.constructor,
        section="constructor",
    )
    for index, mqtt in enumerate(spec.mqtt):
        function = checker.function(f"mqtt[{index}]", mqtt.function, len(mqtt.args))
        if function.view:
            raise _fail(
                spec,
                f"mqtt[{index}].function",
                f"{function.name} is a view: a reading must call a function that writes",
                "view_bound",
            )
        checker.arguments(
            f"mqtt[{index}].args", function.name, function.inputs, mqtt.args, section="mqtt"
        )
    for index, rest in enumerate(spec.rest):
        function = checker.function(f"rest[{index}]", rest.function, len(rest.args))
        if function.view != (rest.method == "GET"):
            fix = "use GET for a view function" if function.view else "use POST to write"
            raise _fail(
                spec,
                f"rest[{index}].method",
                f"{rest.method} cannot call {function.name}: {fix}",
                "wrong_method",
            )
        checker.arguments(
            f"rest[{index}].args",
            function.name,
            function.inputs,
            rest.args,
            section="rest",
            parameters=rest.parameters,
        )
    for index, trigger in enumerate(spec.trigger):
        function = checker.function(f"trigger[{index}]", trigger.function, len(trigger.args))
        checker.arguments(
            f"trigger[{index}].args",
            function.name,
            function.inputs,
            trigger.args,
            section="trigger",
        )
        done = checker.function(f"trigger[{index}]", trigger.done, 1, key="done")
        if done.inputs != ("bytes32",) or done.outputs != ("bool",) or not done.view:
            raise _fail(
                spec,
                f"trigger[{index}].done",
                f"{done.name} must be a view (bytes32) -> bool saying whether a key is done",
                "bad_done",
            )
    for index, mapping in enumerate(spec.events):
        if mapping.event not in events:
            known = ", ".join(sorted(events)) or "none"
            raise _fail(
                spec,
                f"events[{index}].event",
                f"{mapping.event!r} is not an event of {spec.contract.label}; events: {known}",
                "unknown_event",
            )


class _AbiChecker:
    def __init__(self, spec: ServiceSpec, functions: Mapping[str, list[_Function]]) -> None:
        self.spec = spec
        self.functions = functions

    def function(self, entry: str, name: str, arity: int, *, key: str = "function") -> _Function:
        candidates = self.functions.get(name)
        if not candidates:
            known = ", ".join(sorted(self.functions)) or "none"
            raise _fail(
                self.spec,
                f"{entry}.{key}",
                f"{name!r} is not a function of {self.spec.contract.label}; functions: {known}",
                "unknown_function",
            )
        for candidate in candidates:
            if len(candidate.inputs) == arity:
                return candidate
        takes = " or ".join(str(len(c.inputs)) for c in candidates)
        raise _fail(
            self.spec,
            f"{entry}.{'args' if key == 'function' else key}",
            f"{name} takes {takes} arguments ({_signature(candidates[0])}), {arity} given",
            "arity",
        )

    def arguments(
        self,
        entry: str,
        owner: str,
        inputs: Sequence[str],
        values: Sequence[ArgumentValue],
        *,
        section: Any,
        parameters: Sequence[str] = (),
    ) -> None:
        if len(inputs) != len(values):
            raise _fail(
                self.spec,
                entry,
                f"{owner} takes {len(inputs)} arguments ({', '.join(inputs)}), {len(values)} given",
                "arity",
            )
        for index, (kind, value) in enumerate(zip(inputs, values, strict=True)):
            argument = parse_argument(section, value, parameters=parameters)
            problem = _mismatch(argument, kind)
            if problem:
                raise _fail(
                    self.spec,
                    f"{entry}[{index}]",
                    f"{value!r} cannot be a {kind}: {problem}",
                    "argument_type",
                )


def _signature(function: _Function) -> str:
    return f"{function.name}({','.join(function.inputs)})"


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_WORD = re.compile(r"0x[0-9a-fA-F]{64}")


def _mismatch(argument: Argument, kind: str) -> str:
    """Why ``argument`` can never be of ABI type ``kind`` ("" when it may be)."""
    integer = kind.startswith(("uint", "int"))
    if argument.kind in ("field", "path"):
        return ""  # known only at run time, checked per call
    if argument.kind == "device":
        return "" if kind == "string" else "$device is the device id, a string"
    if argument.kind in ("time", "sequence"):
        return "" if integer else f"${argument.kind} is an integer"
    if argument.kind == "key":
        return "" if kind == "bytes32" else "$key is the episode's bytes32 key"
    if argument.kind in ("database", "oracle", "operator", "contract"):
        return "" if kind == "address" else "it is an address"
    value = argument.value
    if isinstance(value, bool):
        return "" if kind == "bool" else "a bool literal fits only a bool"
    if isinstance(value, int):
        if kind.startswith("uint"):
            return "" if value >= 0 else "a uint cannot be negative"
        return "" if integer else "an integer literal fits only an integer input"
    if kind == "address":
        return "" if _ADDRESS.fullmatch(value) else "write an address as 0x and 40 hex digits"
    if kind == "bytes32":
        return "" if _WORD.fullmatch(value) else "write bytes32 as 0x and 64 hex digits"
    return "" if kind in ("string", "bytes") else f"a string literal cannot be a {kind}"
