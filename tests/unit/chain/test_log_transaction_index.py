"""``Log.transaction_index``: read from the node's ``transactionIndex``, not part of identity."""

from __future__ import annotations

from pervasive.chain import Log

RAW_LOG = {
    "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
    "topics": ["0x" + "ab" * 32],
    "data": "0x" + "00" * 32,
    "blockNumber": "0x2",
    "blockHash": "0x" + "cd" * 32,
    "transactionHash": "0x" + "ef" * 32,
    "transactionIndex": "0x3",
    "logIndex": "0x7",
}


def test_transaction_index_comes_from_json_rpc_and_web3_forms() -> None:
    assert Log.from_rpc(RAW_LOG).transaction_index == 3
    assert Log.from_rpc({**RAW_LOG, "transactionIndex": 3}).transaction_index == 3
    pending = {k: v for k, v in RAW_LOG.items() if k != "transactionIndex"}
    assert Log.from_rpc(pending).transaction_index is None


def test_a_log_without_its_transaction_index_is_the_same_log() -> None:
    log = Log.from_rpc(RAW_LOG)
    by_hand = Log(log.address, log.topics, log.data, 2, log.block_hash, log.transaction_hash, 7)
    assert by_hand == log and by_hand.key == log.key
    assert log.retracted().transaction_index == 3
