"""A fast codec for signed sensor messages ``m_{s,q}`` (paper 002, section 3).

:mod:`pervasive.offchain.sensor_message` defines the format with eth-abi and is the
reference; it signs about 1,000 and verifies about 650 messages per second on one
core, too slow for a fleet of devices or for a consumer that checks every signature.
:class:`SensorCodec` produces and accepts exactly the same bytes (a property test
compares both on random and corrupted inputs) by writing the fixed ABI layout by hand:

- the wire form ``abi_encode(bytes PU_s, string c_s, uint64 q, bytes d_q, bytes sig)``
  is a 160-byte head of offsets and ``q``, then four length-prefixed, zero-padded
  tails; only the canonical layout is accepted, as :func:`pervasive.crypto.abi_decode`
  accepts only canonical encodings;
- the values ``d_q`` of the closed type set (:class:`~pervasive.offchain.declaration.FieldType`)
  are static 32-byte words or length-prefixed tails;
- the EIP-712 digest is ``keccak256(0x1901 || domain || keccak256(typehash ||
  keccak256(PU_s) || keccak256(c_s) || q || keccak256(d_q)))`` with the hashes of the
  constant parts computed once per sensor;
- the signature is recovered with libsecp256k1 (coincurve) and compared with ``PU_s``.

Example::

    codec = SensorCodec(declaration)
    wire = codec.sign(key, 7, {"cell": "c-12", "time": 1_700_000_000})
    reading = codec.verify(wire)          # Reading(sequence=7, values=('c-12', 1700000000))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import coincurve
from coincurve.ecdsa import deserialize_recoverable, recover

from pervasive.crypto import PrivateKey, checksum_address, keccak256, type_hash
from pervasive.errors import InvalidInput, InvalidSignature, SchemaViolation
from pervasive.offchain.declaration import FieldType, SensorDeclaration
from pervasive.offchain.sensor_message import SENSOR_DOMAIN_SEPARATOR, SENSOR_MESSAGE_TYPE

__all__ = ["Reading", "SensorCodec", "SensorVerifier", "peek_public_key"]

_WORD = 32
_HEAD = 5 * _WORD
_TYPEHASH = type_hash(SENSOR_MESSAGE_TYPE)
_PREFIX = b"\x19\x01" + SENSOR_DOMAIN_SEPARATOR
_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_DYNAMIC = frozenset({FieldType.STRING, FieldType.BYTES})
_SIGNED = {FieldType.INT64: 64, FieldType.INT256: 256}
_UNSIGNED = {FieldType.UINT64: 64, FieldType.UINT256: 256}


@dataclass(frozen=True)
class Reading:
    """A verified message: who sent it, its sequence number ``q`` and its values ``d_q``."""

    sensor: str
    """The sensor's address (derived from ``PU_s``)."""
    sequence: int
    values: tuple[Any, ...]


def _tail(data: bytes) -> bytes:
    return len(data).to_bytes(_WORD, "big") + data + b"\x00" * (-len(data) % _WORD)


def _word(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + _WORD], "big")


def _read_tail(data: bytes, offset: int, what: str) -> tuple[bytes, int]:
    """The bytes of a canonical tail at ``offset`` and the offset just after it."""
    if offset + _WORD > len(data):
        raise InvalidInput(f"not a valid ABI encoding: {what} runs past the end")
    length = _word(data, offset)
    start = offset + _WORD
    end = start + length
    padded = start + length + (-length % _WORD)
    if padded > len(data):
        raise InvalidInput(f"not a valid ABI encoding: {what} runs past the end")
    if any(data[end:padded]):
        raise InvalidInput(f"not the canonical ABI encoding: {what} has dirty padding")
    return data[start:end], padded


