"""The client's side of the message-size limit (issue 11, item 4), on both brokers.

``ClientOptions.max_message_bytes`` (``[mqtt] max_message_bytes``): a larger publish is
refused before anything is stored or sent, with one line that says what to do, and
counted; a larger packet from the broker closes the connection (counted too) instead
of being buffered whole, and the client carries on on a fresh connection.
"""

from __future__ import annotations

import asyncio

import pytest
from messaging_platform import Platform

from device_platform import receive
from pervasive.messaging import MqttClient, device_topic
from pervasive.messaging.packets import MessageTooLarge

LIMIT = 2048


async def test_a_publish_over_the_limit_is_refused_before_the_outbox_and_counted(
    platform: Platform,
) -> None:
    outbox = platform.root / "lock-7.outbox.sqlite"
    topic = device_topic("lock-7", "telemetry")
    async with (
        MqttClient(
            await platform.options("lock-7", outbox=outbox, max_message_bytes=LIMIT)
        ) as device,
        MqttClient(await platform.options("svc:monitor")) as monitor,
    ):
        await monitor.subscribe("pervasive/devices/+/#")
        with pytest.raises(MessageTooLarge) as refused:
            await device.publish(topic, bytes(LIMIT))
        message = str(refused.value)
        assert "\n" not in message
        assert f"{LIMIT:,} bytes" in message and "max_message_bytes" in message
        with pytest.raises(MessageTooLarge):  # a batch with one too large stores nothing
            await device.publish_many([(topic, b"small"), (topic, bytes(4 * LIMIT))])
        assert device.pending == device.retained == 0
        assert device.refusals["message_too_large"] == 2

        await device.publish(topic, bytes(LIMIT - 100))  # under the limit: delivered
        await device.flush(timeout=5)
        (delivered,) = await receive(monitor, 1)
        assert len(delivered.payload) == LIMIT - 100


async def test_a_packet_over_the_limit_from_the_broker_closes_the_connection(
    platform: Platform,
) -> None:
    topic = device_topic("lock-7", "telemetry")
    async with (
        MqttClient(await platform.options("lock-7")) as device,
        MqttClient(
            await platform.options(
                "svc:monitor", max_message_bytes=LIMIT, reconnect_min=0.02, reconnect_max=0.2
            )
        ) as monitor,
    ):
        await monitor.subscribe("pervasive/devices/+/#")
        await device.publish(topic, bytes(4 * LIMIT))  # the sender's limit is the default 1 MB
        async with asyncio.timeout(10):
            while not (monitor.reconnects and monitor.connected):  # resubscribed when connected
                await asyncio.sleep(0.01)
        assert monitor.refusals["packet_too_large"] == 1
        assert "exceeds this client's limit" in (monitor.last_error or "")
        await device.publish(topic, b"after")
        (message,) = await receive(monitor, 1)
        assert message.payload == b"after"
