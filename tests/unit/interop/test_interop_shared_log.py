"""One event log per data directory: several feeds write it, none blocks its event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quotes import TYPE, deploy_quotes, quotes_mappings

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.interop import EventStore, InteropFeed, ShadowEvents, events_path
from pervasive.shadow import ShadowRecord
from pervasive.shadow.protocol import ShadowKey
from pervasive.store import open_database, transaction


@pytest.fixture
async def chain(tmp_settings: Settings) -> AsyncIterator[Ledger]:
    ledger = await open_ledger(tmp_settings, persist=False)
    try:
        yield ledger
    finally:
        await ledger.close()


async def test_two_feeds_on_two_connections_append_every_event_once_under_their_origin(
    chain: Ledger, tmp_path: Path
) -> None:
    signer = chain.dev_signer(0)
    first = await deploy_quotes(chain, signer)
    second = await deploy_quotes(chain, signer)
    home, spec = tmp_path / "home", tmp_path / "spec"
    feeds = {
        "service-a": InteropFeed(chain, home, name="service-a", poll_interval=0.01),
        "service-b": InteropFeed(chain, home, name="service-b", poll_interval=0.01),
    }
    feeds["service-a"].follow(first.address, quotes_mappings(spec), start_block=0)
    feeds["service-b"].follow(second.address, quotes_mappings(spec), start_block=0)
    for round_ in range(3):
        await first.transact(signer, "quote_many", f"a{round_}-", 20, 1)
        await second.transact(signer, "quote_many", f"b{round_}-", 20, 1)
    reader = EventStore(events_path(home))
    seen: list[int] = []

    async def stream() -> None:  # a reader walking the log while both write it
        while True:
            seen.extend(e.seq for e in reader.after(seen[-1] if seen else 0))
            await asyncio.sleep(0.002)

    streaming = asyncio.create_task(stream())
    # both in one event loop: each holds its write transaction across awaits (headers)
    await asyncio.gather(*(feed.poll() for feed in feeds.values()))
    await asyncio.sleep(0.05)
    streaming.cancel()
    stored = reader.after(0, limit=1000)
    assert seen == [e.seq for e in stored]  # the reader saw each event once, in order
    subjects = {
        origin: [e.subject for e in reader.after(0, limit=1000, origin=origin)] for origin in feeds
    }
    assert subjects == {
        "service-a": [f"a{r}-{i}" for r in range(3) for i in range(20)],
        "service-b": [f"b{r}-{i}" for r in range(3) for i in range(20)],
    }
    assert len({(e.source, e.id) for e in stored}) == 120 and {e.type for e in stored} == {TYPE}
    for feed in feeds.values():
        assert await feed.poll() == 0  # nothing twice
        feed.close()
    reader.close()


async def test_a_feed_waits_for_another_writers_lock_without_blocking_its_loop(
    chain: Ledger, tmp_path: Path
) -> None:
    signer = chain.dev_signer(0)
    quotes = await deploy_quotes(chain, signer)
    await quotes.transact(signer, "quote", "s-1", 1)
    home = tmp_path / "home"
    feed = InteropFeed(chain, home, name="service-a")
    feed.follow(quotes.address, quotes_mappings(tmp_path / "spec"))
    shadows = ShadowEvents(feed.store, origin="platform")
    other = open_database(events_path(home))  # another writer (process) of the same file
    with transaction(other):  # holds the write lock across awaits, as a follower does
        polling = asyncio.create_task(feed.poll())
        started = time.monotonic()
        await asyncio.sleep(0.2)  # returns on time: the loop is not blocked
        assert time.monotonic() - started < 1.0
        assert not polling.done()
        assert shadows.flush() is True  # nothing pending
        shadows.shadow_changed(ShadowRecord(ShadowKey("lock-1"), 1, True, time.time()))
        assert shadows.counters["mapped"] == 0  # waits in memory, retried soon
    assert await asyncio.wait_for(polling, 10) == 1
    await asyncio.sleep(0.05)
    assert shadows.counters["mapped"] == 1
    assert feed.counters["lock_waits"] > 0 and feed.counters["mapped"] == 1
    assert sorted((e.origin, e.subject) for e in feed.store.after(0)) == [
        ("platform", "lock-1"),
        ("service-a", "s-1"),
    ]
    other.close()
    feed.close()
