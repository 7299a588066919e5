"""The MQTT 3.1.1 codec, checked against the standard, against amqtt and against itself.

- Known packets: each encoder gives exactly the bytes worked out by hand from OASIS
  MQTT 3.1.1 section 3, and remaining lengths follow table 2.4 both ways.
- amqtt, an independent implementation (the embedded broker's): it decodes what we
  encode into the same fields, and our decoder reads what it encodes for a client.
- Properties (hypothesis): a PUBLISH round-trips; a stream of broker packets decodes
  the same however it is cut into reads; arbitrary or corrupted bytes give packets or
  :class:`MalformedPacket`, never another exception.
- Malformed input raises :class:`MalformedPacket`; bad encoder input raises
  :class:`InvalidInput`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from amqtt.adapters import BufferReader
from amqtt.mqtt.connack import ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.packet import DISCONNECT, PINGREQ
from amqtt.mqtt.pingreq import PingReqPacket
from amqtt.mqtt.pingresp import PingRespPacket
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.suback import SubackPacket
from amqtt.mqtt.subscribe import SubscribePacket
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.errors import InvalidInput
from pervasive.messaging.packets import (
    MAX_REMAINING_LENGTH,
    ConnAck,
    MalformedPacket,
    Packet,
    PacketDecoder,
    PingResp,
    PubAck,
    Publish,
    SubAck,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_puback,
    encode_publish,
    encode_subscribe,
)

PROPERTY = settings(max_examples=200, deadline=None)

# -- helpers ------------------------------------------------------------------


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


def _filler(size: int) -> bytes:
    """``size`` bytes of a repeating 0..255 pattern (cheap to make, not all zero)."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def _decode_whole(data: bytes) -> list[Packet]:
    """Feed ``data`` in one read; it must hold only whole packets."""
    decoder = PacketDecoder()
    packets = decoder.feed(data)
    assert decoder.buffered == 0
    return packets


def _feed_in_chunks(decoder: PacketDecoder, data: bytes, cuts: Iterable[int]) -> list[Packet]:
    """Feed ``data`` cut at the offsets ``cuts`` (duplicates give empty reads)."""
    edges = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    packets: list[Packet] = []
    for start, stop in itertools.pairwise(edges):
        packets += decoder.feed(data[start:stop])
    return packets


def _decode_or_refuse(data: bytes, cuts: Iterable[int]) -> tuple[list[Packet], int] | None:
    """Packets and leftover byte count, or None if the decoder refused the bytes."""
    decoder = PacketDecoder()
    try:
        packets = _feed_in_chunks(decoder, data, cuts)
    except MalformedPacket:
        return None
    return packets, decoder.buffered


def _server_wire(packet: Packet) -> bytes:
    """The bytes a broker sends for ``packet``: by hand, PUBLISH by ``encode_publish``."""
    match packet:
        case Publish(topic, payload, qos, retain, dup, packet_id):
            return encode_publish(
                topic, payload, qos=qos, retain=retain, dup=dup, packet_id=packet_id
            )
        case PubAck(packet_id):
            return b"\x40\x02" + packet_id.to_bytes(2, "big")
        case SubAck(packet_id, codes):
            return bytes((0x90, 2 + len(codes))) + packet_id.to_bytes(2, "big") + bytes(codes)
        case ConnAck(session_present, code):
            return bytes((0x20, 0x02, session_present, code))
        case PingResp():
            return b"\xd0\x00"
    raise AssertionError(packet)


def _amqtt_wire(packet: Packet) -> bytes:
    """The bytes amqtt's encoders give for the broker-to-client ``packet``."""
    match packet:
        case Publish(topic, payload, qos, retain, dup, packet_id):
            return PublishPacket.build(
                topic, payload, packet_id or None, dup, qos, retain
            ).to_bytes()
        case PubAck(packet_id):
            return PubackPacket.build(packet_id).to_bytes()
        case SubAck(packet_id, codes):
            return SubackPacket.build(packet_id, list(codes)).to_bytes()
        case ConnAck(session_present, code):
            return ConnackPacket.build(int(session_present), code).to_bytes()
        case PingResp():
            return PingRespPacket.build().to_bytes()
    raise AssertionError(packet)


