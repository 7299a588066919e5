"""SQLite persistence of shadows, with an outbox written in the same transaction.

A write is a compare-and-swap on the record the caller loaded: the new state, its
version bump and the replies to publish (accepted, delta, documents) commit
together or not at all. Replies stay in the outbox until :meth:`ShadowStore.mark_sent`,
so a crash between commit and publish re-publishes them on restart instead of
losing them; a crash before commit loses nothing that was acknowledged.

A write made for a request with a ``clientToken`` also keeps that request's answer
(its ``/accepted`` reply) for ``duplicate_window`` seconds, keyed by operation,
token and payload digest: the same request again (a QoS 1 redelivery, or a device
retrying after its timeout) is answered from :meth:`ShadowStore.answered`, never
applied twice.

Example::

    store = ShadowStore.open(settings.path("shadow.sqlite"))
    record = store.load(ShadowKey("lock-1"))
    ids = store.commit(new_record, previous=record, messages=outcome.messages,
                       request_id="update:t-1:<sha256 of the payload>")
    store.mark_sent(ids)
    store.answered(ShadowKey("lock-1"), "update:t-1:<sha256>", now=now)  # the /accepted reply
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pervasive.errors import ReplayedMessage, UserError
from pervasive.shadow.core import OutboundMessage, ShadowRecord
from pervasive.shadow.protocol import ShadowKey
from pervasive.store import attach, transaction

__all__ = ["SCHEMA", "DuplicateShadowRequest", "ShadowStore", "StaleShadowWrite"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS shadow (
    thing TEXT NOT NULL,
    shadow TEXT NOT NULL,           -- '' for the classic shadow
    version INTEGER NOT NULL,
    present INTEGER NOT NULL,       -- 0 once deleted; the version is kept
    updated_at REAL NOT NULL,
    document TEXT NOT NULL,         -- desired, reported and their metadata
    PRIMARY KEY (thing, shadow)
);
DROP TABLE IF EXISTS shadow_request;  -- its predecessor kept request ids without answers
CREATE TABLE IF NOT EXISTS shadow_answer (
    thing TEXT NOT NULL,
    shadow TEXT NOT NULL,
    request TEXT NOT NULL,          -- operation, clientToken and payload hash of an applied request
    received_at REAL NOT NULL,
    topic TEXT NOT NULL,            -- the answer the requester got: <operation>/accepted
    payload BLOB NOT NULL,
    PRIMARY KEY (thing, shadow, request)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shadow_answer_age ON shadow_answer (received_at);
CREATE TABLE IF NOT EXISTS shadow_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
"""


class StaleShadowWrite(UserError):
    """The shadow changed since it was loaded (another writer won); reload and retry."""


class DuplicateShadowRequest(ReplayedMessage):
    """The same request (operation, client token and payload) was already applied."""


