"""The durable outbox: messages accepted for publishing, kept until the broker saved them.

A durable client writes every QoS 1 publish here first (one SQLite row, committed
before ``publish`` returns; :meth:`Outbox.append_many` commits a batch in one
transaction) and a single drain task sends rows in sequence order, keeping up to
``window`` of them in flight. A crash, a broker restart or a lost network therefore
loses nothing; a row whose PUBACK was lost is sent again after reconnecting (with a
window, the rows in flight behind it too), so consumers must tolerate redelivery
(:class:`~pervasive.messaging.dedupe.Deduplicator`, or the sequence numbers of
paper 002).

A PUBACK does not mean the broker saved the message: mosquitto acknowledges at once
and writes its persistence file every ``autosave_interval`` seconds, so a broker
killed in between forgets what it acknowledged (issue 11, item 6). The outbox
therefore *retains* an acknowledged row for ``retention`` seconds (the client sets
it longer than the broker's save interval) and forgets it only once the broker was
heard from ``retention`` seconds after the PUBACK, i.e. it ran long enough to save.
A connection that drops first (which is what a broker crash looks like) makes the
next drain send every retained row again, oldest first. ``retention=0`` forgets a
row at its PUBACK (a broker that saves before acknowledging).

Example::

    outbox = Outbox.open(settings.path("outbox", "lock-7.sqlite"), retention=7.0)
    entry = outbox.append("pervasive/devices/lock-7/telemetry", b"{}")
    outbox.acknowledged([entry.sequence]); len(outbox) == 0; outbox.retained == 1
    outbox.resend_retained() == 1         # the connection dropped: send it again
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.errors import InternalError
from pervasive.store import open_database, transaction

__all__ = ["SCHEMA", "Outbox", "OutboxEntry", "drain_outbox"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    accepted_at REAL NOT NULL,
    acknowledged_at REAL
);
"""
_ADD_ACKNOWLEDGED_AT = "ALTER TABLE outbox ADD COLUMN acknowledged_at REAL"
"""Outboxes written before acknowledged rows were retained lack the column."""
_MARK_ACKNOWLEDGED = "UPDATE outbox SET acknowledged_at = ? WHERE sequence BETWEEN ? AND ?"
_RETIRE_TICK = 0.5
"""Seconds between attempts to forget retained rows while the broker stays silent."""


@dataclass(frozen=True)
class OutboxEntry:
    """One message waiting for its PUBACK. ``sequence`` grows and is never reused."""

    sequence: int
    topic: str
    payload: bytes = field(repr=False)
    qos: int = 1
    retain: bool = False


