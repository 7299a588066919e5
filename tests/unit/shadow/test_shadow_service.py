"""The asyncio shadow service over the in-memory MQTT neighbour."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from shadow_fakes import InMemoryBroker, InMemoryConnection, settle

from pervasive.config import ShadowSettings
from pervasive.shadow.core import OutboundMessage, ShadowCore
from pervasive.shadow.protocol import ShadowKey
from pervasive.shadow.service import ShadowService
from pervasive.shadow.store import ShadowStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class App:
    """Another MQTT client watching every shadow reply."""

    def __init__(self, connection: InMemoryConnection) -> None:
        self.connection = connection
        self.received: list[tuple[str, dict[str, Any]]] = []

    async def watch(self) -> None:
        await self.connection.subscribe("$aws/things/+/shadow/#")
        await self.connection.subscribe("$aws/things/+/shadow/name/+/#")

    async def send(self, topic: str, body: Any) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.connection.publish(topic, payload)
        await settle()
        while not self.connection.queue.empty():
            message = self.connection.queue.get_nowait()
            assert message is not None
            if message.topic.rsplit("/", 1)[-1] in ("accepted", "rejected", "delta", "documents"):
                self.received.append((message.topic, json.loads(message.payload)))

    def last(self, suffix: str) -> dict[str, Any]:
        return next(body for topic, body in reversed(self.received) if topic.endswith(suffix))


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def running(service: ShadowService) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(service.run())
    await settle()
    yield task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def app(broker: InMemoryBroker) -> App:
    watcher = App(broker.connect("app"))
    await watcher.watch()
    return watcher


@pytest.fixture
async def service(broker: InMemoryBroker, clock: Clock) -> AsyncIterator[ShadowService]:
    limits = ShadowSettings(requests_per_second=1, burst=5)
    svc = ShadowService(
        broker.connect("shadow-service"),
        ShadowStore.open(":memory:"),
        ShadowCore(limits),
        clock=clock,
    )
    async for _ in running(svc):
        yield svc


async def test_update_then_get_over_mqtt(service: ShadowService, app: App) -> None:
    await app.send(
        "$aws/things/lock-1/shadow/update",
        {"state": {"desired": {"door": "open"}}, "clientToken": "u"},
    )
    topics = [topic for topic, _ in app.received]
    assert topics == [
        "$aws/things/lock-1/shadow/update/accepted",
        "$aws/things/lock-1/shadow/update/delta",
        "$aws/things/lock-1/shadow/update/documents",
    ]
    await app.send("$aws/things/lock-1/shadow/name/door/update", {"state": {"reported": {"x": 1}}})
    await app.send("$aws/things/lock-1/shadow/get", {"clientToken": "g"})
    got = app.last("/shadow/get/accepted")
    assert got["state"]["delta"] == {"door": "open"} and got["clientToken"] == "g"
    assert app.last("name/door/update/accepted")["version"] == 1
    assert sum(service.accepted.values()) == 3 and not service.rejections


async def test_rejections_are_answered_and_counted_by_code(
    service: ShadowService, app: App
) -> None:
    prefix = "$aws/things/lock-1/shadow"
    await app.send(f"{prefix}/update", b"{oops")
    await app.send(f"{prefix}/update", b'{"state":{"desired":{"x":"\xff"}}}')
    await app.send(f"{prefix}/get", b"")
    await app.send(f"{prefix}/update", {"state": {"desired": {"a": 1}}})
    await app.send(
        f"{prefix}/update", {"state": {"desired": {"a": 2}}, "version": 7, "clientToken": "v"}
    )
    assert app.last("update/rejected") == {
        "code": 409,
        "message": "Version conflict",
        "timestamp": 1_700_000_000,
        "clientToken": "v",
    }
    assert service.rejections == {400: 1, 415: 1, 404: 1, 409: 1}


async def test_each_thing_is_rate_limited_with_429(
    service: ShadowService, app: App, clock: Clock
) -> None:
    for n in range(6):
        await app.send(
            "$aws/things/busy/shadow/update",
            {"state": {"reported": {"n": n}}, "clientToken": f"c{n}"},
        )
    assert app.last("busy/shadow/update/rejected") == {
        "code": 429,
        "message": "Too many requests",
        "timestamp": 1_700_000_000,
        "clientToken": "c5",
    }
    await app.send("$aws/things/calm/shadow/get", b"")
    assert app.last("calm/shadow/get/rejected")["code"] == 404  # other things are not throttled
    clock.now += 1.0
    await app.send("$aws/things/busy/shadow/update", {"state": {"reported": {"n": 6}}})
    assert app.last("busy/shadow/update/accepted")["version"] == 6
    assert service.rejections[429] == 1


async def test_non_request_topics_are_ignored(service: ShadowService, app: App) -> None:
    await app.send("$aws/things/bad name/shadow/get", b"")
    await app.send("$aws/things/t/shadow/name/bad.name/update", b"{}")
    assert service.ignored == 2 and app.received == []


async def test_store_failure_is_a_500(broker: InMemoryBroker, app: App) -> None:
    store = ShadowStore.open(":memory:")
    svc = ShadowService(broker.connect("svc"), store)
    async for _ in running(svc):
        store.close()
        await app.send("$aws/things/t/shadow/update", {"state": {}, "clientToken": "x"})
    assert app.last("update/rejected")["message"] == "Internal service failure"
    assert app.last("update/rejected")["clientToken"] == "x"
    assert svc.rejections == {500: 1}


async def test_restart_loses_nothing(broker: InMemoryBroker, app: App, tmp_path: Path) -> None:
    path = tmp_path / "shadow.sqlite"
    first = ShadowService(broker.connect("svc-1"), ShadowStore.open(path))
    async for _ in running(first):
        for n in range(3):
            await app.send("$aws/things/t/shadow/update", {"state": {"desired": {"n": n}}})
    broker.sessions.remove(next(s for s in broker.sessions if s.client_id == "svc-1"))

    # a crash after the commit but before publishing: the replies wait in the outbox
    store = ShadowStore.open(path)
    store.commit(
        store.load(ShadowKey("t")),  # type: ignore[arg-type]
        previous=store.load(ShadowKey("t")),
        messages=[OutboundMessage("$aws/things/t/shadow/update/accepted", b'{"pending":1}')],
    )
    store.close()

    second = ShadowService(broker.connect("svc-2"), ShadowStore.open(path))
    async for _ in running(second):
        await app.send(
            "$aws/things/t/shadow/update", {"state": {"desired": {"n": 9}}, "version": 3}
        )
    assert app.received[-4][1] == {"pending": 1}
    assert app.last("update/accepted")["version"] == 4
    assert ShadowStore.open(path).pending() == []


async def test_a_redelivered_update_is_applied_once(service: ShadowService, app: App) -> None:
    request = {"state": {"reported": {"n": 1}}, "clientToken": "dup"}
    await app.send("$aws/things/t/shadow/update", request)
    await app.send("$aws/things/t/shadow/update", request)  # QoS 1 redelivery
    await app.send("$aws/things/t/shadow/update", {**request, "state": {"reported": {"n": 2}}})
    versions = [
        body["version"] for topic, body in app.received if topic.endswith("update/accepted")
    ]
    assert versions == [1, 1, 2] and service.duplicates == 1
