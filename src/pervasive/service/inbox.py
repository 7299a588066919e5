"""The service's durable inbox: every accepted call, from acceptance to its receipt.

A pervasive-contract service applies each accepted reading or request exactly once
on-chain. The inbox is where that is decided (SQLite, ``<home>/services/<name>/
inbox.sqlite``):

- a reading is accepted in **one transaction** with its sensor's sequence number: the
  calls it makes (one per matching binding, calldata already encoded) and the new
  ``last_sequence`` are committed together, so a replay is refused after a restart
  and an accepted reading is never lost;
- a REST request or a trigger episode is accepted the same way, a trigger's by its
  episode key (accepting a key twice returns the first call);
- the sender (:mod:`pervasive.service.calls`) then moves each call
  ``pending`` → ``signed`` (the signed transaction stored **before** it is broadcast)
  → ``done`` or ``reverted``; see there why this is exactly once.

Example::

    inbox = Inbox.open(home / "services" / "shipping" / "inbox.sqlite")
    [call_id] = inbox.accept_reading("0xSensor", 7, [NewCall("mqtt", "container-1",
                                     "0xSensor:7:0", "confirm_delivery", calldata)])
    inbox.get(call_id).status            # CallStatus.PENDING
"""

from __future__ import annotations

import enum
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pervasive.errors import NotFound, ReplayedMessage
from pervasive.store import open_database, transaction

