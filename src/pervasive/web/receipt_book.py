"""The buyers' receipts the web app has seen, kept in SQLite (``<home>/web/receipts.sqlite``).

A receipt signed in the browser (wallet mode) exists nowhere else: once verified it
is kept here, so "my purchases" shows it again later and after a restart. A receipt
the server signed with a session's key is kept too (the key is gone after sign-out).
Only verified receipts are stored; storing the same one twice keeps one row.

Example::

    book = ReceiptBook(settings.path("web", "receipts.sqlite"))
    book.put(receipt)                      # verified first
    book.get(receipt.chain_id, receipt.order, receipt.buyer) == receipt
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pervasive.crypto import checksum_address
from pervasive.domain.sale_receipt import SaleReceipt
from pervasive.store import open_database, transaction

__all__ = ["ReceiptBook"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    chain_id  INTEGER NOT NULL,
    sale_order TEXT   NOT NULL,
    buyer     TEXT    NOT NULL,
    signature BLOB    NOT NULL,
    PRIMARY KEY (chain_id, sale_order, buyer)
);
"""


class ReceiptBook:
    """Verified receipts by (chain id, order, buyer); ``":memory:"`` for a throwaway book."""

    def __init__(self, path: Path | str) -> None:
        self._db: sqlite3.Connection = open_database(path, schema=_SCHEMA)

    def put(self, receipt: SaleReceipt) -> None:
        """Verify ``receipt`` (``InvalidReceipt`` if it does not) and keep it.

        Example: ``book.put(SaleReceipt.sign(key, chain_id, order, key.address))``.
        """
        receipt.verify()
        with transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?)",
                (
                    receipt.chain_id,
                    checksum_address(receipt.order),
                    checksum_address(receipt.buyer),
                    bytes(receipt.signature),
                ),
            )

    def get(self, chain_id: int, order: str, buyer: str) -> SaleReceipt | None:
        """The kept receipt of ``buyer`` for ``order``, if any.

        Example: ``book.get(ledger.chain_id, order, session.address)``.
        """
        row = self._db.execute(
            "SELECT signature FROM receipts WHERE chain_id = ? AND sale_order = ? AND buyer = ?",
            (chain_id, checksum_address(order), checksum_address(buyer)),
        ).fetchone()
        if row is None:
            return None
        return SaleReceipt.from_signature(chain_id, order, buyer, bytes(row[0]))

    def close(self) -> None:
        """Close the database."""
        self._db.close()
