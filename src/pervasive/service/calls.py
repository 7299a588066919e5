"""The exactly-once sender: the inbox's calls become transactions, each mined at most once.

One task sends the calls of the inbox (:mod:`pervasive.service.inbox`) in acceptance
order, one at a time, from the service's operator account. For each call:

1. ``pending``: estimate gas (a revert here is the contract refusing the call:
   ``reverted``, counted, nothing sent); read fees and the account's next nonce;
   **sign locally and store the signed bytes, nonce and hash** (``signed``), and only
   then broadcast them.
2. ``signed``: broadcast the *stored* bytes (again, after a restart: a node that has
   them answers "already known") and wait for the receipt: ``done`` (or ``reverted``
   when mined and reverted).

Why a kill at any point applies a call at most once, and an accepted call at least
once: a transaction is identified by its nonce; only one transaction per nonce of an
account can ever be mined. Before step 1's commit nothing was broadcast, so signing
again (the next nonce, from the node) is safe. After it, the service only ever
broadcasts those same bytes, so the call is mined once or never. "Never" is detected:
when the node says the nonce is used ("nonce too low") and it holds no receipt for
our hash, another transaction took the nonce and ours can never be mined, so the
call goes back to ``pending`` and is signed anew. Otherwise the stored bytes are
re-sent until they are mined. Calls are sent one at a time, each after the previous
one's receipt, so a call is estimated against the state its predecessors left.

The operator account must be this service's own: another sender using it only costs
re-signing (above), never a double application.

Example::

    sender = CallSender(inbox, ledger, operator, contract.address)
    task = asyncio.create_task(sender.run())
    sender.wake(); call = await sender.wait_for(call_id)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from pervasive.chain import (
    ContractCall,
    Ledger,
    Signer,
    TransactionRefused,
    already_sent,
    nonce_too_low,
)
from pervasive.crypto import checksum_address
from pervasive.errors import (
    ChainUnavailable,
    TransactionReverted,
    TransactionTimeout,
)
from pervasive.service.inbox import CallStatus, Inbox, InboxCall

__all__ = ["CallSender"]

_log = logging.getLogger(__name__)


class CallSender:
    """Sends the inbox's calls to ``contract`` from ``operator``, exactly once each."""

    def __init__(
        self,
        inbox: Inbox,
        ledger: Ledger,
        operator: Signer,
        contract: str,
        *,
        counters: Counter[str] | None = None,
        retry_after: float = 0.5,
    ) -> None:
        self.inbox = inbox
        self.ledger = ledger
        self.operator = operator
        self.contract = checksum_address(contract)
        self._transactor = ledger.transactor(operator)
        self.counters: Counter[str] = counters if counters is not None else Counter()
        """``applied`` and ``reverted`` calls, ``resigned`` transactions, ``send_failed``."""
        self.retry_after = retry_after
        """Seconds before a pass that failed (node down, no receipt) is tried again."""
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Condition()

    # -- driving ------------------------------------------------------------------------
    def wake(self) -> None:
        """New calls are in the inbox: send them now."""
        self._wakeup.set()

    async def run(self) -> None:
        """Send open calls (those left by a previous run first) until cancelled.

        Example: ``task = asyncio.create_task(sender.run())``.
        """
        while True:
            self._wakeup.clear()
            complete = await self.send_open()
            timeout = None if complete else self.retry_after
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def send_open(self) -> bool:
        """One pass over the open calls, in order; False when one must be retried later.

        Example: ``await sender.send_open()`` (tests drive the sender without a task).
        """
        for call in self.inbox.open_calls():
            if not await self._advance(call):
                return False
        return True

    async def wait_for(self, call_id: int, timeout: float | None = None) -> InboxCall:
        """The call once it is finished (``done`` or ``reverted``).

        Example: ``(await sender.wait_for(call_id)).transaction_hash``.
        """
        async with asyncio.timeout(timeout), self._progress:
            while True:
                call = self.inbox.get(call_id)
                if call.finished:
                    return call
                await self._progress.wait()

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    # -- one call -----------------------------------------------------------------------
    async def _advance(self, call: InboxCall) -> bool:
        """Take ``call`` to its end; False when it must wait (the chain is away, no receipt)."""
        try:
            if call.status is CallStatus.PENDING:
                call = await self._sign(call)
                if call.finished:
                    await self._notify()
                    return True
            return await self._broadcast_and_wait(call)
        except (ChainUnavailable, TransactionTimeout, TransactionRefused) as exc:
            self.counters["send_failed"] += 1
            self.inbox.note_failure(call.id, str(exc))
            _log.warning("call %d (%s) not applied yet: %s", call.id, call.function, exc)
            return False

    async def _sign(self, call: InboxCall) -> InboxCall:
        """Estimate, sign and store the transaction of a pending call (nothing sent yet)."""
        try:
            pending = await self._transactor.prepare(ContractCall(self.contract, call.calldata))
        except TransactionReverted as refused:
            self._reverted(call, refused.reason or str(refused), None)
            return self.inbox.get(call.id)
        # stored before the broadcast: from here on only these bytes are ever sent
        self.inbox.mark_signed(call.id, pending.nonce, pending.raw, pending.hashes[0])
        return self.inbox.get(call.id)

    async def _broadcast_and_wait(self, call: InboxCall) -> bool:
        assert call.raw is not None and call.transaction_hash is not None
        tx_hash = call.transaction_hash
        try:
            await self.ledger.rpc.send_raw(call.raw)
        except TransactionRefused as refused:
            if not already_sent(refused.message):
                if not nonce_too_low(refused.message):
                    raise
                if await self.ledger.receipt(tx_hash) is None:
                    # the nonce is taken by another transaction: ours can never be mined
                    self.counters["resigned"] += 1
                    self.inbox.reset(call.id, f"nonce {call.nonce} taken by another transaction")
                    return await self._advance(self.inbox.get(call.id))
        try:
            receipt = await self.ledger.rpc.wait_for_receipt([tx_hash])
        except TransactionReverted as reverted:
            self._reverted(call, reverted.reason or str(reverted), tx_hash)
        else:
            self.inbox.mark_done(call.id, tx_hash, receipt.block_number)
            self.counters["applied"] += 1
        await self._notify()
        return True

    def _reverted(self, call: InboxCall, reason: str, tx_hash: str | None) -> None:
        self.inbox.mark_reverted(call.id, reason, tx_hash)
        self.counters["reverted"] += 1
        _log.info("call %d (%s from %s) reverted: %s", call.id, call.function, call.source, reason)
