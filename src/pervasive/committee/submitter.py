"""Exactly one transaction per round across a committee, durably, with stand-in take-over.

Once a committee agrees on round ``r`` (a window ``t`` of paper 002, a penalty of
paper 003), the contract must receive exactly one transaction for it. The protocol
names one *designated* member; the others keep the same fully signed transaction and
watch the chain:

- the designated member records the transaction here (SQLite, before anything is
  sent) and sends it at once (the contract refuses a second one for ``r``; the gas
  estimate meets that refusal before a transaction leaves);
- every other member records it with a due time ``takeover_after * rank`` seconds
  later (:func:`takeover_rank`: 1, 2, ... after the designated member, so two
  stand-ins never race); when it falls due and the chain still has no record of
  ``r``, it sends the transaction itself;
- a revert the port classifies as "already recorded", or a record found on-chain,
  ends the row as ``recorded``: a recorded round is never sent again.

Rows survive a crash: on restart :meth:`Submitter.pending` lists what is left, and a
row marked ``sending`` (the process died between sending and the receipt) is checked
on-chain before anything is sent again. The chain is reached through a
:class:`SubmissionPort` (a contract wrapper in production). What is submitted is any
value with ``encode() -> bytes``; the submitter stores its bytes and gives the port the
value decoded again.

Example::

    submitter = Submitter(db, agreement, port, SignedUpdate.decode, takeover_after=10.0)
    submitter.add(t, signed_update, designated=True, rank=0, now=clock())
    receipts = await submitter.run_due(now=clock())
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from pervasive.chain import Receipt
from pervasive.errors import InvalidInput, TransactionReverted
from pervasive.store import attach

__all__ = [
    "Encodable",
    "Submission",
    "SubmissionPort",
    "SubmissionStatus",
    "Submitter",
    "takeover_rank",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS committee_submissions (
    session TEXT NOT NULL,
    round INTEGER NOT NULL,
    status TEXT NOT NULL,
    designated INTEGER NOT NULL,
    due REAL NOT NULL,
    payload BLOB NOT NULL,
    tx_hash TEXT,
    gas_used INTEGER,
    block INTEGER,
    PRIMARY KEY (session, round)
);
CREATE INDEX IF NOT EXISTS committee_submissions_due
    ON committee_submissions (session, status, due);
"""
_COLUMNS = "round, status, designated, due, payload, tx_hash, gas_used, block"


class Encodable(Protocol):
    """A value the submitter can store: it encodes itself to bytes."""

    def encode(self) -> bytes:
        """A self-contained byte form, decoded by the submitter's ``decode``."""
        ...


T = TypeVar("T", bound=Encodable)
T_contra = TypeVar("T_contra", bound=Encodable, contravariant=True)


class SubmissionPort(Protocol[T_contra]):
    """What the submitter needs from the contract the committee serves."""

    async def recorded(self, round: int) -> bool:
        """Whether round ``round`` already has its record on-chain."""
        ...

    async def submit(self, transaction: T_contra) -> Receipt:
        """Send the transaction and return its receipt (reverts raise)."""
        ...

    def already_recorded(self, error: TransactionReverted) -> bool:
        """Whether ``error`` is the contract refusing a second transaction for a round."""
        ...


class SubmissionStatus(enum.StrEnum):
    """Where a round's transaction stands at this member."""

    WAITING = "waiting"
    """Known and due at ``due``; nothing sent yet."""
    SENDING = "sending"
    """A transaction was (possibly) sent; check the chain before sending again."""
    RECORDED = "recorded"
    """The round is recorded on-chain (by us or by another member)."""


@dataclass(frozen=True)
class Submission(Generic[T]):
    """One row of the table."""

    round: int
    status: SubmissionStatus
    designated: bool
    due: float
    transaction: T
    tx_hash: str | None = None
    gas_used: int | None = None
    block: int | None = None


def takeover_rank(members: Sequence[str], designated: str, member: str) -> int:
    """How many members come between ``designated`` and ``member`` in ring order (0: itself).

    Example: ``takeover_rank(("a", "b", "c"), "b", "a") == 2``.
    """
    if designated not in members or member not in members:
        raise InvalidInput("both the designated member and this member must be in the committee")
    return (members.index(member) - members.index(designated)) % len(members)


