"""Fast verification of signed sensor messages ``m_{s,q}`` at ingestion (paper 002, section 3).

:func:`~pervasive.sensing.message.verify_sensor_message` is the reference:
it decodes with eth-abi, rebuilds the EIP-712 struct with a generic encoder and
recovers the signer's checksummed address, about 500 µs a message. An intermediate
node must take at least 5,000 messages a second, so :class:`SensorVerifier` checks the
same things in one pass over the bytes:

1. the wire form ``abi_encode(bytes PU_s, string c_s, uint64 q, bytes d_q, bytes sig)``
   is parsed by offsets and accepted only if re-encoding it by hand gives the same
   bytes (the canonical encoding, as :func:`pervasive.crypto.abi_decode` demands);
2. ``PU_s`` must be a declared key and ``c_s`` its declared kind; ``d_q`` is decoded
   by hand for the declaration's closed set of types, with the same range and
   padding rules;
3. the struct hash reuses the per-sensor ``keccak256(PU_s)`` and ``keccak256(c_s)``;
   the signature must be canonical (low ``s``, ``v`` in {27, 28}) and recover to
   exactly the declared 64-byte key (no address or checksum is computed).

Whenever the fast path meets anything unusual (a non-canonical layout, a value it
does not decode, a signature it does not like) it hands the message to the
reference functions, so a message is accepted, and an error raised, exactly as
:class:`~pervasive.sensing.sequence.SensorInbox` would; a property test checks the
equivalence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import coincurve

from pervasive.crypto import Signature, keccak256, type_hash
from pervasive.domain import FieldType
from pervasive.errors import InvalidInput, InvalidSignature, PervasiveError, SchemaViolation
from pervasive.sensing.declaration import SensorDeclaration
from pervasive.sensing.message import (
    SENSOR_DOMAIN_SEPARATOR,
    SENSOR_MESSAGE_TYPE,
    SensorMessage,
    decode_sensor_message,
    verify_sensor_message,
)

__all__ = ["SensorVerifier", "VerifiedSensorMessage"]

_TYPEHASH = type_hash(SENSOR_MESSAGE_TYPE)
_DIGEST_PREFIX = b"\x19\x01" + SENSOR_DOMAIN_SEPARATOR
_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_ZERO12 = bytes(12)
_UINT_BITS = {FieldType.UINT64: 64, FieldType.UINT256: 256}
_INT_BITS = {FieldType.INT64: 64, FieldType.INT256: 256}


@dataclass(frozen=True, eq=False)
class VerifiedSensorMessage(SensorMessage):
    """A :class:`SensorMessage` that passed verification, with its struct hash kept.

    The window hash needs every message's struct hash (its leaf); the verifier
    computed it already, so it is stored instead of being recomputed.
    """

    leaf: bytes = field(default=b"", repr=False)
    wire: bytes = field(default=b"", repr=False)

    @property
    def struct_hash(self) -> bytes:
        """The EIP-712 struct hash, computed once during verification."""
        return self.leaf

    def encode(self) -> bytes:
        """The wire form it arrived in (canonical, so equal to re-encoding it)."""
        return self.wire


class _Fallback(PervasiveError):
    """Internal: the fast path is unsure; use the reference implementation."""


@dataclass(frozen=True)
class _Sensor:
    declaration: SensorDeclaration
    key_hash: bytes
    type_hash: bytes
    sensor_type: bytes
    types: tuple[FieldType, ...]


def _pad(length: int) -> int:
    return (length + 31) // 32 * 32


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _dynamic(data: bytes, offset: int, end: int) -> bytes:
    """The ``bytes``/``string`` body at ``offset``; :class:`_Fallback` when out of place."""
    if offset + 32 > end:
        raise _Fallback
    length = int.from_bytes(data[offset : offset + 32], "big")
    stop = offset + 32 + length
    if stop > end or data[stop : offset + 32 + _pad(length)].strip(b"\x00"):
        raise _Fallback
    return data[offset + 32 : stop]


def _static_ok(kind: FieldType, word: bytes) -> bool:
    """Whether a head word is a canonical value of static type ``kind``."""
    number = int.from_bytes(word, "big")
    if kind is FieldType.BOOL:
        return number <= 1
    if kind in _UINT_BITS:
        return not number >> _UINT_BITS[kind]
    if kind in _INT_BITS:
        bits = _INT_BITS[kind]
        signed = number - (1 << 256) if number >> 255 else number
        return -(1 << (bits - 1)) <= signed < (1 << (bits - 1))
    if kind is FieldType.ADDRESS:
        return word[:12] == _ZERO12
    return kind is FieldType.BYTES32


def _decode_values(types: tuple[FieldType, ...], data: bytes) -> None:
    """Check ``d_q`` is the canonical encoding of values of ``types``; :class:`_Fallback` if not."""
    head = 32 * len(types)
    if len(data) < head:
        raise _Fallback
    expected_tail = head
    for index, kind in enumerate(types):
        word = data[32 * index : 32 * index + 32]
        if kind not in (FieldType.STRING, FieldType.BYTES):
            if not _static_ok(kind, word):
                raise _Fallback
            continue
        offset = int.from_bytes(word, "big")
        if offset != expected_tail:
            raise _Fallback
        body = _dynamic(data, offset, len(data))
        if kind is FieldType.STRING:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                raise _Fallback from None
        expected_tail += 32 + _pad(len(body))
    if expected_tail != len(data):
        raise _Fallback


class SensorVerifier:
    """Verify wire-form sensor messages against the agreement's declarations, fast.

    Raises what :func:`~pervasive.sensing.message.verify_sensor_message` and
    :func:`~pervasive.sensing.message.decode_sensor_message` raise:
    :class:`SchemaViolation` (undeclared sensor, wrong kind or values),
    :class:`InvalidSignature` and :class:`InvalidInput` (undecodable bytes).

    Example::

        verifier = SensorVerifier([lock_declaration])
        message = verifier.verify(payload)     # VerifiedSensorMessage
        message.sensor, message.sequence
    """

    def __init__(self, declarations: Iterable[SensorDeclaration]) -> None:
        self._sensors: dict[bytes, _Sensor] = {}
        for declaration in declarations:
            raw = declaration.public_key.to_bytes()
            self._sensors[raw] = _Sensor(
                declaration,
                keccak256(raw),
                keccak256(declaration.sensor_type.encode("utf-8")),
                declaration.sensor_type.encode("utf-8"),
                tuple(f.type for f in declaration.fields),
            )
        self.fast = 0
        """Messages verified on the fast path."""
        self.slow = 0
        """Messages handed to the reference implementation."""

    @property
    def declarations(self) -> tuple[SensorDeclaration, ...]:
        """The declarations this verifier accepts messages of."""
        return tuple(s.declaration for s in self._sensors.values())

    def verify(self, payload: bytes) -> VerifiedSensorMessage:
        """Verify one message in wire form; return it with its struct hash.

        Example: ``verifier.verify(m.encode()).values == m.values``.
        """
        try:
            message = self._fast(payload)
        except _Fallback:
            self.slow += 1
            return self._reference(payload)
        self.fast += 1
        return message

    def verify_many(
        self, payloads: Iterable[bytes]
    ) -> list[VerifiedSensorMessage | SchemaViolation | InvalidInput]:
        """Verify a batch; each item is the message or the error it raised.

        Example: ``[r for r in verifier.verify_many(batch) if isinstance(r, Exception)]``.
        """
        out: list[VerifiedSensorMessage | SchemaViolation | InvalidInput] = []
        for payload in payloads:
            try:
                out.append(self.verify(payload))
            except InvalidInput as exc:  # SchemaViolation and InvalidSignature included
                out.append(exc)
        return out

    def _reference(self, payload: bytes) -> VerifiedSensorMessage:
        message = decode_sensor_message(payload)
        declaration = next(
            (
                s.declaration
                for s in self._sensors.values()
                if s.declaration.address == message.sensor
            ),
            None,
        )
        if declaration is None:
            raise SchemaViolation(f"sensor {message.sensor} is not declared in this agreement")
        verify_sensor_message(message, declaration)
        return VerifiedSensorMessage(
            declaration.public_key,
            message.sensor_type,
            message.sequence,
            message.values,
            message.signature,
            leaf=message.struct_hash,
            wire=payload,
        )

    def _fast(self, data: bytes) -> VerifiedSensorMessage:
        end = len(data)
        if end < 160 + 4 * 32 + 64 + 96:
            raise _Fallback
        offsets = [int.from_bytes(data[i : i + 32], "big") for i in (0, 32, 96, 128)]
        sequence = int.from_bytes(data[64:96], "big")
        if offsets[0] != 160 or sequence >> 64:
            raise _Fallback
        key = _dynamic(data, 160, end)
        sensor = self._sensors.get(key)
        if sensor is None or offsets[1] != 160 + 32 + _pad(len(key)):
            raise _Fallback
        kind = _dynamic(data, offsets[1], end)
        if kind != sensor.sensor_type:
            raise _Fallback
        if offsets[2] != offsets[1] + 32 + _pad(len(kind)):
            raise _Fallback
        values = _dynamic(data, offsets[2], end)
        if offsets[3] != offsets[2] + 32 + _pad(len(values)):
            raise _Fallback
        raw_signature = _dynamic(data, offsets[3], end)
        if len(raw_signature) != 65 or offsets[3] + 32 + 96 != end:
            raise _Fallback
        _decode_values(sensor.types, values)
        r = int.from_bytes(raw_signature[:32], "big")
        s = int.from_bytes(raw_signature[32:64], "big")
        v = raw_signature[64]
        if not (0 < s <= _HALF_ORDER and v in (27, 28) and r):
            raise _Fallback
        leaf = keccak256(
            _TYPEHASH + sensor.key_hash + sensor.type_hash + _word(sequence) + keccak256(values)
        )
        digest = keccak256(_DIGEST_PREFIX + leaf)
        try:
            recovered = coincurve.PublicKey.from_signature_and_message(
                raw_signature[:64] + bytes([v - 27]), digest, hasher=None
            ).format(compressed=False)[1:]
        except (ValueError, TypeError):
            raise _Fallback from None
        if recovered != key:
            raise _Fallback
        declaration = sensor.declaration
        try:
            signature = Signature(r, s, v)
        except InvalidSignature:
            raise _Fallback from None
        return VerifiedSensorMessage(
            declaration.public_key,
            declaration.sensor_type,
            sequence,
            values,
            signature,
            leaf=leaf,
            wire=data,
        )
