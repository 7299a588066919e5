"""Contract events on anvil -> CloudEvents on mosquitto and on the SSE stream, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quotes import TOO_EXPENSIVE, TYPE, deploy_quotes, quotes_mappings
from sse import read_cloudevents
from starlette.applications import Starlette

from pervasive.config import Settings, WebSettings
from pervasive.interop import EventStore, InteropFeed, events_path, read_event
from pervasive.messaging import MqttClient
from pervasive.platform import Platform
from pervasive.web import WebServer, cloudevents_routes

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.mosquitto,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed"),
]


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    settings = Settings(home=tmp_path / "home", backend="anvil", broker="mosquitto")
    async with Platform(settings, password="interop-test") as platform:
        yield platform


async def collect(client: MqttClient, count: int, timeout: float = 20.0) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []

    async def read() -> None:
        async for message in client.messages():
            got.append((message.topic, message.payload))
            if len(got) >= count:
                return

    await asyncio.wait_for(read(), timeout)
    return got


async def quiet(client: MqttClient, seconds: float) -> list[str]:
    """Topics of whatever arrives within ``seconds`` (should be nothing)."""
    got: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for message in client.messages():
                got.append(message.topic)
    return got


async def test_events_reach_mqtt_and_the_stream_once_and_survive_a_restart(
    platform: Platform, tmp_path: Path
) -> None:
    ledger = await platform.ledger()
    await platform.broker()
    quotes = await deploy_quotes(ledger, ledger.dev_signer(0))
    signer = ledger.dev_signer(0)
    home = platform.settings.home
    mappings = quotes_mappings(tmp_path / "spec")

    def new_feed() -> InteropFeed:
        feed = InteropFeed(ledger, home, poll_interval=0.02)
        feed.follow(quotes.address, mappings)
        return feed

    consumer_options = platform.client_options("svc:events.test")
    producer_options = platform.client_options("svc:service.interop")
    # new identities: mosquitto admits them after a reload; a message published before
    # it completes is not delivered to a subscriber the old ACL does not know (the
    # cause of this test's old flakiness: s-1 lost)
    await (await platform.broker()).settle()
    async with MqttClient(consumer_options) as consumer, MqttClient(producer_options) as producer:
        await consumer.subscribe("pervasive/events/#", qos=1)
        feed = new_feed()
        task = asyncio.create_task(feed.run(producer))
        await quotes.transact(signer, "quote", "s-1", 40)
        await quotes.transact(signer, "quote", "s-bad", TOO_EXPENSIVE)
        await quotes.transact(signer, "quote_many", "b-", 4, 10)
        first = await collect(consumer, 5)
        topic = f"pervasive/events/{ledger.chain_id}/{quotes.address}/{TYPE}"
        assert {t for t, _ in first} == {topic}
        events = [read_event(payload) for _, payload in first]
        assert [e.get_subject() for e in events] == ["s-1", "b-0", "b-1", "b-2", "b-3"]
        assert feed.refusals == {"schema": 1}

        # the mapper stops (at once: the publisher may still await b-3's PUBACK, which it
        # finishes with its cursor) and starts again: the next event only, nothing repeated
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        feed.close()
        await quotes.transact(signer, "quote", "s-2", 2)
        feed = new_feed()
        task = asyncio.create_task(feed.run(producer))
        [(_, payload)] = await collect(consumer, 1)
        assert read_event(payload).get_subject() == "s-2"
        assert await quiet(consumer, 0.5) == []

        # the same log over HTTP, resumable by Last-Event-ID
        store = EventStore(events_path(home))
        app = Starlette(routes=cloudevents_routes(store, poll_interval=0.02))
        async with await WebServer.start(app, WebSettings(port=0), access_log=False) as web:
            url = f"{web.url}/events/stream"
            frames = await read_cloudevents(url, 6)
            assert [f.data["subject"] for f in frames] == ["s-1", "b-0", "b-1", "b-2", "b-3", "s-2"]
            assert [f.data["id"] for f in frames] == [e.get_id() for e in events] + [
                read_event(payload).get_id()
            ]
            resumed = await read_cloudevents(url, 3, last_event_id=frames[2].id)
            assert [f.data["subject"] for f in resumed] == ["b-2", "b-3", "s-2"]
        store.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        feed.close()
