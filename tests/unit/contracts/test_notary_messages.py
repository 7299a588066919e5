"""The notary's signed messages and input checks, without a chain.

The contract recomputes these bytes on-chain (checked against it in
``tests/integration/contracts/test_notary_contract.py``); here they are checked against
an independent encoding (eth-abi and eth-hash directly) and for what must not collide.
"""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from pervasive.contracts.notary import (
    NotaryTerms,
    eip2537_group_key,
    eip2537_signature,
    penalty_message,
    release_id,
    release_message,
)
from pervasive.crypto.bls import bls_public_key, bls_secret_key, bls_sign
from pervasive.errors import InvalidInput

NOTARY = "0x" + "11" * 20
CHEATER = "0x" + "22" * 20
VICTIM = "0x" + "33" * 20
TYPES = ["bytes32", "uint256", "address", "bytes32", "address", "address", "uint256"]

addresses = st.binary(min_size=20, max_size=20).filter(any).map(lambda b: "0x" + b.hex())


@given(
    chain_id=st.integers(1, 2**63),
    challenge=st.binary(min_size=32, max_size=32),
    cheater=addresses,
    victim=addresses,
    amount=st.integers(1, 2**256 - 1),
)
def test_penalty_message_is_the_documented_encoding(
    chain_id: int, challenge: bytes, cheater: str, victim: str, amount: int
) -> None:
    tag = keccak(b"pervasive.notary.penalty")
    expected = keccak(encode(TYPES, [tag, chain_id, NOTARY, challenge, cheater, victim, amount]))
    assert penalty_message(chain_id, NOTARY, challenge, cheater, victim, amount) == expected


def test_release_message_is_the_documented_encoding() -> None:
    tag = keccak(b"pervasive.notary.release")
    rid = keccak(encode(["address", "uint256"], [CHEATER, 3]))
    expected = keccak(encode(TYPES, [tag, 31337, NOTARY, rid, CHEATER, CHEATER, 5]))
    assert release_id(CHEATER, 3) == rid
    assert release_message(31337, NOTARY, CHEATER, 5, 3) == expected


def test_messages_do_not_collide_across_kinds_chains_and_nonces() -> None:
    release_as_id = release_id(CHEATER, 0)
    messages = {
        penalty_message(1, NOTARY, release_as_id, CHEATER, CHEATER.replace("2", "4"), 5),
        penalty_message(2, NOTARY, release_as_id, CHEATER, CHEATER.replace("2", "4"), 5),
        release_message(1, NOTARY, CHEATER, 5, 0),
        release_message(1, NOTARY, CHEATER, 5, 1),
        release_message(2, NOTARY, CHEATER, 5, 0),
        release_message(1, VICTIM, CHEATER, 5, 0),
    }
    assert len(messages) == 6


def test_bad_message_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        penalty_message(1, NOTARY, b"short", CHEATER, VICTIM, 1)
    with pytest.raises(InvalidInput, match="positive"):
        penalty_message(1, NOTARY, bytes(32), CHEATER, VICTIM, 0)
    with pytest.raises(InvalidInput, match="zero address"):
        penalty_message(1, NOTARY, bytes(32), "0x" + "00" * 20, VICTIM, 1)
    with pytest.raises(InvalidInput, match="nonce"):
        release_message(1, NOTARY, CHEATER, 1, -1)


def test_points_take_the_eip2537_form() -> None:
    secret = bls_secret_key(bytes(range(32)))
    key, signature = bls_public_key(secret), bls_sign(secret, b"m")
    assert len(eip2537_group_key(key)) == 256
    assert eip2537_group_key(eip2537_group_key(key)) == eip2537_group_key(key)
    assert len(eip2537_signature(signature)) == 128
    with pytest.raises(InvalidInput, match="96"):
        eip2537_group_key(key[:95])
    with pytest.raises(InvalidInput, match="48"):
        eip2537_signature(signature + b"\0")
    with pytest.raises(InvalidInput, match="infinity"):
        eip2537_signature(bytes([0xC0]) + bytes(47))


def test_notary_terms_are_checked() -> None:
    members = ("0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20)
    NotaryTerms(b"k" * 96, 2, members, 10, 60, "cid")
    for threshold, listed, window, transcript, why in [
        (4, members, 60, "cid", "threshold"),
        (0, members, 60, "cid", "threshold"),
        (2, (*members, members[0].upper().replace("0X", "0x")), 60, "cid", "twice"),
        (2, members, 0, "cid", "publish window"),
        (2, members, 60, "x" * 129, "transcript"),
    ]:
        with pytest.raises(InvalidInput, match=why):
            NotaryTerms(b"k" * 96, threshold, listed, 10, window, transcript)
