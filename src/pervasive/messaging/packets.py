"""MQTT 3.1.1 packets, sans-I/O: what a client sends, and a decoder for what a broker sends.

The wire format is OASIS MQTT 3.1.1 (section 2: fixed header, remaining length;
section 3: each control packet). Only the client's side is here, and only what the
platform uses: CONNECT (clean session or persistent, keepalive, no will, no
username: identity is the TLS client certificate), PUBLISH at QoS 0 and 1 both ways,
PUBACK, SUBSCRIBE at QoS 0 and 1, PINGREQ and DISCONNECT out; CONNACK, PUBLISH,
PUBACK, SUBACK and PINGRESP in.

:class:`PacketDecoder` is fed bytes as they arrive and returns every complete packet
in them; a malformed packet raises :class:`MalformedPacket` and the connection must
be closed ([MQTT-4.8.0-1]). It is strict where the standard says "malformed":
reserved flag bits, QoS 3, DUP on QoS 0, a remaining length over four bytes or not
matching the packet's fixed size, an ill-formed UTF-8 or NUL-bearing topic, a
wildcard in a PUBLISH topic, packet id 0, and any packet a server never sends a
client. QoS 2 is refused too: this client never subscribes at QoS 2, so a broker
must never send it (section 3.8.4: the granted QoS is at most the requested one).

Example::

    decoder = PacketDecoder()
    wire = encode_publish("pervasive/devices/lock-7/t", b"21.5", qos=1, packet_id=7)
    decoder.feed(wire[:5]) == []          # incomplete: nothing yet
    decoder.feed(wire[5:])                # [Publish(topic=..., packet_id=7, ...)]
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from pervasive.errors import InvalidInput

__all__ = [
    "MAX_REMAINING_LENGTH",
    "ConnAck",
    "ConnectReturnCode",
    "MalformedPacket",
    "MessageTooLarge",
    "Packet",
    "PacketDecoder",
    "PacketTooLarge",
    "PingResp",
    "PubAck",
    "Publish",
    "SubAck",
    "encode_connect",
    "encode_disconnect",
    "encode_pingreq",
    "encode_puback",
    "encode_publish",
    "encode_subscribe",
    "publish_size",
]

MAX_REMAINING_LENGTH = 268_435_455
"""The largest remaining length four bytes can express (section 2.2.3)."""

_CONNECT, _CONNACK, _PUBLISH, _PUBACK = 1, 2, 3, 4
_SUBSCRIBE, _SUBACK, _PINGREQ, _PINGRESP, _DISCONNECT = 8, 9, 12, 13, 14
_PROTOCOL = b"\x00\x04MQTT\x04"  # protocol name "MQTT", level 4 (3.1.1)
_PINGREQ_BYTES = bytes((_PINGREQ << 4, 0))
_DISCONNECT_BYTES = bytes((_DISCONNECT << 4, 0))
_WILDCARDS = frozenset("+#")


class MalformedPacket(InvalidInput):
    """The peer sent bytes that are not a well-formed MQTT 3.1.1 packet for a client.

    The connection must be closed; the client reconnects and nothing acknowledged is
    lost (unacknowledged publishes are sent again from the outbox).
    """


class PacketTooLarge(MalformedPacket):
    """The peer announced a packet longer than this client's ``max_packet``; close the link."""


class MessageTooLarge(InvalidInput):
    """A message to publish is larger than the ``[mqtt] max_message_bytes`` brokers accept."""


def publish_size(topic: str, payload: bytes, *, qos: int) -> int:
    """Bytes of the PUBLISH packet carrying ``payload`` on ``topic``, fixed header included.

    Example: ``publish_size("t", b"abc", qos=1) == 10``.
    """
    remaining = 2 + len(topic.encode()) + (2 if qos else 0) + len(payload)
    digits = 1  # of the remaining length, 7 bits each (section 2.2.3)
    while digits < 4 and remaining >= 128**digits:
        digits += 1
    return 1 + digits + remaining


class ConnectReturnCode(enum.IntEnum):
    """CONNACK return codes (section 3.2.2.3)."""

    ACCEPTED = 0
    UNACCEPTABLE_PROTOCOL_VERSION = 1
    IDENTIFIER_REJECTED = 2
    SERVER_UNAVAILABLE = 3
    BAD_USERNAME_OR_PASSWORD = 4
    NOT_AUTHORIZED = 5


@dataclass(frozen=True, slots=True)
class ConnAck:
    """The broker's answer to CONNECT."""

    session_present: bool
    return_code: int