def _amqtt_decode(packet_class: Any, data: bytes) -> Any:
    """Decode ``data`` with amqtt's stream decoder for ``packet_class``."""
    return asyncio.run(packet_class.from_stream(BufferReader(data)))


# -- strategies ---------------------------------------------------------------

topics = st.text(st.characters(codec="utf-8", exclude_characters="\x00+#"), min_size=1, max_size=30)
topic_filters = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1)
packet_ids = st.integers(1, 0xFFFF)
tiny_payloads = st.binary(max_size=40)
# sizes around the one/two/three-byte remaining length steps, and past 65,535
step_sizes = st.one_of(
    st.integers(110, 140), st.integers(16_360, 16_400), st.integers(65_500, 70_000)
)
payloads = st.one_of(st.binary(max_size=300), step_sizes.map(_filler))


@st.composite
def publishes(draw: st.DrawFn, payloads: st.SearchStrategy[bytes] = payloads) -> Publish:
    qos = draw(st.sampled_from((0, 1)))
    return Publish(
        topic=draw(topics),
        payload=draw(payloads),
        qos=qos,
        retain=draw(st.booleans()),
        dup=qos == 1 and draw(st.booleans()),
        packet_id=draw(packet_ids) if qos else 0,
    )


def server_packets(payloads: st.SearchStrategy[bytes] = payloads) -> st.SearchStrategy[Packet]:
    """Every packet a broker sends this client, with spec-defined field values."""
    return st.one_of(
        publishes(payloads),
        st.builds(PubAck, packet_ids),
        st.builds(
            SubAck,
            packet_ids,
            st.lists(st.sampled_from((0, 1, 2, 0x80)), min_size=1, max_size=20).map(tuple),
        ),
        st.builds(ConnAck, st.booleans(), st.integers(0, 5)),
        st.just(PingResp()),
    )


# -- 1. exact bytes from the standard ------------------------------------------

ENCODED = [
    pytest.param(
        lambda: encode_connect("lock-7", clean_session=True, keepalive=30),
        "10 12  0004 4d515454 04 02 001e  0006 6c6f636b2d37",
        id="connect-clean",
    ),
    pytest.param(
        lambda: encode_connect("lock-7", clean_session=False, keepalive=30),
        "10 12  0004 4d515454 04 00 001e  0006 6c6f636b2d37",
        id="connect-persistent",
    ),
    pytest.param(lambda: encode_publish("a/b", b"hi"), "30 07  0003 612f62  6869", id="pub-qos0"),
    pytest.param(
        lambda: encode_publish("a/b", b"hi", retain=True),
        "31 07  0003 612f62  6869",
        id="pub-qos0-retain",
    ),
    pytest.param(
        lambda: encode_publish("a/b", b"", packet_id=9), "30 05  0003 612f62", id="pub-qos0-no-id"
    ),
    pytest.param(
        lambda: encode_publish("a/b", b"hi", qos=1, packet_id=10),
        "32 09  0003 612f62 000a  6869",
        id="pub-qos1",
    ),
    pytest.param(
        lambda: encode_publish("a/b", b"hi", qos=1, retain=True, dup=True, packet_id=10),
        "3b 09  0003 612f62 000a  6869",
        id="pub-qos1-retain-dup",
    ),
    pytest.param(lambda: encode_puback(7), "40 02  0007", id="puback"),
    pytest.param(lambda: encode_puback(0xFFFF), "40 02  ffff", id="puback-max-id"),
    pytest.param(
        lambda: encode_subscribe(1, [("a/b", 1)]), "82 08  0001  0003 612f62 01", id="sub-one"
    ),
    pytest.param(
        lambda: encode_subscribe(10, [("a/b", 0), ("c/#", 1)]),
        "82 0e  000a  0003 612f62 00  0003 632f23 01",
        id="sub-two",
    ),
    pytest.param(encode_pingreq, "c0 00", id="pingreq"),
    pytest.param(encode_disconnect, "e0 00", id="disconnect"),
]


