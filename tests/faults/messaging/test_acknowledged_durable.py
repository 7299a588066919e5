"""Fault: mosquitto is SIGKILLed right after it acknowledged 200 readings (issue 11, item 6).

mosquitto PUBACKs a message at once and writes its persistence file only every
``autosave_interval`` seconds, so a SIGKILL in between forgets what it acknowledged.
The outbox keeps acknowledged readings for ``autosave_interval + 2`` s and sends them
again when the connection drops first. Each round: a device publishes 200 readings
through its outbox, waits for the 200th PUBACK, mosquitto is SIGKILLed and restarted
on the same port and folder, then the offline durable subscriber comes back and must
receive all 200 (duplicates allowed: applied once, by sequence number).

The first round starts just after mosquitto saved, so without the retention it loses
the round for certain; the later rounds fall where they fall in the save cycle.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from pervasive.messaging import (
    ClientCredentials,
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

ROUNDS = 3
PER_ROUND = 200
FAST = {"reconnect_min": 0.02, "reconnect_max": 0.2, "ack_timeout": 3.0}
DELIVERY_TIMEOUT = 8.0
"""Seconds the subscriber waits for a round's readings (a resend comes within ~1 s)."""


async def _just_after_a_save(broker: MosquittoBroker) -> None:
    """Return right after mosquitto rewrote its persistence file."""
    database = broker.directory / "persistence" / "mosquitto.db"
    before = database.stat().st_mtime_ns if database.exists() else 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if database.exists() and database.stat().st_mtime_ns != before:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("mosquitto did not save its persistence within 10 s")


async def _kill_and_restart(broker: MosquittoBroker) -> None:
    pid = broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while broker.running:  # polling reaps the process
        await asyncio.sleep(0.005)
    await broker.start()


async def _receive_round(
    credentials: ClientCredentials, port: int, outbox: Path, dedupe: Deduplicator, first: int
) -> tuple[set[int], int]:
    """Bring the durable subscriber online; return the round's sequences it got, and how
    many deliveries that took (duplicates included)."""
    expected = set(range(first, first + PER_ROUND))
    got: set[int] = set()
    deliveries = 0
    subscriber = MqttClient(ClientOptions("127.0.0.1", port, credentials, outbox=outbox, **FAST))
    await subscriber.connect()  # no subscribe: the session kept by the broker must carry them
    try:
        async with asyncio.timeout(DELIVERY_TIMEOUT):
            async for message in subscriber.messages():
                deliveries += 1
                sender, _ = parse_device_topic(message.topic)
                sequence = json.loads(message.payload)["seq"]
                with dedupe.apply_once(sender, sequence) as fresh:
                    if fresh and sequence in expected:
                        got.add(sequence)
                if got == expected:
                    break
    except TimeoutError:
        pass
    finally:
        await subscriber.close()
    return got, deliveries


async def test_readings_acknowledged_before_a_broker_sigkill_all_arrive(tmp_path: Path) -> None:
    ca = CertificateAuthority.open(tmp_path / "pki", "test password")
    device = ca.write_credentials(ca.issue_device("meter-1"), tmp_path / "meter-1")
    monitor = ca.write_credentials(ca.issue_service("svc:monitor"), tmp_path / "monitor")
    broker = MosquittoBroker(tmp_path / "mosquitto", ca.broker_credentials(), ca.active_identities)
    subscriber_outbox = tmp_path / "subscriber.sqlite"
    dedupe = Deduplicator.open(tmp_path / "applied.sqlite")
    await broker.start()
    publisher = MqttClient(
        ClientOptions(
            "127.0.0.1",
            broker.port,
            device,
            outbox=tmp_path / "outbox.sqlite",
            max_inflight=32,
            **FAST,
        )
    )
    lost: list[int] = []
    deliveries = 0
    try:
        # the durable subscriber subscribes once and goes offline; a graceful restart
        # saves its session, so only the readings are at stake
        subscriber = MqttClient(
            ClientOptions("127.0.0.1", broker.port, monitor, outbox=subscriber_outbox, **FAST)
        )
        await subscriber.connect()
        await subscriber.subscribe("pervasive/devices/+/#")
        await subscriber.close()
        await broker.stop()
        await broker.start()

        await publisher.connect()
        topic = device_topic("meter-1", "reading")
        for round_number in range(ROUNDS):
            first = round_number * PER_ROUND
            if round_number == 0:
                await _just_after_a_save(broker)
            readings = [
                (topic, json.dumps({"seq": sequence}).encode())
                for sequence in range(first, first + PER_ROUND)
            ]
            await publisher.publish_many(readings)
            await publisher.flush(timeout=10)  # the 200th PUBACK is in
            await _kill_and_restart(broker)
            got, round_deliveries = await _receive_round(
                monitor, broker.port, subscriber_outbox, dedupe, first
            )
            lost.append(PER_ROUND - len(got))
            deliveries += round_deliveries
    finally:
        await publisher.close()
        await broker.stop()
        dedupe.close()
        ca.close()

    assert lost == [0] * ROUNDS, f"readings lost per round: {lost}"
    assert publisher.reconnects >= ROUNDS
    assert deliveries >= ROUNDS * PER_ROUND  # resends arrived too, applied once by sequence
