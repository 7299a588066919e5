"""The durable outbox: messages accepted for publishing, kept until the broker has them.

A durable client writes every QoS 1 publish here first (one SQLite row, committed
before ``publish`` returns) and a single drain task sends rows in sequence order,
deleting a row only after its PUBACK. A crash, a broker restart or a lost network
therefore loses nothing and never reorders; a row whose PUBACK was lost is sent
again after reconnecting, so consumers must tolerate redelivery
(:class:`~pervasive.messaging.dedupe.Deduplicator`).

Example::

    outbox = Outbox.open(settings.path("outbox", "lock-7.sqlite"))
    entry = outbox.append("pervasive/devices/lock-7/telemetry", b"{}")
    outbox.head() == entry; outbox.remove(entry.sequence); len(outbox) == 0
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.errors import InternalError
from pervasive.store import open_database

__all__ = ["Outbox", "OutboxEntry", "drain_outbox"]

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

    def head(self) -> OutboxEntry | None:
        """The oldest message not yet acknowledged, or None when the outbox is empty.

        Example: ``outbox.head().sequence``.
        """
        entries = self.peek(1)
        return entries[0] if entries else None

    def peek(self, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` oldest messages, in order.

        Example: ``[e.sequence for e in outbox.peek(10)]``.
        """
        rows = self._db.execute(
            "SELECT sequence, topic, payload, qos, retain FROM outbox ORDER BY sequence LIMIT ?",
            (limit,),
        ).fetchall()
        return [OutboxEntry(s, t, bytes(p), q, bool(r)) for s, t, p, q, r in rows]

    def remove(self, sequence: int) -> None:
        """Forget a message the broker acknowledged.

        Example: ``outbox.remove(entry.sequence)``.
        """
        self._db.execute("DELETE FROM outbox WHERE sequence = ?", (sequence,))

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database; entries stay on disk for the next open."""
        self._db.close()


async def drain_outbox(
    outbox: Outbox,
    send: Callable[[OutboxEntry], Awaitable[None]],
    *,
    wakeup: asyncio.Event,
    drained: asyncio.Event,
) -> None:
    """Send outbox entries oldest first, one at a time, removing each after ``send`` returns.

    ``send`` publishes with QoS 1 and returns on PUBACK; when it raises (connection
    lost) the entry stays and the exception propagates, so the next drain, on the
    next connection, starts with that same entry. Sleeps on ``wakeup`` while the
    outbox is empty and sets ``drained`` then. Runs until cancelled.

    Example: ``await drain_outbox(outbox, publish_entry, wakeup=wakeup, drained=drained)``.
    """
    while True:
        entry = outbox.head()
        if entry is None:
            wakeup.clear()
            drained.set()
            await wakeup.wait()
            continue
        await send(entry)
        outbox.remove(entry.sequence)