@pytest.mark.parametrize(("encode", "expected"), ENCODED)
def test_encoders_write_the_bytes_of_the_standard(
    encode: Callable[[], bytes], expected: str
) -> None:
    assert encode().hex() == _hex(expected).hex()


DECODED = [
    ("20 02 00 00", ConnAck(session_present=False, return_code=0)),
    ("20 02 01 00", ConnAck(session_present=True, return_code=0)),
    ("20 02 00 05", ConnAck(session_present=False, return_code=5)),
    ("30 07 0003 612f62 6869", Publish("a/b", b"hi", 0, False, False, 0)),
    ("31 05 0003 612f62", Publish("a/b", b"", 0, True, False, 0)),
    ("3b 09 0003 612f62 000a 6869", Publish("a/b", b"hi", 1, True, True, 10)),
    ("30 06 0004 c3a9 2f78", Publish("\u00e9/x", b"", 0, False, False, 0)),
    ("40 02 0007", PubAck(7)),
    ("90 03 0001 01", SubAck(1, (1,))),
    ("90 06 000a 00 01 02 80", SubAck(10, (0, 1, 2, 0x80))),
    ("d0 00", PingResp()),
]


@pytest.mark.parametrize(("wire", "packet"), DECODED)
def test_decoder_reads_the_packets_of_the_standard(wire: str, packet: Packet) -> None:
    assert _decode_whole(_hex(wire)) == [packet]


def test_an_incomplete_packet_waits_for_the_rest() -> None:
    wire = encode_publish("pervasive/devices/lock-7/t", b"21.5", qos=1, packet_id=7)
    decoder = PacketDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(wire[:1]) == []
    assert decoder.feed(wire[1:5]) == []
    assert decoder.buffered == 5
    assert decoder.feed(wire[5:] + b"\xd0") == [
        Publish("pervasive/devices/lock-7/t", b"21.5", 1, False, False, 7)
    ]
    assert decoder.buffered == 1
    assert decoder.feed(b"\x00") == [PingResp()]
    assert decoder.buffered == 0


# Table 2.4: the smallest and largest value of each length of the remaining length.
REMAINING_LENGTHS = [
    (0, "00"),
    (127, "7f"),
    (128, "80 01"),
    (16_383, "ff 7f"),
    (16_384, "80 80 01"),
    (2_097_151, "ff ff 7f"),
    (2_097_152, "80 80 80 01"),
    (268_435_455, "ff ff ff 7f"),
]


@pytest.mark.parametrize(("length", "encoded"), REMAINING_LENGTHS)
def test_encoders_write_remaining_length_per_table_2_4(length: int, encoded: str) -> None:
    # "t" as topic: the body is 2 + 1 topic bytes, then the payload
    wire = encode_publish("t", bytes(length - 3)) if length else encode_pingreq()
    prefix = _hex(encoded)
    assert wire[1 : 1 + len(prefix)] == prefix
    assert len(wire) == 1 + len(prefix) + length


def test_encoders_refuse_a_remaining_length_over_four_bytes() -> None:
    assert MAX_REMAINING_LENGTH == 268_435_455
    with pytest.raises(InvalidInput, match="at most"):
        encode_publish("t", bytes(MAX_REMAINING_LENGTH - 2))


@pytest.mark.parametrize(("length", "encoded"), REMAINING_LENGTHS[1:])
def test_decoder_reads_remaining_length_per_table_2_4(length: int, encoded: str) -> None:
    # the header alone: max_packet shows the length read is exactly ``length``
    header = b"\x30" + _hex(encoded)
    decoder = PacketDecoder(max_packet=length)
    assert decoder.feed(header) == []
    assert decoder.buffered == len(header)
    with pytest.raises(MalformedPacket, match="exceeds"):
        PacketDecoder(max_packet=length - 1).feed(header)


@pytest.mark.parametrize("length", [length for length, _ in REMAINING_LENGTHS[1:7]])
def test_publish_round_trips_at_each_remaining_length_step(length: int) -> None:
    payload = _filler(length - 3)
    assert _decode_whole(encode_publish("t", payload)) == [
        Publish("t", payload, 0, False, False, 0)
    ]


