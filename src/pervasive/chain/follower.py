"""Following a contract's logs exactly once, across restarts and reorganisations.

Control flow of one :meth:`EventFollower.poll`:

1. Is the checkpoint block still canonical? If not, find the newest remembered block
   that is (the common ancestor), retract every log delivered above it (newest first:
   ``handler.retract(log.retracted(), db)``), and move the checkpoint back to it.
2. For each range of at most ``batch_blocks`` blocks up to ``head - confirmations``:
   read the range's last block, check that the range continues the checkpoint's chain
   (parent hash), fetch the logs, re-read the last block (unchanged, or the chain moved
   under us and the next poll sorts it out), deliver each log not yet delivered, then
   advance the checkpoint to the range's last block.

Exactly once, the contract with the handler: each ``deliver`` (and ``retract``) runs
inside a SQLite transaction on the follower's own database connection, passed to the
handler as ``db``; the follower records the log as delivered in the same transaction.
A handler that keeps its effects in that database (``db.execute(...)``, never
``COMMIT``) therefore sees every canonical log exactly once, even across ``kill -9``.
A handler with effects elsewhere (a message, an HTTP call) gets at-least-once: after
a crash between its effect and the commit the log is delivered again, so such a
handler must be idempotent by ``log.key``.

Batches: the logs of a range are delivered in as few transactions as is safe, one per
``batch_logs`` logs or ``batch_seconds`` of delivering, whichever comes first (a commit
costs more than mapping a log; the time bound keeps a slow handler from holding the
write lock long). Each ``deliver`` runs in its own savepoint: if it raises (or the task
is cancelled) only its own writes are undone, the logs delivered before it in the batch
commit, and the error is raised, exactly as with a transaction per log. A crash rolls
back the whole open batch, and its logs are delivered again on the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pervasive.chain.checkpoints import Checkpoint, CheckpointStore
from pervasive.chain.ledger import Ledger
from pervasive.chain.records import Log
from pervasive.chain.rpc import BlockRef
from pervasive.errors import ChainUnavailable, NotFound, UserError

__all__ = ["EventFollower", "FollowerError", "LogHandler"]

_log = logging.getLogger(__name__)


class FollowerError(UserError):
    """The follower cannot keep its exactly-once promise (see the message for why)."""


class LogHandler(Protocol):
    """What an :class:`EventFollower` hands logs to.

    Both methods run inside an open SQLite transaction on ``db``; write your effects
    through ``db`` and never commit or roll back yourself.
    """

    async def deliver(self, log: Log, db: sqlite3.Connection) -> None:
        """Apply a new canonical log."""

    async def retract(self, log: Log, db: sqlite3.Connection) -> None:
        """Undo a log delivered earlier whose block left the chain (``log.removed``)."""


class EventFollower:
    """Hands each log of ``addresses`` to ``handler`` exactly once, in chain order.

    ``confirmations`` keeps that many blocks between the head and the newest block
    followed (reorganisations shallower than that are never seen); ``max_reorg_depth``
    bounds how far back delivered logs are remembered for retraction; ``batch_logs``
    and ``batch_seconds`` bound one delivery transaction (see the module docstring).

    Example::

        follower = EventFollower(ledger, token, settings.path("follow.sqlite"), "token",
                                 handler, confirmations=2)
        task = asyncio.create_task(follower.run())
        ...
        follower.stop(); await task; follower.close()
    """

    def __init__(
        self,
        ledger: Ledger,
        addresses: str | Sequence[str],
        checkpoint_db_path: Path | str,
        name: str,
        handler: LogHandler,
        *,
        confirmations: int = 0,
        poll_interval: float = 1.0,
        batch_blocks: int = 1000,
        start_block: int = 0,
        topics: Sequence[bytes | None] | None = None,
        max_reorg_depth: int = 128,
        batch_logs: int = 500,
        batch_seconds: float = 0.05,
    ) -> None:
        if batch_blocks < 1 or confirmations < 0 or max_reorg_depth < 1 or batch_logs < 1:
            raise FollowerError(
                "batch_blocks, batch_logs and max_reorg_depth must be at least 1, "
                "confirmations at least 0"
            )
        if not batch_seconds > 0:
            raise FollowerError(f"batch_seconds must be positive, got {batch_seconds}")
        self.ledger = ledger
        self.addresses = [addresses] if isinstance(addresses, str) else list(addresses)
        self.name = name
        self.handler = handler
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.batch_blocks = batch_blocks
        self.start_block = start_block
        self.topics = topics
        self.max_reorg_depth = max_reorg_depth
        self.batch_logs = batch_logs
        self.batch_seconds = batch_seconds
        self.store = CheckpointStore(checkpoint_db_path, name)
        self._stopping = asyncio.Event()

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The last block whose logs were all delivered."""
        return self.store.checkpoint()

    # -- running ----------------------------------------------------------------------
    async def run(self) -> None:
        """Poll until :meth:`stop`; an unreachable node is retried, handler errors raise."""
        self._stopping.clear()
        while not self._stopping.is_set():
            try:
                await self.poll()
            except ChainUnavailable as exc:
                _log.warning("follower %s: %s; retrying", self.name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_interval)

    def stop(self) -> None:
        """Ask :meth:`run` (and a poll in progress, between two logs) to return."""
        self._stopping.set()

    def close(self) -> None:
        """Close the checkpoint database."""
        self.store.close()

    async def poll(self) -> int:
        """Process what is new since the checkpoint; return how many logs were delivered."""
        checkpoint = self.store.checkpoint()
        if checkpoint is not None and not await self._canonical(checkpoint):
            checkpoint = await self._rewind(checkpoint)
        target = await self.ledger.block_number() - self.confirmations
        first = checkpoint.number + 1 if checkpoint else self.start_block
        delivered = 0
        while first <= target and not self._stopping.is_set():
            last = min(first + self.batch_blocks - 1, target)
            last_block = await self._block(last)
            if last_block is None:
                break
            if checkpoint is not None:
                first_block = last_block if last == first else await self._block(first)
                if first_block is None or first_block.parent_hash != checkpoint.hash:
                    break  # reorganised since step 1: the next poll rewinds
            logs = await self.ledger.logs(self.addresses, first, last, self.topics)
            again = await self._block(last)
            if again is None or again.hash != last_block.hash:
                break  # the chain moved while we read it: the next poll sees the new one
            at = 0
            while at < len(logs):
                if self._stopping.is_set():
                    return delivered
                count, at = await self._deliver_batch(logs, at)
                delivered += count
            checkpoint = Checkpoint(last, last_block.hash)
            with self.store.transaction():
                self.store.advance(checkpoint, keep_depth=self.max_reorg_depth)
            first = last + 1
        return delivered

    # -- delivery and retraction ------------------------------------------------------
    async def _deliver_batch(self, logs: Sequence[Log], at: int) -> tuple[int, int]:
        """Deliver ``logs[at:]`` in one transaction up to a batch bound; (delivered, next)."""
        started = time.monotonic()
        delivered = 0
        failure: BaseException | None = None
        with self.store.transaction() as db:
            # delivered before a crash or stop, the checkpoint not yet advanced
            known = self.store.delivered_keys(logs[at].block_number, logs[-1].block_number)
            block: tuple[int, str] | None = None
            while at < len(logs) and delivered < self.batch_logs and not self._stopping.is_set():
                log = logs[at]
                at += 1
                if log.key in known:
                    continue
                db.execute("SAVEPOINT delivery")
                try:
                    await self.handler.deliver(log, db)
                    self._check_transaction("deliver")
                except BaseException as exc:
                    if not self.store.db.in_transaction:
                        raise  # the handler ended the transaction: nothing left to keep
                    db.execute("ROLLBACK TO delivery")
                    db.execute("RELEASE delivery")
                    failure = exc  # the batch so far commits; then the error is raised
                    break
                db.execute("RELEASE delivery")
                self.store.record_delivery(log)
                known.add(log.key)
                if block != (log.block_number, log.block_hash):
                    block = (log.block_number, log.block_hash)
                    self.store.remember_block(*block)
                delivered += 1
                if time.monotonic() - started >= self.batch_seconds:
                    break
        if failure is not None:
            raise failure
        return delivered, at

    async def _retract(self, log: Log) -> None:
        with self.store.transaction() as db:
            await self.handler.retract(log.retracted(), db)
            self._check_transaction("retract")
            self.store.forget_delivery(log)

    def _check_transaction(self, method: str) -> None:
        if not self.store.db.in_transaction:
            raise FollowerError(
                f"the handler's {method}() ended the follower's transaction: write through "
                "the given connection without COMMIT or ROLLBACK"
            )

    async def _rewind(self, checkpoint: Checkpoint) -> Checkpoint | None:
        """Retract what was delivered above the common ancestor and go back to it."""
        ancestor: Checkpoint | None = None
        for known in self.store.known_blocks():
            if known.number < checkpoint.number and await self._canonical(known):
                ancestor = known
                break
        if ancestor is None and self.store.horizon() >= 0:
            raise FollowerError(
                f"the chain reorganised deeper than max_reorg_depth={self.max_reorg_depth} "
                f"below block {checkpoint.number}; logs delivered there are forgotten and "
                f"cannot be retracted: rebuild the handler's state and the follower's database"
            )
        floor = ancestor.number if ancestor else -1
        retracted = self.store.delivered_after(floor)
        _log.info(
            "follower %s: reorganisation below block %d; back to %s, retracting %d log(s)",
            self.name, checkpoint.number, floor, len(retracted),
        )  # fmt: skip
        for log in retracted:
            await self._retract(log)
        with self.store.transaction():
            self.store.rewind(ancestor)
        return ancestor

    async def _canonical(self, known: Checkpoint) -> bool:
        block = await self._block(known.number)
        return block is not None and block.hash == known.hash

    async def _block(self, number: int) -> BlockRef | None:
        try:
            return await self.ledger.block(number)
        except NotFound:
            return None  # the chain got shorter (a reorganisation in progress)
