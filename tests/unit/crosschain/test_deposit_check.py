"""A member's deposit check (paper 003 Algorithm 2): the answers a payer and the oracle get."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crosschain.deposit_check import (
    Attestation,
    CheckResult,
    DepositCheck,
    PendingPay,
    Refusal,
    RefusalReason,
)
from pervasive.errors import InvalidInput, NotFound

CONSUMER = "0x" + "c1" * 20
OTHER = "0x" + "c2" * 20
PROVIDER = "0x" + "ab" * 20


def fresh(balance: int = 1000, coef_percent: int = 100, validity: int = 5) -> DepositCheck:
    state = DepositCheck(coef_percent=coef_percent, validity_blocks=validity)
    state.set_deposit(CONSUMER, balance)
    return state


def pay(tx: int, counter: int, amount: int, consumer: str = CONSUMER) -> PendingPay:
    return PendingPay(f"0x{tx:064x}", consumer, PROVIDER, counter, amount)


def test_algorithm_2_accepts_when_the_balance_exceeds_pending_plus_required() -> None:
    state = fresh(balance=1000, coef_percent=150)
    state.sync_pool([pay(1, 0, 200)])  # pending 300 in required deposit
    assert state.check(CONSUMER, PROVIDER, 400) == CheckResult(True, 1000, 300, 600)


def test_algorithm_2_refuses_at_equality() -> None:
    state = fresh(balance=1000)
    state.sync_pool([pay(1, 0, 400)])
    assert state.check(CONSUMER, PROVIDER, 600) == CheckResult(False, 1000, 400, 600)
    assert state.check(CONSUMER, PROVIDER, 599).ok


def test_required_rounds_down_like_the_contract() -> None:
    assert DepositCheck(coef_percent=150).required(3) == 4
    assert DepositCheck(coef_percent=150).required(10**17) == 15 * 10**16


def test_the_sum_covers_every_provider_of_the_consumer_and_no_other_consumer() -> None:
    state = fresh(balance=1000)
    state.set_deposit(OTHER, 1000)
    elsewhere = PendingPay("0x" + "01" * 32, CONSUMER, "0x" + "99" * 20, 1, 300)
    state.sync_pool([pay(1, 0, 200), elsewhere, pay(3, 0, 900, consumer=OTHER)])
    assert state.check(CONSUMER, PROVIDER, 0).pending == 500
    assert state.check(OTHER, PROVIDER, 0).pending == 900


def test_a_consumer_without_deposit_and_a_negative_amount_are_refused() -> None:
    state = fresh()
    with pytest.raises(NotFound, match="no deposit"):
        state.check(OTHER, PROVIDER, 1)
    with pytest.raises(InvalidInput, match="non-negative"):
        state.check(CONSUMER, PROVIDER, -1)
    assert state.attest(OTHER, PROVIDER, 1, 0) == Refusal(
        RefusalReason.NO_DEPOSIT, f"consumer {OTHER} has no deposit: deposit first"
    )


def test_an_attestation_reserves_until_its_expiry_block() -> None:
    state = fresh(balance=1000, validity=5)
    state.advance_block(10)
    granted = state.attest(CONSUMER, PROVIDER, 600, counter=0)
    assert granted == Attestation(CONSUMER, PROVIDER, 600, 0, 15)
    assert state.check(CONSUMER, PROVIDER, 400) == CheckResult(False, 1000, 600, 400)
    state.advance_block(15)  # C_o still accepts it in block 15
    assert state.exposure(CONSUMER) == 600
    state.advance_block(16)
    assert state.exposure(CONSUMER) == 0
    assert state.check(CONSUMER, PROVIDER, 999).ok


def test_a_pay_in_the_pool_that_was_also_reserved_counts_once() -> None:
    state = fresh(balance=1000)
    assert isinstance(state.attest(CONSUMER, PROVIDER, 300, counter=0), Attestation)
    state.sync_pool([pay(1, 0, 300)])
    assert state.exposure(CONSUMER) == 300
    # the same counter cannot be paid twice, so the larger of the two is what is at risk
    state.sync_pool([pay(1, 0, 300), pay(2, 0, 500)])
    assert state.exposure(CONSUMER) == 500
    # the reservation still holds while its pay leaves the pool unmined (dropped)
    state.sync_pool([])
    assert state.exposure(CONSUMER) == 300


def test_a_confirmed_pay_leaves_the_sum_even_before_the_pool_is_reread() -> None:
    state = fresh(balance=1000)
    state.attest(CONSUMER, PROVIDER, 300, counter=0)
    state.sync_pool([pay(1, 0, 300), pay(2, 1, 200)])
    assert state.exposure(CONSUMER) == 500
    state.set_counter(CONSUMER, 1)  # Paid(counter=0) seen
    assert state.exposure(CONSUMER) == 200
    state.sync_pool([pay(2, 1, 200)])
    assert state.exposure(CONSUMER) == 200
    state.set_counter(CONSUMER, 0)  # a stale read never moves the counter back
    assert state.counter(CONSUMER) == 1


def test_attest_refuses_used_and_far_counters_and_an_uncovered_amount() -> None:
    state = DepositCheck(coef_percent=100, max_ahead=4)
    state.set_deposit(CONSUMER, 1000)
    state.set_counter(CONSUMER, 3)
    used = state.attest(CONSUMER, PROVIDER, 1, counter=2)
    ahead = state.attest(CONSUMER, PROVIDER, 1, counter=7)
    assert isinstance(used, Refusal) and used.reason is RefusalReason.COUNTER_USED
    assert isinstance(ahead, Refusal) and ahead.reason is RefusalReason.COUNTER_AHEAD
    assert isinstance(state.attest(CONSUMER, PROVIDER, 600, counter=3), Attestation)
    short = state.attest(CONSUMER, PROVIDER, 400, counter=4)
    assert isinstance(short, Refusal) and short.reason is RefusalReason.INSUFFICIENT_DEPOSIT
    # asking again for a counter already reserved only tops it up to the larger amount
    assert isinstance(state.attest(CONSUMER, PROVIDER, 900, counter=3), Attestation)
    assert state.exposure(CONSUMER) == 900


def test_a_lowered_deposit_refuses_what_a_higher_one_granted() -> None:
    state = fresh(balance=1000)
    state.attest(CONSUMER, PROVIDER, 500, counter=0)
    state.set_deposit(CONSUMER, 400)  # penalised
    assert not state.check(CONSUMER, PROVIDER, 0).ok


# -- a model of the exposure, straight from its definition on the design page ------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("attest"), st.integers(0, 6), st.integers(0, 700)),
        st.tuples(st.just("block"), st.integers(1, 4), st.just(0)),
        st.tuples(st.just("pool"), st.integers(0, 6), st.integers(0, 700)),
        st.tuples(st.just("drop"), st.integers(0, 6), st.just(0)),
        st.tuples(st.just("confirm"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations, st.integers(1, 3000), st.sampled_from([50, 100, 150]))
def test_interleaved_requests_never_over_commit_and_match_the_definition(
    ops: list[tuple[str, int, int]], balance: int, coef: int
) -> None:
    state = DepositCheck(coef_percent=coef, validity_blocks=3)
    state.set_deposit(CONSUMER, balance)
    reservations: list[tuple[int, int, int]] = []  # counter, expiry, required
    pool: dict[str, tuple[int, int]] = {}  # tx -> counter, amount
    confirmed, head, tx = 0, 0, 0
    for kind, a, b in ops:
        if kind == "attest":
            decision = state.attest(CONSUMER, PROVIDER, b, counter=confirmed + a)
            if isinstance(decision, Attestation):
                reservations.append((decision.counter, decision.expiry, decision.required))
        elif kind == "block":
            head += a
            state.advance_block(head)
        elif kind == "pool":
            tx += 1
            pool[f"0x{tx:064x}"] = (confirmed + a, b)
        elif kind == "drop":
            pool = {h: v for h, v in pool.items() if v[0] != confirmed + a}
        else:
            confirmed += 1
            state.set_counter(CONSUMER, confirmed)
        state.sync_pool(
            PendingPay(h, CONSUMER, PROVIDER, k, amount) for h, (k, amount) in pool.items()
        )
        live_reserved: dict[int, int] = {}
        for counter, expiry, required in reservations:
            if counter >= confirmed and expiry >= head:
                live_reserved[counter] = max(live_reserved.get(counter, 0), required)
        live_pool: dict[int, int] = {}
        for counter, amount in pool.values():
            if counter >= confirmed:
                live_pool[counter] = max(live_pool.get(counter, 0), amount * coef // 100)
        expected = sum(
            max(live_reserved.get(k, 0), live_pool.get(k, 0))
            for k in live_reserved.keys() | live_pool.keys()
        )
        assert state.exposure(CONSUMER) == expected
        # what this member granted alone never reaches the deposit
        assert sum(live_reserved.values()) < balance


def test_a_reorganisation_that_unconfirms_a_pay_makes_it_count_again() -> None:
    state = fresh(balance=1000, validity=5)
    state.attest(CONSUMER, PROVIDER, 300, counter=0)
    state.set_counter(CONSUMER, 1)
    assert state.exposure(CONSUMER) == 0
    state.reset_counter(CONSUMER, 0)  # the block with Paid(counter=0) was replaced
    assert state.exposure(CONSUMER) == 300
    state.advance_block(6)  # and the reservation still lapses at its expiry
    assert state.exposure(CONSUMER) == 0
