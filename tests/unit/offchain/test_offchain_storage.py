"""QoS window retention and the crash journal (one suite for both journal implementations)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from offchain_harness import make_spec, windows_for

from pervasive.domain import QoS
from pervasive.errors import InvalidInput, NotFound
from pervasive.offchain import (
    Agreed,
    Dispute,
    DisputeEvidence,
    DisputeKind,
    JournalEntry,
    MemoryRoundJournal,
    RoundJournal,
    RoundStatus,
    SQLiteRoundJournal,
)
from pervasive.offchain.qos import WindowStatus, WindowStore, verify_window
from pervasive.store import open_database


def _agreed(t: int, result: bytes | None = b"1") -> Agreed:
    return Agreed(t, result, bytes(32), (), ())


@pytest.mark.parametrize(
    ("qos", "after_agree", "after_publish"),
    [
        (QoS.NO_PROOF, [1], [1]),
        (QoS.OFFCHAIN_PROOF, [0, 1, 2], [0, 1, 2]),
        (QoS.ONCHAIN_PROOF, [0, 1], [1]),
    ],
)
def test_retention_rules(
    tmp_path: Path, qos: QoS, after_agree: list[int], after_publish: list[int]
) -> None:
    spec = make_spec(2, qos=qos)
    store = WindowStore(tmp_path / "w.sqlite", spec)
    windows = windows_for(spec, 3)
    for w in windows:
        store.put(w)
    store.record(_agreed(0))
    store.record(Dispute(1, DisputeKind.RESULT_MISMATCH, DisputeEvidence("x")))
    store.record(_agreed(2, None))  # null: nothing will be published
    assert store.held() == after_agree
    store.mark_published(0)
    assert store.held() == after_publish
    assert store.status(1) is WindowStatus.DISPUTED
    for t in after_publish:
        assert verify_window(store.serve(t), windows[t].hash) == windows[t]
    with pytest.raises(NotFound):
        store.serve(7)


def test_disputed_window_survives_later_agreement_and_reopen(tmp_path: Path) -> None:
    spec = make_spec(2, qos=QoS.NO_PROOF)
    [w] = windows_for(spec, 1)
    store = WindowStore(tmp_path / "w.sqlite", spec)
    store.put(w)
    store.mark_disputed(0)
    store.mark_agreed(0)
    reopened = WindowStore(tmp_path / "w.sqlite", spec)
    assert reopened.status(0) is WindowStatus.DISPUTED and reopened.serve(0) == w


def test_verify_window_rejects_other_hash() -> None:
    [w] = windows_for(make_spec(2), 1)
    with pytest.raises(InvalidInput):
        verify_window(w, bytes(32))


def _memory(tmp_path: Path) -> Callable[[], RoundJournal]:
    journal = MemoryRoundJournal()
    return lambda: journal


def _sqlite(tmp_path: Path) -> Callable[[], RoundJournal]:
    return lambda: SQLiteRoundJournal(tmp_path / "j.sqlite", "0xA", "0xN")


def _shared_connection(tmp_path: Path) -> Callable[[], RoundJournal]:
    db = open_database(":memory:")
    return lambda: SQLiteRoundJournal(db, "0xA", "0xN")


@pytest.fixture(
    params=[_memory, _sqlite, _shared_connection], ids=["memory", "sqlite", "connection"]
)
def journal_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RoundJournal]:
    factory: Callable[[Path], Callable[[], RoundJournal]] = request.param
    return factory(tmp_path)


def test_journal_first_commitment_wins(journal_factory: Callable[[], RoundJournal]) -> None:
    journal = journal_factory()
    first = journal.commit(JournalEntry(3, b"\x01" * 32, b"r", b"\x02" * 32))
    second = journal_factory().commit(JournalEntry(3, b"\x09" * 32, None, b"\x08" * 32))
    assert second == first and second.secret == b"\x01" * 32
    assert journal_factory().load(4) is None


def test_journal_submission_once(journal_factory: Callable[[], RoundJournal]) -> None:
    journal = journal_factory()
    journal.commit(JournalEntry(1, b"\x01" * 32, b"r", b"\x02" * 32))
    journal.close(1, RoundStatus.AGREED)
    assert [e.t for e in journal.unsubmitted_agreed()] == [1]
    assert journal.mark_submitted(1) is True
    assert journal_factory().mark_submitted(1) is False
    assert journal_factory().unsubmitted_agreed() == []
    loaded = journal_factory().load(1)
    assert loaded is not None and loaded.status is RoundStatus.AGREED and loaded.submitted


def test_journal_null_result_and_statuses(journal_factory: Callable[[], RoundJournal]) -> None:
    journal = journal_factory()
    journal.commit(JournalEntry(2, b"\x01" * 32, None, b"\x02" * 32))
    journal.close(2, RoundStatus.AGREED)
    loaded = journal_factory().load(2)
    assert loaded is not None and loaded.result is None
    assert journal.unsubmitted_agreed() == []
    journal.close(5, RoundStatus.DISPUTED)  # a window closed by a notice before it started
    assert journal_factory().load(5).status is RoundStatus.DISPUTED  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        journal.close(5, RoundStatus.OPEN)


def test_journal_epochs_grow(journal_factory: Callable[[], RoundJournal]) -> None:
    epochs = [journal_factory().next_epoch() for _ in range(3)]
    assert epochs == sorted(set(epochs))


def test_two_agreements_share_one_file(tmp_path: Path) -> None:
    a = SQLiteRoundJournal(tmp_path / "j.sqlite", "0xA", "0xN")
    b = SQLiteRoundJournal(tmp_path / "j.sqlite", "0xB", "0xN")
    a.commit(JournalEntry(0, b"\x01" * 32, b"a", b"\x02" * 32))
    assert b.load(0) is None