@pytest.mark.parametrize("length", [127, 128, 16_383, 16_384])
def test_publish_fed_one_byte_at_a_time_completes_on_its_last_byte(length: int) -> None:
    wire = encode_publish("t", _filler(length - 5), qos=1, packet_id=300)
    decoder = PacketDecoder()
    for index in range(len(wire) - 1):
        assert decoder.feed(wire[index : index + 1]) == []
    assert decoder.buffered == len(wire) - 1
    assert decoder.feed(wire[-1:]) == [Publish("t", _filler(length - 5), 1, False, False, 300)]
    assert decoder.buffered == 0


# -- 2. against amqtt ---------------------------------------------------------


@PROPERTY
@given(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=23),
    st.booleans(),
    st.integers(0, 0xFFFF),
)
def test_amqtt_decodes_our_connect(client_id: str, clean_session: bool, keepalive: int) -> None:
    wire = encode_connect(client_id, clean_session=clean_session, keepalive=keepalive)
    connect = _amqtt_decode(ConnectPacket, wire)
    assert (connect.proto_name, connect.proto_level) == ("MQTT", 4)
    assert connect.client_id == client_id
    assert connect.clean_session_flag is clean_session
    assert connect.keep_alive == keepalive
    assert not (connect.will_flag or connect.username_flag or connect.password_flag)
    assert not connect.reserved_flag
    assert connect.fixed_header.remaining_length == len(wire) - 2
    assert connect.to_bytes() == wire


@PROPERTY
@given(publishes())
def test_amqtt_decodes_our_publish(publish: Publish) -> None:
    wire = _server_wire(publish)
    decoded = _amqtt_decode(PublishPacket, wire)
    assert decoded.topic_name == publish.topic
    assert decoded.data == publish.payload
    assert decoded.qos == publish.qos
    assert decoded.retain_flag is publish.retain
    assert decoded.dup_flag is publish.dup
    assert decoded.packet_id == (publish.packet_id or None)
    assert decoded.to_bytes() == wire


@PROPERTY
@given(packet_ids)
def test_amqtt_decodes_our_puback(packet_id: int) -> None:
    wire = encode_puback(packet_id)
    decoded = _amqtt_decode(PubackPacket, wire)
    assert decoded.packet_id == packet_id
    assert decoded.to_bytes() == wire


@PROPERTY
@given(
    packet_ids,
    st.lists(st.tuples(topic_filters, st.sampled_from((0, 1))), min_size=1, max_size=5),
)
def test_amqtt_decodes_our_subscribe(packet_id: int, filters: list[tuple[str, int]]) -> None:
    wire = encode_subscribe(packet_id, filters)
    decoded = _amqtt_decode(SubscribePacket, wire)
    assert decoded.fixed_header.flags == 0x02  # [MQTT-3.8.1-1]
    assert decoded.variable_header.packet_id == packet_id
    assert decoded.payload.topics == filters
    assert decoded.to_bytes() == wire


@pytest.mark.parametrize(
    ("encode", "packet_class", "packet_type"),
    [(encode_pingreq, PingReqPacket, PINGREQ), (encode_disconnect, DisconnectPacket, DISCONNECT)],
)
def test_amqtt_decodes_our_pingreq_and_disconnect(
    encode: Callable[[], bytes], packet_class: Any, packet_type: int
) -> None:
    decoded = _amqtt_decode(packet_class, encode())
    assert decoded.fixed_header.packet_type == packet_type
    assert decoded.fixed_header.flags == 0
    assert decoded.fixed_header.remaining_length == 0
    assert decoded.to_bytes() == encode()


@PROPERTY
@given(st.lists(server_packets(), max_size=6))
def test_we_decode_what_amqtt_encodes_for_a_client(packets: list[Packet]) -> None:
    wire = b"".join(map(_amqtt_wire, packets))
    assert _decode_whole(wire) == packets


# -- 3. properties --------------------------------------------------------------


