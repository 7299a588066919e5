"""Reorganisations of the Litecoin data chain: a posting that leaves the best chain is gone.

Paper 003 §V-C decides a challenge by whether the index posting is in the *canonical*
chain. Two real ways out of it: a block invalidated on the node (``invalidateblock``, then
a competing block mined without the posting), and a network partition whose other side
mines a longer chain, after which the nodes reconnect and reorganise.

Example: ``pytest tests/faults/crosschain/test_litecoin_reorg.py -q``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pervasive.crosschain.litecoin import LitecoinDataChain, LitecoinNode

pytestmark = pytest.mark.litecoin


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[LitecoinNode]:
    started = LitecoinNode(datadir=tmp_path / "a")
    await started.start()
    await started.fund()
    yield started
    await started.stop()


async def _same_tip(*nodes: LitecoinNode) -> str:
    for _ in range(200):
        tips = {await n.rpc.call("getbestblockhash") for n in nodes}
        if len(tips) == 1:
            return tips.pop()
        await asyncio.sleep(0.05)
    raise AssertionError(f"the nodes did not converge: {tips}")


async def test_an_invalidated_block_takes_its_posting_out_of_the_canonical_view(
    node: LitecoinNode,
) -> None:
    chain = LitecoinDataChain(node.rpc, wallet=node.wallet)
    payment_id, ciphertext = os.urandom(32), b"index"
    tx_id = await chain.post_index(payment_id, "", ciphertext)
    [posted_in] = await node.mine(1)
    before = await chain.find_index(payment_id)
    proof = await chain.prove_inclusion(tx_id)
    assert before is not None and before.block_hash == posted_in
    assert proof is not None and chain.verify_inclusion(proof)

    await node.rpc.call("invalidateblock", posted_in)
    # The posting went back to the mempool; mine the competing block without it.
    assert tx_id in await node.rpc.call("getrawmempool")
    await node.rpc.call("generateblock", await node.address(), [])

    assert await chain.find_index(payment_id) is None
    assert await chain.prove_inclusion(tx_id) is None
    assert not chain.verify_inclusion(proof)  # the old proof names a block no longer canonical
    tips = {tip["hash"]: tip["status"] for tip in await node.rpc.call("getchaintips")}
    assert tips[posted_in] == "invalid"


async def test_a_partition_whose_other_side_mines_longer_drops_then_restores_the_posting(
    node: LitecoinNode, tmp_path: Path
) -> None:
    other = LitecoinNode(datadir=tmp_path / "b")
    await other.start()
    try:
        await node.connect(other)
        await _same_tip(node, other)
        await node.rpc.call("disconnectnode", other.p2p_address)
        chain = LitecoinDataChain(node.rpc, wallet=node.wallet)
        payment_id = os.urandom(32)
        tx_id = await chain.post_index(payment_id, "", b"index")
        [ours] = await node.mine(1)
        assert (posted := await chain.find_index(payment_id)) is not None
        assert posted.block_hash == ours
        await other.mine(2)  # the other side of the partition never saw the posting

        await node.connect(other)
        tip = await _same_tip(node, other)
        assert await chain.find_index(payment_id) is None
        assert await chain.prove_inclusion(tx_id) is None
        assert not chain.is_canonical(posted.block_number, ours)

        # The posting is back in our mempool; the next block confirms it again, elsewhere.
        assert tx_id in await node.rpc.call("getrawmempool")
        [again] = await node.mine(1)
        found = await chain.find_index(payment_id)
        assert found is not None and found.tx_id == tx_id
        assert (found.block_hash, found.block_number) == (again, posted.block_number + 2)
        header = await node.rpc.call("getblockheader", again)
        assert header["previousblockhash"] == tip
        proof = await chain.prove_inclusion(tx_id)
        assert proof is not None and chain.verify_inclusion(proof)
    finally:
        await other.stop()
