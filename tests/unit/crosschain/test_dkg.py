"""The notary committee's key generation, run in-process among n members (paper 003, V-A).

Every member is a real :class:`DkgMember`; a small router delivers each ``Send`` to its
recipients, optionally through an adversary that rewrites (and re-signs, with the
dealer's own key: a malicious member signs what it wants) or drops a member's messages.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import deque
from collections.abc import Callable, Sequence

import pyblst  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.committee import Envelope, MemoryEpochs, Send
from pervasive.crosschain.dkg import DkgMember
from pervasive.crosschain.dkg_bodies import (
    ComplaintBody,
    DealBody,
    DkgAborted,
    DkgFinished,
    DkgKind,
    DkgPhase,
    DkgResult,
    DkgSchedule,
    DkgTranscript,
    JustificationBody,
    decode_dkg_body,
    share_context,
)
from pervasive.crosschain.dkg_store import MemoryDkgStore
from pervasive.crosschain.errors import DkgFailed
from pervasive.crypto import PrivateKey
from pervasive.crypto.bls import (
    BLS_CURVE_ORDER,
    BLS_SIGNATURE_DST,
    bls_prove_possession,
    bls_public_key,
    bls_sign,
    bls_verify,
)
from pervasive.crypto.encryption import decrypt_with, encrypt_to
from pervasive.crypto.threshold import Polynomial, combine_signatures, group_public_key
from pervasive.errors import InvalidInput, InvalidSignature, PervasiveError, ReplayedMessage
from pervasive.storage import cid_of

CHAIN_ID = 31337
NONCE = bytes(range(32))
SCHEDULE = DkgSchedule.starting(0.0, step=10.0)
MESSAGE = b"pervasive.notary.release 1 ether"

Adversary = Callable[[int, int, Envelope], Envelope | None]
"""``(sender, recipient, envelope) -> envelope to deliver, or None to drop it``."""


def member_key(i: int) -> PrivateKey:
    return PrivateKey((0xD1C0 + i).to_bytes(32, "big"))


class Committee:
    """n members and the network between them."""

    def __init__(self, n: int, t: int, *, offline: frozenset[int] = frozenset()) -> None:
        self.n, self.t = n, t
        self.keys = {i: member_key(i) for i in range(1, n + 1)}
        public = {i: k.public_key for i, k in self.keys.items()}
        self.members = {
            i: DkgMember(
                key=self.keys[i],
                index=i,
                members=public,
                threshold=t,
                chain_id=CHAIN_ID,
                setup_nonce=NONCE,
                schedule=SCHEDULE,
                store=MemoryDkgStore(),
                epochs=MemoryEpochs(),
            )
            for i in range(1, n + 1)
            if i not in offline
        }
        self.index_of = {k.address: i for i, k in self.keys.items()}
        self.queue: deque[tuple[int, int, Envelope]] = deque()
        self.finished: dict[int, DkgFinished] = {}
        self.aborted: dict[int, DkgAborted] = {}
        self.refused: list[PervasiveError] = []
        self.shuffle: random.Random | None = None
        """Deliver in a random order drawn from this generator (None: in order)."""

    def dispatch(self, sender: int, actions: Sequence[object]) -> None:
        for action in actions:
            if isinstance(action, Send):
                for address in action.recipients:
                    self.queue.append((sender, self.index_of[address], action.envelope))
            elif isinstance(action, DkgFinished):
                self.finished[sender] = action
            elif isinstance(action, DkgAborted):
                self.aborted[sender] = action

    def run(self, adversary: Adversary | None = None) -> None:
        """Start everyone, deliver until quiet, then let each deadline pass in turn."""
        for i, member in self.members.items():
            self.dispatch(i, member.start(1.0))
        for now in (1.0, SCHEDULE.deal_by, SCHEDULE.complain_by, SCHEDULE.justify_by,
                    SCHEDULE.result_by):  # fmt: skip
            for i, member in self.members.items():
                self.dispatch(i, member.tick(now))
            self.drain(now, adversary)

    def drain(self, now: float, adversary: Adversary | None) -> None:
        while self.queue:
            if self.shuffle is not None:
                self.queue.rotate(-self.shuffle.randrange(len(self.queue)))
            sender, recipient, envelope = self.queue.popleft()
            if adversary is not None:
                rewritten = adversary(sender, recipient, envelope)
                if rewritten is None:
                    continue
                envelope = rewritten
            if recipient not in self.members:
                continue
            try:
                self.dispatch(recipient, self.members[recipient].receive(envelope.encode(), now))
            except PervasiveError as exc:
                self.refused.append(exc)

    def results(self, among: set[int] | None = None) -> dict[int, DkgResult]:
        chosen = set(self.members) if among is None else among
        return {i: self.finished[i].result for i in chosen}

    def resign(self, sender: int, envelope: Envelope, body: bytes) -> Envelope:
        member = self.members[sender]
        return Envelope.create(
            self.keys[sender], member.domain, session=envelope.session, round=envelope.round,
            kind=envelope.kind, nonce=envelope.nonce, body=body,
        )  # fmt: skip


BLST_G2 = pyblst.BlstP2Element.uncompress(bls_public_key(1))


def blst_public_share(
    commitments_by_dealer: list[tuple[bytes, ...]], index: int
) -> pyblst.BlstP2Element:
    """``sum_i sum_k A_{i,k} * index^k`` by supranational blst, not by the code under test."""
    total = None
    for commitments in commitments_by_dealer:
        for k, commitment in enumerate(commitments):
            term = pyblst.BlstP2Element.uncompress(commitment).scalar_mul(
                pow(index, k, BLS_CURVE_ORDER)
            )
            total = term if total is None else total + term
    assert total is not None
    return total


def blst_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """``e(sig, g2) == e(H(m), pk)`` by blst (eq. 7)."""
    sig = pyblst.BlstP1Element.uncompress(signature)
    hashed = pyblst.BlstP1Element.hash_to_group(message, BLS_SIGNATURE_DST)
    key = pyblst.BlstP2Element.uncompress(public_key)
    return bool(
        pyblst.final_verify(pyblst.miller_loop(sig, BLST_G2), pyblst.miller_loop(hashed, key))
    )


def assert_agreement(committee: Committee, honest: set[int], qualified: tuple[int, ...]) -> bytes:
    """The honest members agree on the qualified set and PK, and any t of them can sign."""
    results = committee.results(honest)
    keys = {r.group_key for r in results.values()}
    assert len(keys) == 1, "members ended with different group keys"
    assert {r.qualified for r in results.values()} == {qualified}
    group_key = keys.pop()
    some = next(iter(results.values()))
    partials = {i: bls_sign(r.share, MESSAGE) for i, r in results.items()}
    for i, partial in partials.items():
        assert bls_verify(some.public_shares[i], MESSAGE, partial)
    subsets = list(itertools.combinations(sorted(partials), committee.t))
    for subset in random.Random(7).sample(subsets, min(len(subsets), 8)):
        combined = combine_signatures({i: partials[i] for i in subset})
        assert bls_verify(group_key, MESSAGE, combined)
    some_transcript = committee.finished[next(iter(results))].transcript
    deals = {d.dealer: d.commitments for d in some_transcript.deals}
    for i, r in results.items():  # eq. 3-4 recomputed by blst from the published transcript
        assert BLST_G2.scalar_mul(r.share) == blst_public_share([deals[d] for d in qualified], i)
    combined = combine_signatures({i: partials[i] for i in sorted(partials)[: committee.t]})
    assert blst_verify(group_key, MESSAGE, combined)
    fewer = dict(itertools.islice(partials.items(), committee.t - 1))
    if fewer:
        assert not bls_verify(group_key, MESSAGE, combine_signatures(fewer))
    return group_key


@pytest.mark.parametrize(("n", "t"), [(4, 3), (7, 5), (10, 7)])
def test_every_member_ends_with_the_same_key_and_any_t_can_sign(n: int, t: int) -> None:
    committee = Committee(n, t)
    committee.run()
    everyone = set(range(1, n + 1))
    group_key = assert_agreement(committee, everyone, tuple(sorted(everyone)))
    assert not committee.aborted and not committee.refused
    transcripts = {f.transcript.to_json() for f in committee.finished.values()}
    assert len(transcripts) == 1, "members published different transcripts"
    transcript = DkgTranscript.from_json(transcripts.pop())
    assert transcript.group_key == group_key
    assert group_public_key([d.commitments[0] for d in transcript.deals]) == group_key
    assert len(transcript.results) == n and not transcript.complaints
    assert DkgTranscript.from_json(transcript.to_json()) == transcript
    assert str(cid_of(transcript.to_json())).startswith("b")


def test_the_run_ends_before_any_deadline_when_everyone_answers() -> None:
    committee = Committee(4, 3)
    for i, member in committee.members.items():
        committee.dispatch(i, member.start(1.0))
    committee.drain(1.0, None)
    assert set(committee.finished) == {1, 2, 3, 4}
    assert {m.phase for m in committee.members.values()} == {DkgPhase.DONE}


def wrong_share(committee: Committee, dealer: int, victim: int) -> Callable[[Envelope], Envelope]:
    """Rewrite ``dealer``'s deal so that ``victim``'s share is off by one."""
    member = committee.members[dealer]

    def rewrite(envelope: Envelope) -> Envelope:
        body = decode_dkg_body(envelope)
        assert isinstance(body, DealBody)
        context = share_context(member.session, member.key.address, committee.keys[victim].address)
        good = decrypt_with(committee.keys[victim], body.shares[victim - 1], context=context)
        bad = (int.from_bytes(good, "big") + 1) % BLS_CURVE_ORDER
        box = encrypt_to(
            committee.keys[victim].public_key, bad.to_bytes(32, "big"), context=context
        )
        shares = (*body.shares[: victim - 1], box, *body.shares[victim:])
        return committee.resign(dealer, envelope, dataclasses.replace(body, shares=shares).encode())

    return rewrite


def rogue_dealer(committee: Committee, dealer: int, victim: int, justification: str) -> Adversary:
    """``dealer`` sends ``victim`` a wrong share, then justifies honestly, wrongly or not at all."""
    rewrite = wrong_share(committee, dealer, victim)
    sent: dict[bytes, Envelope] = {}

    def adversary(sender: int, recipient: int, envelope: Envelope) -> Envelope | None:
        if sender != dealer:
            return envelope
        if envelope.kind == DkgKind.DKG_DEAL:
            # One tampered deal, the same for everybody: the dealer does not equivocate.
            return sent.setdefault(envelope.encode(), rewrite(envelope))
        if envelope.kind == DkgKind.DKG_JUSTIFICATION:
            if justification == "missing":
                return None
            body = decode_dkg_body(envelope)
            assert isinstance(body, JustificationBody)
            deal = next(iter(sent.values())).encode()
            shares = body.shares
            if justification == "invalid":
                shares = tuple((s + 1) % BLS_CURVE_ORDER for s in shares)
            new = dataclasses.replace(body, deal=deal, shares=shares)
            return committee.resign(dealer, envelope, new.encode())
        return envelope

    return adversary


def test_a_wrong_share_answered_by_a_valid_justification_keeps_the_dealer() -> None:
    committee = Committee(4, 3)
    committee.run(rogue_dealer(committee, dealer=2, victim=3, justification="valid"))
    assert_agreement(committee, {1, 2, 3, 4}, (1, 2, 3, 4))
    transcript = committee.finished[1].transcript
    assert [(c, a) for c, a, _ in transcript.complaints] == [(3, 2)]
    assert [(d, c) for d, c, _ in transcript.justifications] == [(2, 3)]


@pytest.mark.parametrize("justification", ["invalid", "missing"])
def test_an_unanswered_complaint_excludes_the_dealer(justification: str) -> None:
    committee = Committee(4, 3)
    committee.run(rogue_dealer(committee, dealer=2, victim=3, justification=justification))
    assert_agreement(committee, {1, 3, 4}, (1, 3, 4))
    assert 2 not in committee.finished  # the rogue's own view (itself qualified) finds no quorum


def test_a_dealer_whose_proof_of_possession_fails_is_excluded() -> None:
    committee = Committee(4, 3)

    def adversary(sender: int, recipient: int, envelope: Envelope) -> Envelope | None:
        if sender == 4 and envelope.kind == DkgKind.DKG_DEAL:
            body = decode_dkg_body(envelope)
            assert isinstance(body, DealBody)
            forged = dataclasses.replace(body, proof=bls_prove_possession(12345))
            return committee.resign(4, envelope, forged.encode())
        return envelope

    committee.run(adversary)
    assert_agreement(committee, {1, 2, 3}, (1, 2, 3))


def test_too_few_qualified_dealers_fail_the_key_generation() -> None:
    committee = Committee(4, 3, offline=frozenset({3, 4}))
    committee.run()
    assert set(committee.aborted) == {1, 2}
    for member in committee.members.values():
        assert member.phase is DkgPhase.FAILED
        with pytest.raises(DkgFailed, match="only 2 qualified dealers, 3 needed"):
            member.outcome()


def test_one_silent_member_does_not_stop_the_others() -> None:
    committee = Committee(4, 3, offline=frozenset({4}))
    committee.run()
    assert_agreement(committee, {1, 2, 3}, (1, 2, 3))
    complaints = committee.finished[1].transcript.complaints
    assert sorted((c, a) for c, a, _ in complaints) == [(1, 4), (2, 4), (3, 4)]


def test_forged_replayed_and_outsider_envelopes_are_refused_and_counted() -> None:
    committee = Committee(4, 3)
    target = committee.members[1]
    for i, member in committee.members.items():
        committee.dispatch(i, member.start(1.0))
    deal_from_2 = next(e for s, r, e in committee.queue if s == 2 and r == 1)
    outsider = PrivateKey((0xBAD).to_bytes(32, "big"))
    as_outsider = Envelope.create(
        outsider, target.domain, session=target.session, round=0, kind=DkgKind.DKG_DEAL,
        nonce=deal_from_2.nonce, body=deal_from_2.body,
    )  # fmt: skip
    forged = dataclasses.replace(as_outsider, sender=committee.keys[3].address)
    with pytest.raises(InvalidSignature, match="not signed by its sender"):
        target.receive(forged.encode(), 1.0)
    with pytest.raises(InvalidSignature, match="may not send"):
        target.receive(as_outsider.encode(), 1.0)
    target.receive(deal_from_2.encode(), 1.0)
    with pytest.raises(ReplayedMessage):
        target.receive(deal_from_2.encode(), 1.0)
    assert target.rejected["signature"] == 2 and target.rejected["replay"] == 1
    committee.drain(1.0, None)  # the genuine copy of 2's deal is now a replay for member 1
    assert_agreement(committee, {1, 2, 3, 4}, (1, 2, 3, 4))


def test_a_late_deal_is_refused_and_its_dealer_must_justify() -> None:
    committee = Committee(4, 3)
    for i, member in committee.members.items():
        committee.dispatch(i, member.start(1.0))
    late = [(s, r, e) for s, r, e in committee.queue if s == 4 and r == 1]
    committee.queue = deque(x for x in committee.queue if x not in late)
    committee.drain(1.0, None)
    member_1 = committee.members[1]
    committee.dispatch(1, member_1.receive(late[0][2].encode(), SCHEDULE.deal_by + 1))
    assert member_1.rejected["late"] == 1
    for now in (SCHEDULE.deal_by + 1, SCHEDULE.complain_by, SCHEDULE.justify_by,
                SCHEDULE.result_by):  # fmt: skip
        for i, member in committee.members.items():
            committee.dispatch(i, member.tick(now))
        committee.drain(now, None)
    assert_agreement(committee, {1, 2, 3, 4}, (1, 2, 3, 4))
    assert [(d, c) for d, c, _ in committee.finished[2].transcript.justifications] == [(4, 1)]


def test_a_dealer_showing_members_different_polynomials_is_excluded_by_all() -> None:
    committee = Committee(4, 3)
    other = Polynomial.from_seed(b"\x99" * 32, 3)

    def adversary(sender: int, recipient: int, envelope: Envelope) -> Envelope | None:
        if sender == 2 and recipient == 3 and envelope.kind == DkgKind.DKG_DEAL:
            member = committee.members[2]
            shares = tuple(
                encrypt_to(
                    committee.keys[j].public_key,
                    other.evaluate(j).to_bytes(32, "big"),
                    context=share_context(member.session, member.key.address, k.address),
                )
                for j, k in sorted(committee.keys.items())
            )
            body = DealBody(
                other.commitments(), bls_prove_possession(other.coefficients[0]), shares
            )
            return committee.resign(2, envelope, body.encode())
        return envelope

    committee.run(adversary)
    # Member 3's shares from 2 verify, so nobody complains: the echoed digests expose it.
    assert not committee.finished[1].transcript.complaints
    assert_agreement(committee, {1, 2, 3, 4}, (1, 3, 4))


def test_a_complaint_with_forged_evidence_is_refused_and_counted() -> None:
    committee = Committee(4, 3)

    def adversary(sender: int, recipient: int, envelope: Envelope) -> Envelope | None:
        if sender == 3 and envelope.kind == DkgKind.DKG_COMPLAINT:
            body = decode_dkg_body(envelope)
            assert isinstance(body, ComplaintBody)
            # A "deal of member 2" that member 3 signed itself.
            fake = committee.resign(3, dataclasses.replace(envelope, kind=DkgKind.DKG_DEAL), b"")
            forged = dataclasses.replace(body, accused=(2,), evidence=(fake.encode(),))
            return committee.resign(3, envelope, forged.encode())
        return envelope

    committee.run(adversary)
    assert [committee.members[i].rejected["evidence"] for i in (1, 2, 4)] == [1, 1, 1]
    assert_agreement(committee, {1, 2, 3, 4}, (1, 2, 3, 4))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"index": 5}, "public key is not the key given"),
        ({"index": 2}, "public key is not the key given"),
        ({"threshold": 5}, "threshold 5 must be between 1 and n = 4"),
        ({"threshold": 0}, "threshold 0 must be between 1 and n = 4"),
        ({"members": {i: member_key(i).public_key for i in (0, 1, 2, 3)}}, "indexed 1..n"),
        ({"setup_nonce": b"short"}, "setup nonce is 32 bytes"),
    ],
)
def test_a_bad_setup_is_refused_with_what_to_fix(change: dict[str, object], error: str) -> None:
    arguments: dict[str, object] = {
        "key": member_key(1),
        "index": 1,
        "members": {i: member_key(i).public_key for i in range(1, 5)},
        "threshold": 3,
        "chain_id": CHAIN_ID,
        "setup_nonce": NONCE,
        "schedule": SCHEDULE,
        "store": MemoryDkgStore(),
        "epochs": MemoryEpochs(),
    }
    with pytest.raises(InvalidInput, match=error):
        DkgMember(**{**arguments, **change})  # type: ignore[arg-type]


def test_a_member_starts_once_and_before_it_receives() -> None:
    committee = Committee(4, 3)
    member = committee.members[1]
    with pytest.raises(InvalidInput, match="call start"):
        member.receive(b"", 1.0)
    with pytest.raises(DkgFailed, match="still in phase DEALING"):
        member.outcome()
    member.start(1.0)
    with pytest.raises(InvalidInput, match="started already"):
        member.start(1.0)


@settings(max_examples=12, deadline=None)
@given(order=st.randoms(use_true_random=False), lost=st.sets(st.integers(0, 80), max_size=6))
def test_whatever_the_order_and_losses_the_members_that_finish_agree(
    order: random.Random, lost: set[int]
) -> None:
    committee = Committee(4, 3)
    committee.shuffle = order
    deliveries = itertools.count()

    def network(sender: int, recipient: int, envelope: Envelope) -> Envelope | None:
        return None if next(deliveries) in lost else envelope

    committee.run(network)
    finished = set(committee.finished)
    if not lost:
        assert finished == {1, 2, 3, 4}
    if len(finished) >= committee.t:
        qualified = committee.finished[min(finished)].result.qualified
        assert_agreement(committee, finished, qualified)
    else:  # with t > n/2 there is never a second group of t that agreed on another key
        assert len({f.result.group_key for f in committee.finished.values()}) <= 1
