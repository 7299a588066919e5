"""Sequence numbers ``q`` of a device's sensors that never repeat, across crashes.

Paper 002 orders each sensor's trace by ``q`` and every consumer refuses a ``q`` it
has seen (:class:`~pervasive.errors.ReplayedMessage`). A device that reused a number
after a restart would have its fresh readings refused as replays, so the counter is
durable. Writing SQLite once per reading would cost more than signing it; instead
the counter *leases* a block of numbers (``lease`` at a time) and records only the
block's end. After a crash the device resumes at the end of the last lease: some
numbers are skipped (a gap the intermediate nodes report after their gap timeout),
none is ever used twice.

Example::

    counter = SequenceCounter.open(tmp_path / "sequence.sqlite")
    counter.next("thermo")   # 0
    counter.next("thermo")   # 1
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pervasive.errors import InvalidInput
from pervasive.store import open_database, transaction

__all__ = ["SCHEMA", "SequenceCounter"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    sensor TEXT PRIMARY KEY,
    leased_until INTEGER NOT NULL
) WITHOUT ROWID;
"""


class SequenceCounter:
    """Per-sensor counters backed by leases in SQLite."""

    def __init__(self, connection: sqlite3.Connection, *, lease: int = 256) -> None:
        if lease < 1:
            raise InvalidInput(f"a sequence lease must be at least 1, got {lease}")
        self._db = connection
        self._lease = lease
        self._next: dict[str, int] = {}
        self._limit: dict[str, int] = {}

    @classmethod
    def open(cls, path: Path | str, *, lease: int = 256) -> SequenceCounter:
        """Open (creating) the counters at ``path``.

        Example: ``SequenceCounter.open(device_dir / "sequence.sqlite", lease=1)``.
        """
        return cls(open_database(path, schema=SCHEMA), lease=lease)

    def next(self, sensor: str) -> int:
        """The next unused sequence number of ``sensor`` (0 for a new sensor).

        Example: ``q = counter.next("location")``.
        """
        current = self._next.get(sensor)
        if current is None or current >= self._limit[sensor]:
            current = self._renew(sensor, current)
        self._next[sensor] = current + 1
        return current

    def peek(self, sensor: str) -> int:
        """The number :meth:`next` would return, without using it."""
        current = self._next.get(sensor)
        if current is not None:
            return current
        row = self._db.execute(
            "SELECT leased_until FROM leases WHERE sensor = ?", (sensor,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _renew(self, sensor: str, current: int | None) -> int:
        with transaction(self._db):
            row = self._db.execute(
                "SELECT leased_until FROM leases WHERE sensor = ?", (sensor,)
            ).fetchone()
            start = int(row[0]) if row else 0
            if current is not None:
                start = max(start, current)
            limit = start + self._lease
            self._db.execute(
                "INSERT INTO leases (sensor, leased_until) VALUES (?, ?) "
                "ON CONFLICT(sensor) DO UPDATE SET leased_until = excluded.leased_until",
                (sensor, limit),
            )
        self._limit[sensor] = limit
        return start

    def close(self) -> None:
        """Close the database (unused numbers of the current lease are skipped next time)."""
        self._db.close()