@PROPERTY
@given(publishes())
def test_publish_round_trips(publish: Publish) -> None:
    assert _decode_whole(_server_wire(publish)) == [publish]


# (near a packet start?, where, offset): made concrete once the stream is known
_cut_choices = st.lists(
    st.tuples(st.booleans(), st.integers(0, 1 << 20), st.integers(0, 6)), max_size=30
)


@st.composite
def streams_and_cuts(
    draw: st.DrawFn, packets: st.SearchStrategy[list[Packet]]
) -> tuple[list[Packet], bytes, list[int]]:
    """Packets, their bytes, and cut points: anywhere, or just after a packet starts."""
    drawn = draw(packets)
    pieces = [_server_wire(packet) for packet in drawn]
    wire = b"".join(pieces)
    starts = list(itertools.accumulate(map(len, pieces), initial=0))
    cuts = [
        starts[where % len(starts)] + offset if near else where % (len(wire) + 1)
        for near, where, offset in draw(_cut_choices)
    ]
    return drawn, wire, cuts


@PROPERTY
@given(streams_and_cuts(st.lists(server_packets(), max_size=8)))
def test_a_stream_decodes_the_same_however_it_is_cut(
    stream: tuple[list[Packet], bytes, list[int]],
) -> None:
    packets, wire, cuts = stream
    assert _decode_whole(wire) == packets
    decoder = PacketDecoder()
    assert _feed_in_chunks(decoder, wire, cuts) == packets
    assert decoder.buffered == 0


@PROPERTY
@given(st.lists(server_packets(tiny_payloads), max_size=5))
def test_a_stream_fed_one_byte_at_a_time_decodes_the_same(packets: list[Packet]) -> None:
    wire = b"".join(map(_server_wire, packets))
    decoder = PacketDecoder()
    assert _feed_in_chunks(decoder, wire, range(len(wire))) == packets
    assert decoder.buffered == 0


@PROPERTY
@given(publishes(step_sizes.map(_filler)))
def test_a_long_publish_cut_inside_its_header_decodes_the_same(publish: Publish) -> None:
    wire = _server_wire(publish)
    for cut in range(1, 8):  # the type byte, two or three length bytes, the topic
        decoder = PacketDecoder()
        assert decoder.feed(wire[:cut]) == []
        assert decoder.feed(wire[cut:]) == [publish]


# -- 4. malformed input and bad encoder input -----------------------------------

