"""One suite for both DKG stores: the seed is kept once, messages in order, the phase."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pervasive.crosschain.dkg_store import DkgStore, MemoryDkgStore, SQLiteDkgStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DkgStore]:
    if request.param == "memory":
        yield MemoryDkgStore()
    else:
        yield SQLiteDkgStore(tmp_path / "dkg.sqlite")


def test_the_first_seed_is_the_one_kept(store: DkgStore) -> None:
    assert store.keep_seed("s", "m", b"first") == b"first"
    assert store.keep_seed("s", "m", b"second") == b"first"
    assert store.keep_seed("s", "other", b"second") == b"second"


def test_messages_come_back_in_order_per_member(store: DkgStore) -> None:
    store.record("s", "m", "out", b"deal")
    store.record("s", "m", "in", b"a")
    store.record("s", "n", "in", b"b")
    store.record("s", "m", "in", b"c")
    assert store.messages("s", "m") == [("out", b"deal"), ("in", b"a"), ("in", b"c")]
    assert store.messages("t", "m") == []


def test_the_last_phase_is_remembered(store: DkgStore) -> None:
    assert store.phase("s", "m") is None
    store.set_phase("s", "m", "COMPLAINING")
    store.set_phase("s", "m", "AGREEING")
    assert store.phase("s", "m") == "AGREEING"


def test_the_sqlite_store_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "dkg.sqlite"
    SQLiteDkgStore(path).keep_seed("s", "m", b"sealed")
    SQLiteDkgStore(path).record("s", "m", "out", b"deal")
    reopened = SQLiteDkgStore(path)
    assert reopened.keep_seed("s", "m", b"other") == b"sealed"
    assert reopened.messages("s", "m") == [("out", b"deal")]
