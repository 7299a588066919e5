"""A consumer acknowledges after processing: no PUBACK before it says so, PUBACKs in order.

The :class:`Link` runs over one end of a socket pair (no TLS, no broker); the test
plays the broker on the other end with the codec's own encoders, so what the link
writes is read back as packets. :class:`Acknowledgements` is checked alone, with
hypothesis, against [MQTT-4.6.0-2]: PUBACKs leave in the order the PUBLISHes came,
each once, whatever order the consumer acknowledges in.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.messaging.link import Acknowledgements, Link
from pervasive.messaging.packets import PacketDecoder, encode_publish
from pervasive.messaging.port import Delivery, MqttMessage

MARK = "pervasive/devices/probe/mark"
"""A QoS 0 publish the link sends after the test's steps: whatever came before it is
everything the link wrote for them (one stream, written in order)."""


@dataclass
class Wire:
    """The broker's end of the socket pair and the link on the other end."""

    link: Link
    delivered: list[MqttMessage]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def publish(self, packet_id: int, payload: bytes = b"r") -> None:
        """The broker sends a QoS 1 PUBLISH."""
        self.writer.write(
            encode_publish("pervasive/devices/d/sensors/s", payload, qos=1, packet_id=packet_id)
        )

    async def received(self, count: int) -> None:
        await self.writer.drain()
        async with asyncio.timeout(5):
            while len(self.delivered) < count:
                await asyncio.sleep(0.001)

    async def written(self) -> list[int]:
        """The packet ids of the PUBACKs the link wrote so far, up to the mark."""
        self.link.publish(MARK, b"", qos=0, retain=False)
        decoder, acks = PacketDecoder(), []
        async with asyncio.timeout(5):
            while True:
                # the decoder reads broker packets: a PUBACK and a PUBLISH have the same shape
                for packet in decoder.feed(await self.reader.read(4096)):
                    if getattr(packet, "topic", None) == MARK:
                        return acks
                    acks.append(packet.packet_id)  # type: ignore[union-attr]


async def _wire(manual_ack: bool) -> AsyncIterator[Wire]:
    ours, theirs = socket.socketpair()
    delivered: list[MqttMessage] = []
    loop = asyncio.get_running_loop()
    _transport, link = await loop.create_connection(
        lambda: Link(delivered.append, keepalive=0, manual_ack=manual_ack, number=3), sock=ours
    )
    reader, writer = await asyncio.open_connection(sock=theirs)
    try:
        yield Wire(link, delivered, reader, writer)
    finally:
        link.abort("test over")
        writer.close()


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    async for value in _wire(manual_ack=True):
        yield value


@pytest.fixture
async def automatic() -> AsyncIterator[Wire]:
    async for value in _wire(manual_ack=False):
        yield value


async def test_no_puback_leaves_before_the_consumer_acknowledges(wire: Wire) -> None:
    for packet_id in (5, 6):
        wire.publish(packet_id)
    await wire.received(2)
    assert [m.delivery for m in wire.delivered] == [Delivery(3, 5), Delivery(3, 6)]
    assert await wire.written() == [] and wire.link.unacknowledged == 2
    for message in wire.delivered:
        assert message.delivery is not None
        wire.link.acknowledge(message.delivery)
    assert await wire.written() == [5, 6] and wire.link.unacknowledged == 0


async def test_an_early_acknowledgement_waits_for_the_ones_before_it(wire: Wire) -> None:
    for packet_id in (1, 2, 3):
        wire.publish(packet_id)
    await wire.received(3)
    first, second, third = (m.delivery for m in wire.delivered)
    assert first is not None and second is not None and third is not None
    wire.link.acknowledge(third)
    wire.link.acknowledge(second)
    assert await wire.written() == []  # [MQTT-4.6.0-2]: 1 has not been acknowledged
    wire.link.acknowledge(first)
    wire.link.acknowledge(first)  # twice: still one PUBACK
    assert await wire.written() == [1, 2, 3]


async def test_an_acknowledgement_of_another_connection_sends_nothing(wire: Wire) -> None:
    wire.publish(9)
    await wire.received(1)
    wire.link.acknowledge(Delivery(2, 9))  # the same packet id, an earlier connection
    assert await wire.written() == [] and wire.link.unacknowledged == 1


async def test_by_default_the_puback_leaves_on_arrival(automatic: Wire) -> None:
    for packet_id in (4, 7):
        automatic.publish(packet_id)
    await automatic.received(2)
    assert [m.delivery for m in automatic.delivered] == [None, None]
    assert await automatic.written() == [4, 7]


@given(st.permutations(range(1, 9)))
def test_pubacks_leave_in_arrival_order_whatever_the_acknowledgement_order(
    order: list[int],
) -> None:
    acks = Acknowledgements()
    for packet_id in range(1, 9):
        acks.received(packet_id)
    released: list[int] = []
    for count, packet_id in enumerate(order, 1):
        released += acks.acknowledge(packet_id)
        # released: the longest prefix of the arrival order that is all acknowledged
        prefix = 0
        while prefix < 8 and prefix + 1 in order[:count]:
            prefix += 1
        assert released == list(range(1, prefix + 1))
    assert released == list(range(1, 9)) and len(acks) == 0
    assert acks.acknowledge(3) == []
