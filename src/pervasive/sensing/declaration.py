"""Sensor declarations ``d_s = {PU_s, c_s, type_1 x_1, ..., type_h x_h}`` (paper 002, section 3).

A sensor is declared on-chain with its public key ``PU_s``, its kind ``c_s``
(temperature, lock, ...) and a list of typed variables. Every message the sensor
sends must carry exactly one value per variable, of the declared type; the types
form a closed set (:class:`~pervasive.domain.FieldType`), each with a fixed ABI type so
that the values ``d_q`` have one canonical encoding a contract can decode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import PublicKey, abi_decode, abi_encode
from pervasive.domain import FieldType, SensorField
from pervasive.errors import InvalidInput, SchemaViolation

__all__ = ["SensorDeclaration"]


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
        names = [f.name for f in self.fields]  # each checked by SensorField
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
        parsed = [SensorField(name, FieldType.parse(kind)) for name, kind in fields]
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
