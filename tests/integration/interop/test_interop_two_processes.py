"""One data directory, one event log: two feeds in two processes, each publishing its own."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quotes import deploy_quotes, quotes_mappings
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

CHILD = Path(__file__).resolve().parent / "feed_child.py"
ROUNDS, SIZE = 3, 10


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    settings = Settings(home=tmp_path / "home", backend="anvil", broker="mosquitto")
    async with Platform(settings, password="interop-test") as platform:
        yield platform


async def test_two_processes_write_one_log_and_each_publishes_only_its_own(
    platform: Platform, tmp_path: Path
) -> None:
    ledger = await platform.ledger()
    broker = await platform.broker()
    signer = ledger.dev_signer(0)
    first = await deploy_quotes(ledger, signer)
    second = await deploy_quotes(ledger, signer)
    home, spec = platform.settings.home, tmp_path / "spec"
    mappings = quotes_mappings(spec)
    consumer_options = platform.client_options("svc:events.test")
    a_options = platform.client_options("svc:service.a")
    b = platform.client_options("svc:service.b").credentials
    await broker.settle()  # the new identities are admitted before anything is published

    assert ledger.url is not None
    child = subprocess.Popen([
        sys.executable, str(CHILD), ledger.url, second.address, str(home), str(spec),
        "service-b", str(broker.port), str(b.ca_file), str(b.cert_file), str(b.key_file),
    ])  # fmt: skip
    feed = InteropFeed(ledger, home, name="service-a", poll_interval=0.02)
    feed.follow(first.address, mappings, start_block=0)
    try:
        async with MqttClient(consumer_options) as consumer, MqttClient(a_options) as producer:
            await consumer.subscribe("pervasive/events/#", qos=1)
            task = asyncio.create_task(feed.run(producer))
            for round_ in range(ROUNDS):
                await first.transact(signer, "quote_many", f"a{round_}-", SIZE, 1)
                await second.transact(signer, "quote_many", f"b{round_}-", SIZE, 1)
            received: list[tuple[str, bytes]] = []

            async def read(count: int) -> None:
                async for message in consumer.messages():
                    received.append((message.topic, message.payload))
                    if len(received) >= count:
                        return

            await asyncio.wait_for(read(2 * ROUNDS * SIZE), 30)
            with contextlib.suppress(TimeoutError):  # nothing more: each event once
                await asyncio.wait_for(read(2 * ROUNDS * SIZE + 1), 0.5)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        child.kill()
        child.wait(timeout=10)
        feed.close()

    events = [(topic, read_event(payload)) for topic, payload in received]
    assert len({(e.get_source(), e.get_id()) for _, e in events}) == len(events)
    by_contract: dict[str, list[str | None]] = {first.address: [], second.address: []}
    for topic, event in events:
        by_contract[topic.split("/")[3]].append(event.get_subject())
    assert by_contract == {
        first.address: [f"a{r}-{i}" for r in range(ROUNDS) for i in range(SIZE)],
        second.address: [f"b{r}-{i}" for r in range(ROUNDS) for i in range(SIZE)],
    }  # each publisher in its own order
    assert feed.counters["published"] == ROUNDS * SIZE  # its own events only

    store = EventStore(events_path(home))
    stored = store.after(0, limit=1000)
    assert Counter(e.origin for e in stored) == {"service-a": 30, "service-b": 30}
    assert store.cursor("service-a:mqtt") == max(e.seq for e in stored if e.origin == "service-a")
    assert store.cursor("service-b:mqtt") == max(e.seq for e in stored if e.origin == "service-b")
    # the web stream shows every origin, each event once
    app = Starlette(routes=cloudevents_routes(store, poll_interval=0.02))
    async with await WebServer.start(app, WebSettings(port=0), access_log=False) as web:
        frames = await read_cloudevents(f"{web.url}/events/stream", len(stored))
    assert [int(f.id) for f in frames] == [e.seq for e in stored]
    assert sorted(f.data["id"] for f in frames) == sorted(e.get_id() for _, e in events)
    store.close()
