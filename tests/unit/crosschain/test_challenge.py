"""decide() is paper 003 section V-C: who is punished, when, and for how much.

Every branch of both challenge kinds, the clock-grace boundary, the challenge id
recomputed independently (eth-abi, eth-hash), the HTTP body parser (hypothesis:
arbitrary JSON raises InvalidInput or parses), and the penalty message C_sp checks.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from eth_abi import encode as eth_abi_encode
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.contracts.notary import penalty_message
from pervasive.crosschain.chains import PostedIndex
from pervasive.crosschain.challenge import (
    CLOCK_GRACE,
    Challenge,
    ChallengeFacts,
    ChallengeKind,
    Outcome,
    Verdict,
    challenge_id,
    decide,
    penalty_request,
)
from pervasive.crosschain.errors import ChallengeRefused
from pervasive.crosschain.payments import Payment
from pervasive.errors import InvalidInput

CONSUMER = "0x" + "c0" * 20
PROVIDER = "0x" + "b0" * 20
STRANGER = "0x" + "5e" * 20
NOTARY = "0x" + "aa" * 20
PAYMENT_ID = bytes(range(32))
WINDOW = 60
PAID_AT = 1_000_000  # block time of the pay transaction on B_u
DEADLINE = PAID_AT + WINDOW

from pervasive.crypto import checksum_address  # noqa: E402

PAYMENT = Payment(
    consumer=checksum_address(CONSUMER),
    provider=checksum_address(PROVIDER),
    payment_id=PAYMENT_ID,
    amount=10**17,
    required=15 * 10**16,
    counter=4,
    tx_hash="0x" + "77" * 32,
)
UNDELIVERED = Challenge(ChallengeKind.UNDELIVERED, PAYMENT_ID, bytes.fromhex("77" * 32))
UNPAID = Challenge(ChallengeKind.UNPAID, PAYMENT_ID, b"\x02\xf8signed pay transaction")


def posting(block_time: int, provider: str = PROVIDER) -> PostedIndex:
    return PostedIndex(
        chain="evm:2", payment_id=PAYMENT_ID, tx_id="0x" + "99" * 32, block_number=12,
        block_hash="0x" + "88" * 32, block_time=block_time, provider=provider,
        consumer=CONSUMER, ciphertext_digest=bytes(32),
    )  # fmt: skip


def included(posted: PostedIndex | None = None) -> ChallengeFacts:
    return ChallengeFacts(PAYMENT, True, PAID_AT, posted)


def not_included(posted: PostedIndex | None = None) -> ChallengeFacts:
    return ChallengeFacts(PAYMENT, False, None, posted)


def run(challenge: Challenge, facts: ChallengeFacts, now: float) -> Verdict:
    return decide(challenge, facts, publish_window=WINDOW, now=now)


LATE = DEADLINE + CLOCK_GRACE + 1


# -- both kinds --------------------------------------------------------------------------
@pytest.mark.parametrize("challenge", [UNDELIVERED, UNPAID])
def test_evidence_naming_no_payment_is_refused(challenge: Challenge) -> None:
    verdict = run(challenge, ChallengeFacts(None, False, None, posting(PAID_AT)), LATE)
    assert verdict.outcome is Outcome.REFUSE
    assert (verdict.cheater, verdict.victim, verdict.amount) == ("", "", 0)


@pytest.mark.parametrize("challenge", [UNDELIVERED, UNPAID])
def test_evidence_about_another_payment_is_refused(challenge: Challenge) -> None:
    other = replace(challenge, payment_id=b"\x01" * 32)
    assert run(other, included(), LATE).outcome is Outcome.REFUSE
    assert run(other, not_included(posting(PAID_AT)), 10**9).outcome is Outcome.REFUSE


# -- undelivered: C accuses P --------------------------------------------------------------
def test_undelivered_refused_while_the_payment_is_not_included() -> None:
    verdict = run(UNDELIVERED, not_included(), LATE)
    assert verdict.outcome is Outcome.REFUSE
    assert "not in B_u's canonical chain" in verdict.reason
    # included but with no block time known: the deadline cannot be computed
    assert run(UNDELIVERED, ChallengeFacts(PAYMENT, True, None, None), LATE).outcome is (
        Outcome.REFUSE
    )


@pytest.mark.parametrize("block_time", [PAID_AT, PAID_AT + 1, DEADLINE])
def test_undelivered_refused_when_p_posted_in_time(block_time: int) -> None:
    verdict = run(UNDELIVERED, included(posting(block_time)), LATE + 10**6)
    assert verdict.outcome is Outcome.REFUSE
    assert "in time" in verdict.reason


@pytest.mark.parametrize("now", [PAID_AT, DEADLINE - 1, DEADLINE, DEADLINE + CLOCK_GRACE - 0.001])
def test_undelivered_waits_until_the_deadline_passed(now: float) -> None:
    verdict = run(UNDELIVERED, included(), now)
    assert verdict.outcome is Outcome.WAIT
    assert verdict.ready_at == DEADLINE
    assert (verdict.cheater, verdict.amount) == ("", 0)


@pytest.mark.parametrize("posted", [None, posting(DEADLINE + 1)], ids=["never", "late"])
def test_undelivered_penalizes_p_in_favour_of_c(posted: PostedIndex | None) -> None:
    verdict = run(UNDELIVERED, included(posted), DEADLINE + CLOCK_GRACE)
    assert verdict.outcome is Outcome.PENALIZE
    assert verdict.cheater == PAYMENT.provider
    assert verdict.victim == PAYMENT.consumer
    assert verdict.amount == PAYMENT.required


def test_undelivered_a_posting_by_someone_else_does_not_discharge_p() -> None:
    verdict = run(UNDELIVERED, included(posting(PAID_AT + 1, provider=STRANGER)), LATE)
    assert verdict.outcome is Outcome.PENALIZE
    assert verdict.cheater == PAYMENT.provider
    # the same posting by P (address spelled in lower case) discharges P
    own = posting(PAID_AT + 1, provider=PROVIDER.lower())
    assert run(UNDELIVERED, included(own), LATE).outcome is Outcome.REFUSE


def test_undelivered_a_litecoin_posting_without_sender_counts_for_p() -> None:
    verdict = run(UNDELIVERED, included(posting(PAID_AT + 1, provider="")), LATE)
    assert verdict.outcome is Outcome.REFUSE


def test_ready_at_plus_the_grace_is_when_the_wait_ends() -> None:
    waiting = run(UNDELIVERED, included(), PAID_AT)
    assert run(UNDELIVERED, included(), waiting.ready_at + CLOCK_GRACE).outcome is (
        Outcome.PENALIZE
    )


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**40),
    st.integers(1, 10**6),
    st.floats(0, 2**41, allow_nan=False),
    st.none() | st.integers(0, 2**41),
)
def test_undelivered_outcome_follows_the_deadline(
    paid_at: int, window: int, now: float, posted_at: int | None
) -> None:
    posted = posting(posted_at) if posted_at is not None else None
    facts = ChallengeFacts(PAYMENT, True, paid_at, posted)
    verdict = decide(UNDELIVERED, facts, publish_window=window, now=now)
    deadline = paid_at + window
    if posted_at is not None and posted_at <= deadline:
        assert verdict.outcome is Outcome.REFUSE
    elif now < deadline + CLOCK_GRACE:
        assert verdict.outcome is Outcome.WAIT
        assert verdict.ready_at == deadline
    else:
        assert verdict.outcome is Outcome.PENALIZE
        assert (verdict.cheater, verdict.victim) == (PAYMENT.provider, PAYMENT.consumer)


# -- unpaid: P accuses C -------------------------------------------------------------------
def test_unpaid_refused_without_a_posting() -> None:
    verdict = run(UNPAID, not_included(None), 10**9)
    assert verdict.outcome is Outcome.REFUSE
    assert "post it first" in verdict.reason


def test_unpaid_refused_when_the_payment_is_included() -> None:
    verdict = run(UNPAID, included(posting(PAID_AT)), 10**9)
    assert verdict.outcome is Outcome.REFUSE
    assert "it was paid" in verdict.reason


def test_unpaid_a_posting_by_someone_else_is_no_posting() -> None:
    verdict = run(UNPAID, not_included(posting(PAID_AT, provider=STRANGER)), 10**9)
    assert verdict.outcome is Outcome.REFUSE
    assert "post it first" in verdict.reason


def test_unpaid_deadline_runs_from_the_postings_block_time() -> None:
    posted_at = 5_000_000  # far from PAID_AT: only the posting's time may matter
    facts = not_included(posting(posted_at))
    waiting = run(UNPAID, facts, posted_at + WINDOW + CLOCK_GRACE - 0.001)
    assert waiting.outcome is Outcome.WAIT
    assert waiting.ready_at == posted_at + WINDOW
    verdict = run(UNPAID, facts, posted_at + WINDOW + CLOCK_GRACE)
    assert verdict.outcome is Outcome.PENALIZE
    assert verdict.cheater == PAYMENT.consumer
    assert verdict.victim == PAYMENT.provider
    assert verdict.amount == PAYMENT.required


# -- the id --------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ChallengeKind), st.binary(min_size=32, max_size=32))
def test_challenge_id_is_keccak_of_the_abi_encoded_kind_hash_and_payment(
    kind: ChallengeKind, payment_id: bytes
) -> None:
    expected = keccak(
        eth_abi_encode(["bytes32", "bytes32"], [keccak(kind.value.encode()), payment_id])
    )
    assert challenge_id(kind, payment_id) == expected
    assert Challenge(kind, payment_id, b"x").id == expected


def test_the_two_kinds_of_one_payment_have_different_ids() -> None:
    assert UNDELIVERED.id != UNPAID.id
    assert UNDELIVERED.id == challenge_id(ChallengeKind.UNDELIVERED, PAYMENT_ID)


# -- JSON ----------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.one_of(
        st.tuples(st.just(ChallengeKind.UNDELIVERED), st.binary(min_size=32, max_size=32)),
        st.tuples(st.just(ChallengeKind.UNPAID), st.binary(min_size=1, max_size=16_384)),
    ),
)
def test_json_round_trip(payment_id: bytes, kind_evidence: tuple[ChallengeKind, bytes]) -> None:
    kind, evidence = kind_evidence
    challenge = Challenge(kind, payment_id, evidence)
    body = json.loads(json.dumps(challenge.to_json()))
    assert Challenge.from_json(body) == challenge
    upper = {k: v.upper().replace("0X", "0x") for k, v in body.items() if k != "kind"}
    assert Challenge.from_json({**body, **upper}) == challenge


GOOD = UNDELIVERED.to_json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "stolen"}, "kind"),
        ({"kind": None}, "kind"),
        ({"kind": "UNDELIVERED"}, "kind"),
        ({"payment_id": None}, "payment_id"),
        ({"payment_id": 7}, "payment_id"),
        ({"payment_id": "00" * 32}, "payment_id"),
        ({"payment_id": "0x" + "00" * 31}, "payment_id"),
        ({"payment_id": "0x" + "00" * 33}, "payment_id"),
        ({"payment_id": "0x" + "0" * 63}, "payment_id"),
        ({"payment_id": "0x" + "zz" * 32}, "payment_id"),
        ({"payment_id": "0x" + "00" * 31 + " 0"}, "payment_id"),
        ({"payment_id": "0x" + "\u0660" * 64}, "payment_id"),  # Arabic-Indic zeros
        ({"evidence": "0x" + "00" * 31}, "evidence"),
        ({"evidence": "0x"}, "evidence"),
        ({"evidence": ["0x00"]}, "evidence"),
        ({"kind": "unpaid", "evidence": "0x"}, "evidence"),
        ({"kind": "unpaid", "evidence": "0x" + "00" * 16_385}, "evidence"),
    ],
)
def test_every_malformed_field_is_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        Challenge.from_json({**GOOD, **change})
    message = str(error.value)
    assert "\n" not in message
    assert field.split("_", maxsplit=1)[0] in message or "challenge kind" in message


@pytest.mark.parametrize("missing", ["kind", "payment_id", "evidence"])
def test_a_missing_field_is_invalid_input(missing: str) -> None:
    with pytest.raises(InvalidInput):
        Challenge.from_json({k: v for k, v in GOOD.items() if k != missing})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
hexish = st.text("0123456789abcdefABCDEFx ", max_size=70).map(lambda s: "0x" + s)


@settings(max_examples=400, deadline=None)
@given(
    json_values
    | st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(["undelivered", "unpaid", "other"]) | json_values,
            "payment_id": hexish | json_values,
            "evidence": hexish | json_values,
        },
    )
)
def test_arbitrary_json_raises_only_invalid_input(body: object) -> None:
    try:
        challenge = Challenge.from_json(body)  # type: ignore[arg-type]
    except InvalidInput:
        return
    assert Challenge.from_json(challenge.to_json()) == challenge


# -- the penalty -----------------------------------------------------------------------------
def test_penalty_request_signs_the_notarys_penalty_message() -> None:
    verdict = run(UNDELIVERED, included(), LATE)
    request = penalty_request(verdict, chain_id=31337, notary=NOTARY)
    assert request.request_id == UNDELIVERED.id
    assert request.message == penalty_message(
        31337, NOTARY, UNDELIVERED.id, PAYMENT.provider, PAYMENT.consumer, PAYMENT.required
    )
    unpaid = run(UNPAID, not_included(posting(PAID_AT)), 10**9)
    other = penalty_request(unpaid, chain_id=31337, notary=NOTARY)
    assert other.message == penalty_message(
        31337, NOTARY, UNPAID.id, PAYMENT.consumer, PAYMENT.provider, PAYMENT.required
    )
    assert other.message != request.message


@pytest.mark.parametrize(
    "verdict",
    [run(UNDELIVERED, included(), PAID_AT), run(UNPAID, not_included(None), 10**9)],
    ids=["wait", "refuse"],
)
def test_penalty_request_refuses_a_verdict_that_is_no_penalty(verdict: Verdict) -> None:
    with pytest.raises(ChallengeRefused, match=verdict.outcome.value):
        penalty_request(verdict, chain_id=31337, notary=NOTARY)