class ShadowStore:
    """Shadows and pending replies in one SQLite database.

    ``duplicate_window`` is how long (seconds) an applied request's id and answer are
    remembered to recognise redeliveries and retries.
    """

    def __init__(
        self, database: Path | str | sqlite3.Connection, *, duplicate_window: float = 600.0
    ) -> None:
        self._db = attach(database, SCHEMA)
        self._duplicate_window = duplicate_window

    @classmethod
    def open(cls, path: Path | str, *, duplicate_window: float = 600.0) -> ShadowStore:
        """Open (creating if needed) the store at ``path``; ``":memory:"`` for tests.

        Example: ``ShadowStore.open(settings.path("shadow.sqlite"))``.
        """
        return cls(path, duplicate_window=duplicate_window)

    def close(self) -> None:
        """Close the database connection.

        Example: ``store.close()`` when the service stops.
        """
        self._db.close()

    def load(self, key: ShadowKey) -> ShadowRecord | None:
        """The stored record of ``key`` (deleted ones included), or ``None``.

        Example: ``store.load(ShadowKey("lock-1", "door"))``.
        """
        row = self._db.execute(
            "SELECT version, present, updated_at, document FROM shadow WHERE thing=? AND shadow=?",
            (key.thing, key.shadow or ""),
        ).fetchone()
        if row is None:
            return None
        version, present, updated_at, document = row
        parts: dict[str, Any] = json.loads(document)
        return ShadowRecord(
            key,
            version,
            bool(present),
            updated_at,
            parts["desired"],
            parts["reported"],
            parts["desired_metadata"],
            parts["reported_metadata"],
        )

    def commit(
        self,
        record: ShadowRecord,
        *,
        previous: ShadowRecord | None,
        messages: Sequence[OutboundMessage] = (),
        request_id: str | None = None,
    ) -> list[int]:
        """Store ``record`` if the row still equals ``previous``; queue ``messages``.

        Returns the outbox ids to pass to :meth:`mark_sent` once published. With a
        ``request_id``, the first of ``messages`` is kept as that request's answer (see
        :meth:`answered`). Raises :class:`StaleShadowWrite` when someone else wrote the
        shadow in between, and :class:`DuplicateShadowRequest` when ``request_id`` was
        applied within the duplicate window (nothing is written then).

        Example: ``ids = store.commit(outcome.record, previous=loaded, messages=outcome.messages)``.
        """
        key = record.key
        document = json.dumps(
            {
                "desired": record.desired,
                "reported": record.reported,
                "desired_metadata": record.desired_metadata,
                "reported_metadata": record.reported_metadata,
            },
            separators=(",", ":"),
        )
        values = (record.version, int(record.exists), record.updated_at, document)
        with transaction(self._db):
            if request_id is not None and messages:
                self._remember(key, request_id, record.updated_at, messages[0])
            if previous is None:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO shadow"
                    " (version, present, updated_at, document, thing, shadow)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (*values, key.thing, key.shadow or ""),
                )
            else:
                cursor = self._db.execute(
                    "UPDATE shadow SET version=?, present=?, updated_at=?, document=?"
                    " WHERE thing=? AND shadow=? AND version=? AND present=?",
                    (*values, key.thing, key.shadow or "", previous.version, int(previous.exists)),
                )
            if cursor.rowcount != 1:
                raise StaleShadowWrite(
                    f"shadow {key.prefix} changed since it was read; reload it and retry"
                )
            ids = [
                int(
                    self._db.execute(
                        "INSERT INTO shadow_outbox (topic, payload) VALUES (?, ?)",
                        (message.topic, message.payload),
                    ).lastrowid
                    or 0
                )
                for message in messages
            ]
        return ids

    def _remember(
        self, key: ShadowKey, request_id: str, now: float, answer: OutboundMessage
    ) -> None:
        self._db.execute(
            "DELETE FROM shadow_answer WHERE received_at < ?", (now - self._duplicate_window,)
        )
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO shadow_answer"
            " (thing, shadow, request, received_at, topic, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (key.thing, key.shadow or "", request_id, now, answer.topic, answer.payload),
        )
        if cursor.rowcount != 1:
            raise DuplicateShadowRequest(
                f"request {request_id} of {key.prefix} was already applied; answer it with "
                "ShadowStore.answered, do not apply it again"
            )

    def answered(self, key: ShadowKey, request_id: str, *, now: float) -> OutboundMessage | None:
        """The answer committed for ``request_id`` within the duplicate window, or ``None``.

        Example: ``store.answered(ShadowKey("lock-1"), request_id, now=clock())``.
        """
        row = self._db.execute(
            "SELECT topic, payload FROM shadow_answer"
            " WHERE thing=? AND shadow=? AND request=? AND received_at >= ?",
            (key.thing, key.shadow or "", request_id, now - self._duplicate_window),
        ).fetchone()
        return None if row is None else OutboundMessage(row[0], bytes(row[1]))

    def pending(self) -> list[tuple[int, OutboundMessage]]:
        """Replies committed but not yet marked sent, oldest first.

        Example: ``for outbox_id, message in store.pending(): ...``.
        """
        rows = self._db.execute(
            "SELECT id, topic, payload FROM shadow_outbox ORDER BY id"
        ).fetchall()
        return [(row[0], OutboundMessage(row[1], bytes(row[2]))) for row in rows]

    def mark_sent(self, ids: Sequence[int]) -> None:
        """Forget published replies.

        Example: ``store.mark_sent(ids)``.
        """
        if ids:
            self._db.executemany("DELETE FROM shadow_outbox WHERE id=?", [(i,) for i in ids])

    def things(self) -> list[ShadowKey]:
        """Every shadow that currently exists (deleted ones excluded).

        Example: ``[key.prefix for key in store.things()]``.
        """
        rows = self._db.execute(
            "SELECT thing, shadow FROM shadow WHERE present=1 ORDER BY thing, shadow"
        ).fetchall()
        return [ShadowKey(thing, shadow or None) for thing, shadow in rows]
