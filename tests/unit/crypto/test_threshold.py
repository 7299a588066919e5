"""Threshold BLS (paper 003 eq. 2-7): the RFC 9591 Shamir vector, Feldman share checks,
any t of n partials combine to one signature that blst verifies, t-1 never do."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pyblst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crypto.bls import BLS_CURVE_ORDER, BLS_SIGNATURE_DST, bls_sign, bls_verify
from pervasive.crypto.keys import SECP256K1_ORDER
from pervasive.crypto.threshold import (
    Polynomial,
    combine_shares,
    combine_signatures,
    evaluate_polynomial,
    group_public_key,
    lagrange_at_zero,
    public_share,
    verify_public_shares,
    verify_share,
)
from pervasive.errors import InvalidInput

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
FROST = json.loads((VECTORS / "shamir" / "frost-secp256k1-sha256.json").read_text())["inputs"]
G2_GENERATOR = bytes.fromhex(
    "93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d"
    "055d042b7e024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805"
    "bbefd48056c8c121bdb8"
)


class Committee:
    """A Feldman DKG among n dealers run in memory, as the members would run it."""

    def __init__(self, n: int, t: int, seed: int = 0) -> None:
        self.n, self.t = n, t
        self.dealers = [Polynomial.from_seed(bytes([seed, i]) * 16, threshold=t) for i in range(n)]
        self.commitments = [dealer.commitments() for dealer in self.dealers]
        self.shares = {
            j: combine_shares([dealer.evaluate(j) for dealer in self.dealers])
            for j in range(1, n + 1)
        }
        self.group_key = group_public_key([c[0] for c in self.commitments])

    def partials(self, message: bytes) -> dict[int, bytes]:
        return {j: bls_sign(share, message) for j, share in self.shares.items()}


def _blst_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    sig = pyblst.BlstP1Element.uncompress(signature)
    hashed = pyblst.BlstP1Element.hash_to_group(message, BLS_SIGNATURE_DST)
    generator = pyblst.BlstP2Element.uncompress(G2_GENERATOR)
    key = pyblst.BlstP2Element.uncompress(public_key)
    return bool(
        pyblst.final_verify(pyblst.miller_loop(sig, generator), pyblst.miller_loop(hashed, key))
    )


def test_shamir_shares_of_rfc9591_reproduced() -> None:
    secret = int(FROST["group_secret_key"], 16)
    coefficients = [secret] + [int(c, 16) for c in FROST["share_polynomial_coefficients"]]
    shares = {
        entry["identifier"]: int(entry["participant_share"], 16)
        for entry in FROST["participant_shares"]
    }
    assert len(shares) == 3
    for index, share in shares.items():
        assert evaluate_polynomial(coefficients, index, SECP256K1_ORDER) == share
    for pair in itertools.combinations(shares, 2):
        weights = lagrange_at_zero(pair, SECP256K1_ORDER)
        recovered = sum(weights[i] * shares[i] for i in pair) % SECP256K1_ORDER
        assert recovered == secret


def test_lagrange_refuses_repeated_and_zero_indices() -> None:
    with pytest.raises(InvalidInput, match="distinct"):
        lagrange_at_zero([1, 1])
    with pytest.raises(InvalidInput, match="indices"):
        lagrange_at_zero([0, 2])
    with pytest.raises(InvalidInput, match="at least one"):
        lagrange_at_zero([])


def test_every_dealt_share_verifies_and_a_wrong_one_is_rejected() -> None:
    committee = Committee(n=4, t=3)
    for dealer, commitments in zip(committee.dealers, committee.commitments, strict=True):
        for j in range(1, 5):
            assert verify_share(commitments, j, dealer.evaluate(j))
        assert not verify_share(commitments, 1, dealer.evaluate(2))
        assert not verify_share(commitments, 1, (dealer.evaluate(1) + 1) % BLS_CURVE_ORDER)
    # Another dealer's commitments do not vouch for this dealer's share.
    assert not verify_share(committee.commitments[1], 1, committee.dealers[0].evaluate(1))


def test_malformed_commitments_make_verify_share_false() -> None:
    assert not verify_share([b"\x00" * 96], 1, 5)
    assert not verify_share([b"\xc0" + bytes(95)], 1, 0)
    assert not verify_share([], 1, 5)


def test_public_share_is_the_key_of_the_combined_share() -> None:
    committee = Committee(n=4, t=3)
    for j, share in committee.shares.items():
        partial = bls_sign(share, b"eq. 6")
        assert bls_verify(public_share(committee.commitments, j), b"eq. 6", partial)
        assert not bls_verify(public_share(committee.commitments, j % 4 + 1), b"eq. 6", partial)


@settings(max_examples=15, deadline=None)
@given(
    shape=st.sampled_from([(4, 3), (5, 3), (3, 2), (5, 5), (2, 1)]),
    message=st.binary(max_size=64),
    data=st.data(),
)
def test_any_t_partials_give_the_group_signature_and_t_minus_1_do_not(
    shape: tuple[int, int], message: bytes, data: st.DataObject
) -> None:
    n, t = shape
    committee = Committee(n, t, seed=data.draw(st.integers(0, 255)))
    partials = committee.partials(message)
    chosen = data.draw(st.permutations(range(1, n + 1)))
    signature = combine_signatures({j: partials[j] for j in chosen[:t]})
    assert bls_verify(committee.group_key, message, signature)
    assert _blst_verify(committee.group_key, message, signature)
    # Every t-subset yields the same signature: it does not depend on who signed.
    other = data.draw(st.permutations(range(1, n + 1)))
    assert combine_signatures({j: partials[j] for j in other[:t]}) == signature
    if t > 1:
        short = combine_signatures({j: partials[j] for j in chosen[: t - 1]})
        assert not bls_verify(committee.group_key, message, short)
        assert not _blst_verify(committee.group_key, message, short)


def test_group_secret_is_the_sum_of_the_dealers_secrets() -> None:
    committee = Committee(n=4, t=3)
    weights = lagrange_at_zero([1, 2, 3])
    secret = sum(weights[j] * committee.shares[j] for j in (1, 2, 3)) % BLS_CURVE_ORDER
    assert secret == sum(d.coefficients[0] for d in committee.dealers) % BLS_CURVE_ORDER


def test_a_wrong_partial_spoils_the_combination() -> None:
    committee = Committee(n=4, t=3)
    partials = committee.partials(b"m")
    forged = dict(partials)
    forged[2] = bls_sign(committee.shares[2], b"another message")
    combined = combine_signatures({j: forged[j] for j in (1, 2, 3)})
    assert not bls_verify(committee.group_key, b"m", combined)


def test_tampered_group_signature_is_rejected_by_blst() -> None:
    committee = Committee(n=4, t=3)
    signature = combine_signatures({j: s for j, s in committee.partials(b"m").items() if j < 4})
    tampered = combine_signatures({1: bls_sign(committee.shares[1] + 1, b"m")})
    assert _blst_verify(committee.group_key, b"m", signature)
    assert not _blst_verify(committee.group_key, b"m", tampered)


def test_combine_refuses_malformed_partials() -> None:
    with pytest.raises(InvalidInput, match="G1"):
        combine_signatures({1: b"\x01" * 48})
    with pytest.raises(InvalidInput, match="infinity"):
        combine_signatures({1: b"\xc0" + bytes(47)})


def test_polynomial_from_seed_is_deterministic_and_hides_its_secret() -> None:
    seed = bytes(range(32))
    assert Polynomial.from_seed(seed, 3) == Polynomial.from_seed(seed, 3)
    assert Polynomial.from_seed(seed, 3) != Polynomial.from_seed(seed[::-1], 3)
    polynomial = Polynomial.random(3)
    assert str(polynomial.coefficients[0]) not in repr(polynomial)
    assert len(polynomial.commitments()) == 3
    with pytest.raises(InvalidInput, match="at least 32"):
        Polynomial.from_seed(b"short", 3)
    with pytest.raises(InvalidInput, match="threshold"):
        Polynomial.random(0)


def test_group_key_refuses_cancelling_secrets() -> None:
    a = Polynomial((5, 1))
    b = Polynomial((BLS_CURVE_ORDER - 5, 2))
    with pytest.raises(InvalidInput, match="sum to zero"):
        group_public_key([a.commitments()[0], b.commitments()[0]])


def test_public_shares_must_fit_the_group_key() -> None:
    committee = Committee(n=4, t=3)
    publics = {j: public_share(committee.commitments, j) for j in range(1, 5)}
    assert verify_public_shares(publics, 3, committee.group_key)
    # A lower threshold claims a degree the shares do not have.
    assert not verify_public_shares(publics, 2, committee.group_key)
    other = Committee(n=4, t=3, seed=9)
    assert not verify_public_shares(publics, 3, other.group_key)
    swapped = publics | {4: public_share(other.commitments, 4)}
    assert not verify_public_shares(swapped, 3, committee.group_key)
    assert not verify_public_shares(publics | {4: b"\x00" * 96}, 3, committee.group_key)
    assert not verify_public_shares({1: publics[1], 3: publics[3]}, 1, committee.group_key)
