"""Gathering the facts of a challenge from a member's own nodes (paper 003, section V-C).

:func:`~pervasive.crosschain.challenge.decide` is pure; this module is its I/O. Each
member asks its own B_u node and its own B_d adapter, never the challenger:

- the payment: for ``undelivered``, the pay transaction named by hash must be in a
  canonical block of B_u (a Merkle-Patricia proof against the block's
  ``transactionsRoot``, checked here) and must have emitted ``Paid`` for the payment
  id; for ``unpaid``, C's raw transaction is decoded and its sender recovered from the
  signature (:func:`pervasive.chain.decode_raw_transaction`): it must be a ``pay``
  call to the user contract on B_u, and the payment id follows from its counter;
- whether the payment was made: a ``Paid`` event for the payment id in B_u's canonical
  chain (whatever transaction carried it: a fee bump replaces the hash, not the payment);
- P's posting of the data index on B_d (P's own posting only, where the chain names a
  sender).

Example::

    desk = ChallengeDesk(user_chain, user_contract, data_chain, coef_percent=150)
    facts = await desk.facts(challenge)
"""

from __future__ import annotations

from pervasive.contracts.user_contract import UserContract
from pervasive.crosschain.chains import DataChain, PostedIndex
from pervasive.crosschain.challenge import Challenge, ChallengeFacts, ChallengeKind
from pervasive.crosschain.evm_chain import EvmDataChain
from pervasive.crosschain.payments import Payment, decode_payment
from pervasive.crypto import keccak256
from pervasive.errors import InvalidInput

__all__ = ["PAID_TOPIC", "ChallengeDesk"]

PAID_TOPIC = keccak256(b"Paid(address,address,bytes32,uint256,uint256,uint256)")
"""The first topic of the user contract's ``Paid`` event."""


class ChallengeDesk:
    """A member's view of both chains for deciding challenges."""

    def __init__(
        self,
        user_chain: EvmDataChain,
        user_contract: UserContract,
        data_chain: DataChain,
        *,
        coef_percent: int,
        from_block: int = 0,
    ) -> None:
        self.user_chain = user_chain
        self.user_contract = user_contract
        self.data_chain = data_chain
        self.coef_percent = coef_percent
        self.from_block = from_block
        """Where log searches on B_u start (the user contract's deployment block)."""

    async def facts(self, challenge: Challenge) -> ChallengeFacts:
        """What this member's nodes say about ``challenge``."""
        if challenge.kind is ChallengeKind.UNDELIVERED:
            return await self._undelivered(challenge)
        return await self._unpaid(challenge)

    async def _undelivered(self, challenge: Challenge) -> ChallengeFacts:
        tx_hash = "0x" + challenge.evidence.hex()
        proof = await self.user_chain.prove_inclusion(tx_hash)
        if proof is None or not self.user_chain.verify_inclusion(proof):
            return ChallengeFacts(None, False, None, None)
        receipt = await self.user_chain.ledger.receipt(tx_hash)
        if receipt is None or not receipt.status:
            return ChallengeFacts(None, False, None, None)
        paid = self.user_contract.payments(receipt)
        match = next((p for p in paid if p.payment_id == challenge.payment_id), None)
        if match is None:
            return ChallengeFacts(None, False, None, None)
        payment = Payment(
            consumer=match.consumer,
            provider=match.provider,
            payment_id=match.payment_id,
            amount=match.amount,
            required=match.required,
            counter=match.counter,
            tx_hash=tx_hash,
        )
        header = await self.user_chain.ledger.rpc.block_header(proof.block_number)
        when = header.timestamp if header is not None else None
        posted = await self._posted(payment)
        return ChallengeFacts(payment, True, when, posted)

    async def _unpaid(self, challenge: Challenge) -> ChallengeFacts:
        payment = self.pay_transaction(challenge.evidence)
        if payment is None:
            return ChallengeFacts(None, False, None, None)
        paid_at = await self.paid_block(payment.payment_id)
        posted = await self._posted(payment)
        return ChallengeFacts(payment, paid_at is not None, None, posted)

    def pay_transaction(self, raw: bytes) -> Payment | None:
        """The payment C's signed raw transaction makes, or None if it makes none."""
        try:
            return decode_payment(
                raw,
                chain_id=self.user_chain.ledger.chain_id,
                user_contract=self.user_contract.address,
                pay_selector=self.user_contract.contract.function("pay", 4).selector,
                coef_percent=self.coef_percent,
            )
        except InvalidInput:
            return None

    async def paid_block(self, payment: bytes) -> int | None:
        """The block of the ``Paid`` event of ``payment`` in B_u's canonical chain, or None."""
        ledger = self.user_chain.ledger
        head = await ledger.block_number()
        logs = await ledger.logs(
            self.user_contract.address, self.from_block, head, [PAID_TOPIC, None, None, payment]
        )
        return logs[0].block_number if logs else None

    async def _posted(self, payment: Payment) -> PostedIndex | None:
        # anyone may post under P's payment id; only P's own posting discharges P
        return await self.data_chain.find_index(payment.payment_id, provider=payment.provider)
