"""``transaction()`` writes all of a block or none of it; ``attach()`` opens or shares."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pervasive.errors import InternalError
from pervasive.store import attach, open_database, transaction

SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "notes.sqlite"


@pytest.fixture
def db(path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_database(path, schema=SCHEMA)
    yield connection
    connection.close()


def texts(path: Path) -> list[str]:
    """What another connection (another process) sees in the file."""
    reader = open_database(path)
    try:
        return [text for (text,) in reader.execute("SELECT text FROM notes ORDER BY id")]
    finally:
        reader.close()


def test_a_block_that_ends_normally_is_committed(db: sqlite3.Connection, path: Path) -> None:
    with transaction(db) as same:
        same.execute("INSERT INTO notes (text) VALUES ('a')")
        db.execute("INSERT INTO notes (text) VALUES ('b')")
        assert texts(path) == []  # nothing visible before COMMIT
    assert not db.in_transaction
    assert texts(path) == ["a", "b"]


def test_a_block_that_raises_leaves_nothing_behind(db: sqlite3.Connection, path: Path) -> None:
    with pytest.raises(RuntimeError, match="half-way"), transaction(db):
        db.execute("INSERT INTO notes (text) VALUES ('a')")
        raise RuntimeError("failed half-way")
    assert not db.in_transaction
    assert texts(path) == []


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_an_interruption_is_rolled_back_and_propagates(
    db: sqlite3.Connection, path: Path, interruption: type[BaseException]
) -> None:
    with pytest.raises(interruption), transaction(db):
        db.execute("INSERT INTO notes (text) VALUES ('a')")
        raise interruption()
    assert not db.in_transaction
    assert texts(path) == []
    with transaction(db):  # the connection is usable afterwards
        db.execute("INSERT INTO notes (text) VALUES ('b')")
    assert texts(path) == ["b"]


def test_a_failed_commit_is_rolled_back(db: sqlite3.Connection, path: Path) -> None:
    db.executescript(
        "CREATE TABLE parents (id INTEGER PRIMARY KEY);"
        "CREATE TABLE children (parent INTEGER REFERENCES parents (id) "
        "DEFERRABLE INITIALLY DEFERRED);"
    )
    with pytest.raises(sqlite3.IntegrityError), transaction(db):
        db.execute("INSERT INTO notes (text) VALUES ('a')")
        db.execute("INSERT INTO children (parent) VALUES (7)")  # checked only at COMMIT
    assert not db.in_transaction
    assert texts(path) == []


def test_the_write_lock_is_taken_when_the_block_starts(db: sqlite3.Connection, path: Path) -> None:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with transaction(db), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


def test_nesting_is_refused_and_the_outer_block_rolls_back(
    db: sqlite3.Connection, path: Path
) -> None:
    with pytest.raises(InternalError, match="do not nest"), transaction(db):
        db.execute("INSERT INTO notes (text) VALUES ('outer')")
        with transaction(db):
            db.execute("INSERT INTO notes (text) VALUES ('inner')")
    assert not db.in_transaction
    assert texts(path) == []


def test_a_transaction_opened_by_hand_is_refused_and_left_alone(db: sqlite3.Connection) -> None:
    db.execute("BEGIN")
    with pytest.raises(InternalError), transaction(db):
        pass
    assert db.in_transaction  # the caller's transaction is still the caller's
    db.execute("ROLLBACK")


def test_attach_opens_a_path_with_the_schema_applied(path: Path) -> None:
    db = attach(path, SCHEMA)
    try:
        db.execute("INSERT INTO notes (text) VALUES ('a')")
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA foreign_keys").fetchone() == (1,)
    finally:
        db.close()
    assert texts(path) == ["a"]


def test_attach_shares_a_connection_and_adds_its_tables(db: sqlite3.Connection) -> None:
    shared = attach(db, "CREATE TABLE IF NOT EXISTS tags (name TEXT PRIMARY KEY);")
    assert shared is db
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"notes", "tags"} <= tables


def test_attach_with_an_empty_schema_only_shares(db: sqlite3.Connection) -> None:
    db.execute("BEGIN")  # an empty script must not commit the caller's transaction
    assert attach(db, "") is db
    assert db.in_transaction
    db.execute("ROLLBACK")


def test_attach_memory_is_a_private_throwaway_database() -> None:
    first, second = attach(":memory:", SCHEMA), attach(":memory:", SCHEMA)
    first.execute("INSERT INTO notes (text) VALUES ('a')")
    assert second.execute("SELECT COUNT(*) FROM notes").fetchone() == (0,)
    first.close()
    second.close()
