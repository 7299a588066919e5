"""The event log in SQLite: every CloudEvent accepted, in stream order, and the cursors.

One log per data directory, ``<home>/interop/events.sqlite``: every writer of the
directory (the platform's feed, each service runtime, in one process or several)
appends to it, each event tagged with its ``origin`` (the writing feed's name:
``platform``, ``service-<name>``). The log is also the event followers' checkpoint
file, so that a chain event is appended in the follower's own transaction (``db``
handed to the handler): the event and the follower's "delivered" record commit
together, or neither does. Stream order is ``seq`` (an autoincrement key, never
reused): the web stream walks all of it, each MQTT publisher only its own origin's
events. A retraction is appended like any event and marks the event it retracts.
``UNIQUE (source, id)`` enforces the CloudEvents rule that the pair identifies one
event.

Tables: ``interop_events`` (seq, origin, source, id, type, subject, time, topic, body,
log_key, retracted_by), ``interop_cursors`` (a publisher's last published ``seq`` by
name) and ``interop_schemas`` (each ``dataschema`` named in the log, so that a web app
in another process can serve it at ``GET /schemas?id=``).

Several writers, one file (WAL): a writer that must not block its event loop opens the
store with ``wait_for_lock=False`` and retries a locked write later (:meth:`advance`,
:meth:`try_register_schema` return ``False``), because a follower holds its write
transaction across awaits (block headers).

Example::

    store = EventStore(settings.path("interop", "events.sqlite"))
    for event in store.after(0, limit=100):
        print(event.seq, event.origin, event.type, event.id)
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cloudevents.core.v1.event import CloudEvent

from pervasive.interop.envelope import write_event
from pervasive.interop.schemas import JsonSchema
from pervasive.store import attach, transaction

__all__ = ["SCHEMA", "EventStore", "StoredEvent", "is_locked"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS interop_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    time TEXT NOT NULL,
    topic TEXT NOT NULL,
    body BLOB NOT NULL,
    log_key TEXT,
    retracted_by INTEGER,
    UNIQUE (source, id)
);
CREATE INDEX IF NOT EXISTS interop_events_by_log ON interop_events (log_key);
CREATE INDEX IF NOT EXISTS interop_events_by_origin ON interop_events (origin, seq);
CREATE TABLE IF NOT EXISTS interop_cursors (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS interop_schemas (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
"""


