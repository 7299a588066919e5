"""Inclusion proofs over ethereum/tests' own blocks: headers and transaction tries from outside.

``tests/vectors/blockchain/transType.json`` (ethereum/tests ``BlockchainTests``, see its
README) holds three Cancun blocks with legacy, EIP-2930 and EIP-1559 transactions, each
with its full RLP, its header's JSON fields, its hash and its ``transactionsTrie``. This
checks against them: the header re-encoded from JSON fields (what anvil's path does) is
the block's own header, the transactions rebuild the stated root, and every transaction
is proven and none is proven in another block.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import rlp

from pervasive.chain.headers import encode_header_fields
from pervasive.crosschain.inclusion import (
    ProofDefect,
    build_inclusion_proof,
    inclusion_defect,
    transactions_root,
)
from pervasive.crypto import keccak256

VECTOR = Path(__file__).resolve().parents[2] / "vectors" / "blockchain" / "transType.json"
# the test file's header field names -> JSON-RPC's (eth_getBlockByNumber)
RPC_NAMES = {
    "bloom": "logsBloom", "coinbase": "miner", "receiptTrie": "receiptsRoot",
    "transactionsTrie": "transactionsRoot", "uncleHash": "sha3Uncles",
}  # fmt: skip


def _blocks() -> list[dict[str, Any]]:
    (case,) = json.loads(VECTOR.read_text()).values()
    blocks: list[dict[str, Any]] = case["blocks"]
    assert [len(block["transactions"]) for block in blocks] == [3, 2, 2]
    return blocks


def _split(block: dict[str, Any]) -> tuple[bytes, list[bytes]]:
    """The header's RLP and the raw transactions from a block's full RLP."""
    header, transactions, _uncles, _withdrawals = rlp.decode(bytes.fromhex(block["rlp"][2:]))
    # a legacy transaction is an RLP list in the block; a typed one a string (type||payload)
    raws = [tx if isinstance(tx, bytes) else rlp.encode(tx) for tx in transactions]
    return bytes(rlp.encode(header)), raws


BLOCKS = _blocks()


@pytest.mark.parametrize("number", [1, 2, 3])
def test_header_reencoded_from_rpc_fields_is_the_blocks_header(number: int) -> None:
    block = BLOCKS[number - 1]
    header, _ = _split(block)
    fields = {RPC_NAMES.get(name, name): value for name, value in block["blockHeader"].items()}
    assert encode_header_fields(fields) == header
    assert "0x" + keccak256(header).hex() == block["blockHeader"]["hash"]


@pytest.mark.parametrize("number", [1, 2, 3])
def test_every_transaction_of_the_block_is_proven(number: int) -> None:
    block = BLOCKS[number - 1]
    header, raws = _split(block)
    assert "0x" + transactions_root(raws).hex() == block["blockHeader"]["transactionsTrie"]
    for index, raw in enumerate(raws):
        proof = build_inclusion_proof("evm:1", header, raws, index)
        assert proof.block_hash == block["blockHeader"]["hash"]
        assert proof.block_number == number
        assert inclusion_defect(proof, chain_id=1) is None
        assert inclusion_defect(proof, chain_id=31337) is (
            None if raw[0] >= 0xC0 else ProofDefect.CHAIN  # the legacy one predates EIP-155
        )


def test_a_transaction_is_not_proven_in_another_block() -> None:
    header_1, raws_1 = _split(BLOCKS[0])
    header_2, raws_2 = _split(BLOCKS[1])
    for index in range(2):
        theirs = build_inclusion_proof("evm:1", header_1, raws_1, index)
        ours = build_inclusion_proof("evm:1", header_2, raws_2, index)
        moved = replace(ours, tx_id=theirs.tx_id, transaction=theirs.transaction)
        assert inclusion_defect(moved, chain_id=1) is ProofDefect.TRANSACTION_MISMATCH
