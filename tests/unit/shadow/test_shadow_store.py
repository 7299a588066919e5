"""SQLite shadow store: survives reopening, compare-and-swap writes, outbox in the same commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.shadow.core import OutboundMessage, ShadowCore, ShadowRecord
from pervasive.shadow.protocol import Operation, ShadowKey
from pervasive.shadow.store import ShadowStore, StaleShadowWrite
from pervasive.store import open_database

KEY = ShadowKey("lock-1", "door")


def updated(core: ShadowCore, record: ShadowRecord | None, body: bytes) -> ShadowRecord:
    outcome = core.handle(KEY, Operation.UPDATE, body, record=record, now=100.0)
    assert outcome.record is not None
    return outcome.record


def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "shadow.sqlite"
    store = ShadowStore.open(path)
    record = updated(ShadowCore(), None, b'{"state":{"desired":{"door":"open","n":[1,2]}}}')
    store.commit(record, previous=None)
    store.close()
    reopened = ShadowStore.open(path)
    assert reopened.load(KEY) == record
    assert reopened.load(ShadowKey("lock-1")) is None
    assert reopened.things() == [KEY]


def test_a_stale_write_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    store = ShadowStore.open(tmp_path / "shadow.sqlite")
    core = ShadowCore()
    first = updated(core, None, b'{"state":{"reported":{"a":1}}}')
    store.commit(first, previous=None)
    winner = updated(core, first, b'{"state":{"reported":{"a":2}}}')
    loser = updated(core, first, b'{"state":{"reported":{"a":3}}}')
    store.commit(winner, previous=first, messages=[OutboundMessage("t/1", b"win")])
    with pytest.raises(StaleShadowWrite):
        store.commit(loser, previous=first, messages=[OutboundMessage("t/2", b"lose")])
    with pytest.raises(StaleShadowWrite):
        store.commit(first, previous=None)
    assert store.load(KEY) == winner
    assert [m.payload for _, m in store.pending()] == [b"win"]


def test_deleted_shadow_keeps_its_version_and_blocks_stale_updates(tmp_path: Path) -> None:
    store = ShadowStore.open(tmp_path / "shadow.sqlite")
    core = ShadowCore()
    record = updated(core, None, b'{"state":{"reported":{"a":1}}}')
    store.commit(record, previous=None)
    deleted = core.handle(KEY, Operation.DELETE, b"", record=record, now=101.0).record
    assert deleted is not None
    store.commit(deleted, previous=record)
    stale_update = updated(core, record, b'{"state":{"reported":{"a":2}}}')
    with pytest.raises(StaleShadowWrite):
        store.commit(stale_update, previous=record)
    loaded = store.load(KEY)
    assert loaded is not None and not loaded.exists and loaded.version == 1
    assert store.things() == []


def test_outbox_holds_messages_until_marked_sent() -> None:
    store = ShadowStore.open(":memory:")
    record = updated(ShadowCore(), None, b'{"state":{"reported":{"a":1}}}')
    messages = [OutboundMessage("a", b"1"), OutboundMessage("b", b"2")]
    ids = store.commit(record, previous=None, messages=messages)
    assert [m for _, m in store.pending()] == messages
    store.mark_sent(ids[:1])
    assert [m for _, m in store.pending()] == messages[1:]


def test_a_store_can_share_the_callers_database(tmp_path: Path) -> None:
    db = open_database(tmp_path / "service.sqlite")
    store = ShadowStore(db)
    record = updated(ShadowCore(), None, b'{"state":{"reported":{"a":1}}}')
    store.commit(record, previous=None, messages=[OutboundMessage("t/accepted", b"ok")])
    assert db.execute("SELECT COUNT(*) FROM shadow_outbox").fetchone() == (1,)
    assert ShadowStore(db).load(KEY) == record  # a second view applies its schema harmlessly
    db.close()
