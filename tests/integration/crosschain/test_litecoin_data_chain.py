"""Litecoin regtest as the data chain B_d: post, find, prove and verify a data index.

One litecoind per module (starting one takes about half a second); each test uses fresh
payment ids, so tests stay independent on the shared chain.

Example: ``pytest tests/integration/crosschain/test_litecoin_data_chain.py -q``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from pervasive.crosschain.chains import DataChain
from pervasive.crosschain.errors import InclusionProofInvalid, LitecoinUnavailable
from pervasive.crosschain.litecoin import (
    LitecoinDataChain,
    LitecoinNode,
    LitecoinRpc,
    LitecoinRpcError,
    MerkleBlock,
    block_hash,
    build_merkle_block,
    check_inclusion_proof,
    extract_matches,
    merkle_root,
)
from pervasive.errors import InvalidInput

pytestmark = [
    pytest.mark.litecoin,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("litecoin-data-chain"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LitecoinNode]:
    started = LitecoinNode(datadir=tmp_path_factory.mktemp("litecoin"))
    await started.start()
    await started.fund()
    yield started
    await started.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chain(node: LitecoinNode) -> LitecoinDataChain:
    return LitecoinDataChain(node.rpc, wallet=node.wallet)


def _payment_id() -> bytes:
    return os.urandom(32)


async def test_a_posted_index_is_found_only_once_mined_and_matches_the_ciphertext(
    node: LitecoinNode, chain: LitecoinDataChain
) -> None:
    payment_id, ciphertext = _payment_id(), b"encrypted index " + os.urandom(64)
    started = time.perf_counter()
    tx_id = await chain.post_index(payment_id, "0x" + "ab" * 20, ciphertext)
    assert await chain.find_index(payment_id) is None  # in the mempool: not canonical yet
    [mined] = await node.mine(1)
    posted = await chain.find_index(payment_id)
    elapsed = time.perf_counter() - started
    assert posted is not None
    assert (posted.tx_id, posted.block_hash, posted.chain) == (tx_id, mined, "litecoin:regtest")
    assert posted.matches(ciphertext) and not posted.matches(ciphertext + b"x")
    assert posted.block_number == await node.rpc.call("getblockcount")
    assert posted.block_time == await chain.now()
    print(f"post + 1 confirmation + find: {elapsed * 1000:.1f} ms")


async def test_an_unknown_payment_id_is_not_found(chain: LitecoinDataChain) -> None:
    assert await chain.find_index(_payment_id()) is None


async def test_the_same_payment_is_not_posted_twice(
    node: LitecoinNode, chain: LitecoinDataChain
) -> None:
    payment_id = _payment_id()
    await chain.post_index(payment_id, "", b"first")
    await node.mine(1)
    with pytest.raises(InvalidInput, match="already has its index"):
        await chain.post_index(payment_id, "", b"second")


async def test_inclusion_is_proven_and_verified_against_the_header(
    node: LitecoinNode, chain: LitecoinDataChain
) -> None:
    # Several postings in one block, so the branch has real siblings.
    ids = [await chain.post_index(_payment_id(), "", os.urandom(40)) for _ in range(4)]
    await node.mine(1)
    for tx_id in ids:
        started = time.perf_counter()
        proof = await chain.prove_inclusion(tx_id)
        assert proof is not None
        assert chain.verify_inclusion(proof)
        elapsed = time.perf_counter() - started
        assert block_hash(proof.header) == proof.block_hash
        # litecoind's own checker agrees that the proof names this transaction.
        assert await node.rpc.call("verifytxoutproof", proof.branch[0].hex()) == [tx_id]
    assert isinstance(chain, DataChain)
    print(f"prove + verify: {elapsed * 1000:.1f} ms, {proof.size} bytes")


async def test_a_tampered_proof_is_refused(node: LitecoinNode, chain: LitecoinDataChain) -> None:
    ids = [await chain.post_index(_payment_id(), "", os.urandom(40)) for _ in range(3)]
    await node.mine(1)
    proof = await chain.prove_inclusion(ids[1])
    other = await chain.prove_inclusion(ids[2])
    assert proof is not None and other is not None
    block = MerkleBlock.parse(proof.branch[0])
    flipped = bytes([block.hashes[0][0] ^ 1]) + block.hashes[0][1:]
    bad_branch = dataclasses.replace(block, hashes=(flipped, *block.hashes[1:])).serialize()
    header = bytearray(proof.header)
    header[4] ^= 1  # the previous-block field: the header no longer hashes to block_hash
    tampered = {
        "branch": dataclasses.replace(proof, branch=(bad_branch,)),
        "tx id": dataclasses.replace(proof, tx_id=other.tx_id),
        "transaction": dataclasses.replace(proof, transaction=other.transaction),
        "index": dataclasses.replace(proof, index=proof.index + 1),
        "header": dataclasses.replace(proof, header=bytes(header)),
        "block hash": dataclasses.replace(proof, block_hash=other.block_hash[::-1]),
    }
    for what, bad in tampered.items():
        assert not chain.verify_inclusion(bad), what
        with pytest.raises(InclusionProofInvalid):
            check_inclusion_proof(bad)


async def test_a_mempool_or_unknown_transaction_has_no_proof(
    chain: LitecoinDataChain,
) -> None:
    pending = await chain.post_index(_payment_id(), "", b"pending")
    assert await chain.prove_inclusion(pending) is None
    assert await chain.prove_inclusion("00" * 32) is None
    with pytest.raises(InvalidInput, match="64 hex digits"):
        await chain.prove_inclusion("0x" + "00" * 32)


async def test_a_bad_payment_id_is_refused_before_any_transaction(
    chain: LitecoinDataChain,
) -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        await chain.post_index(b"short", "", b"c")


async def test_rpc_errors_are_readable(node: LitecoinNode, tmp_path: Path) -> None:
    with pytest.raises(LitecoinRpcError, match=r"getblockhash \(-8: .*\); a parameter") as error:
        await node.rpc.call("getblockhash", 10**6)
    assert error.value.code == -8
    wrong = LitecoinRpc(node.url, node.rpc_user, "not-the-password")
    with pytest.raises(LitecoinUnavailable, match="credentials"):
        await wrong.call("getblockcount")
    await wrong.close()
    assert node.rpc_password not in repr(node) and node.rpc_password not in repr(node.rpc)
    assert node.rpc_password not in (node.datadir / "litecoin.conf").read_text()
    digest = hashlib.sha256(node.rpc_password.encode()).hexdigest()
    assert digest not in (node.datadir / "litecoin.conf").read_text()


async def test_our_merkle_code_reproduces_the_nodes_proofs_of_a_real_block(
    node: LitecoinNode, chain: LitecoinDataChain
) -> None:
    # Coinbase plus four postings: five transactions, an odd count at two tree levels.
    await node.mine(1)  # empty the mempool other tests left transactions in
    for _ in range(4):
        await chain.post_index(_payment_id(), "", os.urandom(16))
    [mined] = await node.mine(1)
    block = await node.rpc.call("getblock", mined, 1)
    header = bytes.fromhex(await node.rpc.call("getblockheader", mined, False))
    txids = [bytes.fromhex(txid)[::-1] for txid in block["tx"]]
    assert len(txids) == 5
    assert merkle_root(txids)[::-1].hex() == block["merkleroot"]
    for position, txid in enumerate(block["tx"]):
        theirs = bytes.fromhex(await node.rpc.call("gettxoutproof", [txid], mined))
        assert build_merkle_block(header, txids, {position}).serialize() == theirs
        assert extract_matches(MerkleBlock.parse(theirs))[1] == [(position, txids[position])]