@dataclass(frozen=True, slots=True)
class Publish:
    """An application message; ``packet_id`` is 0 for QoS 0."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    packet_id: int


@dataclass(frozen=True, slots=True)
class PubAck:
    """The broker acknowledged our QoS 1 PUBLISH ``packet_id``."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class SubAck:
    """The broker's return code per requested filter: 0-2 granted QoS, 0x80 refused."""

    packet_id: int
    return_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PingResp:
    """The broker answered PINGREQ."""


Packet = ConnAck | Publish | PubAck | SubAck | PingResp


def _remaining_length(length: int) -> bytes:
    if not 0 <= length <= MAX_REMAINING_LENGTH:
        raise InvalidInput(f"an MQTT packet holds at most {MAX_REMAINING_LENGTH} bytes")
    out = bytearray()
    while True:
        digit, length = length & 0x7F, length >> 7
        out.append(digit | 0x80 if length else digit)
        if not length:
            return bytes(out)


def _string(text: str) -> bytes:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{text!r} is not valid UTF-8 (a lone surrogate)") from None
    if len(raw) > 0xFFFF:
        raise InvalidInput(f"an MQTT string holds at most 65,535 bytes, got {len(raw)}")
    return len(raw).to_bytes(2, "big") + raw


def _packet_id(packet_id: int) -> bytes:
    if not 0 < packet_id <= 0xFFFF:
        raise InvalidInput(f"a packet identifier is 1..65535, got {packet_id}")
    return packet_id.to_bytes(2, "big")


def encode_connect(client_id: str, *, clean_session: bool, keepalive: int) -> bytes:
    """CONNECT with no will, username or password (the TLS certificate is the identity).

    Example: ``encode_connect("lock-7", clean_session=False, keepalive=30)``.
    """
    if not 0 <= keepalive <= 0xFFFF:
        raise InvalidInput(f"keepalive is 0..65535 seconds, got {keepalive}")
    body = (
        _PROTOCOL
        + bytes((0x02 if clean_session else 0x00,))
        + keepalive.to_bytes(2, "big")
        + _string(client_id)
    )
    return bytes((_CONNECT << 4,)) + _remaining_length(len(body)) + body


def encode_publish(
    topic: str,
    payload: bytes,
    *,
    qos: int = 0,
    retain: bool = False,
    dup: bool = False,
    packet_id: int = 0,
) -> bytes:
    """PUBLISH; ``packet_id`` is required (1..65535) for QoS 1 and ignored for QoS 0.

    Example: ``encode_publish("a/b", b"x", qos=1, packet_id=1)``.
    """
    if qos not in (0, 1):
        raise InvalidInput(f"this client publishes at QoS 0 or 1, not {qos}")
    if dup and not qos:
        raise InvalidInput("DUP is set only on a QoS 1 or 2 PUBLISH [MQTT-3.3.1-2]")
    head = _string(topic) + (_packet_id(packet_id) if qos else b"")
    flags = (_PUBLISH << 4) | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    return bytes((flags,)) + _remaining_length(len(head) + len(payload)) + head + payload


def encode_puback(packet_id: int) -> bytes:
    """PUBACK for a QoS 1 PUBLISH we received.

    Example: ``encode_puback(7) == b"\\x40\\x02\\x00\\x07"``.
    """
    return bytes((_PUBACK << 4, 2)) + _packet_id(packet_id)


def encode_subscribe(packet_id: int, filters: Iterable[tuple[str, int]]) -> bytes:
    """SUBSCRIBE to ``(topic filter, requested QoS)`` pairs (QoS 0 or 1).

    Example: ``encode_subscribe(1, [("pervasive/devices/+/sensors/#", 1)])``.
    """
    payload = b""
    for topic_filter, qos in filters:
        if qos not in (0, 1):
            raise InvalidInput(f"this client subscribes at QoS 0 or 1, not {qos}")
        payload += _string(topic_filter) + bytes((qos,))
    if not payload:
        raise InvalidInput("a SUBSCRIBE names at least one topic filter [MQTT-3.8.3-3]")
    body = _packet_id(packet_id) + payload
    return bytes(((_SUBSCRIBE << 4) | 0x02,)) + _remaining_length(len(body)) + body


def encode_pingreq() -> bytes:
    """PINGREQ (keepalive).

    Example: ``encode_pingreq() == b"\\xc0\\x00"``.
    """
    return _PINGREQ_BYTES


