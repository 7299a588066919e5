"""A notary member's deposit check: paper 003 section V-B, Algorithm 2, sans-I/O.

Algorithm 2 answers C_o's question "may consumer C pay ``amount``?" with
``balance > sum(pending) + required``: C's deposit in C_sp must exceed what C's
payments still in the pool could cost it plus the deposit the new payment requires
(``required = amount * coef_percent // 100``, Algorithm 1's ``calculate``). This
module holds the exposure state that makes the answer O(1):

- deposits by account (C_sp), counters of C_u by consumer (confirmed ``pay`` calls),
- pays in the node's pool by ``(consumer, counter)`` (:class:`PendingPay`),
- this member's reservations: an attestation it signed for ``(consumer, counter)``
  holds ``required`` until its expiry block, so a pay not yet in the pool is covered.

The exposure of C is the sum over counters ``k >= counters(C)`` of
``max(pending pay k, reservation k)``: C_u accepts one pay per counter, so a pay that is
in the pool *and* reserved counts once, and a confirmed counter counts no more. Pays
are measured in required deposit (the coefficient applied), the unit of a reservation;
with ``coef_percent = 100`` that is the paper's sum of amounts. Unlike Algorithm 2's
``getTransaction(from: C, to: P)`` the sum runs over every provider: they all draw on
C's one deposit. The exposure is kept per consumer and updated on each change.

The follower :class:`pervasive.crosschain.pool_view.PoolView` feeds it; the HTTP server
:mod:`pervasive.crosschain.check_server` asks it. Nothing here blocks or does I/O.

Example::

    state = DepositCheck(coef_percent=150)
    state.set_deposit(consumer, 10**18)
    state.check(consumer, provider, 10**17)   # CheckResult(ok=True, balance=..., ...)
    decision = state.attest(consumer, provider, 10**17, counter=0)
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pervasive.errors import InvalidInput, NotFound

__all__ = [
    "Attestation",
    "CheckResult",
    "DepositCheck",
    "PendingPay",
    "Refusal",
    "RefusalReason",
]


@dataclass(frozen=True)
class CheckResult:
    """Algorithm 2's answer: ``ok`` iff ``balance > pending + required``."""

    ok: bool
    balance: int
    pending: int
    """The consumer's exposure before this payment (pool and reservations, in wei)."""
    required: int


@dataclass(frozen=True)
class PendingPay:
    """A ``pay`` call to C_u seen in the node's pool, not yet in a block."""

    tx_hash: str
    consumer: str
    provider: str
    counter: int
    amount: int


@dataclass(frozen=True)
class Attestation:
    """What the member signs (EIP-712 ``DepositAttestation``) and has reserved."""

    consumer: str
    provider: str
    required: int
    counter: int
    expiry: int
    """Last block in which C_o accepts it (``block.number <= expiry``)."""


class RefusalReason(StrEnum):
    """Why a member refuses to attest; each is counted in ``/metrics``."""

    NO_DEPOSIT = "no_deposit"
    INSUFFICIENT_DEPOSIT = "insufficient_deposit"
    COUNTER_USED = "counter_used"
    COUNTER_AHEAD = "counter_ahead"


@dataclass(frozen=True)
class Refusal:
    """A refused attestation: the reason and a one-line message for the caller."""

    reason: RefusalReason
    message: str


class _Exposure:
    """One consumer's outstanding counters; ``total`` is kept equal to their sum."""

    __slots__ = ("counter", "pool", "reserved", "total")

    def __init__(self) -> None:
        self.counter = 0
        self.pool: dict[int, dict[str, int]] = {}
        self.reserved: dict[int, list[tuple[int, int]]] = {}
        self.total = 0

    def at(self, counter: int, head: int) -> int:
        pooled = max(self.pool.get(counter, {0: 0}).values(), default=0)
        held = max(
            (req for expiry, req in self.reserved.get(counter, ()) if expiry >= head), default=0
        )
        return max(pooled, held)

    def recompute(self, head: int) -> None:
        # Expired reservations go; those of confirmed counters stay (uncounted) until
        # they expire, so a reorganisation that un-confirms a pay finds them again.
        for k in list(self.reserved):
            live = [(e, r) for e, r in self.reserved[k] if e >= head]
            if live:
                self.reserved[k] = live
            else:
                del self.reserved[k]
        outstanding = self.pool.keys() | self.reserved.keys()
        self.total = sum(self.at(k, head) for k in outstanding if k >= self.counter)

    def empty(self) -> bool:
        return not self.pool and not self.reserved


