"""The embedded broker's packet framer (sans I/O): it finds the first packet over the limit
however the stream is cut into reads, and never flags one within it.

No broker here: this is the size check of ``test_embedded_hardening.py`` on its own.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pervasive.messaging.embedded_limits import PacketFramer

LIMIT = 1024


def _remaining_length(value: int) -> bytes:
    encoded = bytearray()
    while True:
        byte, value = value % 128, value // 128
        encoded.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(encoded)


def _packet(kind: int, body: int) -> bytes:
    return bytes((kind << 4,)) + _remaining_length(body) + bytes(body)


@given(
    bodies=st.lists(st.integers(0, 3 * LIMIT), min_size=1, max_size=12),
    cuts=st.lists(st.integers(1, 700), min_size=1, max_size=40),
)
def test_the_first_packet_over_the_limit_is_reported(bodies: list[int], cuts: list[int]) -> None:
    packets = [_packet(3, body) for body in bodies]
    stream = b"".join(packets)
    sizes = [len(packet) for packet in packets]
    expected = next((size for size in sizes if size > LIMIT), None)

    framer = PacketFramer(LIMIT)
    reported = None
    position = 0
    for cut in cuts * (len(stream) // sum(cuts) + 1):
        if position >= len(stream) or reported is not None:
            break
        reported = framer.feed(stream[position : position + cut])
        position += cut
    assert reported == expected


def test_a_length_of_more_than_four_bytes_is_refused() -> None:
    assert PacketFramer(LIMIT).feed(bytes((0x30, 0xFF, 0xFF, 0xFF, 0xFF))) == LIMIT + 1


def test_packets_within_the_limit_pass_byte_by_byte() -> None:
    framer = PacketFramer(LIMIT)
    stream = _packet(12, 0) + _packet(3, LIMIT - 3) + _packet(4, 2)
    assert [framer.feed(bytes((byte,))) for byte in stream] == [None] * len(stream)
