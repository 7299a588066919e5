"""The device-side client: nothing missed while offline, each desired change applied once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shadow_fakes import InMemoryBroker, InMemoryConnection, settle

from pervasive.messaging.port import MqttMessage
from pervasive.shadow.client import DeltaTracker, ShadowClient
from pervasive.shadow.document import JsonObject
from pervasive.shadow.protocol import ShadowKey
from pervasive.shadow.service import ShadowService
from pervasive.shadow.store import ShadowStore


class Device:
    """A lock whose actuator records every command it receives."""

    def __init__(
        self, broker: InMemoryBroker, *, jammed: bool = False, shadow: str | None = None
    ) -> None:
        self.broker = broker
        self.jammed = jammed
        self.commands: list[JsonObject] = []
        self.client = ShadowClient("lock-1", self.actuate, shadow=shadow)
        self.connection: InMemoryConnection | None = None
        self.task: asyncio.Task[None] | None = None

    async def actuate(self, delta: JsonObject) -> JsonObject | None:
        self.commands.append(delta)
        return {key: "jammed" for key in delta} if self.jammed else None

    async def connect(self) -> None:
        self.connection = self.broker.connect("lock-1")
        self.task = asyncio.create_task(self.client.serve(self.connection))
        await settle()

    async def disconnect(self) -> None:
        assert self.connection is not None and self.task is not None
        self.connection.disconnect()
        await self.task


@pytest.fixture
async def stack() -> AsyncIterator[tuple[InMemoryBroker, ShadowStore, InMemoryConnection]]:
    broker = InMemoryBroker()
    store = ShadowStore.open(":memory:")
    service = ShadowService(broker.connect("shadow-service"), store)
    task = asyncio.create_task(service.run())
    await settle()
    yield broker, store, broker.connect("web-app")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def desire(app: InMemoryConnection, state: dict[str, Any], shadow: str | None = None) -> None:
    topic = ShadowKey("lock-1", shadow).topic("update")
    await app.publish(topic, json.dumps({"state": {"desired": state}}).encode())
    await settle()


@pytest.mark.parametrize("shadow", [None, "door"])
async def test_change_made_while_offline_is_applied_exactly_once(
    stack: tuple[InMemoryBroker, ShadowStore, InMemoryConnection], shadow: str | None
) -> None:
    broker, store, app = stack
    device = Device(broker, shadow=shadow)
    await device.connect()
    await device.disconnect()

    await desire(app, {"door": "open"}, shadow)  # the delta goes nowhere: the device is offline
    assert device.commands == []

    await device.connect()
    assert device.commands == [{"door": "open"}]
    record = store.load(ShadowKey("lock-1", shadow))
    assert record is not None and record.reported == {"door": "open"} and record.delta() == {}

    await device.disconnect()
    await device.connect()  # nothing changed: nothing to do
    await desire(app, {"door": "closed"}, shadow)  # online: the live delta is applied once
    assert device.commands == [{"door": "open"}, {"door": "closed"}]
    await device.disconnect()


async def test_change_racing_the_resync_is_applied_once(
    stack: tuple[InMemoryBroker, ShadowStore, InMemoryConnection],
) -> None:
    broker, _, app = stack
    device = Device(broker)
    await desire(app, {"door": "open"})
    device.connection = broker.connect("lock-1")
    await device.client.synchronize(device.connection)  # get is queued at the service...
    await app.publish(  # ...and so is a new desired change, before the get reply arrives
        "$aws/things/lock-1/shadow/update", b'{"state":{"desired":{"light":"on"}}}'
    )
    device.task = asyncio.create_task(_serve_messages(device))
    await settle()
    assert device.commands == [{"door": "open"}, {"light": "on"}]
    await device.disconnect()


async def _serve_messages(device: Device) -> None:
    assert device.connection is not None
    async for message in device.connection.messages():
        await device.client.handle(device.connection, message)


async def test_a_delta_the_device_cannot_meet_is_not_repeated(
    stack: tuple[InMemoryBroker, ShadowStore, InMemoryConnection],
) -> None:
    broker, store, app = stack
    device = Device(broker, jammed=True)
    await device.connect()
    await desire(app, {"door": "open"})
    await device.disconnect()
    await device.connect()
    assert device.commands == [{"door": "open"}]
    record = store.load(ShadowKey("lock-1"))
    assert record is not None and record.reported == {"door": "jammed"}
    await device.disconnect()


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.dictionaries(st.sampled_from("abc"), st.integers(0, 2), max_size=3),
        ),
        max_size=15,
    )
)
def test_tracker_never_repeats_a_value_still_pending(
    observations: list[tuple[int, JsonObject]],
) -> None:
    tracker = DeltaTracker()
    given_out: dict[str, Any] = {}
    for version, delta in observations:
        stale = version < tracker.version
        fresh = tracker.fresh(version, delta)
        if stale:
            assert fresh == {}
            continue
        given_out = {k: v for k, v in given_out.items() if k in delta}
        for key, value in fresh.items():
            assert given_out.get(key) != value
        assert {k: v for k, v in delta.items() if given_out.get(k) != v} == fresh
        tracker.handled(fresh)
        given_out.update(fresh)


async def test_malformed_or_foreign_messages_change_nothing() -> None:
    broker = InMemoryBroker()
    device = Device(broker)
    connection = broker.connect("lock-1")
    prefix = "$aws/things/lock-1/shadow"
    for topic, payload in [
        (f"{prefix}/update/delta", b"not json"),
        (f"{prefix}/update/delta", b'{"version": 1, "state": [1]}'),
        (f"{prefix}/get/accepted", b'{"version": "x", "state": {"delta": {"a": 1}}}'),
        ("$aws/things/lock-2/shadow/update/delta", b'{"version": 1, "state": {"a": 1}}'),
    ]:
        await device.client.handle(connection, MqttMessage(topic, payload))
    assert device.commands == [] and device.client.version == -1
    await device.client.handle(
        connection,
        MqttMessage(f"{prefix}/update/rejected", b'{"code": 400, "message": "Invalid JSON"}'),
    )
    assert device.client.errors == [{"code": 400, "message": "Invalid JSON"}]


def test_public_surface() -> None:
    import pervasive.shadow as shadow

    assert all(hasattr(shadow, name) for name in shadow.__all__)
    assert {"ShadowService", "ShadowClient", "ShadowCore", "ShadowStore"} <= set(shadow.__all__)
