"""Sensor declarations ``d_s = {PU_s, c_s, type_1 x_1, ..., type_h x_h}`` (paper 002, section 3).

A sensor is declared on-chain with its public key ``PU_s``, its kind ``c_s``
(temperature, lock, ...) and a list of typed variables. Every message the sensor
sends must carry exactly one value per variable, of the declared type; the types
form a closed set (:class:`FieldType`), each with a fixed ABI type so that the
values ``d_q`` have one canonical encoding a contract can decode.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import PublicKey, abi_decode, abi_encode, checksum_address
from pervasive.errors import InvalidInput, SchemaViolation

__all__ = ["FieldType", "SensorDeclaration", "SensorField"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class FieldType(enum.StrEnum):
    """The closed set of variable types a sensor may declare; the value is the ABI type."""

    BOOL = "bool"
    INT64 = "int64"
    UINT64 = "uint64"
    INT256 = "int256"
    UINT256 = "uint256"
    STRING = "string"
    BYTES = "bytes"
    BYTES32 = "bytes32"
    ADDRESS = "address"

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


_INT_RANGES = {
    FieldType.INT64: (-(2**63), 2**63 - 1),
    FieldType.UINT64: (0, 2**64 - 1),
    FieldType.INT256: (-(2**255), 2**255 - 1),
    FieldType.UINT256: (0, 2**256 - 1),
}


@dataclass(frozen=True)
class SensorField:
    """One declared variable ``type_i x_i``."""

    name: str
    type: FieldType


@dataclass(frozen=True)
class SensorDeclaration:
    """``d_s = {PU_s, c_s, type_1 x_1, ..., type_h x_h}`` (paper 002, section 3).

    Example::

        SensorDeclaration.create(key.public_key, "lock",
                                 [("bicycle", "uint64"), ("token", "string"),
                                  ("unlocked", "bool"), ("time", "uint64")])
    """

    public_key: PublicKey
    sensor_type: str
    fields: tuple[SensorField, ...]

    def __post_init__(self) -> None:
        if not self.sensor_type:
            raise InvalidInput("a sensor declaration needs a sensor type c_s (e.g. 'temperature')")
        names = [f.name for f in self.fields]
        for name in names:
            if not _NAME.match(name):
                raise InvalidInput(f"sensor variable name {name!r} is not an identifier")
        if len(set(names)) != len(names):
            raise InvalidInput(f"sensor variables must have distinct names, got {names}")
        if not self.fields:
            raise InvalidInput("a sensor declaration needs at least one variable")

    @classmethod
    def create(
        cls, public_key: PublicKey | bytes, sensor_type: str, fields: Sequence[tuple[str, str]]
    ) -> SensorDeclaration:
        """Build a declaration from ``(name, type)`` pairs.

        Unknown types raise :class:`InvalidInput`.

        Example: ``SensorDeclaration.create(pk, "thermo", [("celsius", "int64")])``.
        """
        key = public_key if isinstance(public_key, PublicKey) else PublicKey.from_bytes(public_key)
        parsed = []
        for name, kind in fields:
            try:
                parsed.append(SensorField(name, FieldType(kind)))
            except ValueError as exc:
                allowed = ", ".join(t.value for t in FieldType)
                raise InvalidInput(f"field type {kind!r} is not one of: {allowed}") from exc
        return cls(key, sensor_type, tuple(parsed))

    @property
    def address(self) -> str:
        """The sensor's Ethereum address, derived from ``PU_s``."""
        return self.public_key.address

    @property
    def abi_types(self) -> tuple[str, ...]:
        """The ABI types of ``d_q``, in declaration order."""
        return tuple(f.type.value for f in self.fields)

    def validate(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """Check ``d_q`` against the declaration; return it in canonical form.

        Raises :class:`SchemaViolation` for a wrong count or a wrongly typed value.

        Example: ``decl.validate([7, "tok", True, 1_700_000_000])``.
        """
        if len(values) != len(self.fields):
            raise SchemaViolation(
                f"sensor {self.address} declares {len(self.fields)} values, "
                f"message has {len(values)}"
            )
        return tuple(f.type.check(f.name, v) for f, v in zip(self.fields, values, strict=True))

    def encode_values(self, values: Sequence[Any]) -> bytes:
        """The canonical ABI encoding of ``d_q``: ``abi_encode(type_1, ..., type_h)``.

        Example: ``decl.encode_values([21])  # 32 bytes for one int64``.
        """
        return abi_encode(self.abi_types, self.validate(values))

    def decode_values(self, data: bytes) -> tuple[Any, ...]:
        """Decode ``d_q`` from its canonical encoding; :class:`SchemaViolation` if it is not one.

        Example: ``decl.decode_values(decl.encode_values(v)) == tuple(v)``.
        """
        try:
            values = abi_decode(self.abi_types, data)
        except InvalidInput as exc:
            raise SchemaViolation(
                f"values do not match the declaration of {self.address}: {exc}"
            ) from exc
        return self.validate(values)