class DepositCheck:
    """The exposure state of one notary member and Algorithm 2 over it.

    ``coef_percent`` is C_u's coefficient; ``validity_blocks`` how many blocks after the
    head an attestation stays valid; ``max_ahead`` how far past a consumer's confirmed
    counter it may reserve (bounding the state one consumer can make a member hold).
    Addresses are compared lower-case.

    Example::

        state = DepositCheck(coef_percent=100, validity_blocks=20)
        state.advance_block(7)
        state.set_counter(consumer, 3)
    """

    def __init__(
        self, *, coef_percent: int, validity_blocks: int = 20, max_ahead: int = 64
    ) -> None:
        if coef_percent <= 0 or validity_blocks <= 0 or max_ahead <= 0:
            raise InvalidInput(
                "coef_percent, validity_blocks and max_ahead must be positive integers"
            )
        self.coef_percent = coef_percent
        self.validity_blocks = validity_blocks
        self.max_ahead = max_ahead
        self.head = 0
        """The latest block of B_u this member has seen."""
        self._deposits: dict[str, int] = {}
        self._exposures: dict[str, _Exposure] = {}
        self._pool: dict[str, PendingPay] = {}
        self._expiries: list[tuple[int, str]] = []

    # -- inputs (the follower) --------------------------------------------------------
    def set_deposit(self, account: str, balance: int) -> None:
        """Record ``deposits(account)`` of C_sp. Example: ``state.set_deposit(c, 10**18)``."""
        self._deposits[account.lower()] = balance

    def set_counter(self, consumer: str, counter: int) -> None:
        """Record ``counters(consumer)`` of C_u; never moves it back (a stale read).

        Example: ``state.set_counter(consumer, 4)``.
        """
        key = consumer.lower()
        exposure = self._exposures.get(key)
        if exposure is None:
            exposure = self._exposures[key] = _Exposure()
        if counter > exposure.counter:
            exposure.counter = counter
            self._settle(key, exposure)

    def reset_counter(self, consumer: str, counter: int) -> None:
        """Set ``counters(consumer)`` as read after a reorganisation, lower or not.

        Pays and reservations of the counters it un-confirms count again.

        Example: ``state.reset_counter(consumer, await user.counter(consumer))``.
        """
        key = consumer.lower()
        exposure = self._exposures.setdefault(key, _Exposure())
        exposure.counter = counter
        self._settle(key, exposure)

    def consumers(self) -> list[str]:
        """Every consumer this member holds a counter, pay or reservation for."""
        return list(self._exposures)

    def accounts(self) -> list[str]:
        """Every account whose deposit this member has seen."""
        return list(self._deposits)

    def sync_pool(self, pays: Iterable[PendingPay]) -> None:
        """Replace the pool's pays by ``pays``: those gone (mined or dropped) stop counting.

        Example: ``state.sync_pool([PendingPay("0xab..", c, p, counter=0, amount=10)])``.
        """
        fresh = {pay.tx_hash: pay for pay in pays}
        touched: set[str] = set()
        for tx_hash in self._pool.keys() - fresh.keys():
            pay = self._pool.pop(tx_hash)
            exposure = self._exposures.get(pay.consumer)
            if exposure is None:
                continue
            slot = exposure.pool.get(pay.counter, {})
            slot.pop(tx_hash, None)
            if not slot:
                exposure.pool.pop(pay.counter, None)
            touched.add(pay.consumer)
        for tx_hash in fresh.keys() - self._pool.keys():
            pay = fresh[tx_hash]
            pay = PendingPay(
                tx_hash, pay.consumer.lower(), pay.provider.lower(), pay.counter, pay.amount
            )
            self._pool[tx_hash] = pay
            exposure = self._exposures.setdefault(pay.consumer, _Exposure())
            exposure.pool.setdefault(pay.counter, {})[tx_hash] = self.required(pay.amount)
            touched.add(pay.consumer)
        for consumer in touched:
            self._settle(consumer, self._exposures[consumer])

    def advance_block(self, number: int) -> None:
        """Move the head to block ``number``; reservations with ``expiry < number`` lapse.

        Call it after the block's events and the pool are applied, so a pay mined in
        a reservation's last block has advanced the counter before the reservation goes.

        Example: ``state.advance_block(await ledger.rpc.block_number())``.
        """
        if number <= self.head:
            return
        self.head = number
        lapsed: set[str] = set()
        while self._expiries and self._expiries[0][0] < number:
            lapsed.add(heapq.heappop(self._expiries)[1])
        for consumer in lapsed:
            exposure = self._exposures.get(consumer)
            if exposure is not None:
                self._settle(consumer, exposure)

    # -- queries (the server) ---------------------------------------------------------
    def required(self, amount: int) -> int:
        """The deposit a payment of ``amount`` needs (Algorithm 1's ``calculate``).

        Example: ``DepositCheck(coef_percent=150).required(100) == 150``.
        """
        return amount * self.coef_percent // 100

    def balance(self, account: str) -> int | None:
        """``deposits(account)`` as last seen, None if it never deposited."""
        return self._deposits.get(account.lower())

    def check(self, consumer: str, provider: str, amount: int) -> CheckResult:
        """Algorithm 2: may ``consumer`` pay ``amount`` to ``provider`` now?

        ``provider`` does not change the answer (every provider draws on the same
        deposit) but is part of the query the oracle asks. Raises :class:`NotFound` for
        a consumer without a deposit and :class:`InvalidInput` for a negative amount.

        Example: ``state.check(c, p, 10).ok``.
        """
        if amount < 0:
            raise InvalidInput(f"amount must be a non-negative integer of wei, got {amount}")
        key = consumer.lower()
        balance = self._deposits.get(key)
        if balance is None:
            raise NotFound(
                f"consumer {consumer} has no deposit in the notary contract: deposit first"
            )
        exposure = self._exposures.get(key)
        pending = exposure.total if exposure is not None else 0
        required = amount * self.coef_percent // 100
        return CheckResult(balance > pending + required, balance, pending, required)

    def attest(
        self, consumer: str, provider: str, amount: int, counter: int
    ) -> Attestation | Refusal:
        """Reserve the deposit for pay ``counter`` of ``consumer`` and say what to sign.

        Granted iff the consumer's exposure *after* the reservation stays below its
        balance (Algorithm 2 with the pay counted once); the reservation lasts until
        block ``head + validity_blocks``. Check and reservation are one step, so
        concurrent requests cannot together exceed the deposit.

        Example::

            decision = state.attest(c, p, 10**17, counter=0)
            if isinstance(decision, Attestation):
                signature = sign(decision)
        """
        if amount < 0 or counter < 0:
            raise InvalidInput("amount and counter must be non-negative integers")
        key = consumer.lower()
        balance = self._deposits.get(key)
        if balance is None:
            return Refusal(
                RefusalReason.NO_DEPOSIT, f"consumer {consumer} has no deposit: deposit first"
            )
        exposure = self._exposures.setdefault(key, _Exposure())
        if counter < exposure.counter:
            return Refusal(
                RefusalReason.COUNTER_USED,
                f"counter {counter} is used; the consumer's next counter is {exposure.counter}",
            )
        if counter >= exposure.counter + self.max_ahead:
            return Refusal(
                RefusalReason.COUNTER_AHEAD,
                f"counter {counter} is {self.max_ahead} or more past the next, {exposure.counter}",
            )
        required = self.required(amount)
        held = exposure.at(counter, self.head)
        after = exposure.total - held + max(held, required)
        if not balance > after:
            return Refusal(
                RefusalReason.INSUFFICIENT_DEPOSIT,
                f"deposit {balance} does not exceed pending {exposure.total - held}"
                f" + required {max(held, required)}",
            )
        expiry = self.head + self.validity_blocks
        exposure.reserved.setdefault(counter, []).append((expiry, required))
        exposure.total = after
        heapq.heappush(self._expiries, (expiry, key))
        return Attestation(key, provider.lower(), required, counter, expiry)

    def exposure(self, consumer: str) -> int:
        """The consumer's current exposure (Algorithm 2's pending sum), 0 if none."""
        found = self._exposures.get(consumer.lower())
        return found.total if found is not None else 0

    def counter(self, consumer: str) -> int:
        """The consumer's next C_u counter as last seen (0 if never seen)."""
        found = self._exposures.get(consumer.lower())
        return found.counter if found is not None else 0

    def _settle(self, key: str, exposure: _Exposure) -> None:
        exposure.recompute(self.head)
        if exposure.empty() and exposure.counter == 0:
            del self._exposures[key]
