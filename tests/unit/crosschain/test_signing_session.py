"""The notary's threshold-signing session (paper 003 eq. 6-7), n = 4, t = 3, without a network:
members exchange partial-signature bodies in their envelope wire form."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crosschain.errors import PartialSignatureInvalid
from pervasive.crosschain.signing import (
    PARTIAL_SIGNATURE,
    MemorySignatureJournal,
    PartialSignature,
    SignatureJournal,
    SigningRequest,
    SQLiteSignatureJournal,
    ThresholdKey,
    ThresholdSigner,
)
from pervasive.crypto import (
    BLS_CURVE_ORDER,
    Polynomial,
    bls_sign,
    bls_verify,
    combine_shares,
    combine_signatures,
    group_public_key,
    lagrange_at_zero,
    public_share,
)
from pervasive.errors import InvalidInput, InvalidSignature, ReplayedMessage

N, T = 4, 3
REQUEST = SigningRequest(bytes([7]) * 32, b"penalty: cheater pays victim 1 ether")


def _dkg(n: int = N, t: int = T, seed: int = 0) -> tuple[dict[int, int], dict[int, bytes], bytes]:
    dealers = [Polynomial.from_seed(bytes([seed, i]) * 16, threshold=t) for i in range(n)]
    commitments = [dealer.commitments() for dealer in dealers]
    shares = {j: combine_shares([d.evaluate(j) for d in dealers]) for j in range(1, n + 1)}
    publics = {j: public_share(commitments, j) for j in range(1, n + 1)}
    return shares, publics, group_public_key([c[0] for c in commitments])


SHARES, PUBLICS, GROUP_KEY = _dkg()


def _key(index: int) -> ThresholdKey:
    return ThresholdKey(index, SHARES[index], PUBLICS, T, GROUP_KEY)


def _signer(index: int, journal: SignatureJournal | None = None) -> ThresholdSigner:
    return ThresholdSigner(_key(index), journal or MemorySignatureJournal())


def _wire(body: PartialSignature) -> PartialSignature:
    """What a receiver gets: the body as it travels in the envelope, decoded again."""
    return PartialSignature.decode(body.encode())


@pytest.fixture(params=["memory", "sqlite"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SignatureJournal]:
    if request.param == "memory":
        yield MemorySignatureJournal()
    else:
        db = sqlite3.connect(tmp_path / "notary.sqlite", isolation_level=None)
        yield SQLiteSignatureJournal(db)
        db.close()


def test_honest_path_with_one_member_silent(journal: SignatureJournal) -> None:
    signers = {1: _signer(1, journal), 2: _signer(2), 3: _signer(3)}  # member 4 is silent
    bodies = {j: _wire(signer.sign(REQUEST)) for j, signer in signers.items()}
    results = {}
    for j, signer in signers.items():
        for sender, body in bodies.items():
            if sender != j:
                outcome = signer.accept(sender, body)
                if outcome is not None:
                    results[j] = outcome
    assert set(results) == {1, 2, 3}
    assert len(set(results.values())) == 1
    signature = results[1]
    assert bls_verify(GROUP_KEY, REQUEST.message, signature)  # eq. 7: what C_sp checks
    assert signers[2].signature(REQUEST.request_id) == signature
    assert all(not signer.refused for signer in signers.values())


def test_partials_received_before_signing_complete_on_sign() -> None:
    early = {j: _wire(_signer(j).sign(REQUEST)) for j in (2, 3)}
    member = _signer(1)
    assert member.accept(2, early[2]) is None
    assert member.accept(3, early[3]) is None
    assert member.signature(REQUEST.request_id) is None  # member 1 has not agreed yet
    member.sign(REQUEST)
    signature = member.signature(REQUEST.request_id)
    assert signature is not None and bls_verify(GROUP_KEY, REQUEST.message, signature)


def test_t_minus_1_colluders_with_their_shares_cannot_sign() -> None:
    forged_message = b"release everything to the colluders"
    colluders = (1, 2)
    partials = {j: bls_sign(SHARES[j], forged_message) for j in colluders}
    # Interpolating only their own partials, or guessing the missing one, fails eq. 7.
    assert not bls_verify(GROUP_KEY, forged_message, combine_signatures(partials))
    for guess in (1, 2**64, BLS_CURVE_ORDER - 1):
        guessed = partials | {3: bls_sign(guess, forged_message)}
        assert not bls_verify(GROUP_KEY, forged_message, combine_signatures(guessed))
    # Pooling their shares into "the secret" by Lagrange over the pair gives a wrong key.
    weights = lagrange_at_zero(colluders)
    pooled = sum(weights[j] * SHARES[j] for j in colluders) % BLS_CURVE_ORDER
    assert not bls_verify(GROUP_KEY, forged_message, bls_sign(pooled, forged_message))
    # And an honest member will not complete for them: it never agreed to that message.
    honest = _signer(3)
    honest.sign(REQUEST)
    for j in colluders:
        with pytest.raises(InvalidInput, match="another message"):
            honest.accept(j, PartialSignature(REQUEST.request_id, forged_message, partials[j]))
    assert honest.refused["wrong_message"] == 2
    assert honest.signature(REQUEST.request_id) is None


def test_forged_partial_is_refused_and_does_not_block_completion() -> None:
    member = _signer(1)
    member.sign(REQUEST)
    forged = PartialSignature(REQUEST.request_id, REQUEST.message, bls_sign(12345, REQUEST.message))
    with pytest.raises(PartialSignatureInvalid, match="member 2"):
        member.accept(2, forged)
    # A partial that is valid for member 3 is not valid as member 2's.
    with pytest.raises(PartialSignatureInvalid):
        member.accept(2, _wire(_signer(3).sign(REQUEST)))
    assert member.refused["invalid_partial"] == 2
    assert member.accept(3, _wire(_signer(3).sign(REQUEST))) is None
    signature = member.accept(2, _wire(_signer(2).sign(REQUEST)))
    assert signature is not None and bls_verify(GROUP_KEY, REQUEST.message, signature)


def test_refusals_are_counted_by_reason() -> None:
    member = _signer(1)
    member.sign(REQUEST)
    body = _wire(_signer(2).sign(REQUEST))
    member.accept(2, body)
    with pytest.raises(ReplayedMessage, match="already sent"):
        member.accept(2, body)
    for index in (0, 1, 5):
        with pytest.raises(InvalidSignature, match="not another member"):
            member.accept(index, body)
    assert member.refused == {"duplicate": 1, "unknown_sender": 3}


def test_early_partials_are_bounded_per_sender() -> None:
    member = ThresholdSigner(_key(1), MemorySignatureJournal(), max_pending=2)
    other = _signer(2)
    for i in range(2):
        member.accept(2, other.sign(SigningRequest(bytes([i]) * 32, b"m")))
    with pytest.raises(InvalidInput, match="requests open"):
        member.accept(2, other.sign(SigningRequest(bytes([9]) * 32, b"m")))
    assert member.refused["overflow"] == 1
    # Other senders are not starved by member 2.
    member.accept(3, _signer(3).sign(SigningRequest(bytes([9]) * 32, b"m")))


def test_restart_returns_the_same_partial_and_refuses_another_message(tmp_path: Path) -> None:
    path = tmp_path / "member1.sqlite"
    first = _signer(1, SQLiteSignatureJournal(path)).sign(REQUEST)
    restarted = _signer(1, SQLiteSignatureJournal(path))
    assert restarted.sign(REQUEST) == first
    other = SigningRequest(REQUEST.request_id, b"a different penalty")
    with pytest.raises(ReplayedMessage, match="another message"):
        restarted.sign(other)
    assert restarted.refused["conflicting_request"] == 1
    # The restarted member still completes the original request.
    restarted.accept(2, _wire(_signer(2).sign(REQUEST)))
    signature = restarted.accept(3, _wire(_signer(3).sign(REQUEST)))
    assert signature is not None and bls_verify(GROUP_KEY, REQUEST.message, signature)


def test_journal_keeps_the_first_write(journal: SignatureJournal) -> None:
    assert journal.load(REQUEST.request_id) is None
    assert journal.record(REQUEST.request_id, b"a", b"1" * 48) == (b"a", b"1" * 48)
    assert journal.record(REQUEST.request_id, b"b", b"2" * 48) == (b"a", b"1" * 48)
    assert journal.load(REQUEST.request_id) == (b"a", b"1" * 48)


def test_any_three_of_four_members_give_the_same_signature() -> None:
    bodies = {j: _wire(_signer(j).sign(REQUEST)) for j in range(1, N + 1)}
    signatures = set()
    for group in itertools.combinations(range(1, N + 1), T):
        me, *others = group
        member = _signer(me)
        member.sign(REQUEST)
        for sender in others:
            member.accept(sender, bodies[sender])
        signatures.add(member.signature(REQUEST.request_id))
    assert len(signatures) == 1 and None not in signatures


def test_key_refuses_inconsistent_setup() -> None:
    with pytest.raises(InvalidInput, match="does not match"):
        ThresholdKey(1, SHARES[2], PUBLICS, T, GROUP_KEY)
    with pytest.raises(InvalidInput, match="threshold"):
        ThresholdKey(1, SHARES[1], PUBLICS, 5, GROUP_KEY)
    _, other_publics, other_key = _dkg(N, T, seed=1)
    with pytest.raises(InvalidInput, match="do not fit"):
        ThresholdKey(1, SHARES[1], PUBLICS, T, other_key)
    with pytest.raises(InvalidInput, match="do not fit"):
        ThresholdKey(1, SHARES[1], PUBLICS | {4: other_publics[4]}, T, GROUP_KEY)
    with pytest.raises(InvalidInput, match=r"indices 1\.\.n"):
        ThresholdKey(1, SHARES[1], {1: PUBLICS[1], 3: PUBLICS[3]}, 1, GROUP_KEY)


def test_request_and_body_sizes_are_checked() -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        SigningRequest(b"short", b"m")
    with pytest.raises(InvalidInput, match="48 bytes"):
        PartialSignature(bytes(32), b"m", bytes(47))
    assert PARTIAL_SIGNATURE == 10


@settings(max_examples=100, deadline=None)
@given(
    request_id=st.binary(min_size=32, max_size=32),
    message=st.binary(max_size=300),
    partial=st.binary(min_size=48, max_size=48),
)
def test_body_round_trips(request_id: bytes, message: bytes, partial: bytes) -> None:
    body = PartialSignature(request_id, message, partial)
    assert PartialSignature.decode(body.encode()) == body


@settings(max_examples=300, deadline=None)
@given(junk=st.binary(max_size=400))
def test_decoding_junk_raises_invalid_input_only(junk: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        PartialSignature.decode(junk)
