"""EvmDataChain on real chains (py-evm in-process and anvil): post, find, prove, refuse.

A block with several transactions (value transfers and data-index postings of different
providers) is mined at once; every one of its transactions is proven by a Merkle-Patricia
branch against the node's own header, which re-hashes to the node's block hash, and every
forged proof is refused and counted. Run with ``-s`` to see proof sizes and timings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from pervasive.chain import ContractCall, Ledger, Receipt, Signer
from pervasive.contracts.data_index import DataIndex
from pervasive.crosschain.chains import DataChain, InclusionProof
from pervasive.crosschain.evm_chain import EvmDataChain
from pervasive.crypto import keccak256
from pervasive.errors import InvalidInput, NotFound

CIPHERTEXT = bytes(range(256)) * 2


async def _set_automine(ledger: Ledger, on: bool) -> None:
    if ledger.kind == "embedded":
        tester = ledger.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        if on:
            tester.enable_auto_mine_transactions()  # mines what is pending, in one block
        else:
            tester.disable_auto_mine_transactions()
        return
    if on:
        await ledger.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    await ledger.w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]


async def mine_together(
    ledger: Ledger, calls: Sequence[tuple[Signer, ContractCall]]
) -> list[Receipt]:
    """Send ``calls`` with auto-mining off, then mine them into one block."""
    await _set_automine(ledger, False)
    try:
        sent = [(ledger.transactor(s), await ledger.transactor(s).send(c)) for s, c in calls]
    finally:
        await _set_automine(ledger, True)
    receipts = [await manager.wait(pending) for manager, pending in sent]
    assert len({receipt.block_hash for receipt in receipts}) == 1, "not one block"
    return receipts


def _post(index: DataIndex, payment_id: bytes, consumer: str, ciphertext: bytes) -> ContractCall:
    return ContractCall(
        index.address, index.contract.encode("post", payment_id, consumer, ciphertext)
    )


@pytest.fixture
async def data_index(ledger: Ledger, artifacts: Path) -> DataIndex:
    return await DataIndex.open(ledger, ledger.dev_signer(0), artifacts=artifacts)


async def _busy_block(ledger: Ledger, index: DataIndex) -> tuple[list[Receipt], list[bytes]]:
    consumer = ledger.dev_signer(9).address
    payment_ids = [keccak256(b"payment %d" % i) for i in range(3)]
    calls = [
        (ledger.dev_signer(i), ContractCall(ledger.dev_signer(8).address, b"", value=10**15 * i))
        for i in range(1, 5)
    ]
    calls += [
        (ledger.dev_signer(5 + i), _post(index, pid, consumer, CIPHERTEXT[: 100 + 150 * i]))
        for i, pid in enumerate(payment_ids)
    ]
    return await mine_together(ledger, calls), payment_ids


async def test_every_transaction_of_a_busy_block_is_proven(
    ledger: Ledger, data_index: DataIndex
) -> None:
    chain = EvmDataChain(ledger, data_index)
    assert isinstance(chain, DataChain)
    receipts, _ = await _busy_block(ledger, data_index)
    sizes, prove_ms, verify_ms = [], [], []
    for receipt in receipts:
        started = time.perf_counter()
        proof = await chain.prove_inclusion(receipt.transaction_hash)
        prove_ms.append((time.perf_counter() - started) * 1000)
        assert proof is not None
        assert (proof.tx_id, proof.block_hash) == (receipt.transaction_hash, receipt.block_hash)
        assert proof.block_number == receipt.block_number
        started = time.perf_counter()
        assert chain.verify_inclusion(proof)
        verify_ms.append((time.perf_counter() - started) * 1000)
        assert await chain.is_canonical(proof)
        sizes.append((proof.size, len(proof.branch)))
    assert not chain.refusals
    print(
        f"\n{ledger.kind}: {len(receipts)} transactions in block {receipts[0].block_number}; "
        f"proof bytes/nodes {sizes}; prove {max(prove_ms):.1f} ms max, "
        f"verify {max(verify_ms):.2f} ms max"
    )


async def test_a_posted_index_is_found_by_payment_and_provider(
    ledger: Ledger, data_index: DataIndex
) -> None:
    chain = EvmDataChain(ledger, data_index)
    receipts, payment_ids = await _busy_block(ledger, data_index)
    for i, payment_id in enumerate(payment_ids):
        provider = ledger.dev_signer(5 + i).address
        posted = await chain.find_index(payment_id, provider=provider)
        assert posted is not None
        assert posted.tx_id == receipts[4 + i].transaction_hash
        assert (posted.provider, posted.consumer) == (provider, ledger.dev_signer(9).address)
        assert posted.ciphertext == CIPHERTEXT[: 100 + 150 * i]
        assert posted.matches(CIPHERTEXT[: 100 + 150 * i])
        assert posted.chain == chain.name == f"evm:{ledger.chain_id}"
        assert (
            posted.block_time == (await ledger.w3.eth.get_block(posted.block_number))["timestamp"]
        )
    assert await chain.find_index(keccak256(b"never paid")) is None
    assert await chain.find_index(payment_ids[0], provider=ledger.dev_signer(6).address) is None


async def test_only_the_providers_own_posting_counts(ledger: Ledger, data_index: DataIndex) -> None:
    # anyone may post for a payment first; the notary asks for P's posting by sender
    chain = EvmDataChain(ledger, data_index)
    payment_id, consumer = keccak256(b"front-run"), ledger.dev_signer(9).address
    squatter, provider = ledger.dev_signer(7), ledger.dev_signer(8)
    await data_index.with_signer(squatter).post(payment_id, consumer, b"garbage")
    assert await chain.find_index(payment_id, provider=provider.address) is None
    tx_id = await EvmDataChain(ledger, data_index.with_signer(provider)).post_index(
        payment_id, consumer, CIPHERTEXT
    )
    posted = await chain.find_index(payment_id, provider=provider.address)
    assert posted is not None and posted.tx_id == tx_id and posted.ciphertext == CIPHERTEXT
    earliest = await chain.find_index(payment_id)
    assert earliest is not None and earliest.ciphertext == b"garbage"


async def test_forged_proofs_are_refused_and_counted(ledger: Ledger, data_index: DataIndex) -> None:
    chain = EvmDataChain(ledger, data_index)
    receipts, _ = await _busy_block(ledger, data_index)
    [later] = await mine_together(
        ledger, [(ledger.dev_signer(1), ContractCall(ledger.dev_signer(2).address, b"", value=1))]
    )
    proof = await chain.prove_inclusion(receipts[2].transaction_hash)
    other = await chain.prove_inclusion(later.transaction_hash)
    assert proof is not None and other is not None

    def flip(data: bytes, at: int) -> bytes:
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]

    forgeries: dict[str, InclusionProof] = {
        # a transaction of another block, under this block's header
        "branch": replace(other, header=proof.header, block_hash=proof.block_hash,
                          block_number=proof.block_number),
        "transaction_hash": replace(proof, transaction=flip(proof.transaction, 40)),
        "transaction_mismatch": replace(
            proof, transaction=other.transaction, tx_id=other.tx_id),
        "block_hash": replace(proof, header=flip(proof.header, len(proof.header) - 3)),
    }  # fmt: skip
    node = proof.branch[0]
    forgeries["branch "] = replace(proof, branch=(flip(node, len(node) // 2), *proof.branch[1:]))
    for defect, forged in forgeries.items():
        assert not chain.verify_inclusion(forged), defect
    assert chain.refusals == {
        "branch": 2, "transaction_hash": 1, "transaction_mismatch": 1, "block_hash": 1
    }  # fmt: skip
    assert not chain.verify_inclusion(replace(proof, chain="evm:1"))
    assert chain.refusals["other_chain"] == 1
    assert chain.verify_inclusion(proof)  # the genuine one still holds


async def test_a_pay_transaction_is_proven_without_a_data_index(ledger: Ledger) -> None:
    chain = EvmDataChain(ledger)  # as on the user chain B_u
    signer = ledger.dev_signer(3)
    receipt = await ledger.transactor(signer).transact(
        ContractCall(ledger.dev_signer(4).address, b"pay", value=12345)
    )
    proof = await chain.prove_inclusion(receipt.transaction_hash)
    assert proof is not None and chain.verify_inclusion(proof)
    assert await chain.now() >= proof_time(await ledger.w3.eth.get_block(receipt.block_number))
    assert await chain.prove_inclusion("0x" + "00" * 32) is None
    with pytest.raises(NotFound, match="no data index contract"):
        await chain.find_index(keccak256(b"x"))
    with pytest.raises(InvalidInput, match="no transaction hash"):
        await chain.prove_inclusion("0x1234")


def proof_time(block: object) -> int:
    return int(block["timestamp"])  # type: ignore[index]
