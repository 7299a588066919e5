"""Local persistence: SQLite databases inside the data directory.

One helper opens a database the way every subsystem needs it: WAL journal (readers
never block the writer), ``synchronous=NORMAL`` (durable at checkpoints, safe
against process crashes), foreign keys on, and a busy timeout so that two
processes sharing a file wait instead of failing.

Two more helpers keep the subsystems from writing the same boilerplate:

- :func:`transaction` is the one way to write atomically: ``BEGIN IMMEDIATE`` (take
  the write lock up front, so two writers queue on the busy timeout instead of
  failing half-way), ``COMMIT`` when the block ends, ``ROLLBACK`` when it raises,
  ``KeyboardInterrupt`` and task cancellation included. SQLite transactions do not
  nest, so neither does :func:`transaction`: entering it on a connection that is
  already in a transaction raises :class:`~pervasive.errors.InternalError`.
- :func:`attach` lets a store either open its own file or share a caller's
  connection (one node's journal, window store and nonces in one file), applying its
  schema either way.

A file that is no SQLite database (overwritten, truncated, another program's) or that
cannot be opened at all raises :class:`UnreadableDatabase`, a user error naming the
file and what to do, instead of sqlite3's bare ``file is not a database``.

Example::

    db = open_database(settings.path("follower.sqlite"), schema=SCHEMA)
    with transaction(db):
        db.execute("INSERT INTO seen VALUES (?)", (key,))
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from pervasive.errors import InternalError, UserError

__all__ = ["UnreadableDatabase", "attach", "open_database", "transaction"]


class UnreadableDatabase(UserError):
    """A SQLite file of the data directory is corrupt, no database, or cannot be opened.

    ``path`` is the file. Nothing was written to it.
    """

    def __init__(self, message: str, *, path: Path) -> None:
        self.path = path
        super().__init__(message)


def open_database(path: Path | str, *, schema: str = "") -> sqlite3.Connection:
    """Open (creating if needed) the SQLite database at ``path`` and apply ``schema``.

    ``schema`` is a script of ``CREATE ... IF NOT EXISTS`` statements. Use ``":memory:"``
    for a throwaway database.

    Example: ``db = open_database(settings.path("follower.sqlite"), schema=SCHEMA)``.
    """
    if str(path) != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unusable(Path(path), exc) from None
    try:
        connection = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise _unusable(Path(path), exc) from None
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        if schema:
            connection.executescript(schema)
    except sqlite3.DatabaseError as exc:
        connection.close()
        if not _is_file_fault(exc):
            raise  # a lock held too long, a schema mistake: not the file's fault
        raise _unusable(Path(path), exc) from None
    return connection


_FILE_FAULTS = ("unable to open", "readonly", "disk i/o error")


def _is_file_fault(exc: sqlite3.DatabaseError) -> bool:
    """Corrupt or no database (plain DatabaseError), or a file that cannot be opened."""
    if not isinstance(exc, sqlite3.OperationalError):
        return True
    return any(fault in str(exc).lower() for fault in _FILE_FAULTS)


def _unusable(path: Path, exc: Exception) -> UnreadableDatabase:
    """The one-line refusal for a database file sqlite3 cannot use."""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return UnreadableDatabase(
            f"{path} is not a usable SQLite database ({exc}): move it away (a fresh one is "
            "created in its place) or restore it from a backup",
            path=path,
        )
    return UnreadableDatabase(
        f"cannot open the database {path} ({exc}): check that it is a file this user may "
        "read and write, in a writable folder",
        path=path,
    )


def attach(database: Path | str | sqlite3.Connection, schema: str) -> sqlite3.Connection:
    """``database`` with ``schema`` applied: opened if a path, shared if a connection.

    A shared connection stays the caller's to close.

    Example: ``self._db = attach(path_or_connection, SCHEMA)``.
    """
    if isinstance(database, sqlite3.Connection):
        if schema:
            database.executescript(schema)
        return database
    return open_database(database, schema=schema)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception.

    Any exception means ``BaseException``: a ``KeyboardInterrupt`` or a cancelled task
    leaves nothing half-written either. A ``COMMIT`` that fails (a deferred constraint,
    a full disk) is rolled back too, so the connection is usable afterwards. The block
    must not end the transaction itself (no ``COMMIT``/``ROLLBACK`` inside).

    Example: ``with transaction(db): db.execute(...); db.execute(...)``.
    """
    _refuse_nesting(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _refuse_nesting(db: sqlite3.Connection) -> None:
    # Without this check, BEGIN would fail with a bare OperationalError, and a block
    # that caught it would write into (and be undone with) the caller's transaction.
    if db.in_transaction:
        raise InternalError(
            "transaction() entered on a connection that is already in a transaction; "
            "SQLite transactions do not nest: write inside the open transaction instead"
        )