__all__ = ["SCHEMA", "CallStatus", "Inbox", "InboxCall", "NewCall"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS sequences (
    sensor TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    source TEXT NOT NULL,
    reference TEXT UNIQUE,
    function TEXT NOT NULL,
    calldata BLOB NOT NULL,
    status TEXT NOT NULL,
    nonce INTEGER,
    raw BLOB,
    transaction_hash TEXT,
    block_number INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    accepted_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS calls_open ON calls (status) WHERE status IN ('pending', 'signed');
"""

_SELECT = (
    "SELECT id, origin, source, reference, function, calldata, status, nonce, raw,"
    " transaction_hash, block_number, error, attempts FROM calls"
)


class CallStatus(enum.Enum):
    """Where a call stands."""

    PENDING = "pending"
    """Accepted; no transaction signed for it yet (or its transaction can never be mined)."""
    SIGNED = "signed"
    """Its signed transaction is stored; it may or may not have reached the node."""
    MINED = "mined"
    """Mined and succeeded, not yet ``confirmations`` blocks deep: a reorganisation may
    still drop it (then its stored bytes are sent again)."""
    DONE = "done"
    """Mined and succeeded: applied on-chain, once."""
    REVERTED = "reverted"
    """The contract refused it (at estimation or in its block): applied zero times."""


@dataclass(frozen=True)
class NewCall:
    """A call to accept: who asked, an optional unique reference, and the calldata."""

    origin: str
    """``mqtt``, ``rest`` or ``trigger``."""
    source: str
    """The device id, the certificate's CN, or the trigger's name."""
    reference: str | None
    """Unique per call when given (``<sensor>:<q>:<binding>``, the episode key)."""
    function: str
    calldata: bytes


@dataclass(frozen=True)
class InboxCall:
    """A call as the inbox holds it."""

    id: int
    origin: str
    source: str
    reference: str | None
    function: str
    calldata: bytes
    status: CallStatus
    nonce: int | None = None
    raw: bytes | None = None
    transaction_hash: str | None = None
    block_number: int | None = None
    error: str | None = None
    attempts: int = 0

    @property
    def finished(self) -> bool:
        """Whether the call is done or reverted (nothing more will happen to it)."""
        return self.status in (CallStatus.DONE, CallStatus.REVERTED)


def _row(row: tuple[object, ...]) -> InboxCall:
    (id_, origin, source, reference, function, calldata, status, nonce, raw, tx_hash,
     block, error, attempts) = row  # fmt: skip
    return InboxCall(
        id=int(id_),  # type: ignore[call-overload]
        origin=str(origin),
        source=str(source),
        reference=None if reference is None else str(reference),
        function=str(function),
        calldata=bytes(calldata),  # type: ignore[call-overload]
        status=CallStatus(status),
        nonce=None if nonce is None else int(nonce),  # type: ignore[call-overload]
        raw=None if raw is None else bytes(raw),  # type: ignore[call-overload]
        transaction_hash=None if tx_hash is None else str(tx_hash),
        block_number=None if block is None else int(block),  # type: ignore[call-overload]
        error=None if error is None else str(error),
        attempts=int(attempts),  # type: ignore[call-overload]
    )


class Inbox:
    """The SQLite inbox of one service."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path | str) -> Inbox:
        """Open (creating) the inbox at ``path``; ``":memory:"`` for tests.

        Example: ``Inbox.open(tmp_path / "inbox.sqlite")``.
        """
        return cls(open_database(path, schema=SCHEMA))

    # -- accepting ----------------------------------------------------------------------
    def last_sequence(self, sensor: str) -> int | None:
        """The highest sequence number accepted from ``sensor`` (its address)."""
        row = self._db.execute(
            "SELECT last_sequence FROM sequences WHERE sensor = ?", (sensor,)
        ).fetchone()
        return int(row[0]) if row else None

    def accept_reading(self, sensor: str, sequence: int, calls: Sequence[NewCall]) -> list[int]:
        """Record reading ``sequence`` of ``sensor`` and its calls in one transaction.

        Raises :class:`ReplayedMessage` (nothing written) when ``sequence`` is not above
        the last accepted one.

        Example: ``inbox.accept_reading(reading.sensor, reading.sequence, calls)``.
        """
        now = time.time()
        with transaction(self._db):
            last = self.last_sequence(sensor)
            if last is not None and sequence <= last:
                raise ReplayedMessage(
                    f"sensor {sensor} sent q={sequence}, already accepted up to {last}"
                )
            self._db.execute(
                "INSERT INTO sequences (sensor, last_sequence) VALUES (?, ?) ON CONFLICT(sensor)"
                " DO UPDATE SET last_sequence = excluded.last_sequence",
                (sensor, sequence),
            )
            return [self._insert(call, now) for call in calls]

    def accept(self, call: NewCall) -> int:
        """Record one call; a call whose ``reference`` is known returns the first one's id.

        Example: ``call_id = inbox.accept(NewCall("rest", "lock-7", None, "open", data))``.
        """
        now = time.time()
        with transaction(self._db):
            if call.reference is not None:
                row = self._db.execute(
                    "SELECT id FROM calls WHERE reference = ?", (call.reference,)
                ).fetchone()
                if row is not None:
                    return int(row[0])
            return self._insert(call, now)

    def _insert(self, call: NewCall, now: float) -> int:
        cursor = self._db.execute(
            "INSERT INTO calls (origin, source, reference, function, calldata, status,"
            " accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (call.origin, call.source, call.reference, call.function, call.calldata,
             CallStatus.PENDING.value, now),
        )  # fmt: skip
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    # -- reading back -------------------------------------------------------------------
    def get(self, call_id: int) -> InboxCall:
        """The call ``call_id``; :class:`NotFound` when there is none."""
        row = self._db.execute(_SELECT + " WHERE id = ?", (call_id,)).fetchone()
        if row is None:
            raise NotFound(f"the inbox has no call {call_id}")
        return _row(row)

    def open_calls(self) -> list[InboxCall]:
        """Calls not finished yet (``pending`` or ``signed``), oldest first."""
        rows = self._db.execute(
            _SELECT + " WHERE status IN ('pending', 'signed') ORDER BY id"
        ).fetchall()
        return [_row(r) for r in rows]

    def calls(self, status: CallStatus | None = None) -> list[InboxCall]:
        """Every call (with ``status`` when given), oldest first."""
        if status is None:
            rows = self._db.execute(_SELECT + " ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                _SELECT + " WHERE status = ? ORDER BY id", (status.value,)
            ).fetchall()
        return [_row(r) for r in rows]

    def counts(self) -> Counter[str]:
        """How many calls are in each status."""
        rows = self._db.execute("SELECT status, count(*) FROM calls GROUP BY status").fetchall()
        return Counter({str(s): int(n) for s, n in rows})

    # -- the sender's steps -------------------------------------------------------------
    def mark_signed(self, call_id: int, nonce: int, raw: bytes, transaction_hash: str) -> None:
        """Store the signed transaction of a pending call (before it is broadcast)."""
        self._update(
            "UPDATE calls SET status = 'signed', nonce = ?, raw = ?, transaction_hash = ?"
            " WHERE id = ? AND status = 'pending'",
            (nonce, raw, transaction_hash, call_id),
        )

    def mark_done(self, call_id: int, transaction_hash: str, block_number: int) -> None:
        """The call's transaction is mined and succeeded."""
        self._update(
            "UPDATE calls SET status = 'done', transaction_hash = ?, block_number = ?,"
            " error = NULL, finished_at = ? WHERE id = ?",
            (transaction_hash, block_number, time.time(), call_id),
        )

    def mark_mined(self, call_id: int, transaction_hash: str, block_number: int) -> None:
        """The call's transaction is mined and succeeded; not deep enough to be done yet."""
        self._update(
            "UPDATE calls SET status = 'mined', transaction_hash = ?, block_number = ?,"
            " error = NULL WHERE id = ?",
            (transaction_hash, block_number, call_id),
        )

    def mined_calls(self) -> list[InboxCall]:
        """Calls mined but not yet final, oldest first."""
        return [
            _row(r)
            for r in self._db.execute(_SELECT + " WHERE status = 'mined' ORDER BY id").fetchall()
        ]

    def reopen(self, call_id: int, error: str) -> None:
        """A mined call a reorganisation dropped: back to ``signed`` (its bytes sent again)."""
        self._update(
            "UPDATE calls SET status = 'signed', block_number = NULL, error = ?,"
            " attempts = attempts + 1 WHERE id = ? AND status = 'mined'",
            (error[:500], call_id),
        )

    def mark_reverted(self, call_id: int, reason: str, transaction_hash: str | None) -> None:
        """The contract refused the call (``transaction_hash``: mined and reverted)."""
        self._update(
            "UPDATE calls SET status = 'reverted', error = ?,"
            " transaction_hash = coalesce(?, transaction_hash), finished_at = ? WHERE id = ?",
            (reason[:500], transaction_hash, time.time(), call_id),
        )

    def reset(self, call_id: int, error: str) -> None:
        """A call whose nonce another transaction took: back to pending, re-signed next."""
        self._update(
            "UPDATE calls SET status = 'pending', nonce = NULL, raw = NULL,"
            " transaction_hash = NULL, block_number = NULL, error = ?, attempts = attempts + 1"
            " WHERE id = ? AND status IN ('signed', 'mined')",
            (error[:500], call_id),
        )

    def note_failure(self, call_id: int, error: str) -> None:
        """An attempt failed (node down, no receipt yet); the call keeps its status."""
        self._update(
            "UPDATE calls SET attempts = attempts + 1, error = ? WHERE id = ?",
            (error[:500], call_id),
        )

    def _update(self, statement: str, args: tuple[object, ...]) -> None:
        with transaction(self._db):
            self._db.execute(statement, args)

    def close(self) -> None:
        """Close the database."""
        self._db.close()
