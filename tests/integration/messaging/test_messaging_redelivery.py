"""Acknowledge after processing, on both brokers: what a consumer has not acknowledged
when its connection dies comes again on the next connection of its session.

The consumer (``ClientOptions(manual_ack=True)``) reaches the broker through a TCP relay
the test can cut (both sockets reset, no DISCONNECT: a network failure or a killed
process as the broker sees it). The same suite runs on mosquitto and on the embedded
amqtt broker (which, unpatched, forgot an unacknowledged message when the connection
dropped: ``embedded.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from messaging_platform import Platform

from device_platform import receive
from pervasive.messaging import MqttClient, device_topic

TOPIC = device_topic("lock-7", "telemetry")
FILTER = "pervasive/devices/lock-7/#"


class Cable:
    """A TCP relay to the broker; :meth:`cut` resets every connection through it."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._ends: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._ends += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Reset both sides of every relayed connection (RST: nothing more is delivered)."""
        for end in self._ends:
            end.transport.abort()
        self._ends.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _reconnected(client: MqttClient, count: int) -> None:
    async with asyncio.timeout(10):
        while client.reconnects < count or not client.connected:
            await asyncio.sleep(0.01)


async def test_unacknowledged_messages_come_again_after_the_connection_dies(
    platform: Platform,
) -> None:
    cable = Cable(platform.broker.port)
    await cable.start()
    options = await platform.options("svc:monitor", manual_ack=True, reconnect_min=0.01)
    try:
        async with (
            MqttClient(replace(options, port=cable.port)) as consumer,
            MqttClient(await platform.options("lock-7")) as device,
        ):
            await consumer.subscribe(FILTER)
            for payload in (b"1", b"2", b"3"):
                await device.publish(TOPIC, payload)
            first, second, third = await receive(consumer, 3)
            assert [m.payload for m in (first, second, third)] == [b"1", b"2", b"3"]
            consumer.acknowledge(first)  # stored; 2 and 3 are not, when the link dies
            await consumer.subscribe(FILTER)  # again: its SUBACK comes after the PUBACK
            cable.cut()
            await _reconnected(consumer, 1)

            again = await receive(consumer, 2)
            assert [m.payload for m in again] == [b"2", b"3"]  # in order, and 1 not again
            for message in again:
                consumer.acknowledge(message)
            await device.publish(TOPIC, b"4")
            (fourth,) = await receive(consumer, 1)
            assert fourth.payload == b"4"
            consumer.acknowledge(fourth)
            await consumer.subscribe(FILTER)
            cable.cut()
            await _reconnected(consumer, 2)

            await device.publish(TOPIC, b"5")
            (fifth,) = await receive(consumer, 1)
            assert fifth.payload == b"5"  # everything acknowledged stayed acknowledged
            consumer.acknowledge(fifth)
    finally:
        await cable.close()


async def test_a_new_process_of_the_session_gets_what_the_dead_one_left(
    platform: Platform,
) -> None:
    cable = Cable(platform.broker.port)
    await cable.start()
    options = await platform.options("svc:monitor", manual_ack=True)
    try:
        async with MqttClient(await platform.options("lock-7")) as device:
            dead = MqttClient(replace(options, port=cable.port, reconnect_min=60.0))
            await dead.connect()
            await dead.subscribe(FILTER)
            await device.publish(TOPIC, b"taken, not stored")
            (taken,) = await receive(dead, 1)
            assert dead.unacknowledged == 1
            cable.cut()  # the process dies before its commit
            await dead.close()
            await device.publish(TOPIC, b"sent while it was away")

            async with MqttClient(options) as restarted:  # same session, straight to the broker
                await restarted.subscribe(FILTER)
                received = await receive(restarted, 2)
                assert [m.payload for m in received] == [taken.payload, b"sent while it was away"]
                for message in received:
                    restarted.acknowledge(message)
                assert restarted.unacknowledged == 0
    finally:
        await cable.close()