def encode_disconnect() -> bytes:
    """DISCONNECT: a clean goodbye (the broker then discards any will).

    Example: ``encode_disconnect() == b"\\xe0\\x00"``.
    """
    return _DISCONNECT_BYTES


class PacketDecoder:
    """Incremental decoder of the packets a broker sends a client.

    ``max_packet`` bounds the remaining length it accepts, so a broken or hostile
    peer cannot make it buffer without limit.

    Example: ``for packet in decoder.feed(data): ...``.
    """

    def __init__(self, max_packet: int = MAX_REMAINING_LENGTH) -> None:
        self._buffer = bytearray()
        self._max_packet = max_packet

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet make a whole packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        """Take newly received bytes; return the packets they complete, in order.

        Raises :class:`MalformedPacket`; the decoder is then unusable (close the
        connection).
        """
        buffer = self._buffer
        buffer += data
        packets: list[Packet] = []
        position, end = 0, len(buffer)
        while end - position >= 2:
            first = buffer[position]
            length = shift = 0
            index, complete = position + 1, False
            while index < end:
                digit = buffer[index]
                index += 1
                length |= (digit & 0x7F) << shift
                if digit < 0x80:
                    complete = True
                    break
                shift += 7
                if shift == 28:
                    raise MalformedPacket("remaining length longer than four bytes")
            if not complete:
                break  # the remaining length is not all here yet
            if length > self._max_packet:
                raise PacketTooLarge(
                    f"packet of {length} bytes exceeds this client's limit of {self._max_packet}"
                )
            if end - index < length:
                break
            packets.append(_decode(first, bytes(buffer[index : index + length])))
            position = index + length
        del buffer[:position]
        return packets


def _decode(first: int, body: bytes) -> Packet:
    kind, flags = first >> 4, first & 0x0F
    if kind == _PUBLISH:
        return _decode_publish(flags, body)
    if flags:
        raise MalformedPacket(f"reserved flags {flags:#x} set on packet type {kind}")
    if kind == _PUBACK:
        return PubAck(_fixed_packet_id(body, "PUBACK"))
    if kind == _SUBACK:
        if len(body) < 3:
            raise MalformedPacket("SUBACK without a return code")
        codes = tuple(body[2:])
        if any(code not in (0, 1, 2, 0x80) for code in codes):
            raise MalformedPacket(f"SUBACK with a reserved return code in {codes}")
        return SubAck(_nonzero_id(body), codes)
    if kind == _CONNACK:
        if len(body) != 2 or body[0] & 0xFE:
            raise MalformedPacket("CONNACK must be two bytes with reserved bits clear")
        return ConnAck(bool(body[0]), body[1])
    if kind == _PINGRESP:
        if body:
            raise MalformedPacket("PINGRESP has no body")
        return PingResp()
    raise MalformedPacket(f"a broker does not send packet type {kind} to this client")


def _decode_publish(flags: int, body: bytes) -> Publish:
    qos = (flags >> 1) & 0x03
    dup = bool(flags & 0x08)
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
    if qos == 2:
        raise MalformedPacket("PUBLISH with QoS 2 on a subscription of QoS 0 or 1")
    if dup and not qos:
        raise MalformedPacket("DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]")
    if len(body) < 2:
        raise MalformedPacket("PUBLISH without a topic")
    topic_end = 2 + int.from_bytes(body[:2], "big")
    head_end = topic_end + (2 if qos else 0)
    if head_end > len(body):
        raise MalformedPacket("PUBLISH shorter than its topic and packet identifier")
    try:
        topic = body[2:topic_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"PUBLISH topic is not well-formed UTF-8: {exc}") from None
    if not topic or "\x00" in topic or not _WILDCARDS.isdisjoint(topic):
        raise MalformedPacket(f"PUBLISH topic {topic!r} is empty, has NUL or a wildcard")
    packet_id = _nonzero_id(body[topic_end:]) if qos else 0
    return Publish(topic, body[head_end:], qos, bool(flags & 0x01), dup, packet_id)


def _fixed_packet_id(body: bytes, name: str) -> int:
    if len(body) != 2:
        raise MalformedPacket(f"{name} must carry exactly a packet identifier")
    return _nonzero_id(body)


def _nonzero_id(body: bytes) -> int:
    packet_id = int.from_bytes(body[:2], "big")
    if len(body) < 2 or not packet_id:
        raise MalformedPacket("packet identifier missing or zero [MQTT-2.3.1-1]")
    return packet_id
