"""The dashboard live over a real platform: shadow service, embedded broker, uvicorn, SSE.

A device's shadow update reaches the dashboard's event stream through the shadow
service's listener; the stream starts with a snapshot, sends keep-alives, and a client
that reconnects with its ``Last-Event-ID`` receives only what it missed. A node that
dies shows as a status line and the feed picks up again when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from pervasive import Platform
from pervasive.chain import AnvilNode, find_anvil, open_ledger
from pervasive.config import Settings
from pervasive.messaging import MqttClient
from pervasive.shadow import ShadowRecord
from pervasive.web import WebServer
from pervasive.web.dashboard import dashboard_routes
from pervasive.web.feed import DashboardFeed

PASSWORD = "test password"


@dataclass
class Live:
    platform: Platform
    feed: DashboardFeed
    server: WebServer

    async def report(self, thing: str, state: dict[str, Any]) -> dict[str, Any]:
        """Publish ``state`` as device ``thing`` and wait for the shadow service's answer."""
        options = self.platform.client_options(thing)
        await (await self.platform.broker()).settle()
        async with MqttClient(options) as device:
            await device.subscribe(f"$aws/things/{thing}/shadow/update/accepted")
            payload = json.dumps({"state": state}).encode()
            await device.publish(f"$aws/things/{thing}/shadow/update", payload)
            async with asyncio.timeout(10):
                reply = await anext(device.messages())
        answer: dict[str, Any] = json.loads(reply.payload)
        return answer


@pytest.fixture
async def live(tmp_settings: Settings) -> AsyncIterator[Live]:
    settings = replace(tmp_settings, broker="embedded", password=PASSWORD)
    async with Platform(settings, persist=False) as platform:
        await platform.start("ledger", "broker", "shadow")
        running = await platform.shadow()
        feed = DashboardFeed(
            await platform.ledger(),
            authority=platform.authority,
            shadows=running.service.store,
            book=platform.deployments(),
            interval=0.2,
        )
        running.service.add_listener(feed.shadow_changed)
        app = Starlette(routes=dashboard_routes(feed, keepalive=0.3))
        await feed.start()
        server = await WebServer.start(app, replace(settings.web, port=0), access_log=False)
        try:
            yield Live(platform, feed, server)
        finally:
            await feed.close()  # ends the open event streams, so the server stops at once
            await server.close()


@dataclass
class EventStream:
    """A server-sent events client on one streaming response."""

    lines: AsyncIterator[str]
    last_id: str = ""
    comments: list[str] = field(default_factory=list)

    async def next(self, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
        """The next event as ``(event, data)``, or ``("comment", {})`` for a comment line."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line.startswith(":"):
                    self.comments.append(line)
                    return "comment", {}
                if line == "" and "data" in fields:
                    self.last_id = fields["id"]
                    return fields.get("event", "message"), json.loads(fields["data"])
                if line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
        raise AssertionError("the event stream ended")

    async def until(self, table: str, key: str, **row: Any) -> None:
        """Read changes until ``table`` holds ``key`` with ``row``'s values."""
        while True:
            event, data = await self.next()
            if event != "change" or (data["table"], data["key"]) != (table, key):
                continue
            if data["row"] and all(data["row"][k] == v for k, v in row.items()):
                return

    async def keep_alive(self) -> None:
        """Read until a keep-alive comment arrives (events on the way are consumed)."""
        while (await self.next())[0] != "comment":
            pass


@contextlib.asynccontextmanager
async def event_stream(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[EventStream]:
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventStream(response.aiter_lines())


async def test_a_shadow_change_streams_live_and_a_reconnect_resumes(live: Live) -> None:
    url = f"{live.server.url}/dashboard/events"
    async with httpx.AsyncClient(timeout=10) as client:
        async with event_stream(client, url) as stream:
            event, snapshot = await stream.next()
            assert event == "snapshot" and snapshot["id"] == stream.last_id
            assert {row["key"] for row in snapshot["status"]} >= {"chain", "orders", "agreements"}

            await live.report("door-1", {"reported": {"door": "closed"}})
            await stream.until("devices", "door-1", door="closed", certificate="active")
            await stream.keep_alive()  # nothing changes: a comment keeps the connection open
            assert stream.last_id == live.feed.snapshot().id
        async with asyncio.timeout(5):
            while live.feed.subscribers:  # the server notices the gone client at its next write
                await asyncio.sleep(0.05)

        await live.report("door-1", {"reported": {"door": "open"}})
        async with event_stream(client, url, headers={"Last-Event-ID": stream.last_id}) as again:
            event, data = await again.next()
        assert event == "change", "only what was missed, no snapshot"
        assert (data["table"], data["key"], data["row"]["door"]) == ("devices", "door-1", "open")


async def test_the_page_and_the_state_show_the_same_rows(live: Live) -> None:
    await live.report("door-2", {"desired": {"door": "open"}, "reported": {"door": "closed"}})
    async with httpx.AsyncClient(base_url=live.server.url, timeout=10) as client:
        state = (await client.get("/dashboard/state.json")).json()
        page = (await client.get("/dashboard")).text
    [row] = [r for r in state["devices"] if r["key"] == "door-2"]
    assert (row["door"], row["flag"]) == ("closed → open", "pending")
    assert 'data-key="door-2" data-flag="pending"' in page
    assert "closed → open" in page


async def test_a_failing_listener_costs_the_device_nothing(live: Live) -> None:
    service = (await live.platform.shadow()).service
    heard: list[ShadowRecord] = []

    def broken(record: ShadowRecord) -> None:
        raise RuntimeError("a listener bug")

    service.add_listener(broken)
    service.add_listener(heard.append)
    answer = await live.report("door-3", {"reported": {"door": "closed"}})
    assert answer["state"]["reported"] == {"door": "closed"}
    assert service.listener_failures == 1
    assert [r.key.thing for r in heard] == ["door-3"], "the other listeners still hear"
    assert any(row.key == "door-3" and row.door == "closed" for row in live.feed.snapshot().devices)


@pytest.mark.anvil
async def test_a_dead_node_is_a_status_line_and_the_feed_comes_back(
    tmp_settings: Settings,
) -> None:
    node = AnvilNode(binary=find_anvil(), state_file=tmp_settings.path("chain", "anvil.json"))
    await node.start()
    ledger = await open_ledger(replace(tmp_settings, backend="rpc", rpc_url=node.url))
    feed = DashboardFeed(ledger, interval=0.1)
    try:
        await feed.start()
        assert {r.key: r for r in feed.snapshot().status}["chain"].ok
        node.kill()
        async with asyncio.timeout(20):
            while {r.key: r for r in feed.snapshot().status}["chain"].ok:
                await asyncio.sleep(0.05)
        chain = {r.key: r for r in feed.snapshot().status}["chain"]
        assert chain.text.startswith("node unreachable, retrying")
        assert feed.counters["chain unavailable"] >= 1
        await node.start()
        async with asyncio.timeout(20):
            while not {r.key: r for r in feed.snapshot().status}["chain"].ok:
                await asyncio.sleep(0.05)
    finally:
        await feed.close()
        await ledger.close()
        await node.stop()
