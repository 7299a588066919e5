"""Merkle-Patricia inclusion proofs: every transaction of a block proven, every forgery refused.

The block here is built in memory from really signed EIP-1559 transactions and a header of
Prague's shape (21 fields); the integration tests do the same against anvil's and py-evm's
own blocks. What a user cares about: a verifier holding only the proof accepts exactly the
transactions that are in the block, at their position, on their chain.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import rlp
from coincurve import PrivateKey
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.chain.signing import UnsignedTransaction, sign_transaction
from pervasive.crosschain.chains import InclusionProof
from pervasive.crosschain.errors import InclusionProofInvalid
from pervasive.crosschain.inclusion import (
    ProofDefect,
    build_inclusion_proof,
    inclusion_defect,
    require_inclusion,
    transaction_chain_id,
    transactions_root,
)
from pervasive.crypto import keccak256

CHAIN_ID = 31337
KEY = PrivateKey(bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))
EMPTY_ROOT = "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"


def _raw(nonce: int, data: bytes = b"", chain_id: int = CHAIN_ID) -> bytes:
    tx = UnsignedTransaction(chain_id, nonce, 10**9, 2 * 10**9, 100_000, b"\x11" * 20, nonce, data)
    return sign_transaction(tx, KEY).raw


def _header(raws: list[bytes], number: int = 7) -> bytes:
    zero = b"\0" * 32
    fields: list[bytes | int] = [
        zero, keccak256(rlp.encode([])), b"\0" * 20, zero, transactions_root(raws), zero,
        b"\0" * 256, 0, number, 30_000_000, 21_000 * len(raws), 1_796_588_559, b"", zero,
        b"\0" * 8, 10**9, bytes.fromhex(EMPTY_ROOT), 0, 0, zero, keccak256(b""),
    ]  # fmt: skip
    return bytes(rlp.encode(fields))


# sizes from 0 to 300 bytes of calldata; 20 transactions make branch and extension nodes
BLOCK = [_raw(nonce, bytes([nonce]) * (nonce * 15)) for nonce in range(20)]
HEADER = _header(BLOCK)
OTHER_BLOCK = [_raw(nonce) for nonce in range(100, 103)]
OTHER_HEADER = _header(OTHER_BLOCK, number=8)


def _proof(index: int) -> InclusionProof:
    return build_inclusion_proof(f"evm:{CHAIN_ID}", HEADER, BLOCK, index)


def test_empty_block_root_is_the_empty_trie() -> None:
    assert transactions_root([]).hex() == EMPTY_ROOT


@pytest.mark.parametrize("index", range(len(BLOCK)))
def test_every_transaction_of_the_block_is_proven(index: int) -> None:
    proof = _proof(index)
    assert proof.tx_id == "0x" + keccak256(BLOCK[index]).hex()
    assert proof.block_hash == "0x" + keccak256(HEADER).hex()
    assert proof.block_number == 7
    assert 1 <= len(proof.branch) <= 3
    assert inclusion_defect(proof, chain_id=CHAIN_ID) is None
    require_inclusion(proof, chain_id=CHAIN_ID)


def test_another_transaction_at_a_proven_position_is_refused() -> None:
    proof = _proof(3)
    swapped = replace(proof, transaction=BLOCK[4], tx_id="0x" + keccak256(BLOCK[4]).hex())
    assert inclusion_defect(swapped, chain_id=CHAIN_ID) is ProofDefect.TRANSACTION_MISMATCH


def test_a_transaction_of_another_block_is_refused() -> None:
    theirs = build_inclusion_proof(f"evm:{CHAIN_ID}", OTHER_HEADER, OTHER_BLOCK, 1)
    # their transaction and branch, presented under this block's header
    forged = replace(theirs, header=HEADER, block_hash=_proof(1).block_hash, block_number=7)
    assert inclusion_defect(forged, chain_id=CHAIN_ID) is ProofDefect.BRANCH
    # this block's branch for the same index, with their transaction
    forged = replace(_proof(1), transaction=theirs.transaction, tx_id=theirs.tx_id)
    assert inclusion_defect(forged, chain_id=CHAIN_ID) is ProofDefect.TRANSACTION_MISMATCH


def test_an_absent_index_is_refused_not_read_as_empty() -> None:
    # a trie answers b"" for an absent key: a proof of absence must not prove anything
    absent = replace(_proof(0), index=len(BLOCK) + 5)
    assert inclusion_defect(absent, chain_id=CHAIN_ID) is ProofDefect.BRANCH


def test_tampered_header_and_block_hash_are_refused() -> None:
    proof = _proof(2)
    other_root = bytearray(HEADER)
    other_root[-40] ^= 1  # inside requestsHash: still a header, but not the hashed one
    assert inclusion_defect(replace(proof, header=bytes(other_root)), chain_id=CHAIN_ID) is (
        ProofDefect.BLOCK_HASH
    )
    assert inclusion_defect(replace(proof, header=b"\x01\x02"), chain_id=CHAIN_ID) is (
        ProofDefect.HEADER
    )
    wrong_hash = replace(proof, block_hash="0x" + "ab" * 32)
    assert inclusion_defect(wrong_hash, chain_id=CHAIN_ID) is ProofDefect.BLOCK_HASH
    assert inclusion_defect(replace(proof, block_number=8), chain_id=CHAIN_ID) is (
        ProofDefect.BLOCK_NUMBER
    )


def test_tampered_transaction_is_refused() -> None:
    proof = _proof(5)
    tampered = bytearray(proof.transaction)
    tampered[-1] ^= 1
    assert inclusion_defect(replace(proof, transaction=bytes(tampered)), chain_id=CHAIN_ID) is (
        ProofDefect.TRANSACTION_HASH
    )
    rehashed = replace(proof, transaction=bytes(tampered), tx_id="0x" + keccak256(tampered).hex())
    assert inclusion_defect(rehashed, chain_id=CHAIN_ID) is ProofDefect.TRANSACTION_MISMATCH


def test_a_transaction_signed_for_another_chain_is_refused() -> None:
    assert inclusion_defect(_proof(0), chain_id=1) is ProofDefect.CHAIN


def test_a_missing_branch_node_is_refused() -> None:
    proof = _proof(9)
    assert inclusion_defect(replace(proof, branch=proof.branch[:-1]), chain_id=CHAIN_ID) is (
        ProofDefect.BRANCH
    )
    assert inclusion_defect(replace(proof, branch=()), chain_id=CHAIN_ID) is ProofDefect.BRANCH


@given(index=st.integers(0, len(BLOCK) - 1), node=st.integers(0, 2), data=st.data())
@settings(max_examples=300, deadline=None)
def test_any_tampered_branch_byte_is_refused(index: int, node: int, data: st.DataObject) -> None:
    proof = _proof(index)
    node %= len(proof.branch)
    position = data.draw(st.integers(0, len(proof.branch[node]) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(proof.branch[node])
    tampered[position] ^= flip
    branch = (*proof.branch[:node], bytes(tampered), *proof.branch[node + 1 :])
    assert inclusion_defect(replace(proof, branch=branch), chain_id=CHAIN_ID) is not None


@given(
    header=st.binary(max_size=600),
    transaction=st.binary(max_size=200),
    branch=st.lists(st.binary(max_size=300), max_size=4),
    index=st.integers(-3, 10**6),
)
@settings(max_examples=300, deadline=None)
def test_garbage_is_refused_without_an_exception(
    header: bytes, transaction: bytes, branch: list[bytes], index: int
) -> None:
    forged = InclusionProof(
        chain=f"evm:{CHAIN_ID}", tx_id="0x" + keccak256(transaction).hex(), block_number=7,
        block_hash="0x" + keccak256(header).hex(), header=header, index=index,
        transaction=transaction, branch=tuple(branch),
    )  # fmt: skip
    assert inclusion_defect(forged, chain_id=CHAIN_ID) is not None


def test_refusal_is_one_line_naming_the_defect() -> None:
    with pytest.raises(InclusionProofInvalid, match=r"^branch: .*not in this block") as caught:
        require_inclusion(replace(_proof(1), branch=()), chain_id=CHAIN_ID)
    assert "\n" not in str(caught.value)


def test_builder_refuses_a_list_that_is_not_the_blocks() -> None:
    with pytest.raises(InclusionProofInvalid, match="transactionsRoot"):
        build_inclusion_proof(f"evm:{CHAIN_ID}", HEADER, BLOCK[:-1], 0)
    with pytest.raises(InclusionProofInvalid, match="outside"):
        build_inclusion_proof(f"evm:{CHAIN_ID}", HEADER, BLOCK, len(BLOCK))


def test_chain_id_of_typed_and_legacy_transactions() -> None:
    assert transaction_chain_id(BLOCK[0]) == CHAIN_ID
    legacy = dict(nonce=0, gasPrice=10**9, gas=21_000, to="0x" + "22" * 20, value=1, data=b"")
    key = "0x" + "11" * 32
    eip155 = Account.sign_transaction({**legacy, "chainId": 5}, key).raw_transaction
    assert transaction_chain_id(bytes(eip155)) == 5
    frontier = Account.sign_transaction(legacy, key).raw_transaction
    assert transaction_chain_id(bytes(frontier)) is None
    with pytest.raises(InclusionProofInvalid):
        transaction_chain_id(b"\x02\xff")
