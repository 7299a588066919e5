"""The typed variables ``type_i x_i`` a sensor declares (paper 002, section 3).

One closed set of types (:class:`FieldType`) shared by the registry contract (which
stores a type as its :attr:`FieldType.code`), the sensor declarations a node checks
messages against (``sensing/``) and the device SDK. Each type has one ABI type, so
the values ``d_q`` of a message have one canonical encoding a contract can decode.

Example::

    field = SensorField.parse("celsius:int64")
    field.type.code           # 1, as the registry stores it
    field.type.check("celsius", -5)
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import checksum_address
from pervasive.errors import InvalidInput, SchemaViolation

__all__ = ["MAX_FIELDS", "MAX_FIELD_NAME", "FieldType", "SensorField", "check_field_name"]

MAX_FIELDS = 16
"""Variables one sensor may declare (the registry contract's bound)."""
MAX_FIELD_NAME = 32
"""Characters of a variable name (the registry contract stores ``String[32]``)."""
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


class FieldType(enum.StrEnum):
    """The closed set of variable types; the value is the ABI type, ``code`` the on-chain one."""

    BOOL = "bool"
    INT64 = "int64"
    UINT64 = "uint64"
    INT256 = "int256"
    UINT256 = "uint256"
    STRING = "string"
    BYTES32 = "bytes32"
    ADDRESS = "address"
    BYTES = "bytes"

    @property
    def code(self) -> int:
        """The index the registry stores. Example: ``FieldType.BOOL.code == 0``."""
        return _CODES[self]

    @classmethod
    def from_code(cls, code: int) -> FieldType:
        """The type stored on-chain as ``code``; :class:`InvalidInput` if unknown."""
        members = list(cls)
        if not 0 <= code < len(members):
            raise InvalidInput(f"field type code {code} is unknown")
        return members[code]

    @classmethod
    def parse(cls, name: str) -> FieldType:
        """The type named ``name``; :class:`InvalidInput` lists the choices otherwise.

        Example: ``FieldType.parse("uint64") is FieldType.UINT64``.
        """
        try:
            return cls(name.strip().lower())
        except ValueError:
            choices = ", ".join(member.value for member in cls)
            raise InvalidInput(f"unknown field type {name!r}; choose one of: {choices}") from None

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` in canonical form, or raise :class:`SchemaViolation`.

        Example: ``FieldType.UINT64.check("time", 5) == 5``.
        """
        if self is FieldType.BOOL:
            if isinstance(value, bool):
                return value
        elif self in _INT_RANGES:
            low, high = _INT_RANGES[self]
            if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
                return value
        elif self is FieldType.STRING:
            if isinstance(value, str):
                return value
        elif self is FieldType.BYTES:
            if isinstance(value, bytes):
                return value
        elif self is FieldType.BYTES32:
            if isinstance(value, bytes) and len(value) == 32:
                return value
        elif isinstance(value, str):
            try:
                return checksum_address(value)
            except InvalidInput:
                pass
        raise SchemaViolation(f"field {name!r} must be {self.value}, got {value!r}")


_CODES = {member: index for index, member in enumerate(FieldType)}
_INT_RANGES = {
    FieldType.INT64: (-(2**63), 2**63 - 1),
    FieldType.UINT64: (0, 2**64 - 1),
    FieldType.INT256: (-(2**255), 2**255 - 1),
    FieldType.UINT256: (0, 2**256 - 1),
}


def check_field_name(name: str) -> str:
    """``name`` if it is a valid variable name (an identifier of at most 32 characters).

    Example: ``check_field_name("celsius") == "celsius"``.
    """
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
        raise InvalidInput(
            f"field name {name!r} is invalid: use letters, digits and '_', at most "
            f"{MAX_FIELD_NAME}, not starting with a digit"
        )
    return name


@dataclass(frozen=True)
class SensorField:
    """One declared variable ``type x`` of a sensor; the name is checked on creation."""

    name: str
    type: FieldType

    def __post_init__(self) -> None:
        check_field_name(self.name)
        object.__setattr__(self, "type", FieldType.parse(str(self.type)))

    @classmethod
    def parse(cls, text: str) -> SensorField:
        """Parse ``name:type``, e.g. ``"celsius:int64"``.

        Example: ``SensorField.parse("locked:bool") == SensorField("locked", FieldType.BOOL)``.
        """
        name, sep, kind = text.partition(":")
        if not sep:
            raise InvalidInput(f"field {text!r} must be written name:type, e.g. celsius:int64")
        return cls(name.strip(), FieldType.parse(kind))
