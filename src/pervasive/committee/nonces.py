"""Nonces that never repeat for a member, across restarts: ``(epoch << 40) | counter``.

A receiver refuses a message whose digest it saw before (a replay). A member that
restarts must therefore never sign the same envelope twice with a different meaning,
nor be mistaken for a replay of itself: every start draws a new *epoch* from durable
storage (:class:`SQLiteEpochs`) and counts messages within it. 2^40 messages per start
and 2^24 starts fit in the ``uint64`` nonce.

Example::

    signer = EnvelopeSigner(key, domain, session, epoch=SQLiteEpochs(db).next(session, me))
    envelope = signer.sign(round=3, kind=1, body=b"...")
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pervasive.committee.envelope import Envelope
from pervasive.crypto import PrivateKey
from pervasive.errors import InvalidInput
from pervasive.store import attach

__all__ = ["COUNTER_BITS", "EnvelopeSigner", "MemoryEpochs", "SQLiteEpochs"]

COUNTER_BITS = 40
"""Low bits of a nonce that count messages within one epoch."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS committee_epochs (
    session TEXT NOT NULL,
    member TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    PRIMARY KEY (session, member)
);
"""


class SQLiteEpochs:
    """Durable epoch counters, one per ``(session, member)``.

    Example: ``epoch = SQLiteEpochs(settings.path("node.sqlite")).next(agreement, me)``.
    """

    def __init__(self, database: Path | str | sqlite3.Connection) -> None:
        self._db = attach(database, _SCHEMA)

    def next(self, session: str, member: str) -> int:
        """A number larger than every one returned before for this member of ``session``."""
        row = self._db.execute(
            "INSERT INTO committee_epochs (session, member, epoch) VALUES (?, ?, 1) "
            "ON CONFLICT (session, member) DO UPDATE SET epoch = epoch + 1 RETURNING epoch",
            (session, member),
        ).fetchone()
        return int(row[0])


class MemoryEpochs:
    """Epochs in memory (tests, and members that accept losing state on a crash)."""

    def __init__(self) -> None:
        self._epochs: dict[tuple[str, str], int] = {}

    def next(self, session: str, member: str) -> int:
        """See :meth:`SQLiteEpochs.next`."""
        epoch = self._epochs.get((session, member), 0) + 1
        self._epochs[(session, member)] = epoch
        return epoch


class EnvelopeSigner:
    """Signs a member's envelopes for one session, each with a fresh nonce.

    Example: ``EnvelopeSigner(key, spec.domain_separator, spec.address, epoch=1).sign(0, 1, b"")``.
    """

    def __init__(self, key: PrivateKey, domain: bytes, session: str, *, epoch: int) -> None:
        if not 0 < epoch < 1 << (64 - COUNTER_BITS):
            raise InvalidInput(f"epoch {epoch} does not fit a 64-bit nonce")
        self.key = key
        self.address = key.address
        self.domain = domain
        self.session = session
        self.epoch = epoch
        self._counter = 0

    def sign(self, round: int, kind: int, body: bytes) -> Envelope:
        """Sign ``body`` as a ``kind`` message of ``round`` with the next nonce."""
        self._counter += 1
        if self._counter >= 1 << COUNTER_BITS:
            raise InvalidInput("this epoch's nonces are used up: restart the member")
        nonce = (self.epoch << COUNTER_BITS) | self._counter
        return Envelope.create(
            self.key, self.domain, session=self.session, round=round, kind=kind, nonce=nonce,
            body=body,
        )  # fmt: skip
