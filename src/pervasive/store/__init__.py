"""Local persistence: SQLite databases inside the data directory.

One helper opens a database the way every subsystem needs it: WAL journal (readers
never block the writer), ``synchronous=NORMAL`` (durable at checkpoints, safe
against process crashes), foreign keys on, and a busy timeout so that two
processes sharing a file wait instead of failing.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = ["attach", "open_database", "transaction"]


def open_database(path: Path | str, *, schema: str = "") -> sqlite3.Connection:
    """Open (creating if needed) the SQLite database at ``path`` and apply ``schema``.

    ``schema`` is a script of ``CREATE ... IF NOT EXISTS`` statements. Use ``":memory:"``
    for a throwaway database.

    Example: ``db = open_database(settings.path("follower.sqlite"), schema=SCHEMA)``.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    if schema:
        connection.executescript(schema)
    return connection


def attach(database: Path | str | sqlite3.Connection, schema: str) -> sqlite3.Connection:
    """``database`` with ``schema`` applied: opened if a path, shared if a connection."""
    if isinstance(database, sqlite3.Connection):
        database.executescript(schema)
        return database
    return open_database(database, schema=schema)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
