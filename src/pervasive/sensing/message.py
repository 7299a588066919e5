"""Signed sensor messages ``m_{s,q} = (PU_s || c_s || q || d_q) : s`` (paper 002, section 3).

The concatenation ``||`` is made unambiguous with the ABI, and the signature ``: s``
is an EIP-712 signature, so a contract can check a message found in calldata
(on-chain proof of storage) with ``keccak256``, ``abi_encode`` and ``ecrecover``:

- the message body: ``abi_encode(bytes PU_s, string c_s, uint64 q, bytes d_q)``
  where ``PU_s`` is the 64-byte public key ``x||y`` and ``d_q`` is
  ``abi_encode(type_1, ..., type_h)`` of the values (:class:`SensorDeclaration`);
- its struct hash (also the leaf of window hashes):
  ``keccak256(abi_encode(SENSOR_MESSAGE_TYPEHASH, keccak256(PU_s), keccak256(c_s), q,
  keccak256(d_q)))``
  with type ``SensorMessage(bytes publicKey,string sensorType,uint64 sequence,bytes values)``;
- the signed digest: ``keccak256(0x1901 || SENSOR_DOMAIN_SEPARATOR || struct hash)``, domain
  ``EIP712Domain(string name,string version)`` = ``("DIVERSITY Sensor", "1")``. A sensor's
  trace serves every agreement, so its domain names no chain or contract;
- the wire form: ``abi_encode(bytes PU_s, string c_s, uint64 q, bytes d_q, bytes signature)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import (
    PrivateKey,
    PublicKey,
    Signature,
    TypedDataHash,
    abi_decode,
    abi_encode,
    domain_separator,
    recover_hash,
    sign_typed_data,
    struct_hash,
    typed_data_digest,
)
from pervasive.errors import InvalidInput, InvalidSignature, SchemaViolation
from pervasive.sensing.declaration import SensorDeclaration

__all__ = [
    "SENSOR_DOMAIN_SEPARATOR",
    "SENSOR_MESSAGE_TYPE",
    "SensorMessage",
    "decode_sensor_message",
    "sign_sensor_message",
    "verify_sensor_message",
]

SENSOR_MESSAGE_TYPE = (
    "SensorMessage(bytes publicKey,string sensorType,uint64 sequence,bytes values)"
)
"""The EIP-712 type of ``m_{s,q}``."""

SENSOR_DOMAIN_SEPARATOR = domain_separator("DIVERSITY Sensor", "1")
"""EIP-712 domain separator of sensor messages."""

_WIRE_TYPES = ("bytes", "string", "uint64", "bytes", "bytes")


@dataclass(frozen=True)
class SensorMessage:
    """``m_{s,q}``: sensor key and kind, sequence number ``q``, values ``d_q``, signature."""

    public_key: PublicKey
    sensor_type: str
    sequence: int
    values: bytes
    """``d_q``, canonically ABI-encoded (decode with :meth:`SensorDeclaration.decode_values`)."""
    signature: Signature

    @property
    def sensor(self) -> str:
        """The address of the sensor that claims to have sent this message."""
        return self.public_key.address

    @property
    def struct_hash(self) -> bytes:
        """The EIP-712 struct hash of the unsigned content; the leaf of window hashes."""
        return _struct_hash(self.public_key, self.sensor_type, self.sequence, self.values)

    @property
    def typed_hash(self) -> TypedDataHash:
        """The EIP-712 digest the sensor signs."""
        return typed_data_digest(SENSOR_DOMAIN_SEPARATOR, self.struct_hash)

    def body(self) -> bytes:
        """``abi_encode(bytes PU_s, string c_s, uint64 q, bytes d_q)``, the unsigned content."""
        return abi_encode(
            _WIRE_TYPES[:4],
            [self.public_key.to_bytes(), self.sensor_type, self.sequence, self.values],
        )

    def encode(self) -> bytes:
        """The wire form: the body plus ``bytes signature`` (65 bytes ``r||s||v``).

        Example: ``decode_sensor_message(m.encode()) == m``.
        """
        return abi_encode(
            _WIRE_TYPES,
            [
                self.public_key.to_bytes(),
                self.sensor_type,
                self.sequence,
                self.values,
                self.signature.to_bytes(),
            ],
        )


def _struct_hash(public_key: PublicKey, sensor_type: str, sequence: int, values: bytes) -> bytes:
    return struct_hash(SENSOR_MESSAGE_TYPE, [public_key.to_bytes(), sensor_type, sequence, values])


def sign_sensor_message(
    key: PrivateKey,
    declaration: SensorDeclaration,
    sequence: int,
    values: Sequence[Any] | Mapping[str, Any],
) -> SensorMessage:
    """Build and sign ``m_{s,q}`` (what a sensor does); values are checked against ``declaration``.

    ``values`` is a list in declaration order or a mapping by variable name.

    Example: ``sign_sensor_message(key, decl, 0, {"celsius": 21})``.
    """
    if key.public_key != declaration.public_key:
        raise InvalidInput("the signing key is not the key PU_s declared for this sensor")
    if not 0 <= sequence < 2**64:
        raise InvalidInput(f"sequence number must fit uint64, got {sequence}")
    if isinstance(values, Mapping):
        missing = [f.name for f in declaration.fields if f.name not in values]
        extra = set(values) - {f.name for f in declaration.fields}
        if missing or extra:
            raise SchemaViolation(f"values missing {missing} / undeclared {sorted(extra)}")
        values = [values[f.name] for f in declaration.fields]
    encoded = declaration.encode_values(values)
    digest = typed_data_digest(
        SENSOR_DOMAIN_SEPARATOR,
        _struct_hash(declaration.public_key, declaration.sensor_type, sequence, encoded),
    )
    return SensorMessage(
        declaration.public_key,
        declaration.sensor_type,
        sequence,
        encoded,
        sign_typed_data(key, digest),
    )


def decode_sensor_message(data: bytes) -> SensorMessage:
    """Parse the wire form; :class:`InvalidInput` if it is not a canonical encoding.

    The signature is parsed (and must be canonical) but not yet checked against a
    declaration: use :func:`verify_sensor_message` for that.

    Example: ``m = decode_sensor_message(payload)``.
    """
    public_key, sensor_type, sequence, values, signature = abi_decode(_WIRE_TYPES, data)
    return SensorMessage(
        PublicKey.from_bytes(public_key),
        sensor_type,
        sequence,
        values,
        Signature.from_bytes(signature),
    )


def verify_sensor_message(
    message: SensorMessage, declaration: SensorDeclaration
) -> tuple[Any, ...]:
    """Check ``m_{s,q}`` against ``d_s``; return the decoded values ``d_q``.

    Raises :class:`SchemaViolation` when the key, kind or values do not match the
    declaration, and :class:`InvalidSignature` when the signature is not by ``PU_s``.

    Example: ``verify_sensor_message(m, decl)  # -> (7, 'tok', True, 1700000000)``.
    """
    if message.public_key != declaration.public_key:
        raise SchemaViolation(
            f"message claims key of {message.sensor}, declared {declaration.address}"
        )
    if message.sensor_type != declaration.sensor_type:
        raise SchemaViolation(
            f"sensor {declaration.address} is a {declaration.sensor_type!r}, "
            f"message says {message.sensor_type!r}"
        )
    values = declaration.decode_values(message.values)
    signer = recover_hash(message.typed_hash.digest, message.signature)
    if signer != declaration.address:
        raise InvalidSignature(
            f"message q={message.sequence} is signed by {signer}, not sensor {declaration.address}"
        )
    return values
