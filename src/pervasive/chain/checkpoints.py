"""The event follower's memory in SQLite: checkpoint, recent block hashes, delivered logs.

One database may hold many followers, told apart by ``name``. Three tables:

- ``follower_checkpoint``: the last block whose logs were all delivered (number, hash);
- ``follower_blocks``: hashes of recently processed blocks, the candidates for the
  common ancestor when the chain reorganises;
- ``follower_delivered``: every delivered log still young enough to be reorganised
  away, in full, so it can be retracted after its block is gone from the node.

Writes happen inside the transaction the follower opens around each handler call
(:meth:`CheckpointStore.transaction`), so a handler's own writes to the same
connection commit or vanish together with the follower's record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pervasive.chain.records import Log
from pervasive.store import open_database, transaction

__all__ = ["SCHEMA", "Checkpoint", "CheckpointStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS follower_checkpoint (
    name TEXT PRIMARY KEY,
    block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    horizon INTEGER NOT NULL DEFAULT -1
);
CREATE TABLE IF NOT EXISTS follower_blocks (
    name TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    PRIMARY KEY (name, block_number)
);
CREATE TABLE IF NOT EXISTS follower_delivered (
    name TEXT NOT NULL,
    block_hash TEXT NOT NULL,
    log_index INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    transaction_hash TEXT NOT NULL,
    address TEXT NOT NULL,
    topics BLOB NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (name, block_hash, log_index)
);
CREATE INDEX IF NOT EXISTS follower_delivered_by_block
    ON follower_delivered (name, block_number, log_index);
"""


@dataclass(frozen=True)
class Checkpoint:
    """A processed block: every matching log up to and including it was delivered."""

    number: int
    hash: str