def _encode_static(kind: FieldType, value: Any) -> bytes:
    if kind is FieldType.BOOL:
        return (1 if value else 0).to_bytes(_WORD, "big")
    if kind in _SIGNED:
        return int(value).to_bytes(_WORD, "big", signed=True)
    if kind in _UNSIGNED:
        return int(value).to_bytes(_WORD, "big")
    if kind is FieldType.BYTES32:
        return bytes(value)
    return b"\x00" * 12 + bytes.fromhex(str(value)[2:])  # ADDRESS, checksummed by check()


def _decode_static(kind: FieldType, word: bytes, name: str) -> Any:
    number = int.from_bytes(word, "big")
    if kind is FieldType.BOOL:
        if number > 1:
            raise SchemaViolation(f"field {name!r} is not a canonical bool")
        return number == 1
    if kind in _SIGNED:
        value = int.from_bytes(word, "big", signed=True)
        bits = _SIGNED[kind]
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise SchemaViolation(f"field {name!r} does not fit {kind.value}")
        return value
    if kind in _UNSIGNED:
        if number >= 2 ** _UNSIGNED[kind]:
            raise SchemaViolation(f"field {name!r} does not fit {kind.value}")
        return number
    if kind is FieldType.BYTES32:
        return bytes(word)
    if any(word[:12]):
        raise SchemaViolation(f"field {name!r} is not a canonical address")
    return checksum_address(bytes(word[12:]))


