"""The node's durable log of accepted sensor messages: what a restart reads back.

A node that is killed in the middle of window ``t`` must rebuild exactly the same
``w_i[t]`` when it starts again (its commitment in the journal names ``H(w_i[t])``),
although the broker will not send the messages it already acknowledged. Every
accepted message is therefore appended here, in one SQLite transaction per batch,
before the windows it completes are handed to the protocol. On restart the node
reads back every message from the first window it has not closed, and prunes what
no open window needs any more.

Example::

    log = MessageLog(settings.path("node", "node.sqlite"), spec.address)
    log.append(accepted_messages)
    for payload in log.replay({sensor: 120}):
        pipeline.receive(payload, now)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from pervasive.sensing.message import SensorMessage
from pervasive.store import attach, transaction

__all__ = ["MessageLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS node_sensor_messages (
    agreement TEXT NOT NULL,
    sensor TEXT NOT NULL,
    q INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (agreement, sensor, q)
) WITHOUT ROWID;
"""


class MessageLog:
    """Accepted sensor messages of one agreement, keyed by ``(sensor, q)``.

    Example: ``MessageLog(":memory:", spec.address).append([message])``.
    """

    def __init__(self, path: Path | str | sqlite3.Connection, agreement: str) -> None:
        self._db = attach(path, _SCHEMA)
        self.agreement = agreement

    def append(self, messages: Sequence[SensorMessage]) -> None:
        """Store ``messages`` atomically (a message already stored is kept as it was)."""
        if not messages:
            return
        rows = [(self.agreement, m.sensor, m.sequence, m.encode()) for m in messages]
        with transaction(self._db):
            self._db.executemany(
                "INSERT OR IGNORE INTO node_sensor_messages (agreement, sensor, q, payload) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

    def replay(self, starts: Mapping[str, int]) -> Iterator[bytes]:
        """Wire forms of logged messages with ``q >= starts[sensor]``, per sensor in ``q`` order."""
        for sensor, first in starts.items():
            cursor = self._db.execute(
                "SELECT payload FROM node_sensor_messages "
                "WHERE agreement = ? AND sensor = ? AND q >= ? ORDER BY q",
                (self.agreement, sensor, first),
            )
            for (payload,) in cursor:
                yield bytes(payload)

    def prune(self, starts: Mapping[str, int]) -> int:
        """Forget messages below ``starts[sensor]``; return how many were removed."""
        removed = 0
        with transaction(self._db):
            for sensor, first in starts.items():
                cursor = self._db.execute(
                    "DELETE FROM node_sensor_messages WHERE agreement = ? AND sensor = ? AND q < ?",
                    (self.agreement, sensor, first),
                )
                removed += cursor.rowcount
        return removed

    def count(self) -> int:
        """How many messages are held."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM node_sensor_messages WHERE agreement = ?", (self.agreement,)
        ).fetchone()
        return int(row[0])
