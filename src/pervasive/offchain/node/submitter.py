"""Exactly one update transaction per window, durably, with take-over (paper 002, section 3).

Once the nodes agree on window ``t``, the agreement contract must receive exactly one
update. The protocol names one *designated* node (``AgreementSpec.submitter_for``);
the others keep the same fully signed update and watch the chain:

- the designated node records the update here (SQLite, before any transaction) and
  sends it at once (the contract refuses a second update of ``t``; the gas estimate
  meets that refusal before a transaction leaves);
- every other node records it with a due time ``takeover_after * rank`` seconds later
  (rank 1, 2, ... after the designated node, so two stand-ins never race); when it
  falls due and the chain still has no record of ``t``, it sends the update itself;
- a revert saying the window is already updated, or a record found on-chain, ends the
  entry as ``recorded``: an already recorded ``t`` is detected and never resent.

Rows survive a crash: on restart :meth:`UpdateSubmitter.pending` lists what is left,
and a row marked ``sending`` (the process died between sending and the receipt) is
checked on-chain before anything is sent again. The chain is reached through the
:class:`AgreementPort` (the Agreement contract wrapper in production).
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pervasive.chain import Receipt
from pervasive.crypto import Signature, abi_decode, abi_encode
from pervasive.errors import TransactionReverted
from pervasive.offchain.journal import attach_database
from pervasive.offchain.outcomes import DisputeEvidence, DisputeKind

__all__ = [
    "AgreementPort",
    "OnchainUpdate",
    "SubmissionStatus",
    "UpdateSubmitter",
]

ALREADY_RECORDED = "window already updated"
"""The agreement contract's revert reason for a second update of the same window."""

