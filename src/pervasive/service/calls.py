"""The exactly-once sender: the inbox's calls become transactions, each mined at most once.

One task sends the calls of the inbox (:mod:`pervasive.service.inbox`) in acceptance
order, one at a time, from the service's operator account. For each call:

1. ``pending``: estimate gas (a revert here is the contract refusing the call:
   ``reverted``, counted, nothing sent); read fees and the account's next nonce;
   **sign locally and store the signed bytes, nonce and hash** (``signed``), and only
   then broadcast them.
2. ``signed``: broadcast the *stored* bytes (again, after a restart: a node that has
   them answers "already known") and wait for the receipt: ``done`` (or ``reverted``
   when mined and reverted); with ``confirmations`` > 0, ``mined`` first.
3. ``mined``: each pass looks again (``TransactionManager.settle``): ``done`` once the
   receipt's block is canonical and ``confirmations`` deep; if a reorganisation dropped
   it, the same bytes are sent again and the call is ``signed`` once more (counted
   ``resent``); if another transaction took its nonce meanwhile, it is signed anew.

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
    Finality,
    Ledger,
    Signer,
    TransactionRefused,
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
        confirmations: int | None = None,
    ) -> None:
        self.inbox = inbox
        self.ledger = ledger
        self.operator = operator
        self.contract = checksum_address(contract)
        self._transactor = ledger.transactor(operator)
        self.counters: Counter[str] = counters if counters is not None else Counter()
        """``applied`` and ``reverted`` calls, ``resigned`` and ``resent`` transactions,
        ``send_failed``."""
        self.retry_after = retry_after
        """Seconds before a pass that failed (node down, no receipt, not deep) is tried again."""
        self.confirmations = confirmations
        """Blocks on top of a call's block before it is done; None: the ledger's."""
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
            settled = await self.settle_mined()
            timeout = None if complete and settled else self.retry_after
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

    async def settle_mined(self) -> bool:
        """Look again at the calls mined but not yet deep; False while some are not final.

        Example: ``await sender.settle_mined()`` (after blocks were added on top).
        """
        depth = self._depth()
        final = True
        for call in self.inbox.mined_calls():
            assert call.raw is not None and call.transaction_hash is not None
            tx_hash = call.transaction_hash
            try:
                settled = await self._transactor.settle(tx_hash, call.raw, confirmations=depth)
            except TransactionReverted as reverted:  # re-mined after a reorganisation, reverted
                self._reverted(call, reverted.reason or str(reverted), tx_hash)
                await self._notify()
                continue
            except (ChainUnavailable, TransactionRefused) as exc:
                _log.warning("call %d (%s) not settled yet: %s", call.id, call.function, exc)
                return False
            if settled.finality is Finality.FINAL:
                assert settled.receipt is not None
                self.inbox.mark_done(call.id, tx_hash, settled.receipt.block_number)
                self.counters["applied"] += 1
                await self._notify()
                continue
            final = False
            if settled.finality is Finality.PENDING:
                self.counters["resent"] += 1
                _log.warning(
                    "call %d (%s): transaction %s is no longer on the chain (reorganised); "
                    "sent the same signed bytes again", call.id, call.function, tx_hash,
                )  # fmt: skip
                self.inbox.reopen(call.id, "reorganised away; the same bytes were sent again")
            elif settled.finality is Finality.DISPLACED:
                self.counters["resigned"] += 1
                _log.warning(
                    "call %d (%s): transaction %s was reorganised away and its nonce taken "
                    "by another transaction; signing it anew", call.id, call.function, tx_hash,
                )  # fmt: skip
                self.inbox.reset(call.id, f"nonce {call.nonce} taken after a reorganisation")
        if not final:
            self.wake()  # reopened or re-signed calls go out in the next pass
        return final

    def _depth(self) -> int:
        if self.confirmations is not None:
            return self.confirmations
        return self.ledger.options.confirmations

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
            await self._transactor.broadcast(tx_hash, call.raw)
        except TransactionRefused as refused:
            if not nonce_too_low(refused.message):
                raise
            return await self._resign(call, f"nonce {call.nonce} taken by another transaction")
        try:
            # the receipt only: the depth needs later blocks, which later passes look for
            settled = await self._transactor.wait_final(tx_hash, call.raw, confirmations=0)
        except TransactionReverted as reverted:
            self._reverted(call, reverted.reason or str(reverted), tx_hash)
        else:
            if settled.finality is Finality.DISPLACED:
                return await self._resign(call, f"nonce {call.nonce} taken by another transaction")
            assert settled.receipt is not None
            if self._depth() == 0:
                self.inbox.mark_done(call.id, tx_hash, settled.receipt.block_number)
                self.counters["applied"] += 1
            else:
                self.inbox.mark_mined(call.id, tx_hash, settled.receipt.block_number)
        await self._notify()
        return True

    async def _resign(self, call: InboxCall, why: str) -> bool:
        """``call``'s transaction can never be mined: sign it anew (the next nonce)."""
        self.counters["resigned"] += 1
        self.inbox.reset(call.id, why)
        return await self._advance(self.inbox.get(call.id))

    def _reverted(self, call: InboxCall, reason: str, tx_hash: str | None) -> None:
        self.inbox.mark_reverted(call.id, reason, tx_hash)
        self.counters["reverted"] += 1
        _log.info("call %d (%s from %s) reverted: %s", call.id, call.function, call.source, reason)