class CheckpointStore:
    """The persisted state of the follower ``name`` in the SQLite file at ``path``.

    Example::

        store = CheckpointStore(settings.path("followers.sqlite"), "registry")
        store.checkpoint()  # None before the first poll
    """

    def __init__(self, path: object, name: str) -> None:
        self.db: sqlite3.Connection = open_database(str(path), schema=SCHEMA)
        self.name = name

    # -- transactions -----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The write transaction a delivery, retraction or checkpoint advance runs in.

        The handler's writes and the follower's record become durable together when
        the block ends, and vanish together when it raises (cancellation included).

        Example: ``with store.transaction() as db: await handler.deliver(log, db)``.
        """
        with transaction(self.db) as db:
            yield db

    def close(self) -> None:
        """Close the connection (rolling back an unfinished transaction)."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()

    # -- reads ------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint | None:
        """The last fully processed block, or ``None`` before the first one."""
        row = self.db.execute(
            "SELECT block_number, block_hash FROM follower_checkpoint WHERE name = ?",
            (self.name,),
        ).fetchone()
        return Checkpoint(int(row[0]), str(row[1])) if row else None

    def known_blocks(self) -> list[Checkpoint]:
        """Processed blocks whose hash we remember, newest first."""
        rows = self.db.execute(
            "SELECT block_number, block_hash FROM follower_blocks WHERE name = ? "
            "ORDER BY block_number DESC",
            (self.name,),
        ).fetchall()
        return [Checkpoint(int(number), str(block_hash)) for number, block_hash in rows]

    def horizon(self) -> int:
        """Blocks below this number were forgotten (-1: nothing forgotten yet)."""
        row = self.db.execute(
            "SELECT horizon FROM follower_checkpoint WHERE name = ?", (self.name,)
        ).fetchone()
        return int(row[0]) if row else -1

    def is_delivered(self, log: Log) -> bool:
        """Whether ``log`` (by block hash and index) was already handed to the handler."""
        row = self.db.execute(
            "SELECT 1 FROM follower_delivered WHERE name = ? AND block_hash = ? AND log_index = ?",
            (self.name, log.block_hash, log.log_index),
        ).fetchone()
        return row is not None

    def delivered_keys(self, first_block: int, last_block: int) -> set[tuple[str, int]]:
        """Keys (block hash, log index) of the delivered logs in blocks ``first..last``."""
        rows = self.db.execute(
            "SELECT block_hash, log_index FROM follower_delivered WHERE name = ? "
            "AND block_number BETWEEN ? AND ?",
            (self.name, first_block, last_block),
        ).fetchall()
        return {(str(block_hash), int(index)) for block_hash, index in rows}

    def delivered_after(self, block_number: int) -> list[Log]:
        """Delivered logs in blocks above ``block_number``, newest first (retraction order)."""
        rows = self.db.execute(
            "SELECT address, topics, data, block_number, block_hash, transaction_hash, "
            "log_index FROM follower_delivered WHERE name = ? AND block_number > ? "
            "ORDER BY block_number DESC, log_index DESC",
            (self.name, block_number),
        ).fetchall()
        return [
            Log(
                address=str(address),
                topics=tuple(bytes(topics[i : i + 32]) for i in range(0, len(topics), 32)),
                data=bytes(data),
                block_number=int(number),
                block_hash=str(block_hash),
                transaction_hash=str(tx_hash),
                log_index=int(index),
            )
            for address, topics, data, number, block_hash, tx_hash, index in rows
        ]

    # -- writes (inside a transaction) ------------------------------------------------
    def record_delivery(self, log: Log) -> None:
        """Remember ``log`` as delivered."""
        self.db.execute(
            "INSERT INTO follower_delivered (name, block_hash, log_index, block_number, "
            "transaction_hash, address, topics, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.name, log.block_hash, log.log_index, log.block_number,
                log.transaction_hash, log.address, b"".join(log.topics), log.data,
            ),
        )  # fmt: skip

    def remember_block(self, number: int, block_hash: str) -> None:
        """Remember a block's hash (of a delivered log): a candidate common ancestor."""
        self.db.execute(
            "INSERT OR REPLACE INTO follower_blocks (name, block_number, block_hash) "
            "VALUES (?, ?, ?)",
            (self.name, number, block_hash),
        )

    def forget_delivery(self, log: Log) -> None:
        """Forget ``log`` (it was retracted): a replacement with the same index may come."""
        self.db.execute(
            "DELETE FROM follower_delivered WHERE name = ? AND block_hash = ? AND log_index = ?",
            (self.name, log.block_hash, log.log_index),
        )

    def advance(self, checkpoint: Checkpoint, *, keep_depth: int) -> None:
        """Move the checkpoint forward and forget what no reorganisation can reach.

        Block hashes are kept for ``keep_depth`` blocks below the checkpoint, plus the
        newest one beneath that window as an anchor; delivered logs below the anchor are
        forgotten (they can neither be retracted nor fetched again).
        """
        self.db.execute(
            "INSERT INTO follower_checkpoint (name, block_number, block_hash) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET block_number = excluded.block_number, "
            "block_hash = excluded.block_hash",
            (self.name, checkpoint.number, checkpoint.hash),
        )
        self.remember_block(checkpoint.number, checkpoint.hash)
        anchor = self.db.execute(
            "SELECT MAX(block_number) FROM follower_blocks WHERE name = ? AND block_number <= ?",
            (self.name, checkpoint.number - keep_depth),
        ).fetchone()[0]
        if anchor is None:
            return
        forgotten = self.db.execute(
            "DELETE FROM follower_blocks WHERE name = ? AND block_number < ?", (self.name, anchor)
        ).rowcount
        forgotten += self.db.execute(
            "DELETE FROM follower_delivered WHERE name = ? AND block_number < ?",
            (self.name, anchor),
        ).rowcount
        if forgotten:
            self.db.execute(
                "UPDATE follower_checkpoint SET horizon = MAX(horizon, ?) WHERE name = ?",
                (anchor, self.name),
            )

    def rewind(self, ancestor: Checkpoint | None) -> None:
        """Go back to ``ancestor`` (``None``: start over) after a reorganisation.

        The caller has already retracted every delivered log above it.
        """
        number = ancestor.number if ancestor else -1
        self.db.execute(
            "DELETE FROM follower_blocks WHERE name = ? AND block_number > ?", (self.name, number)
        )
        if ancestor is None:
            self.db.execute("DELETE FROM follower_checkpoint WHERE name = ?", (self.name,))
            return
        self.db.execute(
            "UPDATE follower_checkpoint SET block_number = ?, block_hash = ? WHERE name = ?",
            (ancestor.number, ancestor.hash, self.name),
        )