class SensorCodec:
    """Sign and verify the messages of one declared sensor, byte-compatible with the reference."""

    def __init__(self, declaration: SensorDeclaration) -> None:
        self.declaration = declaration
        self._kinds = tuple(f.type for f in declaration.fields)
        self._names = tuple(f.name for f in declaration.fields)
        key = declaration.public_key.to_bytes()
        kind = declaration.sensor_type.encode("utf-8")
        self._key_tail = _tail(key)
        self._kind = kind
        self._kind_tail = _tail(kind)
        self._hashed_prefix = _TYPEHASH + keccak256(key) + keccak256(kind)
        self._uncompressed = b"\x04" + key
        self.sensor = declaration.address
        self._signer: tuple[bytes, coincurve.PrivateKey] | None = None

    # -- values d_q ---------------------------------------------------------------------
    def encode_values(self, values: Sequence[Any] | Mapping[str, Any]) -> bytes:
        """``abi_encode(type_1, ..., type_h)(values)`` after checking them against the declaration.

        Example: ``codec.encode_values({"cell": "c-1", "time": 5})``.
        """
        if isinstance(values, Mapping):
            missing = [n for n in self._names if n not in values]
            extra = set(values) - set(self._names)
            if missing or extra:
                raise SchemaViolation(f"values missing {missing} / undeclared {sorted(extra)}")
            values = [values[n] for n in self._names]
        checked = self.declaration.validate(values)
        head: list[bytes] = []
        tails: list[bytes] = []
        offset = _WORD * len(checked)
        for kind, value in zip(self._kinds, checked, strict=True):
            if kind in _DYNAMIC:
                raw = value.encode("utf-8") if kind is FieldType.STRING else value
                tail = _tail(raw)
                head.append(offset.to_bytes(_WORD, "big"))
                tails.append(tail)
                offset += len(tail)
            else:
                head.append(_encode_static(kind, value))
        return b"".join(head) + b"".join(tails)

    def decode_values(self, data: bytes) -> tuple[Any, ...]:
        """Decode ``d_q``; :class:`SchemaViolation` unless it is the canonical encoding.

        Example: ``codec.decode_values(codec.encode_values(v)) == tuple(v)``.
        """
        size = _WORD * len(self._kinds)
        if len(data) < size:
            raise SchemaViolation(f"values of {self.sensor} are shorter than the declaration")
        out: list[Any] = []
        expected = size
        try:
            for index, (kind, name) in enumerate(zip(self._kinds, self._names, strict=True)):
                word = data[index * _WORD : (index + 1) * _WORD]
                if kind in _DYNAMIC:
                    if int.from_bytes(word, "big") != expected:
                        raise SchemaViolation(f"field {name!r} is not canonically encoded")
                    raw, expected = _read_tail(data, expected, f"field {name!r}")
                    out.append(raw.decode("utf-8") if kind is FieldType.STRING else raw)
                else:
                    out.append(_decode_static(kind, word, name))
        except (InvalidInput, UnicodeDecodeError) as exc:
            raise SchemaViolation(
                f"values do not match the declaration of {self.sensor}: {exc}"
            ) from exc
        if expected != len(data):
            raise SchemaViolation(f"values of {self.sensor} have trailing bytes")
        return tuple(out)

    # -- whole messages -----------------------------------------------------------------
    def digest(self, sequence: int, values: bytes) -> bytes:
        """The EIP-712 digest the sensor signs for ``(q, d_q)``."""
        struct = keccak256(
            self._hashed_prefix + sequence.to_bytes(_WORD, "big") + keccak256(values)
        )
        return keccak256(_PREFIX + struct)

    def sign(
        self, key: PrivateKey, sequence: int, values: Sequence[Any] | Mapping[str, Any]
    ) -> bytes:
        """The wire form of ``m_{s,q}`` signed with ``key`` (the declared ``PU_s``).

        Example: ``client.publish(topic, codec.sign(key, q, {"celsius": 21}))``.
        """
        return self.sign_encoded(key, sequence, self.encode_values(values))

    def sign_encoded(self, key: PrivateKey, sequence: int, encoded: bytes) -> bytes:
        """Like :meth:`sign` for values already encoded with :meth:`encode_values`."""
        if key.public_key != self.declaration.public_key:
            raise InvalidInput("the signing key is not the key PU_s declared for this sensor")
        if not 0 <= sequence < 2**64:
            raise InvalidInput(f"sequence number must fit uint64, got {sequence}")
        if self._signer is None or self._signer[0] != key.secret:
            self._signer = (key.secret, coincurve.PrivateKey(key.secret))
        raw = self._signer[1].sign_recoverable(self.digest(sequence, encoded), hasher=None)
        signature = raw[:64] + bytes([raw[64] + 27])
        return b"".join(
            (
                (_HEAD).to_bytes(_WORD, "big"),
                (_HEAD + len(self._key_tail)).to_bytes(_WORD, "big"),
                sequence.to_bytes(_WORD, "big"),
                (_HEAD + len(self._key_tail) + len(self._kind_tail)).to_bytes(_WORD, "big"),
                (_HEAD + len(self._key_tail) + len(self._kind_tail) + len(_tail(encoded))).to_bytes(
                    _WORD, "big"
                ),
                self._key_tail,
                self._kind_tail,
                _tail(encoded),
                _tail(signature),
            )
        )

    def verify(self, wire: bytes) -> Reading:
        """Check a wire message against this declaration; return its sequence number and values.

        Raises :class:`InvalidInput` (not a canonical encoding), :class:`SchemaViolation`
        (other key or kind, values not as declared) or :class:`InvalidSignature`, as
        :func:`pervasive.offchain.sensor_message.verify_sensor_message` does.

        Example: ``codec.verify(payload).sequence``.
        """
        key, kind, sequence, values, signature = _split(wire)
        if key != self.declaration.public_key.to_bytes():
            raise SchemaViolation(f"message claims another key than sensor {self.sensor}")
        if kind != self._kind:
            raise SchemaViolation(f"message is not of sensor type {self.declaration.sensor_type!r}")
        decoded = self.decode_values(values)
        digest = self.digest(sequence, values)
        compact = signature[:64] + bytes(
            [signature[64] - 27 if signature[64] >= 27 else signature[64]]
        )
        try:
            point = recover(digest, deserialize_recoverable(compact), hasher=None)
            recovered = coincurve.PublicKey(point).format(compressed=False)
        except (ValueError, TypeError) as exc:
            raise InvalidSignature("no public key recovers from this signature") from exc
        if recovered != self._uncompressed:
            raise InvalidSignature(f"message q={sequence} is not signed by sensor {self.sensor}")
        return Reading(self.sensor, sequence, decoded)


