"""The follower that feeds a member's deposit check from B_u (paper 003 section V-B).

Algorithm 2 needs "the transaction pool on the blockchain", kept in step: this module
reads it. Each :meth:`PoolView.refresh` (every ``poll_interval``, ~100 ms, so each new
block is seen within one interval):

1. if blocks were added, reads their logs of C_sp (``Deposited``, ``Penalized``,
   ``Released``: each touched account's ``deposits(account)`` is re-read) and of C_u
   (``Paid``: the consumer's counter becomes ``counter + 1``);
2. reads the node's pool (``txpool_content``) and keeps the ``pay(address,uint256,
   uint256,bytes)`` calls sent to C_u: consumer = sender, amount = value, counter from
   the calldata. Pays that left the pool (mined or dropped) stop counting;
3. moves the state's head, which lapses expired reservations.

A reorganisation (the block last applied is no longer in the chain) re-reads
``counters`` and ``deposits`` of everyone the state knows and replays the last 64
blocks: a pay the new branch un-confirms counts again, from the pool or from the
reservation its attestation left.

Nothing waits for confirmations: a pay counts from the moment the node pools it. The
order (events, then pool, then head) keeps a pay mined in a reservation's last block
covered until its ``Paid`` event has advanced the counter.

Example::

    state = DepositCheck(coef_percent=await user.coef_percent())
    view = PoolView(ledger, state, notary=notary, user_contract=user)
    await view.refresh()                  # once, up to the head
    task = asyncio.create_task(view.run())
"""

from __future__ import annotations

import asyncio
import logging

from pervasive.chain import BlockRef, Ledger
from pervasive.contracts.notary import Notary
from pervasive.contracts.user_contract import UserContract
from pervasive.crosschain.deposit_check import DepositCheck, PendingPay
from pervasive.errors import ChainUnavailable

__all__ = ["PoolView"]

_LOG = logging.getLogger(__name__)
_LOG_RANGE = 5_000  # blocks per eth_getLogs: nodes cap the range of one query
_REORG_DEPTH = 64  # blocks replayed after a reorganisation
_PAY_HEAD = 4 + 4 * 32  # selector, provider, counter, expiry, offset of the signatures


class PoolView:
    """Follows C_sp, C_u and the node's pool for one member's :class:`DepositCheck`.

    ``from_block`` is where the contracts were deployed (earlier blocks hold none of
    their events). ``undecodable`` counts pool entries that carry ``pay``'s selector but
    not its arguments (they would revert, so they are not counted).

    Example::

        view = PoolView(ledger, state, notary=notary, user_contract=user, from_block=12)
        await view.refresh()
    """

    def __init__(
        self,
        ledger: Ledger,
        state: DepositCheck,
        *,
        notary: Notary,
        user_contract: UserContract,
        from_block: int = 0,
        poll_interval: float = 0.1,
    ) -> None:
        self.ledger = ledger
        self.state = state
        self.notary = notary
        self.user_contract = user_contract
        self.poll_interval = poll_interval
        self.seen = from_block - 1
        """The last block whose events are applied."""
        self.undecodable = 0
        self.failures = 0
        """Refreshes that failed because the node could not be reached (retried)."""
        self.reorganisations = 0
        """Reorganisations seen (each re-reads counters and deposits)."""
        self._from_block = from_block
        self._seen_hash: str | None = None
        self._pay_selector = user_contract.contract.function("pay").selector
        self._user = user_contract.address.lower()

    async def refresh(self) -> None:
        """Apply new blocks' events, then the pool, then the head (see the module doc).

        Example: ``await view.refresh(); view.state.check(c, p, 10)``.
        """
        latest = await self.ledger.block("latest")
        head = latest.number
        if await self._reorganised(latest):
            await self._resynchronise()
        while self.seen < head:
            last = min(head, self.seen + _LOG_RANGE)
            await self._apply_blocks(self.seen + 1, last)
            self.seen = last
        self._seen_hash = latest.hash
        pool = await self.ledger.rpc.pending_transactions()
        pays = []
        for tx in pool:
            if tx.to is None or tx.to.lower() != self._user or tx.input[:4] != self._pay_selector:
                continue
            pay = self._decode_pay(tx.hash, tx.sender, tx.value, tx.input)
            if pay is not None:
                pays.append(pay)
        self.state.sync_pool(pays)
        self.state.advance_block(head)

    async def run(self) -> None:
        """Refresh every ``poll_interval`` until cancelled; an unreachable node is retried.

        Example: ``task = asyncio.create_task(view.run()); ...; task.cancel()``.
        """
        while True:
            try:
                await self.refresh()
            except ChainUnavailable as exc:
                self.failures += 1
                _LOG.warning("deposit check follower: %s; retrying", exc)
            await asyncio.sleep(self.poll_interval)

    async def _reorganised(self, latest: BlockRef) -> bool:
        if self._seen_hash is None:
            return False
        if latest.number == self.seen:
            return latest.hash != self._seen_hash
        if latest.number > self.seen:
            return (await self.ledger.block(self.seen)).hash != self._seen_hash
        return True

    async def _resynchronise(self) -> None:
        # Blocks we applied were replaced: what they confirmed may be undone. Counters
        # and deposits are re-read as the new canonical chain has them, then the last
        # _REORG_DEPTH blocks are replayed for accounts the old branch never showed.
        self.reorganisations += 1
        _LOG.warning("B_u reorganised below block %d; re-reading counters and deposits", self.seen)
        consumers, accounts = self.state.consumers(), self.state.accounts()
        counters = await asyncio.gather(*(self.user_contract.counter(c) for c in consumers))
        balances = await asyncio.gather(*(self.notary.deposit_of(a) for a in accounts))
        for consumer, counter in zip(consumers, counters, strict=True):
            self.state.reset_counter(consumer, counter)
        for account, balance in zip(accounts, balances, strict=True):
            self.state.set_deposit(account, balance)
        self.seen = max(self._from_block - 1, self.seen - _REORG_DEPTH)

    async def _apply_blocks(self, first: int, last: int) -> None:
        addresses = [self.notary.address, self.user_contract.address]
        logs = await self.ledger.logs(addresses, first, last)
        accounts: set[str] = set()
        for event in self.notary.contract.decode_logs(logs):
            for field in ("account", "cheater"):
                if field in event.args:
                    accounts.add(str(event.args[field]))
        for event in self.user_contract.contract.decode_logs(logs, "Paid"):
            self.state.set_counter(str(event.args["consumer"]), int(event.args["counter"]) + 1)
        balances = await asyncio.gather(*(self.notary.deposit_of(a) for a in sorted(accounts)))
        for account, balance in zip(sorted(accounts), balances, strict=True):
            self.state.set_deposit(account, balance)

    def _decode_pay(self, tx_hash: str, sender: str, value: int, data: bytes) -> PendingPay | None:
        # Only the two static head words are read, at their fixed offsets: a strict
        # decoder would skip a pay whose dynamic tail is encoded unusually yet which
        # the contract accepts, and that pay would then escape the exposure.
        if len(data) < _PAY_HEAD:
            self.undecodable += 1
            return None
        provider = "0x" + data[16:36].hex()
        counter = int.from_bytes(data[36:68], "big")
        return PendingPay(tx_hash, sender.lower(), provider, counter, value)
