"""DKG message bodies, session id and domain, and the transcript's canonical JSON."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as eth_abi_encode
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from pervasive.committee import Envelope
from pervasive.crosschain.dkg_bodies import (
    ComplaintBody,
    DealBody,
    DealRecord,
    DkgBody,
    DkgKind,
    DkgSchedule,
    DkgTranscript,
    JustificationBody,
    ResultBody,
    decode_dkg_body,
    notary_domain,
    notary_session,
    share_context,
)
from pervasive.crypto import PrivateKey, domain_separator
from pervasive.crypto.bls import BLS_CURVE_ORDER, bls_prove_possession, bls_public_key
from pervasive.errors import InvalidInput

KEY = PrivateKey((7).to_bytes(32, "big"))
MEMBERS = [PrivateKey((i).to_bytes(32, "big")).address for i in (5, 3, 9, 4)]
SESSION = notary_session(31337, MEMBERS, bytes(32))
DOMAIN = notary_domain(31337, SESSION)


def envelope(kind: int, body: bytes) -> Envelope:
    return Envelope.create(KEY, DOMAIN, session=SESSION, round=0, kind=kind, nonce=1, body=body)


def test_the_session_is_the_hash_of_chain_sorted_members_and_nonce() -> None:
    nonce = bytes(range(32))
    ordered = sorted(MEMBERS, key=lambda a: int(a, 16))
    expected = keccak(eth_abi_encode(["uint256", "address[]", "bytes32"], [5, ordered, nonce]))
    session = notary_session(5, list(reversed(MEMBERS)), nonce)
    assert session.lower() == "0x" + expected[12:].hex()
    assert notary_session(5, MEMBERS, nonce) == session  # the order given does not matter
    assert notary_session(6, MEMBERS, nonce) != session


def test_the_domain_names_the_notary_and_the_session() -> None:
    assert domain_separator("pervasive notary", "1", 31337, SESSION) == DOMAIN


@pytest.mark.parametrize(
    ("members", "nonce", "error"),
    [
        (MEMBERS, bytes(31), "setup nonce is 32 bytes"),
        ([*MEMBERS, MEMBERS[0]], bytes(32), "lists a member twice"),
    ],
)
def test_a_bad_session_setup_says_what_to_fix(members: list[str], nonce: bytes, error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        notary_session(1, members, nonce)


def test_share_contexts_differ_per_dealer_and_recipient() -> None:
    a, b = MEMBERS[0], MEMBERS[1]
    assert share_context(SESSION, a, b) != share_context(SESSION, b, a)
    assert len(share_context(SESSION, a, b)) == 60


def test_each_body_survives_its_wire_form() -> None:
    secret = 42
    commitment = bls_public_key(secret)
    bodies: list[tuple[DkgKind, DkgBody]] = [
        (DkgKind.DKG_DEAL, DealBody((commitment,) * 3, bls_prove_possession(secret), (b"x",) * 4)),
        (
            DkgKind.DKG_COMPLAINT,
            ComplaintBody((2, 4), (b"evidence", b""), (bytes(32), b"\x01" * 32)),
        ),
        (DkgKind.DKG_COMPLAINT, ComplaintBody((), (), ())),
        (DkgKind.DKG_JUSTIFICATION, JustificationBody(b"deal", (3,), (BLS_CURVE_ORDER - 1,))),
        (DkgKind.DKG_RESULT, ResultBody((1, 2, 4), commitment)),
    ]
    for kind, body in bodies:
        assert decode_dkg_body(envelope(kind, body.encode())) == body


@pytest.mark.parametrize(
    ("kind", "body", "error"),
    [
        (9, b"", "not a DKG kind"),
        (DkgKind.DKG_DEAL, DealBody((b"\x01" * 95,), b"\x02" * 48, ()).encode(), "96-byte"),
        (DkgKind.DKG_DEAL, DealBody((b"\x01" * 96,), b"\x02" * 47, ()).encode(), "48-byte"),
        (DkgKind.DKG_COMPLAINT, ComplaintBody((2, 2), (b"", b""), ()).encode(), "each once"),
        (DkgKind.DKG_COMPLAINT, ComplaintBody((2,), (), ()).encode(), "one evidence"),
        (DkgKind.DKG_JUSTIFICATION, JustificationBody(b"", (1,), (BLS_CURVE_ORDER,)).encode(), "r"),
        (DkgKind.DKG_RESULT, ResultBody((2, 1), b"\x00" * 96).encode(), "sorted"),
        (DkgKind.DKG_RESULT, b"\x00" * 31, "ABI"),
    ],
)
def test_malformed_bodies_are_refused_with_the_reason(kind: int, body: bytes, error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        decode_dkg_body(envelope(kind, body))


@given(kind=st.integers(1, 4), body=st.binary(max_size=400))
def test_any_bytes_decode_or_are_refused_as_invalid_input(kind: int, body: bytes) -> None:
    try:
        decoded = decode_dkg_body(envelope(kind, body))
    except InvalidInput:
        return
    assert decoded.encode() == body


def test_deadlines_must_increase() -> None:
    with pytest.raises(InvalidInput, match="must increase"):
        DkgSchedule(10.0, 10.0, 30.0, 40.0)


def test_the_transcript_json_is_canonical_and_parses_back() -> None:
    transcript = DkgTranscript(
        session=SESSION, chain_id=31337, threshold=2, members=tuple(MEMBERS[:3]),
        deals=(DealRecord(1, (bls_public_key(5), bls_public_key(6)), bls_prove_possession(5)),),
        complaints=((2, 1, b"\x01\x02"),), justifications=((1, 2, 12345),), qualified=(1,),
        group_key=bls_public_key(5), results=((1, b"\xaa"), (2, b"\xbb")),
    )  # fmt: skip
    data = transcript.to_json()
    assert b" " not in data and data.startswith(b'{"chain_id":31337,"complaints":')
    assert DkgTranscript.from_json(data) == transcript


@pytest.mark.parametrize("data", [b"not json", b"{}", b'{"session": 5}'])
def test_anything_else_is_not_a_transcript(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="not a DKG transcript"):
        DkgTranscript.from_json(data)
