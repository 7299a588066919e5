"""Apply each message once: a consumer-side record of (sender, sequence number) pairs.

QoS 1 and the durable outbox deliver *at least* once: a message whose PUBACK was
lost is sent again after a reconnect. A consumer that must act once per message
(pay, open a door, count a reading) asks :class:`Deduplicator` first. The record is
SQLite, so a redelivery after the consumer restarted is still recognised.

The sender is who the broker vouches for, e.g. the device id taken from the topic
(``pervasive/devices/<id>/...``, which only that device may publish on); the
sequence number comes from the (signed) message itself.

Example::

    seen = Deduplicator.open(settings.path("dedupe.sqlite"))
    with seen.apply_once("lock-7", 42) as fresh:
        if fresh:
            apply(message)          # an exception here leaves 42 unrecorded
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from pervasive.errors import InvalidInput
from pervasive.store import open_database, transaction

__all__ = ["SCHEMA", "Deduplicator"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    sender TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (sender, sequence)
) WITHOUT ROWID;
"""


class Deduplicator:
    """Remembers which (sender, sequence) pairs were applied."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path | str) -> Deduplicator:
        """Open (creating) the record at ``path``.

        Example: ``Deduplicator.open(tmp_path / "seen.sqlite")``.
        """
        return cls(open_database(path, schema=SCHEMA))

    @staticmethod
    def _check(sender: str, sequence: int) -> None:
        if not sender:
            raise InvalidInput("a deduplication key needs a sender")
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
            raise InvalidInput(f"sequence numbers are non-negative integers, got {sequence!r}")

    def first_time(self, sender: str, sequence: int) -> bool:
        """Record the pair; True if it was new, False for a redelivery.

        Example: ``first_time("a", 1)`` is True, a second ``first_time("a", 1)`` is False.
        """
        self._check(sender, sequence)
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO received (sender, sequence, received_at) VALUES (?, ?, ?)",
            (sender, sequence, time.time()),
        )
        return cursor.rowcount == 1

    @contextlib.contextmanager
    def apply_once(self, sender: str, sequence: int) -> Iterator[bool]:
        """Yield True when the pair is new; record it only if the block succeeds.

        Example: ``with dedupe.apply_once("a", 7) as fresh: ...``.
        """
        self._check(sender, sequence)
        with transaction(self._db):
            yield self.first_time(sender, sequence)

    def seen(self, sender: str, sequence: int) -> bool:
        """True when the pair was recorded before (does not record it).

        Example: ``dedupe.seen("a", 1)``.
        """
        row = self._db.execute(
            "SELECT 1 FROM received WHERE sender = ? AND sequence = ?", (sender, sequence)
        ).fetchone()
        return row is not None

    def forget_before(self, sender: str, sequence: int) -> int:
        """Drop records of ``sender`` below ``sequence`` (once the sender can no longer resend
        them); returns how many were dropped.

        Example: ``dedupe.forget_before("a", 1000)``.
        """
        cursor = self._db.execute(
            "DELETE FROM received WHERE sender = ? AND sequence < ?", (sender, sequence)
        )
        return cursor.rowcount

    def close(self) -> None:
        """Close the database."""
        self._db.close()
