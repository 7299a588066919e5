"""The feed on the embedded chain: each event stored once, refusals counted, reorgs retracted."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quotes import SCHEMA_ID, TOO_EXPENSIVE, TYPE, deploy_quotes, quotes_mappings

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.contracts import Contract
from pervasive.interop import (
    RETRACTED_TYPE,
    EventStore,
    InteropFeed,
    ShadowEvents,
    read_event,
)
from pervasive.shadow import ShadowRecord
from pervasive.shadow.protocol import ShadowKey


@pytest.fixture
async def chain(tmp_settings: Settings) -> AsyncIterator[Ledger]:
    ledger = await open_ledger(tmp_settings, persist=False)
    try:
        yield ledger
    finally:
        await ledger.close()


@pytest.fixture
async def quotes(chain: Ledger) -> Contract:
    return await deploy_quotes(chain, chain.dev_signer(0))


@pytest.fixture
def feed(chain: Ledger, quotes: Contract, tmp_path: Path) -> InteropFeed:
    feed = InteropFeed(chain, tmp_path / "home")
    feed.follow(quotes.address, quotes_mappings(tmp_path / "spec"))
    return feed


async def _rpc(ledger: Ledger, method: str, params: list[Any]) -> Any:
    answer = await ledger.w3.provider.make_request(method, params)  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer["result"]


def subjects(store: EventStore) -> list[str | None]:
    return [e.subject for e in store.after(0) if e.type == TYPE]


async def test_events_are_stored_once_in_chain_order_and_refusals_do_not_block(
    chain: Ledger, quotes: Contract, feed: InteropFeed
) -> None:
    signer = chain.dev_signer(0)
    await quotes.transact(signer, "quote", "s-1", 40)
    await quotes.transact(signer, "quote", "s-bad", TOO_EXPENSIVE)
    await quotes.transact(signer, "quote_many", "b-", 3, 10)
    await quotes.transact(signer, "ignore", 5)
    assert await feed.poll() == 6
    assert await feed.poll() == 0  # nothing twice
    assert subjects(feed.store) == ["s-1", "b-0", "b-1", "b-2"]
    assert feed.refusals == {"schema": 1}
    assert feed.counters["mapped"] == 4 and feed.counters["unmapped"] == 1
    stored = feed.store.after(0)
    ids = [e.id for e in stored]
    assert ids == sorted(ids) and len(set(ids)) == 4
    event = read_event(stored[0].body)
    assert event.get_source() == f"eip155:{chain.chain_id}:{quotes.address}"
    assert event.get_dataschema() == SCHEMA_ID
    assert stored[0].topic == f"pervasive/events/{chain.chain_id}/{quotes.address}/{TYPE}"
    assert json.loads(feed.store.schema(SCHEMA_ID) or "{}")["$id"] == SCHEMA_ID
    feed.close()


async def test_a_restarted_feed_continues_without_repeating(
    chain: Ledger, quotes: Contract, tmp_path: Path
) -> None:
    signer = chain.dev_signer(0)
    await quotes.transact(signer, "quote", "s-1", 1)
    first = InteropFeed(chain, tmp_path / "home")
    first.follow(quotes.address, quotes_mappings(tmp_path / "spec"))
    assert await first.poll() == 1
    first.close()
    await quotes.transact(signer, "quote", "s-2", 2)
    second = InteropFeed(chain, tmp_path / "home")
    second.follow(quotes.address, quotes_mappings(tmp_path / "spec"))
    assert await second.poll() == 1
    assert subjects(second.store) == ["s-1", "s-2"]
    second.close()


async def test_a_reorganisation_retracts_and_the_new_branch_is_delivered(
    chain: Ledger, quotes: Contract, feed: InteropFeed
) -> None:
    signer = chain.dev_signer(0)
    await quotes.transact(signer, "quote", "kept", 1)
    snapshot = await _rpc(chain, "evm_snapshot", [])
    await quotes.transact(signer, "quote", "orphan", 2)
    assert await feed.poll() == 2
    await _rpc(chain, "evm_revert", [snapshot])
    await quotes.transact(chain.dev_signer(1), "quote", "winner", 3)
    await chain.mine(2)
    await feed.poll()
    stream = feed.store.after(0)
    assert [(e.type, e.subject) for e in stream] == [
        (TYPE, "kept"), (TYPE, "orphan"), (RETRACTED_TYPE, "orphan"), (TYPE, "winner"),
    ]  # fmt: skip
    orphan, retraction = stream[1], stream[2]
    assert orphan.retracted and orphan.retracted_by == retraction.seq
    retracted = read_event(retraction.body)
    assert retracted.get_data() == {"id": orphan.id, "type": TYPE, "reason": "reorganisation"}
    assert retracted.get_extension("retracts") == orphan.id
    assert retracted.get_source() == orphan.source
    assert feed.counters["retracted"] == 1
    feed.close()


def test_shadow_changes_become_events_once(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    events = ShadowEvents(store)
    record = ShadowRecord(ShadowKey("lock-1"), 4, True, time.time(), desired={"door": "open"})
    events.shadow_changed(record)
    events.shadow_changed(record)  # a listener called twice for one change
    events.shadow_changed(ShadowRecord(ShadowKey("lock-1", "door"), 1, False, time.time()))
    stored = store.after(0)
    assert [(e.source, e.id) for e in stored] == [
        ("urn:pervasive:shadow:lock-1", "classic/000000000004"),
        ("urn:pervasive:shadow:lock-1", "door/000000000001"),
    ]
    assert stored[0].topic == "pervasive/events/shadow/lock-1/dev.pervasive.shadow.changed"
    assert read_event(stored[0].body).get_data()["desired"] == {"door": "open"}
    assert events.counters == {"mapped": 2, "duplicate": 1}
    events.shadow_changed(ShadowRecord(ShadowKey("lock-1"), -1, True, time.time()))
    assert events.refusals == {"schema": 1} and len(store.after(0)) == 2
    store.close()