_UPDATE_TYPES = ["uint256", "bytes", "bytes32", "bytes32", "bytes", "bytes[]"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS node_updates (
    agreement TEXT NOT NULL,
    t INTEGER NOT NULL,
    status TEXT NOT NULL,
    designated INTEGER NOT NULL,
    due REAL NOT NULL,
    update_data BLOB NOT NULL,
    tx_hash TEXT,
    gas_used INTEGER,
    block INTEGER,
    PRIMARY KEY (agreement, t)
);
CREATE INDEX IF NOT EXISTS node_updates_due ON node_updates (agreement, status, due);
"""


@dataclass(frozen=True)
class OnchainUpdate:
    """The arguments of ``update``/``update_with_data``: ``f(w[t])`` signed by every node."""

    t: int
    result: bytes
    window_hash: bytes
    proofs_hash: bytes
    signatures: tuple[Signature, ...]
    """Every node's signature of the contract's ``Update`` struct, in the agreement's node order."""
    data: bytes = b""
    """The window data under on-chain proof of storage, else empty."""

    def encode(self) -> bytes:
        """A self-contained byte form (for the durable table)."""
        return abi_encode(
            _UPDATE_TYPES,
            [
                self.t,
                self.result,
                self.window_hash,
                self.proofs_hash,
                self.data,
                [s.to_bytes() for s in self.signatures],
            ],
        )

    @classmethod
    def decode(cls, blob: bytes) -> OnchainUpdate:
        """Inverse of :meth:`encode`."""
        t, result, window_hash, proofs_hash, data, signatures = abi_decode(_UPDATE_TYPES, blob)
        return cls(
            t,
            result,
            window_hash,
            proofs_hash,
            tuple(Signature.from_bytes(s) for s in signatures),
            data,
        )


class AgreementPort(Protocol):
    """What a node needs from the agreement contract."""

    async def recorded(self, t: int) -> bool:
        """Whether window ``t`` already has a record on-chain."""
        ...

    async def submit_update(self, update: OnchainUpdate) -> Receipt:
        """Send the update transaction and return its receipt (reverts raise)."""
        ...

    async def open_dispute(
        self, t: int, kind: DisputeKind, evidence: DisputeEvidence, data: bytes
    ) -> Receipt:
        """Send a dispute on window ``t`` with its signed evidence."""
        ...


class SubmissionStatus(enum.StrEnum):
    """Where an update stands at this node."""

    WAITING = "waiting"
    """Known and due at ``due``; nothing sent yet."""
    SENDING = "sending"
    """A transaction was (possibly) sent; check the chain before sending again."""
    RECORDED = "recorded"
    """The window is recorded on-chain (by us or by another node)."""


@dataclass(frozen=True)
class Submission:
    """One row of the table."""

    t: int
    status: SubmissionStatus
    designated: bool
    due: float
    update: OnchainUpdate
    tx_hash: str | None = None
    gas_used: int | None = None
    block: int | None = None


class UpdateSubmitter:
    """The durable update table of one node in one agreement, and the send logic.

    Example::

        submitter = UpdateSubmitter(db_path, spec.address, port, takeover_after=10.0)
        submitter.add(update, designated=True, rank=0, now=clock())
        receipts = await submitter.run_due(now=clock())
    """

    def __init__(
        self,
        path: Path | str | sqlite3.Connection,
        agreement: str,
        port: AgreementPort,
        *,
        takeover_after: float,
    ) -> None:
        self._db = attach_database(path, _SCHEMA)
        self.agreement = agreement
        self.port = port
        self.takeover_after = takeover_after
        self.sent = 0
        """Update transactions this node sent."""
        self.skipped = 0
        """Updates not sent because the window was already recorded."""

    def add(self, update: OnchainUpdate, *, designated: bool, rank: int, now: float) -> bool:
        """Record an update to send (at once when designated); ``False`` if ``t`` was known.

        ``rank`` is this node's distance after the designated node (0 for itself).
        """
        due = now if designated else now + self.takeover_after * max(rank, 1)
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO node_updates "
            "(agreement, t, status, designated, due, update_data) VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.agreement,
                update.t,
                SubmissionStatus.WAITING.value,
                int(designated),
                due,
                update.encode(),
            ),
        )
        return cursor.rowcount == 1

    def get(self, t: int) -> Submission | None:
        """The row of window ``t``, if any."""
        row = self._db.execute(
            "SELECT t, status, designated, due, update_data, tx_hash, gas_used, block "
            "FROM node_updates WHERE agreement = ? AND t = ?",
            (self.agreement, t),
        ).fetchone()
        return None if row is None else _submission(row)

    def pending(self) -> list[Submission]:
        """Rows not yet recorded on-chain, oldest window first."""
        rows = self._db.execute(
            "SELECT t, status, designated, due, update_data, tx_hash, gas_used, block "
            "FROM node_updates WHERE agreement = ? AND status != ? ORDER BY t",
            (self.agreement, SubmissionStatus.RECORDED.value),
        ).fetchall()
        return [_submission(r) for r in rows]

    def due(self, now: float) -> list[Submission]:
        """Pending rows whose time has come, oldest window first."""
        rows = self._db.execute(
            "SELECT t, status, designated, due, update_data, tx_hash, gas_used, block "
            "FROM node_updates WHERE agreement = ? AND status != ? AND due <= ? ORDER BY t",
            (self.agreement, SubmissionStatus.RECORDED.value, now),
        ).fetchall()
        return [_submission(r) for r in rows]

    def any_due(self, now: float) -> bool:
        """Whether some pending row's time has come (an index lookup, cheap for a timer)."""
        row = self._db.execute(
            "SELECT 1 FROM node_updates WHERE agreement = ? AND status IN (?, ?) AND due <= ? "
            "LIMIT 1",
            (self.agreement, SubmissionStatus.WAITING.value, SubmissionStatus.SENDING.value, now),
        ).fetchone()
        return row is not None

    async def submit(self, submission: Submission) -> Receipt | None:
        """Send one due update unless the chain already records it; ``None`` when not sent.

        Raises what the port raises, except the contract's "already updated" revert.
        """
        t = submission.t
        # The designated node's first send skips the chain query: the contract refuses
        # a second update of t, and the gas estimate meets that refusal before anything
        # is sent (handled below), so the query would only cost a round trip. A stand-in,
        # or a row that may already have gone out, asks first.
        first_try = submission.designated and submission.status is SubmissionStatus.WAITING
        if not first_try and await self.port.recorded(t):
            self._finish(t, None)
            self.skipped += 1
            return None
        self._set_status(t, SubmissionStatus.SENDING)
        try:
            receipt = await self.port.submit_update(submission.update)
        except TransactionReverted as exc:
            if exc.reason and ALREADY_RECORDED in exc.reason:
                self._finish(t, None)
                self.skipped += 1
                return None
            self._set_status(t, SubmissionStatus.WAITING)
            raise
        self.sent += 1
        self._finish(t, receipt)
        return receipt

    async def run_due(self, now: float) -> list[Receipt]:
        """Submit every due row in window order; return the receipts of what was sent."""
        receipts = []
        for submission in self.due(now):
            receipt = await self.submit(submission)
            if receipt is not None:
                receipts.append(receipt)
        return receipts

    def _set_status(self, t: int, status: SubmissionStatus) -> None:
        self._db.execute(
            "UPDATE node_updates SET status = ? WHERE agreement = ? AND t = ?",
            (status.value, self.agreement, t),
        )

    def _finish(self, t: int, receipt: Receipt | None) -> None:
        self._db.execute(
            "UPDATE node_updates SET status = ?, tx_hash = ?, gas_used = ?, block = ? "
            "WHERE agreement = ? AND t = ?",
            (
                SubmissionStatus.RECORDED.value,
                receipt.transaction_hash if receipt else None,
                receipt.gas_used if receipt else None,
                receipt.block_number if receipt else None,
                self.agreement,
                t,
            ),
        )


def _submission(row: Sequence[object]) -> Submission:
    t, status, designated, due, data, tx_hash, gas, block = row
    return Submission(
        t=int(str(t)),
        status=SubmissionStatus(str(status)),
        designated=bool(designated),
        due=float(str(due)),
        update=OnchainUpdate.decode(data if isinstance(data, bytes) else b""),
        tx_hash=None if tx_hash is None else str(tx_hash),
        gas_used=None if gas is None else int(str(gas)),
        block=None if block is None else int(str(block)),
    )