def is_locked(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` says another connection holds the database's write lock."""
    text = str(exc)
    return "locked" in text or "busy" in text


@dataclass(frozen=True)
class StoredEvent:
    """One event of the log, as stored (``body`` is its CloudEvents JSON)."""

    seq: int
    source: str
    id: str
    type: str
    subject: str | None
    time: str
    topic: str
    body: bytes
    retracted_by: int | None = None
    origin: str = ""
    """The feed that appended it (``platform``, ``service-<name>``)."""

    @property
    def retracted(self) -> bool:
        """Whether a later retraction in the log names this event."""
        return self.retracted_by is not None


def _row(row: tuple[object, ...]) -> StoredEvent:
    seq, source, id_, type_, subject, time, topic, body, retracted_by, origin = row
    return StoredEvent(
        seq=int(seq),  # type: ignore[call-overload]
        source=str(source),
        id=str(id_),
        type=str(type_),
        subject=None if subject is None else str(subject),
        time=str(time),
        topic=str(topic),
        body=bytes(body),  # type: ignore[call-overload]
        retracted_by=None if retracted_by is None else int(retracted_by),  # type: ignore[call-overload]
        origin=str(origin),
    )


class EventStore:
    """The event log of one data directory (or a caller's connection).

    Writes that must commit with something else take that transaction's ``db``;
    reads use this store's own connection (WAL: they never block the writer).
    """

    def __init__(
        self, database: Path | str | sqlite3.Connection, *, wait_for_lock: bool = True
    ) -> None:
        self._owned = not isinstance(database, sqlite3.Connection)
        self.db = attach(database, SCHEMA)
        self.waits = not self._owned or wait_for_lock
        """Whether a write waits for another connection's lock (else it fails fast)."""
        if not self.waits:
            # beside a follower: its transaction spans an await, so waiting for the lock
            # here would block the event loop that must finish it; fail fast, retry later
            self.db.execute("PRAGMA busy_timeout = 0")

    def close(self) -> None:
        """Close the connection when this store opened it."""
        if self._owned:
            self.db.close()

    # -- writes (inside the caller's transaction) -------------------------------------
    @staticmethod
    def append(
        db: sqlite3.Connection,
        event: CloudEvent,
        *,
        topic: str,
        log_key: str | None = None,
        origin: str = "",
    ) -> int | None:
        """Append ``event`` (its JSON, once); its ``seq``, or ``None`` if (source, id) is known.

        Example: ``EventStore.append(db, event, topic=topic, origin="platform")``.
        """
        time = event.get_time()
        cursor = db.execute(
            "INSERT OR IGNORE INTO interop_events "
            "(origin, source, id, type, subject, time, topic, body, log_key) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (
                origin,
                event.get_source(),
                event.get_id(),
                event.get_type(),
                event.get_subject(),
                "" if time is None else time.isoformat(),
                topic,
                write_event(event),
                log_key,
            ),
        )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    @staticmethod
    def deliveries(db: sqlite3.Connection, log_key: str) -> int:
        """How many events were appended for the log ``log_key`` before (its revision)."""
        row = db.execute(
            "SELECT COUNT(*) FROM interop_events WHERE log_key = ?", (log_key,)
        ).fetchone()
        return int(row[0])

    @staticmethod
    def live_for(db: sqlite3.Connection, log_key: str) -> StoredEvent | None:
        """The not yet retracted event of the log ``log_key``, if one was appended."""
        row = db.execute(
            "SELECT seq, source, id, type, subject, time, topic, body, retracted_by, origin "
            "FROM interop_events WHERE log_key = ? AND retracted_by IS NULL "
            "ORDER BY seq DESC LIMIT 1",
            (log_key,),
        ).fetchone()
        return None if row is None else _row(row)

    @staticmethod
    def mark_retracted(db: sqlite3.Connection, seq: int, by: int) -> None:
        """Record that the event ``seq`` was retracted by the event ``by``."""
        db.execute("UPDATE interop_events SET retracted_by = ? WHERE seq = ?", (by, seq))

    # -- reads ------------------------------------------------------------------------
    def after(self, seq: int, *, limit: int = 500, origin: str | None = None) -> list[StoredEvent]:
        """Up to ``limit`` events after ``seq``, in stream order (only ``origin``'s if given).

        Example: ``store.after(0)[0].seq`` == ``1``; ``store.after(0, origin="platform")``.
        """
        if origin is None:
            rows = self.db.execute(
                "SELECT seq, source, id, type, subject, time, topic, body, retracted_by, origin "
                "FROM interop_events WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        else:
            rows = self.db.execute(
                "SELECT seq, source, id, type, subject, time, topic, body, retracted_by, origin "
                "FROM interop_events WHERE origin = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (origin, seq, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def latest(self, count: int = 50) -> list[StoredEvent]:
        """The newest ``count`` events, newest first (the web page)."""
        rows = self.db.execute(
            "SELECT seq, source, id, type, subject, time, topic, body, retracted_by, origin "
            "FROM interop_events ORDER BY seq DESC LIMIT ?",
            (count,),
        ).fetchall()
        return [_row(r) for r in rows]

    def head(self) -> int:
        """The ``seq`` of the newest event (0 for an empty log)."""
        row = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM interop_events").fetchone()
        return int(row[0])

    def seq_of(self, source: str | None, event_id: str) -> int | None:
        """The ``seq`` of an event by its id (and source when given), if stored."""
        if source is None:
            row = self.db.execute(
                "SELECT MIN(seq) FROM interop_events WHERE id = ?", (event_id,)
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT seq FROM interop_events WHERE source = ? AND id = ?", (source, event_id)
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # -- schemas ----------------------------------------------------------------------
    def register_schema(self, schema: JsonSchema) -> None:
        """Keep ``schema`` by its ``$id`` (the latest document wins), waiting for the lock.

        Example: ``store.register_schema(load_schema(path))``.
        """
        with transaction(self.db) as db:
            _put_schema(db, schema)

    def try_register_schema(self, *schemas: JsonSchema) -> bool:
        """Keep ``schemas``; ``False`` (nothing written) while another connection writes.

        Example: ``while not store.try_register_schema(schema): await asyncio.sleep(0.005)``.
        """
        try:
            with transaction(self.db) as db:
                for schema in schemas:
                    _put_schema(db, schema)
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise
            return False
        return True

    def schema(self, schema_id: str) -> str | None:
        """The JSON text of the schema ``schema_id``, if one was registered."""
        row = self.db.execute(
            "SELECT document FROM interop_schemas WHERE id = ?", (schema_id.rstrip("#"),)
        ).fetchone()
        return None if row is None else str(row[0])

    def schema_ids(self) -> list[str]:
        """Every registered schema id, sorted."""
        rows = self.db.execute("SELECT id FROM interop_schemas ORDER BY id").fetchall()
        return [str(r[0]) for r in rows]

    # -- publishers' cursors ----------------------------------------------------------
    def cursor(self, name: str) -> int:
        """The last ``seq`` the publisher ``name`` published (0 before the first)."""
        row = self.db.execute("SELECT seq FROM interop_cursors WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def advance(self, name: str, seq: int) -> bool:
        """Record that the publisher ``name`` published everything up to ``seq``.

        ``False`` (nothing written) when another connection holds the write lock and
        this store does not wait for it: call again later.

        Example: ``while not store.advance("platform:mqtt", 7): await asyncio.sleep(0.005)``.
        """
        try:
            with transaction(self.db) as db:
                db.execute(
                    "INSERT INTO interop_cursors (name, seq) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                    (name, seq),
                )
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise
            return False
        return True


def _put_schema(db: sqlite3.Connection, schema: JsonSchema) -> None:
    db.execute(
        "INSERT INTO interop_schemas (id, document) VALUES (?, ?) "
        "ON CONFLICT (id) DO UPDATE SET document = excluded.document "
        "WHERE document IS NOT excluded.document",
        (schema.id, schema.text),
    )