def _split(wire: bytes) -> tuple[bytes, bytes, int, bytes, bytes]:
    """The five fields of a canonical wire form; the signature checked for EIP-2 form."""
    if len(wire) < _HEAD:
        raise InvalidInput("not a valid ABI encoding of a sensor message: too short")
    if _word(wire, 64) >= 2**64:
        raise InvalidInput("not a valid ABI encoding: q does not fit uint64")
    offset = _HEAD
    parts: list[bytes] = []
    for slot, what in ((0, "PU_s"), (1, "c_s"), (3, "d_q"), (4, "signature")):
        if _word(wire, slot * _WORD) != offset:
            raise InvalidInput(f"not the canonical ABI encoding: offset of {what}")
        part, offset = _read_tail(wire, offset, what)
        parts.append(part)
    if offset != len(wire):
        raise InvalidInput("not the canonical ABI encoding: trailing bytes")
    key, kind, values, signature = parts
    try:
        kind.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("not a valid ABI encoding: c_s is not UTF-8") from exc
    _check_key(key)
    _check_signature(signature)
    return key, kind, _word(wire, 64), values, signature


def _check_key(key: bytes) -> None:
    if len(key) not in (33, 64, 65):
        raise InvalidInput(f"a public key is 64 bytes (x || y), got {len(key)}")
    if len(key) != 64:  # parseable by the reference, but never equal to a declared key
        return
    try:
        coincurve.PublicKey(b"\x04" + key)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a secp256k1 public key: {key.hex()}") from exc


def _check_signature(signature: bytes) -> None:
    if len(signature) != 65:
        raise InvalidSignature(f"a signature is 65 bytes (r || s || v), got {len(signature)}")
    r, s, v = _word(signature, 0), _word(signature, 32), signature[64]
    if not 0 < r < _ORDER:
        raise InvalidSignature("signature r is out of range")
    if not 0 < s <= _HALF_ORDER:
        raise InvalidSignature("signature s is zero or high (not EIP-2 canonical)")
    if v not in (0, 1, 27, 28):
        raise InvalidSignature(f"signature v must be 27 or 28, got {v}")


def peek_public_key(wire: bytes) -> bytes:
    """The 64-byte ``PU_s`` a wire message claims, without checking anything else.

    Example: ``codecs[peek_public_key(payload)].verify(payload)``.
    """
    if len(wire) < _HEAD + _WORD + 64 or _word(wire, 0) != _HEAD or _word(wire, _HEAD) != 64:
        raise InvalidInput("not a sensor message: no 64-byte public key where expected")
    return bytes(wire[_HEAD + _WORD : _HEAD + _WORD + 64])


class SensorVerifier:
    """Verify messages of many sensors: pick the declaration by the claimed key, then check.

    Example::

        verifier = SensorVerifier(declarations)
        reading = verifier.verify(payload)    # SchemaViolation for an undeclared sensor
    """

    def __init__(self, declarations: Iterable[SensorDeclaration] = ()) -> None:
        self._codecs: dict[bytes, SensorCodec] = {}
        for declaration in declarations:
            self.declare(declaration)

    def declare(self, declaration: SensorDeclaration) -> SensorCodec:
        """Accept messages of ``declaration`` from now on; returns its codec."""
        codec = SensorCodec(declaration)
        self._codecs[declaration.public_key.to_bytes()] = codec
        return codec

    def __contains__(self, sensor_key: bytes) -> bool:
        return sensor_key in self._codecs

    def verify(self, wire: bytes) -> Reading:
        """Verify one wire message; raises like :meth:`SensorCodec.verify`, or
        :class:`SchemaViolation` when its key is not declared here."""
        codec = self._codecs.get(peek_public_key(wire))
        if codec is None:
            raise SchemaViolation("message of an undeclared sensor")
        return codec.verify(wire)