MALFORMED = [
    pytest.param("30 ff ff ff ff 01 00", id="remaining-length-5-bytes"),
    pytest.param("30 80 80 80 80", id="remaining-length-4th-byte-continues"),
    pytest.param("36 07 0003 612f62 0001", id="publish-qos3"),
    pytest.param("34 07 0003 612f62 0001", id="publish-qos2"),
    pytest.param("38 05 0003 612f62", id="publish-dup-qos0"),
    pytest.param("30 05 0003 61 ff 62", id="topic-invalid-utf8"),
    pytest.param("30 05 0003 eda080", id="topic-utf8-surrogate"),
    pytest.param("30 04 0002 c0af", id="topic-utf8-overlong"),
    pytest.param("30 05 0003 61 00 62", id="topic-nul"),
    pytest.param("30 05 0003 612f2b", id="topic-wildcard-plus"),
    pytest.param("30 05 0003 612f23", id="topic-wildcard-hash"),
    pytest.param("30 02 0000", id="topic-empty"),
    pytest.param("30 04 0000 6869", id="topic-empty-with-payload"),
    pytest.param("30 00", id="publish-no-body"),
    pytest.param("30 01 00", id="publish-half-topic-length"),
    pytest.param("30 03 0005 61", id="publish-topic-past-end"),
    pytest.param("30 04 0003 612f", id="publish-topic-one-byte-short"),
    pytest.param("32 07 0003 612f62 0000", id="publish-qos1-id-0"),
    pytest.param("32 05 0003 612f62", id="publish-qos1-no-id"),
    pytest.param("32 06 0003 612f62 01", id="publish-qos1-half-id"),
    pytest.param("40 00", id="puback-empty"),
    pytest.param("40 01 07", id="puback-short"),
    pytest.param("40 03 0007 00", id="puback-long"),
    pytest.param("40 02 0000", id="puback-id-0"),
    pytest.param("41 02 0007", id="puback-reserved-flag-1"),
    pytest.param("42 02 0007", id="puback-reserved-flag-2"),
    pytest.param("48 02 0007", id="puback-reserved-flag-8"),
    pytest.param("20 02 02 00", id="connack-reserved-bit"),
    pytest.param("20 02 80 00", id="connack-reserved-high-bit"),
    pytest.param("20 01 00", id="connack-short"),
    pytest.param("20 03 00 00 00", id="connack-long"),
    pytest.param("21 02 00 00", id="connack-reserved-flag"),
    pytest.param("90 03 0001 03", id="suback-code-3"),
    pytest.param("90 04 0001 00 81", id="suback-code-0x81"),
    pytest.param("90 02 0001", id="suback-no-codes"),
    pytest.param("90 03 0000 00", id="suback-id-0"),
    pytest.param("92 03 0001 00", id="suback-reserved-flag"),
    pytest.param("d0 01 00", id="pingresp-with-body"),
    pytest.param("d1 00", id="pingresp-reserved-flag"),
    pytest.param("10 12 0004 4d515454 04 02 001e 0006 6c6f636b2d37", id="connect"),
    pytest.param("82 08 0001 0003 612f62 01", id="subscribe"),
    pytest.param("c0 00", id="pingreq"),
    pytest.param("e0 00", id="disconnect"),
    pytest.param("50 02 0001", id="pubrec"),
    pytest.param("62 02 0001", id="pubrel"),
    pytest.param("b0 02 0001", id="unsuback"),
    pytest.param("00 00", id="reserved-type-0"),
    pytest.param("f0 00", id="reserved-type-15"),
]


@pytest.mark.parametrize("wire", MALFORMED)
def test_malformed_packets_are_refused(wire: str) -> None:
    data = _hex(wire)
    with pytest.raises(MalformedPacket):
        PacketDecoder().feed(data)
    with pytest.raises(MalformedPacket):
        _feed_in_chunks(PacketDecoder(), data, range(len(data)))


def test_a_malformed_packet_after_good_ones_is_refused() -> None:
    decoder = PacketDecoder()
    assert decoder.feed(b"\xd0\x00\x40\x02\x00") == [PingResp()]
    with pytest.raises(MalformedPacket):
        decoder.feed(b"\x07\xd0\x00\x36\x00")


def test_a_packet_over_max_packet_is_refused_from_its_header() -> None:
    at_limit = encode_publish("t", bytes(97))  # remaining length 100
    assert PacketDecoder(max_packet=100).feed(at_limit) == [
        Publish("t", bytes(97), 0, False, False, 0)
    ]
    with pytest.raises(MalformedPacket, match="exceeds"):
        PacketDecoder(max_packet=99).feed(at_limit)
    with pytest.raises(MalformedPacket, match="exceeds"):  # refused before the body arrives
        PacketDecoder(max_packet=99).feed(at_limit[:2])


