"""The durable outbox: messages accepted for publishing, kept until the broker has them.

A durable client writes every QoS 1 publish here first (one SQLite row, committed
before ``publish`` returns; :meth:`Outbox.append_many` commits a batch in one
transaction) and a single drain task sends rows in sequence order, keeping up to
``window`` of them in flight, and deletes rows only after their PUBACK (the
acknowledged rows of one wake-up in one transaction). A crash, a broker restart or
a lost network therefore loses nothing; a row whose PUBACK was lost is sent again
after reconnecting (with a window, the rows in flight behind it too), so consumers
must tolerate redelivery (:class:`~pervasive.messaging.dedupe.Deduplicator`, or
the sequence numbers of paper 002).

Example::

    outbox = Outbox.open(settings.path("outbox", "lock-7.sqlite"))
    entry = outbox.append("pervasive/devices/lock-7/telemetry", b"{}")
    outbox.head() == entry; outbox.remove(entry.sequence); len(outbox) == 0
"""

from __future__ import annotations

import asyncio
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
    accepted_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxEntry:
    """One message waiting for its PUBACK. ``sequence`` grows and is never reused."""

    sequence: int
    topic: str
    payload: bytes = field(repr=False)
    qos: int = 1
    retain: bool = False


class Outbox:
    """A FIFO of messages in SQLite, shared by ``publish`` (append) and the drain (remove)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path | str) -> Outbox:
        """Open (creating) the outbox at ``path``; ``":memory:"`` for a throwaway one.

        Example: ``Outbox.open(tmp_path / "outbox.sqlite")``.
        """
        return cls(open_database(path, schema=SCHEMA))

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
        """Up to ``limit`` oldest messages with a sequence number above ``after``, in order.

        Example: ``[e.sequence for e in outbox.peek(10)]``.
        """
        rows = self._db.execute(
            "SELECT sequence, topic, payload, qos, retain FROM outbox WHERE sequence > ? "
            "ORDER BY sequence LIMIT ?",
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

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database; entries stay on disk for the next open."""
        self._db.close()


def _settle(
    done: list[asyncio.Future[None]], in_flight: dict[asyncio.Future[None], int], outbox: Outbox
) -> BaseException | None:
    """Remove the entries of the sends in ``done`` that succeeded; return the first failure."""
    acknowledged: list[int] = []
    failure: BaseException | None = None
    for task in done:
        sequence = in_flight.pop(task)
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        if error is None:
            acknowledged.append(sequence)
        elif failure is None:
            failure = error
    if len(acknowledged) == 1:
        outbox.remove(acknowledged[0])
    elif acknowledged:
        outbox.remove_many(acknowledged)
    return failure


async def drain_outbox(
    outbox: Outbox,
    send: Callable[[OutboxEntry], Awaitable[None]],
    *,
    wakeup: asyncio.Event,
    drained: asyncio.Event,
    window: int = 1,
    ack_timeout: float | None = None,
) -> None:
    """Send outbox entries oldest first, up to ``window`` at a time, removing each once sent.

    ``send`` publishes with QoS 1 and returns an awaitable that completes on PUBACK
    (a coroutine, or cheaper, a future the caller resolves: no task per message).
    Sends start in sequence order (MQTT keeps that order on a connection) and up to
    ``window`` of them await their PUBACK together; the entries acknowledged by one
    wake-up are removed in one transaction. When a send fails (connection lost) the
    other sends in flight are cancelled, their entries stay, and the exception
    propagates, so the next drain, on the next connection, starts again at the
    oldest unacknowledged entry. No PUBACK at all for ``ack_timeout`` seconds raises
    :class:`TimeoutError`. Sleeps on ``wakeup`` while the outbox is empty and sets
    ``drained`` then. Runs until cancelled.

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

    last_sent = 0
    try:
        while True:
            if len(in_flight) <= window // 2:
                for entry in outbox.peek(window - len(in_flight), after=last_sent):
                    sending = asyncio.ensure_future(send(entry))
                    sending.add_done_callback(on_settled)
                    in_flight[sending] = entry.sequence
                    last_sent = entry.sequence
            if not in_flight:
                wakeup.clear()
                drained.set()
                await wakeup.wait()
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
    finally:
        for future in in_flight:
            future.remove_done_callback(on_settled)
            future.cancel()
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
