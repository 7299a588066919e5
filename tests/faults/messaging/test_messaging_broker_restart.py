"""Fault: mosquitto stops while a device publishes 200 messages, then comes back.

The device publishes through its durable outbox at a steady pace; the broker is
stopped after ~60 messages and restarted after ~140. A durable subscriber applies
each message once through a Deduplicator keyed by (device, sequence number).
Every one of the 200 must be applied, once, in order.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pervasive.messaging import (
    ClientOptions,
    Deduplicator,
    MosquittoBroker,
    MqttClient,
    device_topic,
    find_mosquitto,
    parse_device_topic,
)
from pervasive.pki import CertificateAuthority

pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(
        find_mosquitto() is None,
        reason="mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients)",
    ),
]

TOTAL = 200


async def test_broker_restart_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    ca = CertificateAuthority.open(tmp_path / "pki", "test password")
    device = ca.write_credentials(ca.issue_device("meter-1"), tmp_path / "meter-1")
    monitor = ca.write_credentials(ca.issue_service("svc:monitor"), tmp_path / "monitor")
    broker = MosquittoBroker(tmp_path / "mosquitto", ca.broker_credentials(), ca.active_identities)
    await broker.start()
    fast = {"reconnect_min": 0.02, "reconnect_max": 0.2, "ack_timeout": 3.0}
    publisher = MqttClient(
        ClientOptions("127.0.0.1", broker.port, device, outbox=tmp_path / "outbox.sqlite", **fast)
    )
    subscriber = MqttClient(
        ClientOptions("127.0.0.1", broker.port, monitor, outbox=tmp_path / "sub.sqlite", **fast)
    )
    dedupe = Deduplicator.open(tmp_path / "applied.sqlite")
    applied: list[int] = []
    deliveries = 0

    async def consume() -> None:
        nonlocal deliveries
        async for message in subscriber.messages():
            deliveries += 1
            sender, _ = parse_device_topic(message.topic)
            sequence = json.loads(message.payload)["seq"]
            with dedupe.apply_once(sender, sequence) as fresh:
                if fresh:
                    applied.append(sequence)
            if len(applied) == TOTAL:
                return

    try:
        await subscriber.connect()
        await subscriber.subscribe("pervasive/devices/+/#")
        await publisher.connect()
        consumer = asyncio.create_task(consume())
        topic = device_topic("meter-1", "reading")
        for sequence in range(TOTAL):
            await publisher.publish(topic, json.dumps({"seq": sequence}).encode())
            if sequence == 60:
                await broker.stop()
                assert not broker.running
            if sequence == 140:
                await broker.start()
            await asyncio.sleep(0.005)
        await publisher.flush(timeout=30)
        left_in_outbox = publisher.pending
        await asyncio.wait_for(consumer, timeout=30)
    finally:
        await publisher.close()
        await subscriber.close()
        await broker.stop()
        ca.close()

    assert applied == list(range(TOTAL))  # all 200, once each, in order
    assert publisher.reconnects >= 1 and subscriber.reconnects >= 1
    assert left_in_outbox == 0
    assert deliveries >= TOTAL  # redeliveries, if any, were absorbed by the dedupe record
    print(f"deliveries={deliveries} duplicates={deliveries - TOTAL}")
