"""The transaction manager: nonces, fees, gas, signing, sending, receipts, replacement.

One manager per signer per ledger (``ledger.transactor(signer)``). It keeps the next
nonce locally so that many transactions can be signed and sent without a round trip
each, and re-reads it from the node whenever a send fails, so a dropped or rejected
transaction never leaves a gap or a duplicate.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from coincurve import PrivateKey
from eth_utils import to_canonical_address
from web3.exceptions import ContractLogicError, Web3RPCError

from pervasive.chain.accounts import Signer
from pervasive.chain.ledger import Ledger
from pervasive.chain.records import Receipt
from pervasive.chain.signing import SignedTransaction, UnsignedTransaction, sign_transaction
from pervasive.errors import ChainUnavailable, TransactionReverted, TransactionTimeout

__all__ = ["ContractCall", "TransactionManager"]

_FEE_BUMP = 1.125  # nodes require at least +10% on both fees to accept a replacement
_FEE_REFRESH_SECONDS = 2.0


@dataclass(frozen=True)
class ContractCall:
    """A transaction to send: target (``None`` deploys), calldata, value and optional gas."""

    to: str | None
    data: bytes
    value: int = 0
    gas: int | None = None


class TransactionManager:
    """Signs and sends ``signer``'s transactions on ``ledger``.

    Example::

        manager = ledger.transactor(signer)
        receipt = await manager.transact(ContractCall(to=address, data=calldata))
    """

    def __init__(self, ledger: Ledger, signer: Signer) -> None:
        self.ledger = ledger
        self.signer = signer
        self._key = PrivateKey(signer.private_key)
        self._nonce: int | None = None
        self._nonce_lock = asyncio.Lock()
        self._fees: tuple[int, int] | None = None
        self._fees_at = -math.inf

    # -- building blocks --------------------------------------------------------------
    async def _current_fees(self) -> tuple[int, int]:
        now = asyncio.get_running_loop().time()
        if self._fees is None or now - self._fees_at > _FEE_REFRESH_SECONDS:
            self._fees = await self.ledger.fees()
            self._fees_at = now
        return self._fees

    async def _reserve_nonces(self, count: int) -> int:
        async with self._nonce_lock:
            if self._nonce is None:
                self._nonce = await self.ledger.nonce(self.signer.address)
            first = self._nonce
            self._nonce += count
            return first

    def forget_nonce(self) -> None:
        """Re-read the nonce from the node before the next send (after a failure)."""
        self._nonce = None

    async def _gas_for(self, call: ContractCall) -> int:
        if call.gas is not None:
            return call.gas
        estimate = await self.ledger.estimate_gas(self.signer.address, call.to, call.data, call.value)
        return math.ceil(estimate * self.ledger.options.gas_margin)

    def _sign(self, call: ContractCall, nonce: int, gas: int, fees: tuple[int, int]) -> SignedTransaction:
        unsigned = UnsignedTransaction(
            chain_id=self.ledger.chain_id,
            nonce=nonce,
            max_priority_fee_per_gas=fees[0],
            max_fee_per_gas=fees[1],
            gas=gas,
            to=to_canonical_address(call.to) if call.to else None,
            value=call.value,
            data=call.data,
        )
        return sign_transaction(unsigned, self._key)

    # -- one transaction --------------------------------------------------------------
    async def transact(self, call: ContractCall) -> Receipt:
        """Send ``call`` and wait for its confirmed receipt.

        Gas is estimated (with the ledger's margin) unless given, so a call that would
        revert raises :class:`TransactionReverted` before anything is sent. A
        transaction still pending after ``replace_after`` seconds is re-sent with the
        same nonce and fees raised by 12.5%.
        """
        gas = await self._gas_for(call)
        fees = await self._current_fees()
        nonce = await self._reserve_nonces(1)
        signed = self._sign(call, nonce, gas, fees)
        hashes = [await self._send(signed)]
        options = self.ledger.options
        deadline = asyncio.get_running_loop().time() + options.receipt_timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                return await self.ledger.wait_for_receipt(
                    hashes, timeout=max(0.01, min(options.replace_after, remaining))
                )
            except TransactionTimeout:
                if remaining <= options.replace_after:
                    raise
            fees = await self._bumped(fees)
            signed = self._sign(call, nonce, gas, fees)
            try:
                hashes.append(await self._send(signed, keep_nonce=True))
            except TransactionReverted as exc:
                if "nonce too low" in str(exc.reason):  # the original was mined meanwhile
                    continue
                raise

    async def deploy(self, bytecode: bytes, *, value: int = 0, gas: int | None = None) -> Receipt:
        """Deploy ``bytecode`` (constructor arguments appended) and return the receipt."""
        return await self.transact(ContractCall(to=None, data=bytecode, value=value, gas=gas))

    async def _bumped(self, fees: tuple[int, int]) -> tuple[int, int]:
        network = await self.ledger.fees()
        priority = max(math.ceil(fees[0] * _FEE_BUMP), network[0])
        return priority, max(math.ceil(fees[1] * _FEE_BUMP), network[1], priority)

    async def _send(self, signed: SignedTransaction, *, keep_nonce: bool = False) -> str:
        try:
            return await self.ledger.send_raw(signed.raw)
        except (Web3RPCError, ContractLogicError, ValueError) as exc:
            if not keep_nonce:
                self.forget_nonce()
            raise TransactionReverted(f"the node refused the transaction: {exc}") from exc
        except ChainUnavailable:
            if not keep_nonce:
                self.forget_nonce()
            raise

    # -- many transactions ------------------------------------------------------------
    async def submit_many(self, calls: Sequence[ContractCall], *, gas: int | None = None) -> list[str]:
        """Sign ``calls`` with consecutive nonces and send them as one batch; return hashes.

        All calls share ``gas`` when given (else each call's own ``gas``, else an
        estimate of the first call, applied to all). Nothing waits for receipts: use
        :meth:`wait_all`. If the node refuses any transaction, the nonce is re-read and
        :class:`TransactionReverted` names how many were accepted.
        """
        if not calls:
            return []
        shared_gas = gas or calls[0].gas or await self._gas_for(calls[0])
        fees = await self._current_fees()
        first = await self._reserve_nonces(len(calls))
        raws = [
            self._sign(call, first + index, call.gas or shared_gas, fees).raw
            for index, call in enumerate(calls)
        ]
        results = await self.ledger.send_raw_batch(raws)
        hashes = [r for r in results if isinstance(r, str)]
        if len(hashes) != len(results):
            self.forget_nonce()
            error = next(r for r in results if not isinstance(r, str))
            raise TransactionReverted(
                f"the node accepted {len(hashes)} of {len(results)} transactions; first refusal: {error}"
            )
        return hashes

    async def wait_all(self, tx_hashes: Sequence[str]) -> list[Receipt]:
        """Receipts of ``tx_hashes`` in order (each raises if it reverted)."""
        return [await self.ledger.wait_for_receipt([h]) for h in tx_hashes]