BAD_ENCODER_INPUT = [
    pytest.param(lambda: encode_publish("a", b"", qos=2, packet_id=1), id="publish-qos2"),
    pytest.param(lambda: encode_publish("a", b"", qos=-1), id="publish-qos-negative"),
    pytest.param(lambda: encode_publish("a", b"", dup=True), id="publish-dup-qos0"),
    pytest.param(lambda: encode_publish("a", b"", qos=1), id="publish-qos1-no-id"),
    pytest.param(lambda: encode_publish("a", b"", qos=1, packet_id=0), id="publish-id-0"),
    pytest.param(lambda: encode_publish("a", b"", qos=1, packet_id=65_536), id="publish-id-65536"),
    pytest.param(lambda: encode_publish("a" * 65_536, b""), id="publish-topic-65536-bytes"),
    pytest.param(lambda: encode_publish("\u00e9" * 32_768, b""), id="publish-topic-utf8-bytes"),
    pytest.param(lambda: encode_puback(0), id="puback-id-0"),
    pytest.param(lambda: encode_puback(65_536), id="puback-id-65536"),
    pytest.param(
        lambda: encode_connect("c", clean_session=True, keepalive=70_000), id="keepalive-70000"
    ),
    pytest.param(lambda: encode_connect("c", clean_session=True, keepalive=-1), id="keepalive-neg"),
    pytest.param(
        lambda: encode_connect("c" * 65_536, clean_session=True, keepalive=0), id="client-id-long"
    ),
    pytest.param(lambda: encode_subscribe(1, []), id="subscribe-empty"),
    pytest.param(lambda: encode_subscribe(1, iter(())), id="subscribe-empty-iterator"),
    pytest.param(lambda: encode_subscribe(1, [("a", 2)]), id="subscribe-qos2"),
    pytest.param(lambda: encode_subscribe(0, [("a", 0)]), id="subscribe-id-0"),
    pytest.param(lambda: encode_subscribe(65_536, [("a", 0)]), id="subscribe-id-65536"),
    pytest.param(lambda: encode_subscribe(1, [("a" * 65_536, 0)]), id="subscribe-filter-long"),
]


@pytest.mark.parametrize("encode", BAD_ENCODER_INPUT)
def test_encoders_refuse_bad_input(encode: Callable[[], bytes]) -> None:
    with pytest.raises(InvalidInput):
        encode()


def test_encoders_accept_the_largest_values() -> None:
    topic = "a" * 65_535
    assert _decode_whole(encode_publish(topic, b"")) == [Publish(topic, b"", 0, False, False, 0)]
    connect = encode_connect("c", clean_session=True, keepalive=65_535)
    assert _amqtt_decode(ConnectPacket, connect).keep_alive == 65_535
    assert encode_subscribe(65_535, [("a", 0)])[2:4] == b"\xff\xff"


# -- 5. fuzzing ---------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=20))
def test_arbitrary_bytes_give_packets_or_malformed_packet(data: bytes, cuts: list[int]) -> None:
    # any exception but MalformedPacket fails the test; the cuts must not change the outcome
    assert _decode_or_refuse(data, cuts) == _decode_or_refuse(data, [])


# a type byte (often one a broker sends), a small remaining length that may or may not
# match the few body bytes after it: reaches every check of every packet type
_first_bytes = st.one_of(
    st.sampled_from((0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x38, 0x3A, 0x40, 0x90, 0xD0)),
    st.integers(0, 0xFF),
)


@st.composite
def rough_packets(draw: st.DrawFn) -> bytes:
    first, body = draw(_first_bytes), draw(st.binary(max_size=12))
    length = len(body) if draw(st.booleans()) else draw(st.integers(0, 0x7F))
    return bytes((first, length)) + body


@PROPERTY
@given(
    st.lists(rough_packets(), max_size=8).map(b"".join), st.lists(st.integers(0, 120), max_size=20)
)
def test_rough_packets_give_packets_or_malformed_packet(data: bytes, cuts: list[int]) -> None:
    assert _decode_or_refuse(data, cuts) == _decode_or_refuse(data, [])


_bytes = st.one_of(st.sampled_from((0, 1, 2, 3, 0x7F, 0x80, 0xFF)), st.integers(0, 0xFF))


@PROPERTY
@given(
    streams_and_cuts(st.lists(server_packets(tiny_payloads), max_size=5)),
    st.lists(st.tuples(st.integers(0), _bytes), min_size=1, max_size=4),
    st.integers(0),
)
def test_corrupted_streams_give_packets_or_malformed_packet(
    stream: tuple[list[Packet], bytes, list[int]],
    changes: list[tuple[int, int]],
    keep: int,
) -> None:
    _, wire, cuts = stream
    data = bytearray(wire)
    for index, value in changes:
        if data:
            data[index % len(data)] = value
    data = data[: keep % (len(data) + 1)]  # and perhaps cut short
    assert _decode_or_refuse(bytes(data), cuts) == _decode_or_refuse(bytes(data), [])