class Outbox:
    """A FIFO of messages in SQLite, shared by ``publish`` (append) and the drain (remove).

    A row is *waiting* until its PUBACK, then *retained* for ``retention`` seconds
    (see the module docstring), then forgotten.
    """

    def __init__(self, connection: sqlite3.Connection, *, retention: float = 0.0) -> None:
        if retention < 0:
            raise InternalError(f"outbox retention must be 0 or more seconds, got {retention}")
        self._db = connection
        self.retention = retention
        """Seconds an acknowledged row is kept, and resent after a lost connection."""

    @classmethod
    def open(cls, path: Path | str, *, retention: float = 0.0) -> Outbox:
        """Open (creating) the outbox at ``path``; ``":memory:"`` for a throwaway one.

        Example: ``Outbox.open(tmp_path / "outbox.sqlite", retention=7.0)``.
        """
        db = open_database(path, schema=SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
        if "acknowledged_at" not in columns:
            db.execute(_ADD_ACKNOWLEDGED_AT)
        return cls(db, retention=retention)

    def append(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> OutboxEntry:
        """Store a message durably and return it with its sequence number.

        Example: ``outbox.append("pervasive/devices/a/t", b"1").sequence`` is 1 on a new outbox.
        """
        cursor = self._db.execute(
            "INSERT INTO outbox (topic, payload, qos, retain, accepted_at) VALUES (?, ?, ?, ?, ?)",
            (topic, bytes(payload), qos, int(retain), time.time()),
        )
        sequence = cursor.lastrowid
        if sequence is None:
            raise InternalError("SQLite returned no row id for an outbox insert")
        return OutboxEntry(sequence, topic, bytes(payload), qos, retain)

    def append_many(
        self, messages: Iterable[tuple[str, bytes]], *, qos: int = 1, retain: bool = False
    ) -> list[OutboxEntry]:
        """Store several messages in one transaction: all of them durable, or none.

        Example: ``outbox.append_many([("pervasive/devices/a/t", b"1"), ("t/b", b"2")])``.
        """
        now = time.time()
        rows = [(topic, bytes(payload)) for topic, payload in messages]
        entries: list[OutboxEntry] = []
        with transaction(self._db):
            for topic, payload in rows:
                cursor = self._db.execute(
                    "INSERT INTO outbox (topic, payload, qos, retain, accepted_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (topic, payload, qos, int(retain), now),
                )
                if cursor.lastrowid is None:
                    raise InternalError("SQLite returned no row id for an outbox insert")
                entries.append(OutboxEntry(cursor.lastrowid, topic, payload, qos, retain))
        return entries

    def head(self) -> OutboxEntry | None:
        """The oldest message not yet acknowledged, or None when the outbox is empty.

        Example: ``outbox.head().sequence``.
        """
        entries = self.peek(1)
        return entries[0] if entries else None

    def peek(self, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        """Up to ``limit`` oldest waiting messages with a sequence number above ``after``.

        Example: ``[e.sequence for e in outbox.peek(10)]``.
        """
        rows = self._db.execute(
            "SELECT sequence, topic, payload, qos, retain FROM outbox WHERE sequence > ? "
            "AND acknowledged_at IS NULL ORDER BY sequence LIMIT ?",
            (after, limit),
        ).fetchall()
        return [OutboxEntry(s, t, bytes(p), q, bool(r)) for s, t, p, q, r in rows]

    def remove(self, sequence: int) -> None:
        """Forget a message the broker acknowledged.

        Example: ``outbox.remove(entry.sequence)``.
        """
        self._db.execute("DELETE FROM outbox WHERE sequence = ?", (sequence,))

    def remove_many(self, sequences: Iterable[int]) -> None:
        """Forget several acknowledged messages in one transaction.

        Example: ``outbox.remove_many([1, 2, 3])``.
        """
        with transaction(self._db):
            self._db.executemany("DELETE FROM outbox WHERE sequence = ?", [(s,) for s in sequences])

    def acknowledged(self, sequences: Iterable[int], *, at: float | None = None) -> None:
        """Record the broker's PUBACK of ``sequences``: retain them, or forget them at once.

        Example: ``outbox.acknowledged([1, 2, 3])``.
        """
        batch = list(sequences)
        if self.retention <= 0:
            if len(batch) == 1:
                self.remove(batch[0])  # one statement needs no explicit transaction
            else:
                self.remove_many(batch)
            return
        when = time.time() if at is None else at
        # PUBACKs come mostly in order: one statement per run of consecutive numbers
        runs = [(when, first, last) for first, last in _consecutive_runs(batch)]
        if len(runs) == 1:
            self._db.execute(_MARK_ACKNOWLEDGED, runs[0])
            return
        with transaction(self._db):
            self._db.executemany(_MARK_ACKNOWLEDGED, runs)

    def resend_retained(self) -> int:
        """Make every retained row waiting again (the connection dropped); returns how many.

        Example: ``outbox.resend_retained()`` at the start of each connection's drain.
        """
        cursor = self._db.execute(
            "UPDATE outbox SET acknowledged_at = NULL WHERE acknowledged_at IS NOT NULL"
        )
        return cursor.rowcount

    def retire(self, heard_at: float) -> int:
        """Forget rows acknowledged ``retention`` seconds before ``heard_at``; returns how many.

        ``heard_at`` is the wall-clock time the broker was last heard from on the
        connection that carried the PUBACKs: it was alive, hence it saved them.

        Example: ``outbox.retire(time.time())``.
        """
        cursor = self._db.execute(
            "DELETE FROM outbox WHERE acknowledged_at <= ?", (heard_at - self.retention,)
        )
        return cursor.rowcount

    def next_retirement(self) -> float | None:
        """When the oldest retained row may be forgotten (wall clock), or None if none is.

        Example: ``outbox.next_retirement()``.
        """
        (oldest,) = self._db.execute("SELECT MIN(acknowledged_at) FROM outbox").fetchone()
        return None if oldest is None else float(oldest) + self.retention

    @property
    def retained(self) -> int:
        """Rows the broker acknowledged that are kept until it surely saved them."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE acknowledged_at IS NOT NULL"
        ).fetchone()
        return int(count)

    def __len__(self) -> int:
        """Rows waiting for their PUBACK (retained ones are not counted)."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE acknowledged_at IS NULL"
        ).fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database; entries stay on disk for the next open."""
        self._db.close()


def _consecutive_runs(sequences: Iterable[int]) -> list[tuple[int, int]]:
    """``[1, 2, 3, 7, 8]`` as ``[(1, 3), (7, 8)]``: first and last of each run."""
    runs: list[tuple[int, int]] = []
    for sequence in sorted(sequences):
        if runs and sequence == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], sequence)
        else:
            runs.append((sequence, sequence))
    return runs


def _settle(
    done: list[asyncio.Future[None]], in_flight: dict[asyncio.Future[None], int], outbox: Outbox
) -> BaseException | None:
    """Record the PUBACKs of the sends in ``done`` that succeeded; return the first failure."""
    acknowledged: list[int] = []
    failure: BaseException | None = None
    for task in done:
        sequence = in_flight.pop(task)
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        if error is None:
            acknowledged.append(sequence)
        elif failure is None:
            failure = error
    if acknowledged:
        outbox.acknowledged(acknowledged)
    return failure


class _Retirement:
    """When a drain next tries to forget retained rows (wall clock), and doing it."""

    def __init__(self, outbox: Outbox, heard: Callable[[], float]) -> None:
        self._outbox = outbox
        self._heard = heard
        self.due: float | None = None

    def acknowledged(self) -> None:
        """Rows were just acknowledged: the first of them is due ``retention`` from now."""
        if self.due is None and self._outbox.retention > 0:
            self.due = time.time() + self._outbox.retention

    def run_if_due(self) -> None:
        """Forget what the broker surely saved; schedule the next attempt."""
        if self.due is None or time.time() < self.due:
            return
        self._outbox.retire(self._heard())
        oldest = self._outbox.next_retirement()
        # a silent broker (no PUBACK, no PINGRESP) makes ``heard`` lag: retry, not spin
        self.due = None if oldest is None else max(oldest, time.time() + _RETIRE_TICK)


async def _sleep(wakeup: asyncio.Event, until: float | None) -> None:
    """Wait for ``wakeup``, or until the wall-clock time ``until`` when one is given."""
    if until is None:
        await wakeup.wait()
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, until - time.time())):
            await wakeup.wait()


async def drain_outbox(
    outbox: Outbox,
    send: Callable[[OutboxEntry], Awaitable[None]],
    *,
    wakeup: asyncio.Event,
    drained: asyncio.Event,
    window: int = 1,
    ack_timeout: float | None = None,
    heard: Callable[[], float] = time.time,
) -> None:
    """Send outbox entries oldest first, up to ``window`` at a time, recording each PUBACK.

    ``send`` publishes with QoS 1 and returns an awaitable that completes on PUBACK
    (a coroutine, or cheaper, a future the caller resolves: no task per message).
    Run once per connection: it first makes every row retained by an earlier
    connection waiting again (:meth:`Outbox.resend_retained`; the broker may have
    died before saving it). Sends start in sequence order (MQTT keeps that order on
    a connection) and up to ``window`` of them await their PUBACK together; the
    entries acknowledged by one wake-up are recorded in one transaction, and
    retained rows are forgotten once ``heard()`` (the wall-clock time the broker was
    last heard from on this connection) is ``outbox.retention`` past their PUBACK.
    When a send fails (connection lost) the other sends in flight are cancelled,
    their entries stay, and the exception propagates, so the next drain, on the next
    connection, starts again at the oldest unacknowledged entry. No PUBACK at all
    for ``ack_timeout`` seconds raises :class:`TimeoutError`. Sleeps on ``wakeup``
    while nothing waits (waking to forget retained rows) and sets ``drained`` then.
    Runs until cancelled.

    Example: ``await drain_outbox(outbox, publish_entry, wakeup=wakeup, drained=drained)``.
    """
    if window < 1:
        raise InternalError(f"the drain window must be at least 1, got {window}")
    in_flight: dict[asyncio.Future[None], int] = {}
    settled: list[asyncio.Future[None]] = []
    progress = asyncio.Event()

    def on_settled(future: asyncio.Future[None]) -> None:
        settled.append(future)
        progress.set()

    outbox.resend_retained()
    retirement = _Retirement(outbox, heard)
    last_sent = 0
    try:
        while True:
            if len(in_flight) <= window // 2:
                for entry in outbox.peek(window - len(in_flight), after=last_sent):
                    sending = asyncio.ensure_future(send(entry))
                    sending.add_done_callback(on_settled)
                    in_flight[sending] = entry.sequence
                    last_sent = entry.sequence
            retirement.run_if_due()
            if not in_flight:
                wakeup.clear()
                drained.set()
                await _sleep(wakeup, retirement.due)
                continue
            if not settled:
                progress.clear()
                try:
                    async with asyncio.timeout(ack_timeout):
                        await progress.wait()
                except TimeoutError:
                    raise TimeoutError(f"no PUBACK within {ack_timeout} s") from None
            done = [future for future in settled if future in in_flight]
            settled.clear()
            failure = _settle(done, in_flight, outbox)
            if failure is not None:
                raise failure
            retirement.acknowledged()
    finally:
        for future in in_flight:
            future.remove_done_callback(on_settled)
            future.cancel()
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
