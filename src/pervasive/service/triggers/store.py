"""What a trigger service keeps in SQLite so that a restart changes nothing.

One transaction per accepted reading writes, together: the sensor's last sequence
number (replays refused after a restart too), the new context observation, the
triggers' edge states and every episode that began, as ``pending``. Executing an
episode's action happens after that commit: a transaction action's signed bytes are
stored first (``sent``, with their hash), then broadcast; the episode becomes ``done``
once that transaction is deep enough in the canonical chain (or with the note that
the chain already had the key). A crash before signing leaves it ``pending``, and the
runtime asks the chain before sending; a crash after leaves it ``sent``, and only the
stored bytes are ever sent again (one nonce: they are applied at most once).

Example::

    store = TriggerStore.open(settings.path("triggers.sqlite"))
    store.apply(step, sensor="0xabc...", sequence=7)
    [e.key for e in store.pending()]
"""

from __future__ import annotations

import enum
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from pervasive.service.triggers.conditions import Context, Observation
from pervasive.service.triggers.engine import Step, TriggerState
from pervasive.store import open_database, transaction

__all__ = ["SCHEMA", "Episode", "EpisodeStatus", "TriggerStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS sequences (
    sensor TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS context (
    device TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value TEXT NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (device, attribute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trigger_states (
    trigger TEXT PRIMARY KEY,
    holding INTEGER NOT NULL,
    episodes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS episodes (
    trigger TEXT NOT NULL,
    episode INTEGER NOT NULL,
    key BLOB NOT NULL UNIQUE,
    started_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    transaction_hash TEXT,
    raw_transaction BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (trigger, episode)
);
"""


class EpisodeStatus(enum.Enum):
    """Where an episode's action stands."""

    PENDING = "pending"
    """Recorded; no transaction is signed for it yet."""
    SENT = "sent"
    """Its transaction is signed and stored (``raw_transaction``), maybe broadcast; not final."""
    DONE = "done"
    """The chain holds the payment for this episode's key, deep enough to stay."""


@dataclass(frozen=True)
class Episode:
    """One episode of one trigger, as recorded."""

    trigger: str
    episode: int
    key: bytes
    started_at: int
    status: EpisodeStatus
    transaction_hash: str | None = None
    attempts: int = 0
    last_error: str | None = None
    raw_transaction: bytes | None = None
    """The signed bytes of the episode's transaction while it is ``sent``."""


class TriggerStore:
    """The SQLite state of a trigger service."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path | str) -> TriggerStore:
        """Open (creating) the store at ``path``; ``":memory:"`` for tests.

        Example: ``TriggerStore.open(tmp_path / "triggers.sqlite")``.
        """
        db = open_database(path, schema=SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(episodes)")}
        if "raw_transaction" not in columns:  # a store written before payments were settled
            db.execute("ALTER TABLE episodes ADD COLUMN raw_transaction BLOB")
        return cls(db)

    # -- reading state back ------------------------------------------------------------
    def last_sequence(self, sensor: str) -> int | None:
        """The highest sequence number accepted from ``sensor``."""
        row = self._db.execute(
            "SELECT last_sequence FROM sequences WHERE sensor = ?", (sensor,)
        ).fetchone()
        return int(row[0]) if row else None

    def context(self) -> Context:
        """The stored context (latest observation per device attribute)."""
        rows = self._db.execute("SELECT device, attribute, value, time FROM context").fetchall()
        return Context({(d, a): Observation(d, a, json.loads(v), int(t)) for d, a, v, t in rows})

    def states(self) -> dict[str, TriggerState]:
        """The stored edge state of every trigger seen so far."""
        rows = self._db.execute("SELECT trigger, holding, episodes FROM trigger_states").fetchall()
        return {name: TriggerState(bool(h), int(e)) for name, h, e in rows}

    def episodes(self, trigger: str | None = None) -> list[Episode]:
        """Recorded episodes, oldest first (of one trigger when given)."""
        query = (
            "SELECT trigger, episode, key, started_at, status, transaction_hash, attempts,"
            " last_error, raw_transaction FROM episodes"
        )
        args: tuple[str, ...] = ()
        if trigger is not None:
            query += " WHERE trigger = ?"
            args = (trigger,)
        rows = self._db.execute(query + " ORDER BY recorded_at, trigger, episode", args).fetchall()
        return [
            Episode(
                t, int(n), bytes(k), int(s), EpisodeStatus(st), h, int(a), err,
                None if raw is None else bytes(raw),
            )
            for t, n, k, s, st, h, a, err, raw in rows
        ]  # fmt: skip

    def pending(self) -> list[Episode]:
        """Episodes whose action is not final yet (``pending`` or ``sent``), oldest first."""
        return [e for e in self.episodes() if e.status is not EpisodeStatus.DONE]

    def unsettled(self) -> int:
        """How many episodes are not done yet."""
        row = self._db.execute(
            "SELECT count(*) FROM episodes WHERE status != ?", (EpisodeStatus.DONE.value,)
        ).fetchone()
        return int(row[0])

    # -- writing -----------------------------------------------------------------------
    def apply(self, step: Step, *, sensor: str, sequence: int) -> None:
        """Record an accepted reading and what it changed, in one transaction.

        Example: ``store.apply(engine.observe(obs), sensor=reading.sensor, sequence=q)``.
        """
        now = time.time()
        with transaction(self._db):
            self._db.execute(
                "INSERT INTO sequences (sensor, last_sequence) VALUES (?, ?) ON CONFLICT(sensor)"
                " DO UPDATE SET last_sequence = max(last_sequence, excluded.last_sequence)",
                (sensor, sequence),
            )
            if step.observation is not None:
                o = step.observation
                self._db.execute(
                    "INSERT OR REPLACE INTO context (device, attribute, value, time)"
                    " VALUES (?, ?, ?, ?)",
                    (o.device, o.attribute, json.dumps(o.value), o.time),
                )
            for name, state in step.states.items():
                self._db.execute(
                    "INSERT OR REPLACE INTO trigger_states (trigger, holding, episodes)"
                    " VALUES (?, ?, ?)",
                    (name, int(state.holding), state.episodes),
                )
            for firing in step.firings:
                self._db.execute(
                    "INSERT INTO episodes (trigger, episode, key, started_at, status, recorded_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        firing.trigger, firing.episode, firing.key, firing.time,
                        EpisodeStatus.PENDING.value, now,
                    ),
                )  # fmt: skip

    def mark_sent(self, key: bytes, transaction_hash: str, raw_transaction: bytes) -> None:
        """Store the signed transaction of ``key`` before it is broadcast.

        Example: ``store.mark_sent(key, pending.hashes[0], pending.raw)``.
        """
        self._db.execute(
            "UPDATE episodes SET status = ?, transaction_hash = ?, raw_transaction = ?"
            " WHERE key = ? AND status = ?",
            (EpisodeStatus.SENT.value, transaction_hash, raw_transaction, key,
             EpisodeStatus.PENDING.value),
        )  # fmt: skip

    def mark_unsent(self, key: bytes, error: str) -> bool:
        """Forget the stored transaction of ``key`` (it can never be mined); sign anew later.

        For a transaction whose nonce another one took, or one mined but reverted.
        ``False`` when ``key`` had no stored transaction.
        """
        cursor = self._db.execute(
            "UPDATE episodes SET status = ?, transaction_hash = NULL, raw_transaction = NULL,"
            " attempts = attempts + 1, last_error = ? WHERE key = ? AND status = ?",
            (EpisodeStatus.PENDING.value, error[:500], key, EpisodeStatus.SENT.value),
        )
        return cursor.rowcount == 1

    def mark_done(self, key: bytes, transaction_hash: str | None) -> None:
        """The chain holds the payment of ``key`` (sent now, or found there), deep enough."""
        self._db.execute(
            "UPDATE episodes SET status = ?, transaction_hash = coalesce(?, transaction_hash),"
            " raw_transaction = NULL WHERE key = ?",
            (EpisodeStatus.DONE.value, transaction_hash, key),
        )

    def mark_failed_attempt(self, key: bytes, error: str) -> None:
        """An attempt failed (node down, out of gas...); the episode stays pending."""
        self._db.execute(
            "UPDATE episodes SET attempts = attempts + 1, last_error = ? WHERE key = ?",
            (error[:500], key),
        )

    def close(self) -> None:
        """Close the database."""
        self._db.close()
