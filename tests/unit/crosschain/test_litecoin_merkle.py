"""The partial-Merkle-tree verifier against a real block and Bitcoin Core's expectations.

The vector is mainnet block 0000000000013b8a… (9 transactions: an odd count, so the last
node of two levels pairs with itself), vendored from Bitcoin Core's unit-test setup; its
transactions are parsed by python-bitcoinlib, an implementation independent of ours, and
Core's ``merkleblock_tests.cpp`` says which leaves a proof of its 2nd and 9th transactions
yields and in which order.

Example: ``pytest tests/unit/crosschain/test_litecoin_merkle.py -q``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from pathlib import Path

import pytest
from bitcoin.core import CBlock
from hypothesis import given
from hypothesis import strategies as st

from pervasive.crosschain.errors import InclusionProofInvalid
from pervasive.crosschain.litecoin.merkle import (
    MerkleBlock,
    block_hash,
    block_header_merkle_root,
    build_merkle_block,
    extract_matches,
    merkle_root,
)

VECTOR = Path(__file__).parents[2] / "vectors" / "bitcoin-core" / "block_13b8a.hex"
BLOCK = bytes.fromhex(VECTOR.read_text().strip())
HEADER = BLOCK[:80]
TXIDS = [tx.GetTxid() for tx in CBlock.deserialize(BLOCK).vtx]


def _rpc(txid: bytes) -> str:
    return txid[::-1].hex()


def test_the_vector_block_hashes_to_its_name_and_its_root() -> None:
    assert block_hash(HEADER) == "0000000000013b8ab2cd513b0261a14096412195a72a0c4827d229dcc7e0f7af"
    assert len(TXIDS) == 9
    assert merkle_root(TXIDS) == block_header_merkle_root(HEADER)


def test_a_proof_of_two_transactions_yields_cores_matches_in_tree_order() -> None:
    proof = MerkleBlock.parse(build_merkle_block(HEADER, TXIDS, {1, 8}).serialize())
    root, matches = extract_matches(proof)
    assert root == block_header_merkle_root(HEADER)
    assert [(index, _rpc(txid)) for index, txid in matches] == [
        (1, "f9fc751cb7dc372406a9f8d738d5e6f8f63bab71986a39cf36ee70ee17036d07"),
        (8, "74d681e0e03bafa802c8aa084379aa98d9fcd632ddc2ed9782b586ec87451f20"),
    ]


def test_every_subset_of_the_block_is_proven_and_nothing_else() -> None:
    for size in range(len(TXIDS) + 1):
        for subset in itertools.combinations(range(len(TXIDS)), size):
            root, matches = extract_matches(build_merkle_block(HEADER, TXIDS, set(subset)))
            assert root == block_header_merkle_root(HEADER)
            assert matches == [(i, TXIDS[i]) for i in subset]


@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True),
    st.data(),
)
def test_any_changed_hash_moves_the_root(txids: list[bytes], data: st.DataObject) -> None:
    matched = data.draw(st.sets(st.integers(0, len(txids) - 1), min_size=1))
    proof = build_merkle_block(HEADER, txids, matched)
    root, matches = extract_matches(MerkleBlock.parse(proof.serialize()))
    assert root == merkle_root(txids) and [i for i, _ in matches] == sorted(matched)
    which = data.draw(st.integers(0, len(proof.hashes) - 1))
    changed = bytes([proof.hashes[which][0] ^ 0x80]) + proof.hashes[which][1:]
    hashes = (*proof.hashes[:which], changed, *proof.hashes[which + 1 :])
    try:
        forged_root, _ = extract_matches(dataclasses.replace(proof, hashes=hashes))
    except InclusionProofInvalid:
        return  # a sibling now equals its twin: refused outright
    assert forged_root != root


def test_a_duplicated_last_transaction_is_refused() -> None:
    # CVE-2012-2459: [a, b, c] and [a, b, c, c] share a root; the second must not prove c twice.
    a, b, c = (hashlib.sha256(bytes([i])).digest() for i in range(3))
    assert merkle_root([a, b, c]) == merkle_root([a, b, c, c])
    with pytest.raises(InclusionProofInvalid, match="own sibling"):
        extract_matches(build_merkle_block(HEADER, [a, b, c, c], {3}))


def _with(**changes: object) -> MerkleBlock:
    return dataclasses.replace(build_merkle_block(HEADER, TXIDS, {4}), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (_with(transaction_count=0), "cannot hold 0"),
        (_with(transaction_count=20_000), "cannot hold"),
        (_with(transaction_count=2), "more hashes"),
        (_with(hashes=build_merkle_block(HEADER, TXIDS, {4}).hashes[:-1]), "runs out of hashes"),
        (_with(hashes=(*build_merkle_block(HEADER, TXIDS, {4}).hashes, bytes(32))), "all its"),
        (_with(flags=build_merkle_block(HEADER, TXIDS, {4}).flags + b"\x00"), "all its"),
        (_with(flags=b""), "fewer flag bits"),
    ],
)
def test_a_malformed_tree_is_refused(block: MerkleBlock, reason: str) -> None:
    with pytest.raises(InclusionProofInvalid, match=reason):
        extract_matches(block)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (build_merkle_block(HEADER, TXIDS, {4}).serialize()[:-1], "truncated"),
        (build_merkle_block(HEADER, TXIDS, {4}).serialize() + b"\x00", "trailing"),
        (HEADER + b"\x09\x00\x00\x00" + b"\xff" + b"\xff" * 8, "announces"),
        (HEADER[:40], "truncated"),
    ],
)
def test_malformed_bytes_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InclusionProofInvalid, match=reason):
        MerkleBlock.parse(data)


def test_a_header_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(InclusionProofInvalid, match="80 bytes"):
        block_hash(HEADER + b"\x00")