class Submitter(Generic[T]):
    """The durable submission table of one member in one session, and the send logic."""

    def __init__(
        self,
        database: Path | str | sqlite3.Connection,
        session: str,
        port: SubmissionPort[T],
        decode: Callable[[bytes], T],
        *,
        takeover_after: float,
    ) -> None:
        self._db = attach(database, _SCHEMA)
        self.session = session
        self.port = port
        self._decode = decode
        self.takeover_after = takeover_after
        self.sent = 0
        """Transactions this member sent."""
        self.skipped = 0
        """Transactions not sent because the round was already recorded."""

    def add(self, round: int, transaction: T, *, designated: bool, rank: int, now: float) -> bool:
        """Record a transaction to send (at once when designated); ``False`` if ``round`` was known.

        ``rank`` is this member's :func:`takeover_rank` after the designated one.
        """
        due = now if designated else now + self.takeover_after * max(rank, 1)
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO committee_submissions "
            "(session, round, status, designated, due, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (
                self.session, round, SubmissionStatus.WAITING.value, int(designated), due,
                transaction.encode(),
            ),
        )  # fmt: skip
        return cursor.rowcount == 1

    def get(self, round: int) -> Submission[T] | None:
        """The row of ``round``, if any."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM committee_submissions WHERE session = ? AND round = ?",  # noqa: S608
            (self.session, round),
        ).fetchone()
        return None if row is None else self._row(row)

    def pending(self) -> list[Submission[T]]:
        """Rows not yet recorded on-chain, oldest round first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM committee_submissions "  # noqa: S608
            "WHERE session = ? AND status != ? ORDER BY round",
            (self.session, SubmissionStatus.RECORDED.value),
        ).fetchall()
        return [self._row(r) for r in rows]

    def due(self, now: float) -> list[Submission[T]]:
        """Pending rows whose time has come, oldest round first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM committee_submissions "  # noqa: S608
            "WHERE session = ? AND status != ? AND due <= ? ORDER BY round",
            (self.session, SubmissionStatus.RECORDED.value, now),
        ).fetchall()
        return [self._row(r) for r in rows]

    def any_due(self, now: float) -> bool:
        """Whether some pending row's time has come (an index lookup, cheap for a timer)."""
        row = self._db.execute(
            "SELECT 1 FROM committee_submissions WHERE session = ? AND status IN (?, ?) "
            "AND due <= ? LIMIT 1",
            (self.session, SubmissionStatus.WAITING.value, SubmissionStatus.SENDING.value, now),
        ).fetchone()
        return row is not None

    async def submit(self, submission: Submission[T]) -> Receipt | None:
        """Send one due transaction unless the chain already records it; ``None`` when not sent.

        Raises what the port raises, except its "already recorded" revert.
        """
        r = submission.round
        # The designated member's first send skips the chain query: the contract refuses
        # a second transaction for r and the gas estimate meets that refusal before
        # anything is sent (handled below), so the query would only cost a round trip.
        # A stand-in, or a row that may already have gone out, asks first.
        first_try = submission.designated and submission.status is SubmissionStatus.WAITING
        if not first_try and await self.port.recorded(r):
            self._finish(r, None)
            self.skipped += 1
            return None
        self._set_status(r, SubmissionStatus.SENDING)
        try:
            receipt = await self.port.submit(submission.transaction)
        except TransactionReverted as exc:
            if self.port.already_recorded(exc):
                self._finish(r, None)
                self.skipped += 1
                return None
            self._set_status(r, SubmissionStatus.WAITING)
            raise
        self.sent += 1
        self._finish(r, receipt)
        return receipt

    async def run_due(self, now: float) -> list[Receipt]:
        """Submit every due row in round order; return the receipts of what was sent."""
        receipts = []
        for submission in self.due(now):
            receipt = await self.submit(submission)
            if receipt is not None:
                receipts.append(receipt)
        return receipts

    def _set_status(self, round: int, status: SubmissionStatus) -> None:
        self._db.execute(
            "UPDATE committee_submissions SET status = ? WHERE session = ? AND round = ?",
            (status.value, self.session, round),
        )

    def _finish(self, round: int, receipt: Receipt | None) -> None:
        self._db.execute(
            "UPDATE committee_submissions SET status = ?, tx_hash = ?, gas_used = ?, block = ? "
            "WHERE session = ? AND round = ?",
            (
                SubmissionStatus.RECORDED.value,
                receipt.transaction_hash if receipt else None,
                receipt.gas_used if receipt else None,
                receipt.block_number if receipt else None,
                self.session,
                round,
            ),
        )

    def _row(self, row: Sequence[object]) -> Submission[T]:
        round_, status, designated, due, payload, tx_hash, gas, block = row
        return Submission(
            round=int(str(round_)),
            status=SubmissionStatus(str(status)),
            designated=bool(designated),
            due=float(str(due)),
            transaction=self._decode(payload if isinstance(payload, bytes) else b""),
            tx_hash=None if tx_hash is None else str(tx_hash),
            gas_used=None if gas is None else int(str(gas)),
            block=None if block is None else int(str(block)),
        )
