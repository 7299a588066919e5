"""A data index reorganised out of the data chain is no longer found nor proven.

Paper 003's notaries judge "undelivered" against B_d's canonical chain: a posting that a
reorganisation removed must count as never made, or P escapes the penalty with a
transaction the chain no longer holds. Two ways to reorganise: ``evm_snapshot`` /
``evm_revert`` and re-mining (both backends), and anvil's ``anvil_reorg``, which replaces
the last blocks at the same height.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from anvil_control import anvil_call
from pervasive.chain import Ledger
from pervasive.contracts.data_index import DataIndex
from pervasive.crosschain.evm_chain import EvmDataChain
from pervasive.crypto import keccak256

CIPHERTEXT = b"\x5a" * 300


@pytest.fixture
async def chain(ledger: Ledger, artifacts: Path) -> EvmDataChain:
    provider = ledger.dev_signer(5)
    index = await DataIndex.open(ledger, ledger.dev_signer(0), artifacts=artifacts)
    return EvmDataChain(ledger, index.with_signer(provider))


async def test_a_posting_reverted_and_outmined_is_gone(ledger: Ledger, chain: EvmDataChain) -> None:
    payment_id, provider = keccak256(b"reorg me"), ledger.dev_signer(5).address
    snapshot = await anvil_call(ledger, "evm_snapshot", [])
    tx_id = await chain.post_index(payment_id, ledger.dev_signer(9).address, CIPHERTEXT)
    posted = await chain.find_index(payment_id, provider=provider)
    proof = await chain.prove_inclusion(tx_id)
    assert posted is not None and posted.tx_id == tx_id
    assert proof is not None and chain.verify_inclusion(proof) and await chain.is_canonical(proof)

    await anvil_call(ledger, "evm_revert", [snapshot])
    await ledger.mine(3)  # the other branch overtakes the posting's block
    assert await ledger.block_number() > proof.block_number

    assert await chain.find_index(payment_id, provider=provider) is None
    assert await chain.find_index(payment_id) is None
    assert await chain.prove_inclusion(tx_id) is None
    # the old proof is still self-consistent: only the node can say it is off the chain
    assert chain.verify_inclusion(proof)
    assert not await chain.is_canonical(proof)


@pytest.mark.anvil
@pytest.mark.parametrize("ledger", ["anvil"], indirect=True)
async def test_anvil_reorg_drops_the_last_posting_and_keeps_the_deeper_one(
    ledger: Ledger, chain: EvmDataChain
) -> None:
    consumer = ledger.dev_signer(9).address
    provider = ledger.dev_signer(5).address
    deep_id, shallow_id = keccak256(b"deep"), keccak256(b"shallow")
    deep_tx = await chain.post_index(deep_id, consumer, CIPHERTEXT)
    shallow_tx = await chain.post_index(shallow_id, consumer, CIPHERTEXT)
    shallow_proof = await chain.prove_inclusion(shallow_tx)
    assert shallow_proof is not None
    head = await ledger.block_number()

    await anvil_call(ledger, "anvil_reorg", [1, []])  # block `head` replaced by an empty one

    assert await ledger.block_number() == head
    replaced = await ledger.rpc.block_header(head)
    assert replaced is not None and replaced.hash != shallow_proof.block_hash
    assert await chain.find_index(shallow_id, provider=provider) is None
    assert await chain.prove_inclusion(shallow_tx) is None
    assert not await chain.is_canonical(shallow_proof)

    deep = await chain.find_index(deep_id, provider=provider)
    assert deep is not None and deep.tx_id == deep_tx
    deep_proof = await chain.prove_inclusion(deep_tx)
    assert deep_proof is not None and chain.verify_inclusion(deep_proof)
    assert await chain.is_canonical(deep_proof)
    assert not await chain.is_canonical(deep_proof, confirmations=5)
