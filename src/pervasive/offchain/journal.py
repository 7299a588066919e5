"""The protocol's crash journal: what a node must remember to never commit twice.

A node that restarts in the middle of window ``t`` must reuse the secret, result and
window hash it already committed to (a second, different commitment would be
equivocation), must not re-open a window it closed, and must not send the update
transaction of ``t`` a second time. :class:`RoundJournal` is the port;
:class:`SQLiteRoundJournal` (through :func:`pervasive.store.open_database`) and
:class:`MemoryRoundJournal` implement it, and one test suite runs against both.

The journal holds secrets ``S_{t,i}`` before they are revealed: it lives in the
node's private data directory, like its keystore.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from pervasive.committee import MemoryEpochs, SQLiteEpochs
from pervasive.errors import InvalidInput
from pervasive.store import attach, transaction

__all__ = [
    "JournalEntry",
    "MemoryRoundJournal",
    "RoundJournal",
    "RoundStatus",
    "SQLiteRoundJournal",
]


class RoundStatus(enum.StrEnum):
    """Where a window stands in the journal (the value is what the SQLite table stores)."""

    OPEN = "open"
    """Committed to (or not yet): the round may still run."""
    AGREED = "agreed"
    DISPUTED = "disputed"


@dataclass(frozen=True)
class JournalEntry:
    """One window as the node committed to it."""

    t: int
    secret: bytes
    result: bytes | None
    window_hash: bytes
    status: RoundStatus = RoundStatus.OPEN
    submitted: bool = False
    proofs_hash: bytes = bytes(32)
    """For an agreed window: ``keccak256`` of the agreed commitments (the update's proofsHash)."""
    data_hash: bytes = bytes(32)
    """For an agreed window: the update's dataHash (zero unless on-chain proof of storage)."""


class RoundJournal(Protocol):
    """Durable per-window state of one node in one agreement."""

    def load(self, t: int) -> JournalEntry | None:
        """The entry of window ``t``, or ``None`` if the node never committed to it."""

    def commit(self, entry: JournalEntry) -> JournalEntry:
        """Store ``entry`` unless one exists for its window; return the stored one (first wins)."""

    def close(
        self,
        t: int,
        status: RoundStatus,
        *,
        proofs_hash: bytes | None = None,
        data_hash: bytes | None = None,
    ) -> None:
        """Mark window ``t`` agreed or disputed (an agreement keeps the update's two hashes).

        :class:`InvalidInput` for :attr:`RoundStatus.OPEN`: a window is never reopened.
        """

    def mark_submitted(self, t: int) -> bool:
        """Record that the update of ``t`` was handed out; ``True`` only the first time."""

    def next_epoch(self) -> int:
        """A number that grows with every (re)start of the node, so its messages never repeat."""

    def unsubmitted_agreed(self) -> list[JournalEntry]:
        """Agreed windows with a non-null result whose update was not handed out yet."""


def _check_closing(status: RoundStatus) -> None:
    if RoundStatus(status) is RoundStatus.OPEN:
        raise InvalidInput("a window is closed as agreed or disputed, never reopened")


class MemoryRoundJournal:
    """In-memory journal (tests, and nodes that accept losing state on a crash).

    Example: ``journal = MemoryRoundJournal()``.
    """

    def __init__(self) -> None:
        self._entries: dict[int, JournalEntry] = {}
        self._submitted: set[int] = set()
        self._epochs = MemoryEpochs()

    def load(self, t: int) -> JournalEntry | None:
        """See :meth:`RoundJournal.load`."""
        entry = self._entries.get(t)
        return None if entry is None else replace(entry, submitted=t in self._submitted)

    def commit(self, entry: JournalEntry) -> JournalEntry:
        """See :meth:`RoundJournal.commit`."""
        self._entries.setdefault(entry.t, entry)
        stored = self.load(entry.t)
        assert stored is not None
        return stored

    def close(
        self,
        t: int,
        status: RoundStatus,
        *,
        proofs_hash: bytes | None = None,
        data_hash: bytes | None = None,
    ) -> None:
        """See :meth:`RoundJournal.close`."""
        _check_closing(status)
        entry = self._entries.get(t) or JournalEntry(t, bytes(32), None, bytes(32))
        self._entries[t] = replace(
            entry,
            status=status,
            proofs_hash=entry.proofs_hash if proofs_hash is None else proofs_hash,
            data_hash=entry.data_hash if data_hash is None else data_hash,
        )

    def mark_submitted(self, t: int) -> bool:
        """See :meth:`RoundJournal.mark_submitted`."""
        first = t not in self._submitted
        self._submitted.add(t)
        return first

    def next_epoch(self) -> int:
        """See :meth:`RoundJournal.next_epoch`."""
        return self._epochs.next("", "")

    def unsubmitted_agreed(self) -> list[JournalEntry]:
        """See :meth:`RoundJournal.unsubmitted_agreed`."""
        return [
            e
            for t, e in sorted(self._entries.items())
            if e.status is RoundStatus.AGREED and e.result is not None and t not in self._submitted
        ]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS offchain_rounds (
    agreement TEXT NOT NULL,
    node TEXT NOT NULL,
    t INTEGER NOT NULL,
    secret BLOB NOT NULL,
    present INTEGER NOT NULL,
    result BLOB NOT NULL,
    window_hash BLOB NOT NULL,
    status TEXT NOT NULL,
    submitted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agreement, node, t)
);
CREATE TABLE IF NOT EXISTS offchain_agreed (
    agreement TEXT NOT NULL,
    node TEXT NOT NULL,
    t INTEGER NOT NULL,
    proofs_hash BLOB NOT NULL,
    data_hash BLOB NOT NULL,
    PRIMARY KEY (agreement, node, t)
);
"""


class SQLiteRoundJournal:
    """Journal in a SQLite file (``offchain_rounds`` table), shared safely by many agreements.

    Example: ``SQLiteRoundJournal(settings.path("node.sqlite"), spec.address, key.address)``.
    """

    def __init__(self, path: Path | str | sqlite3.Connection, agreement: str, node: str) -> None:
        self._db = attach(path, _SCHEMA)
        self._key = (agreement, node)
        self._epochs = SQLiteEpochs(self._db)

    def load(self, t: int) -> JournalEntry | None:
        """See :meth:`RoundJournal.load`."""
        row = self._db.execute(
            "SELECT r.secret, r.present, r.result, r.window_hash, r.status, r.submitted, "
            "a.proofs_hash, a.data_hash FROM offchain_rounds r LEFT JOIN offchain_agreed a "
            "ON a.agreement = r.agreement AND a.node = r.node AND a.t = r.t "
            "WHERE r.agreement = ? AND r.node = ? AND r.t = ?",
            (*self._key, t),
        ).fetchone()
        if row is None:
            return None
        secret, present, result, window_hash, status, submitted, proofs, data = row
        return JournalEntry(
            t,
            secret,
            result if present else None,
            window_hash,
            RoundStatus(status),
            bool(submitted),
            bytes(32) if proofs is None else proofs,
            bytes(32) if data is None else data,
        )

    def commit(self, entry: JournalEntry) -> JournalEntry:
        """See :meth:`RoundJournal.commit`."""
        self._db.execute(
            "INSERT OR IGNORE INTO offchain_rounds "
            "(agreement, node, t, secret, present, result, window_hash, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *self._key,
                entry.t,
                entry.secret,
                int(entry.result is not None),
                entry.result or b"",
                entry.window_hash,
                RoundStatus(entry.status).value,
            ),
        )
        stored = self.load(entry.t)
        assert stored is not None
        return stored

    def close(
        self,
        t: int,
        status: RoundStatus,
        *,
        proofs_hash: bytes | None = None,
        data_hash: bytes | None = None,
    ) -> None:
        """See :meth:`RoundJournal.close` (one transaction: the status and the hashes)."""
        _check_closing(status)
        statements: list[tuple[str, tuple[object, ...]]] = [
            (
                "INSERT INTO offchain_rounds "
                "(agreement, node, t, secret, present, result, window_hash, status) "
                "VALUES (?, ?, ?, ?, 0, x'', ?, ?) "
                "ON CONFLICT (agreement, node, t) DO UPDATE SET status = excluded.status",
                (*self._key, t, bytes(32), bytes(32), status.value),
            )
        ]
        if proofs_hash is not None or data_hash is not None:
            statements.append(
                (
                    "INSERT OR REPLACE INTO offchain_agreed "
                    "(agreement, node, t, proofs_hash, data_hash) VALUES (?, ?, ?, ?, ?)",
                    (*self._key, t, proofs_hash or bytes(32), data_hash or bytes(32)),
                )
            )
        if len(statements) == 1:
            self._db.execute(*statements[0])
            return
        with transaction(self._db):
            for sql, parameters in statements:
                self._db.execute(sql, parameters)

    def mark_submitted(self, t: int) -> bool:
        """See :meth:`RoundJournal.mark_submitted`."""
        cursor = self._db.execute(
            "UPDATE offchain_rounds SET submitted = 1 "
            "WHERE agreement = ? AND node = ? AND t = ? AND submitted = 0",
            (*self._key, t),
        )
        if cursor.rowcount == 1:
            return True
        if self.load(t) is None:
            self.close(t, RoundStatus.OPEN)
            return self.mark_submitted(t)
        return False

    def next_epoch(self) -> int:
        """See :meth:`RoundJournal.next_epoch`."""
        return self._epochs.next(*self._key)

    def unsubmitted_agreed(self) -> list[JournalEntry]:
        """See :meth:`RoundJournal.unsubmitted_agreed`."""
        rows = self._db.execute(
            "SELECT t FROM offchain_rounds WHERE agreement = ? AND node = ? AND status = ? "
            "AND present = 1 AND submitted = 0 ORDER BY t",
            (*self._key, RoundStatus.AGREED.value),
        ).fetchall()
        entries = [self.load(int(t)) for (t,) in rows]
        return [e for e in entries if e is not None]
