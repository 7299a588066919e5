"""The oracle protocol as a state machine, without a network: three members (t = 2) pass
their actions to each other by hand; outcomes are the transactions they would send."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.committee import EnvelopeSigner, Send, Submit
from pervasive.contracts.oracle_hub import Expiry, Fulfillment, Report
from pervasive.crypto import generate_private_key, keccak256
from pervasive.errors import InvalidSignature, ReplayedMessage
from pervasive.oracle import (
    REPORT,
    Fetch,
    Observation,
    OracleProtocol,
    Query,
    ReportBody,
    committee_domain,
    submission_round,
)

HUB = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN = 31337
KEYS = [generate_private_key() for _ in range(4)]
ORACLES = [k.address for k in KEYS[:3]]
QUERY = Query(7, 1, "http://127.0.0.1/ShipmentCost?device=VerticalPump", "cost", 1_000, 1)
BODY = b'{"device":"VerticalPump","cost":1234}'


def _member(index: int, epoch: int = 1) -> OracleProtocol:
    key = KEYS[index]
    return OracleProtocol(
        key=key, chain_id=CHAIN, hub=HUB, oracles=ORACLES, threshold=2,
        envelopes=EnvelopeSigner(key, committee_domain(CHAIN, HUB), HUB, epoch=epoch),
    )  # fmt: skip


def _seen(value: int = 1234, body: bytes = BODY) -> Observation:
    return Observation(keccak256(body), value, 990, len(body))


def _send(actions: list[object]) -> Send:
    (send,) = [a for a in actions if isinstance(a, Send)]
    return send


def _submits(actions: list[object]) -> list[Submit[object]]:
    return [a for a in actions if isinstance(a, Submit)]


def test_two_agreeing_reports_make_one_fulfillment_the_hub_accepts() -> None:
    a, b = _member(0), _member(1)
    assert a.query_seen(QUERY) == [Fetch(QUERY)]
    assert b.query_seen(QUERY) == [Fetch(QUERY)]
    from_a = _send(a.observed(7, 1, _seen()))
    assert set(from_a.recipients) == {ORACLES[1], ORACLES[2]}
    assert b.receive(from_a.envelope.encode()) == []  # b has not observed yet
    actions = b.observed(7, 1, _seen())
    (submit,) = _submits(actions)
    assert submit.round == submission_round(7, 1)
    fulfillment = submit.transaction
    assert isinstance(fulfillment, Fulfillment)
    assert (fulfillment.query_id, fulfillment.value) == (7, 1234)
    assert fulfillment.digest == keccak256(BODY)
    assert len(fulfillment.reports) == 2 * 73
    # a gets b's report and submits too (the submitter keeps one per round)
    assert _submits(a.receive(_send(actions).envelope.encode()))
    # nothing more for a third report
    c = _member(2)
    c.query_seen(QUERY)
    assert not _submits(a.receive(_send(c.observed(7, 1, _seen())).envelope.encode()))


def test_a_disagreeing_report_is_counted_and_never_counts_towards_t() -> None:
    a, liar = _member(0), _member(2)
    a.query_seen(QUERY)
    liar.query_seen(QUERY)
    lie = _send(liar.observed(7, 1, _seen(1235, b'{"cost":1235}')))
    assert a.receive(lie.envelope) == []
    assert not _submits(a.observed(7, 1, _seen()))
    assert a.refusals["disagree"] == 1


def test_reports_of_unregistered_keys_replays_and_forgeries_are_refused() -> None:
    a, b = _member(0), _member(1)
    for m in (a, b):
        m.query_seen(QUERY)
    outsider = OracleProtocol(
        key=KEYS[3], chain_id=CHAIN, hub=HUB, oracles=[*ORACLES, KEYS[3].address],
        threshold=2, envelopes=EnvelopeSigner(KEYS[3], committee_domain(CHAIN, HUB), HUB,
                                              epoch=1),
    )  # fmt: skip
    outsider.query_seen(QUERY)
    sneaky = _send(outsider.observed(7, 1, _seen()))
    with pytest.raises(InvalidSignature):
        a.receive(sneaky.envelope.encode())
    assert a.refusals["unregistered"] == 1

    report = _send(b.observed(7, 1, _seen()))
    a.receive(report.envelope.encode())
    with pytest.raises(ReplayedMessage):
        a.receive(report.envelope.encode())
    assert a.refusals["replay"] == 1

    # a report signed by b's envelope key but claiming another value than b's report says
    c = _member(2)
    c.query_seen(QUERY)
    fake = Report(7, keccak256(b"x"), 1, 5, QUERY.source).sign(KEYS[1], CHAIN, HUB)
    tampered = ReportBody(1, keccak256(b"y"), 1, 5, fake.signature)  # signed other fields
    signer = EnvelopeSigner(KEYS[1], committee_domain(CHAIN, HUB), HUB, epoch=9)
    with pytest.raises(InvalidSignature):
        c.receive(signer.sign(7, REPORT, tampered.encode()))
    assert c.refusals["signature"] == 1


def test_reports_before_the_query_wait_and_stale_attempts_are_refused() -> None:
    a, b = _member(0), _member(1)
    b.query_seen(QUERY)
    early = _send(b.observed(7, 1, _seen()))
    assert a.receive(early.envelope.encode()) == []  # a's follower has not seen query 7
    actions = a.query_seen(QUERY)
    assert actions == [Fetch(QUERY)]
    assert _submits(a.observed(7, 1, _seen()))  # the buffered report counted

    retry = Query(7, 1, QUERY.source, "cost", 2_000, 2)
    c = _member(2)
    c.query_seen(retry)
    assert b.observed(7, 1, _seen()) == []  # b already reported attempt 1: nothing new
    b2 = _member(1, epoch=2)  # b restarted, still on attempt 1
    b2.query_seen(QUERY)
    stale = _send(b2.observed(7, 1, _seen()))
    assert c.receive(stale.envelope.encode()) == []
    assert c.refusals["stale"] == 1


def test_an_attempt_past_its_deadline_is_expired_once_and_a_retry_is_fetched_again() -> None:
    a = _member(0)
    a.query_seen(QUERY)
    assert a.tick(QUERY.deadline) == []  # within the grace
    (expire,) = a.tick(QUERY.deadline + 1.5)
    assert isinstance(expire, Submit) and expire.transaction == Expiry(7, 1)
    assert expire.round == submission_round(7, 1)
    assert a.tick(QUERY.deadline + 5) == []
    retry = Query(7, 1, QUERY.source, "cost", 2_000, 2)
    assert a.query_seen(retry) == [Fetch(retry)]
    assert a.query_seen(retry) == []  # the same attempt twice
    (again,) = a.tick(2_002)
    assert isinstance(again, Submit) and again.transaction == Expiry(7, 2)
    a.finished(7)
    assert a.tick(10_000) == [] and a.query_seen(retry) == []


@settings(max_examples=30, deadline=None)
@given(query_id=st.integers(1, 2**40))
def test_one_member_is_designated_and_the_others_take_over_in_ring_order(query_id: int) -> None:
    members = [_member(i) for i in range(3)]
    designated = {m.designated(query_id) for m in members}
    assert len(designated) == 1
    assert sorted(m.rank(query_id) for m in members) == [0, 1, 2]


def test_a_member_outside_the_set_does_nothing() -> None:
    outsider = OracleProtocol(
        key=KEYS[3], chain_id=CHAIN, hub=HUB, oracles=ORACLES, threshold=2,
        envelopes=EnvelopeSigner(KEYS[3], committee_domain(CHAIN, HUB), HUB, epoch=1),
    )  # fmt: skip
    assert not outsider.registered
    assert outsider.query_seen(QUERY) == []
