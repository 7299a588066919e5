"""The shadow service on a durable session, over real brokers (issue 11, items 7 and 11).

The service runs in the test's process on an :class:`MqttClient` with
``ClientOptions(manual_ack=True)`` (a persistent session whose requests are
acknowledged once answered), against mosquitto and the embedded broker, with TLS
identities from a real CA. A device is a second client with its own certificate.

- item 7: a request is acknowledged once its answer is committed, so a restarted
  service neither loses requests sent while it was away nor applies the answered ones
  again; a retried request (same clientToken and payload) gets the committed answer.
- item 11: at most ``max_in_flight`` (10) requests of one shadow wait for their
  answer; the 11th is answered 429 at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pervasive.config import ShadowSettings
from pervasive.messaging import (
    Broker,
    ClientCredentials,
    ClientOptions,
    EmbeddedBroker,
    MosquittoBroker,
    MqttClient,
    find_mosquitto,
)
from pervasive.pki import CertificateAuthority
from pervasive.shadow import InFlightLimit, ShadowCore, ShadowKey, ShadowService, ShadowStore

pytestmark = [pytest.mark.xdist_group("shadow-hardening")]

THING = "lock-1"
FAST = {"reconnect_min": 0.02, "reconnect_max": 0.2, "ack_timeout": 5.0}


@dataclass
class Identities:
    ca: CertificateAuthority
    service: ClientCredentials
    device: ClientCredentials


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> Identities:
    root = tmp_path_factory.mktemp("shadow-hardening")
    ca = CertificateAuthority.open(root / "pki", "shadow hardening")
    service = ca.write_credentials(ca.issue_service("svc:shadow"), root / "svc-shadow")
    device = ca.write_credentials(ca.issue_device(THING), root / THING)
    return Identities(ca, service, device)


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
async def broker(
    request: pytest.FixtureRequest, identities: Identities, tmp_path: Path
) -> AsyncIterator[Broker]:
    ca = identities.ca
    running: Broker
    if request.param == "mosquitto":
        if find_mosquitto() is None:
            pytest.skip("mosquitto is not installed")
        running = MosquittoBroker(
            tmp_path / "mosquitto", ca.broker_credentials(), ca.active_identities
        )
    else:
        running = EmbeddedBroker(ca.broker_credentials(), ca.active_identities)
    async with running:
        yield running


@dataclass
class Device:
    """The device's MQTT session and every answer it got, by clientToken."""

    client: MqttClient
    answers: dict[str, list[tuple[str, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    async def update(self, token: str, reported: dict[str, Any], **extra: Any) -> None:
        body = {"state": {"reported": reported}, "clientToken": token, **extra}
        await self.client.publish(f"$aws/things/{THING}/shadow/update", json.dumps(body).encode())

    async def delete(self, token: str) -> None:
        body = json.dumps({"clientToken": token}).encode()
        await self.client.publish(f"$aws/things/{THING}/shadow/delete", body)

    async def listen(self) -> None:
        async for message in self.client.messages():
            outcome = message.topic.rsplit("/", 1)[-1]
            if outcome in ("accepted", "rejected"):
                body = json.loads(message.payload)
                self.answers[body.get("clientToken", "")].append((outcome, body))

    async def answered(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` answers arrived, then a little longer for any extra one."""
        async with asyncio.timeout(timeout):
            while sum(map(len, self.answers.values())) < count:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)


@pytest.fixture
async def device(broker: Broker, identities: Identities) -> AsyncIterator[Device]:
    options = ClientOptions(broker.host, broker.port, identities.device, **FAST)
    async with MqttClient(options) as client:
        for outcome in ("accepted", "rejected"):
            await client.subscribe(f"$aws/things/{THING}/shadow/+/{outcome}")
        watcher = Device(client)
        task = asyncio.create_task(watcher.listen())
        try:
            yield watcher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def shadow_service(
    broker: Broker, identities: Identities, path: Path, limits: ShadowSettings | None = None
) -> AsyncIterator[ShadowService]:
    """The service on a durable session (as ``svc:shadow``) until the block ends."""
    options = ClientOptions(broker.host, broker.port, identities.service, manual_ack=True, **FAST)
    store = ShadowStore.open(path)
    try:
        async with MqttClient(options) as client:
            service = ShadowService(client, store, ShadowCore(limits))
            await service.start()  # subscribed: from now on the broker keeps requests
            task = asyncio.create_task(service.run())
            try:
                yield service
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        store.close()


def version(path: Path) -> int:
    store = ShadowStore.open(path)
    try:
        record = store.load(ShadowKey(THING))
        return 0 if record is None else record.version
    finally:
        store.close()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "shadow.sqlite"


# -- item 7: durable session ---------------------------------------------------------


async def test_requests_sent_while_the_service_is_away_are_answered_once(
    broker: Broker, identities: Identities, device: Device, database: Path
) -> None:
    async with shadow_service(broker, identities, database):
        for n in range(3):
            await device.update(f"before-{n}", {"n": n})
        await device.answered(3)
    for n in range(4):  # nobody serves shadows now: the broker keeps these for svc:shadow
        await device.update(f"away-{n}", {"n": 10 + n})
    async with shadow_service(broker, identities, database) as service:
        await device.answered(7)
        # the three answered before the restart were acknowledged: not delivered again
        assert service.accepted.total() == 4 and service.duplicates == 0
    assert {token: [o for o, _ in got] for token, got in device.answers.items()} == {
        **{f"before-{n}": ["accepted"] for n in range(3)},
        **{f"away-{n}": ["accepted"] for n in range(4)},
    }
    assert version(database) == 7


async def test_a_retried_request_gets_the_committed_answer(
    broker: Broker, identities: Identities, device: Device, database: Path
) -> None:
    async with shadow_service(broker, identities, database) as service:
        await device.update("first", {"door": "open"}, version=0)
        await device.answered(1)
        await device.update("first", {"door": "open"}, version=0)  # the SDK retries
        await device.answered(2)
        await device.update("first", {"door": "shut"})  # same token, another request
        await device.answered(3)
        await device.delete("gone")
        await device.answered(4)
        await device.delete("gone")  # retried delete: its answer, not a 404
        await device.answered(5)
        assert service.duplicates == 2 and service.rejections.total() == 0
    first = device.answers["first"]
    assert [o for o, _ in first] == ["accepted"] * 3
    assert first[0][1] == first[1][1] and first[0][1]["version"] == 1  # the committed answer
    assert first[2][1]["version"] == 2
    assert device.answers["gone"] == [("accepted", device.answers["gone"][0][1])] * 2
    assert device.answers["gone"][0][1]["version"] == 2
    assert version(database) == 2


# -- item 11: requests in flight -----------------------------------------------------


async def test_an_eleventh_request_in_flight_is_refused_with_429(
    broker: Broker, identities: Identities, device: Device, database: Path
) -> None:
    async with shadow_service(broker, identities, database):
        pass  # the session exists (durable) and is subscribed; the service is now paused
    for n in range(11):
        await device.update(f"t-{n}", {"n": n})
    async with shadow_service(broker, identities, database) as service:
        await device.answered(11)  # all eleven arrive at once; ten may wait
        await device.update("t-11", {"n": 11})  # answered ones are no longer in flight
        await device.answered(12)
    refused = device.answers["t-10"]
    assert [o for o, _ in refused] == ["rejected"]
    assert refused[0][1]["code"] == 429
    assert refused[0][1]["message"].startswith("Too many requests in flight")
    for n in (*range(10), 11):
        assert [o for o, _ in device.answers[f"t-{n}"]] == ["accepted"], n
    assert version(database) == 11
    assert service.throttled == {"in flight": 1} and service.rejections == {429: 1}
    assert service.in_flight(ShadowKey(THING)) == 0


def test_in_flight_is_counted_per_shadow() -> None:
    in_flight = InFlightLimit(10)
    door, window = ShadowKey(THING, "door"), ShadowKey(THING, "window")
    assert [in_flight.take(door) for _ in range(11)] == [True] * 10 + [False]
    assert in_flight.take(window)  # another shadow of the same thing has its own 10
    in_flight.done(door)
    assert in_flight.take(door) and in_flight.count(door) == 10
