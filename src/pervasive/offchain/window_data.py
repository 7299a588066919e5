"""``w[t]`` packed for calldata: the window data of on-chain proof of storage (paper 002, §2).

Under the on-chain QoS the update (or a dispute) carries the window data in calldata;
the nodes sign ``dataHash = keccak256(data)`` and anyone can rebuild ``H(w[t])`` and
check every sensor signature from it. Pure functions over :mod:`pervasive.crypto`: the
node packs its :class:`~pervasive.offchain.window.WindowArray` with
:meth:`WindowData.from_windows`, the Agreement wrapper only sends the bytes.

Layout (big-endian, ``docs/agreement-contract.md``): ``version:1 | k:1`` then per sensor
``public key:64 | len:1 type | h:1 field codes:h | q0:8 | z:2 | presence bitmap:ceil(z/8)``
then per present message its values packed at their natural width (bool 1, (u)int64 8,
(u)int256 and bytes32 32, address 20, string/bytes 2-byte length + bytes) and its
65-byte signature ``r||s||v``. No per-message ``q``: a window is consecutive.

Example::

    data = WindowData.from_windows(w, spec.sensors).encode()
    assert WindowData.decode(data).hash == w.hash
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pervasive.crypto import (
    PublicKey,
    abi_decode,
    abi_encode,
    checksum_address,
    keccak256,
    struct_hash,
    typed_data_digest,
    verify_hash,
)
from pervasive.domain import FieldType
from pervasive.errors import InvalidInput
from pervasive.offchain.window import MISSING_LEAF, WindowArray
from pervasive.sensing import SensorDeclaration
from pervasive.sensing.message import SENSOR_DOMAIN_SEPARATOR, SENSOR_MESSAGE_TYPE

__all__ = [
    "WINDOW_DATA_VERSION",
    "PackedMessage",
    "SensorWindowData",
    "WindowData",
    "pack_window",
]

WINDOW_DATA_VERSION = 1
_FIXED_WIDTH = {
    "bool": 1,
    "int64": 8,
    "uint64": 8,
    "int256": 32,
    "uint256": 32,
    "bytes32": 32,
    "address": 20,
}


@dataclass(frozen=True)
class PackedMessage:
    """One message of a window: ``d_q`` (its canonical ABI encoding) and ``: s`` (65 bytes)."""

    values: bytes
    signature: bytes


@dataclass(frozen=True)
class SensorWindowData:
    """``w_s(t)`` as it goes on-chain: sensor key, type, field types, start ``q`` and messages.

    A ``None`` message is one the nodes never received (leaf ``bytes32(0)``).
    """

    public_key: bytes
    sensor_type: str
    field_types: tuple[str, ...]
    start: int
    messages: tuple[PackedMessage | None, ...]

    def leaf(self, i: int) -> bytes:
        """The window-hash leaf of message ``start + i``: its EIP-712 struct hash."""
        message = self.messages[i]
        if message is None:
            return MISSING_LEAF
        values = [self.public_key, self.sensor_type, self.start + i, message.values]
        return struct_hash(SENSOR_MESSAGE_TYPE, values)

    @property
    def hash(self) -> bytes:
        """``H(w_s(t))``: keccak256 of the leaves."""
        return keccak256(b"".join(self.leaf(i) for i in range(len(self.messages))))

    def verify_signatures(self) -> None:
        """Check every message is signed by this sensor; :class:`InvalidSignature` otherwise."""
        address = PublicKey.from_bytes(self.public_key).address
        for i, message in enumerate(self.messages):
            if message is not None:
                digest = typed_data_digest(SENSOR_DOMAIN_SEPARATOR, self.leaf(i)).digest
                verify_hash(digest, message.signature, address)


@dataclass(frozen=True)
class WindowData:
    """``w[t]`` in the packed calldata form of on-chain proof of storage.

    Example: ``WindowData.decode(data.encode()) == data``.
    """

    sensors: tuple[SensorWindowData, ...]

    @classmethod
    def from_windows(
        cls, windows: WindowArray, declarations: Iterable[SensorDeclaration]
    ) -> WindowData:
        """``w[t]`` as a node built it, with each sensor's declaration ``d_s`` (any order).

        Example: ``WindowData.from_windows(w, spec.sensors).hash == w.hash``.
        """
        by_address = {d.address: d for d in declarations}
        sensors = []
        for window in windows.windows:
            declaration = by_address.get(window.sensor)
            if declaration is None:
                raise InvalidInput(f"no declaration given for sensor {window.sensor}")
            messages = tuple(
                None if m is None else PackedMessage(m.values, m.signature.to_bytes())
                for m in window.messages
            )
            sensors.append(
                SensorWindowData(
                    declaration.public_key.to_bytes(),
                    declaration.sensor_type,
                    declaration.abi_types,
                    window.start,
                    messages,
                )
            )
        return cls(tuple(sensors))

    @property
    def hash(self) -> bytes:
        """``H(w[t])``, as :attr:`pervasive.offchain.window.WindowArray.hash`."""
        return keccak256(b"".join(s.hash for s in self.sensors))

    def verify_signatures(self) -> None:
        """Check every sensor signature in the window."""
        for sensor in self.sensors:
            sensor.verify_signatures()

    def encode(self) -> bytes:
        """The packed bytes (their keccak256 is the update's ``dataHash``)."""
        if not 1 <= len(self.sensors) <= 255:
            raise InvalidInput("window data holds 1 to 255 sensors")
        out = bytearray([WINDOW_DATA_VERSION, len(self.sensors)])
        for s in self.sensors:
            kind = s.sensor_type.encode()
            if len(s.public_key) != 64 or not 1 <= len(kind) <= 255 or len(s.field_types) > 255:
                raise InvalidInput("a sensor needs a 64-byte key, a 1-255 byte type, <= 255 fields")
            if len(s.messages) > 0xFFFF or not 0 <= s.start < 2**64:
                raise InvalidInput("a sensor window holds at most 65535 messages from q0 < 2^64")
            out += s.public_key + bytes([len(kind)]) + kind + bytes([len(s.field_types)])
            out += bytes(FieldType.parse(t).code for t in s.field_types)  # the registry's codes
            out += s.start.to_bytes(8, "big") + len(s.messages).to_bytes(2, "big")
            bitmap = bytearray((len(s.messages) + 7) // 8)
            for i, m in enumerate(s.messages):
                if m is not None:
                    bitmap[i // 8] |= 1 << (i % 8)
            out += bitmap
            for m in s.messages:
                if m is not None:
                    if len(m.signature) != 65:
                        raise InvalidInput("a sensor signature is 65 bytes r||s||v")
                    out += _pack_values(s.field_types, m.values) + m.signature
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> WindowData:
        """Parse packed window data; :class:`InvalidInput` unless it is one canonical encoding."""
        reader = _Reader(data)
        if reader.int(1) != WINDOW_DATA_VERSION:
            raise InvalidInput(f"window data version must be {WINDOW_DATA_VERSION}")
        sensors = []
        for _ in range(reader.int(1)):
            public_key = reader.take(64)
            try:
                kind = reader.take(reader.int(1)).decode()
            except UnicodeDecodeError:
                raise InvalidInput("a sensor type is not UTF-8") from None
            codes = reader.take(reader.int(1))
            types = tuple(FieldType.from_code(c).value for c in codes)
            start, count = reader.int(8), reader.int(2)
            bitmap = reader.take((count + 7) // 8)
            if count % 8 and bitmap[-1] >> (count % 8):
                raise InvalidInput("presence bitmap has bits past the window's end")
            messages: list[PackedMessage | None] = []
            for i in range(count):
                if bitmap[i // 8] >> (i % 8) & 1:
                    values = _unpack_values(types, reader)
                    messages.append(PackedMessage(values, reader.take(65)))
                else:
                    messages.append(None)
            sensors.append(SensorWindowData(public_key, kind, types, start, tuple(messages)))
        if not reader.done:
            raise InvalidInput("trailing bytes after the window data")
        return cls(tuple(sensors))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise InvalidInput("window data ends early")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def int(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    @property
    def done(self) -> bool:
        return self.at == len(self.data)


def _pack_values(types: Sequence[str], encoded: bytes) -> bytes:
    out = bytearray()
    for kind, value in zip(types, abi_decode(types, encoded), strict=True):
        if kind in ("string", "bytes"):
            raw = value.encode() if kind == "string" else bytes(value)
            if len(raw) > 0xFFFF:
                raise InvalidInput("a string or bytes value is at most 65535 bytes")
            out += len(raw).to_bytes(2, "big") + raw
        elif kind == "address":
            out += bytes.fromhex(value[2:])
        elif kind == "bytes32":
            out += bytes(value)
        elif kind == "bool":
            out.append(int(value))
        else:
            out += int(value).to_bytes(_FIXED_WIDTH[kind], "big", signed=kind.startswith("int"))
    return bytes(out)


def _unpack_values(types: Sequence[str], reader: _Reader) -> bytes:
    values: list[Any] = []
    for kind in types:
        if kind in ("string", "bytes"):
            raw = reader.take(reader.int(2))
            try:
                values.append(raw.decode() if kind == "string" else raw)
            except UnicodeDecodeError:
                raise InvalidInput("a string value is not UTF-8") from None
        else:
            raw = reader.take(_FIXED_WIDTH[kind])
            if kind == "bool":
                if raw[0] > 1:
                    raise InvalidInput("a bool value is 0 or 1")
                values.append(raw[0] == 1)
            elif kind == "address":
                values.append(checksum_address(raw))
            elif kind == "bytes32":
                values.append(raw)
            else:
                values.append(int.from_bytes(raw, "big", signed=kind.startswith("int")))
    return abi_encode(types, values)


def pack_window(windows: WindowArray, declarations: Iterable[SensorDeclaration]) -> bytes:
    """``w[t]`` in the contract's packed form: what on-chain proof of storage sends.

    Example: ``WindowData.decode(pack_window(w, spec.sensors)).hash == w.hash``.
    """
    return WindowData.from_windows(windows, declarations).encode()
