"""The door's release journal: what this device sent for each sale, kept across restarts.

The chain is the guard against a second release (``release`` succeeds once per sale), but
it does not know whether *this door* opened for the release it mined. The journal does:
one row per sale order, written before and after each step, so a device that stopped
(crash, power cut, kill) between two steps knows where it was:

``releasing``  the device decided to release and is about to send the transaction
``sent``       the node accepted it: its hash and signed bytes are kept
``released``   it is mined (block number kept); the door has not reported ``open`` yet
``opened``     the shadow's reported state says the door opened for it

A row that never reached the chain (the node refused it, the call would revert) is
removed. SQLite in WAL mode with ``synchronous=NORMAL`` keeps a committed row through a
process crash (:mod:`pervasive.store`).

Example::

    journal = ReleaseJournal.open(folder / "releases.sqlite")
    journal.begin(31337, order, buyer, warehouse)
    journal.sent(31337, order, tx_hash, raw)
    journal.released(31337, order, block=12)
    journal.opened(31337, order)
    journal.get(31337, order).stage           # Stage.OPENED
"""

from __future__ import annotations

import enum
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pervasive.crypto import checksum_address
from pervasive.errors import InternalError
from pervasive.store import open_database, transaction

__all__ = ["ReleaseEntry", "ReleaseJournal", "Stage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    chain_id INTEGER NOT NULL,
    sale_order TEXT NOT NULL,
    buyer TEXT NOT NULL,
    warehouse TEXT NOT NULL,
    stage TEXT NOT NULL,
    tx_hash TEXT,
    raw BLOB,
    block INTEGER,
    started_at REAL NOT NULL,
    released_at REAL,
    opened_at REAL,
    PRIMARY KEY (chain_id, sale_order)
);
"""


class Stage(enum.StrEnum):
    """How far a release of this device got (see the module docstring)."""

    RELEASING = "releasing"
    SENT = "sent"
    RELEASED = "released"
    OPENED = "opened"


@dataclass(frozen=True)
class ReleaseEntry:
    """One sale order's row of the journal."""

    chain_id: int
    order: str
    buyer: str
    warehouse: str
    """The account that signed (or was to sign) the release."""
    stage: Stage
    tx_hash: str | None
    raw: bytes | None
    """The signed transaction as first sent: re-sending these bytes cannot release twice."""
    block: int | None
    started_at: float
    released_at: float | None
    opened_at: float | None

    @property
    def unfinished(self) -> bool:
        """Whether the door has not yet opened for this entry."""
        return self.stage is not Stage.OPENED


_COLUMNS = (
    "chain_id, sale_order, buyer, warehouse, stage, tx_hash, raw, block, "
    "started_at, released_at, opened_at"
)


def _entry(row: tuple[Any, ...]) -> ReleaseEntry:
    chain_id, order, buyer, warehouse, stage, tx_hash, raw, block, started, released, opened = row
    return ReleaseEntry(
        chain_id=int(chain_id),
        order=str(order),
        buyer=str(buyer),
        warehouse=str(warehouse),
        stage=Stage(str(stage)),
        tx_hash=None if tx_hash is None else str(tx_hash),
        raw=None if raw is None else bytes(raw),
        block=None if block is None else int(block),
        started_at=float(started),
        released_at=None if released is None else float(released),
        opened_at=None if opened is None else float(opened),
    )


class ReleaseJournal:
    """The journal in one SQLite file (or ``":memory:"`` for a test)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path | str) -> ReleaseJournal:
        """Open (creating if needed) the journal at ``path``.

        Example: ``ReleaseJournal.open(device_folder / "releases.sqlite")``.
        """
        return cls(open_database(path, schema=_SCHEMA))

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def get(self, chain_id: int, order: str) -> ReleaseEntry | None:
        """The row of ``order`` on ``chain_id``, or ``None``.

        Example: ``journal.get(ledger.chain_id, receipt.order)``.
        """
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM releases WHERE chain_id = ? AND sale_order = ?",  # noqa: S608
            (chain_id, checksum_address(order)),
        ).fetchone()
        return None if row is None else _entry(row)

    def unfinished(self, chain_id: int) -> list[ReleaseEntry]:
        """Rows of ``chain_id`` whose door has not opened yet, oldest first.

        Example: ``for entry in journal.unfinished(ledger.chain_id): ...``.
        """
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM releases WHERE chain_id = ? AND stage != ? "  # noqa: S608
            "ORDER BY started_at",
            (chain_id, Stage.OPENED.value),
        ).fetchall()
        return [_entry(row) for row in rows]

    def begin(self, chain_id: int, order: str, buyer: str, warehouse: str) -> ReleaseEntry:
        """Record the decision to release ``order`` to ``buyer``, before anything is sent.

        :class:`InternalError` if the order already has a row (the caller checks first).
        """
        with transaction(self._db):
            try:
                self._db.execute(
                    "INSERT INTO releases (chain_id, sale_order, buyer, warehouse, stage, "
                    "started_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (chain_id, checksum_address(order), checksum_address(buyer),
                     checksum_address(warehouse), Stage.RELEASING.value, time.time()),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise InternalError(f"the journal already holds a release of {order}") from None
        return self._require(chain_id, order)

    def sent(self, chain_id: int, order: str, tx_hash: str, raw: bytes) -> ReleaseEntry:
        """Record that the node accepted the release ``tx_hash`` (signed bytes ``raw``)."""
        self._update(
            chain_id, order, "stage = ?, tx_hash = ?, raw = ?", (Stage.SENT.value, tx_hash, raw)
        )
        return self._require(chain_id, order)

    def released(
        self, chain_id: int, order: str, *, block: int | None, tx_hash: str | None = None
    ) -> ReleaseEntry:
        """Record that the release is mined (in ``block``, when known)."""
        self._update(
            chain_id,
            order,
            "stage = ?, block = ?, released_at = ?, tx_hash = COALESCE(?, tx_hash)",
            (Stage.RELEASED.value, block, time.time(), tx_hash),
        )
        return self._require(chain_id, order)

    def opened(self, chain_id: int, order: str) -> ReleaseEntry:
        """Record that the door reported ``open`` for this release."""
        self._update(chain_id, order, "stage = ?, opened_at = ?", (Stage.OPENED.value, time.time()))
        return self._require(chain_id, order)

    def forget(self, chain_id: int, order: str) -> None:
        """Remove the row of a release that never reached the chain."""
        with transaction(self._db):
            self._db.execute(
                "DELETE FROM releases WHERE chain_id = ? AND sale_order = ?",
                (chain_id, checksum_address(order)),
            )

    def _update(
        self, chain_id: int, order: str, assignments: str, values: tuple[object, ...]
    ) -> None:
        with transaction(self._db):
            cursor = self._db.execute(
                f"UPDATE releases SET {assignments} WHERE chain_id = ? AND sale_order = ?",  # noqa: S608
                (*values, chain_id, checksum_address(order)),
            )
        if cursor.rowcount != 1:
            raise InternalError(f"the journal holds no release of {order} to update")

    def _require(self, chain_id: int, order: str) -> ReleaseEntry:
        entry = self.get(chain_id, order)
        if entry is None:
            raise InternalError(f"the journal lost its row of {order}")
        return entry
