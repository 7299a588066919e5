"""Revert decoding and the typed records built from node answers."""

from __future__ import annotations

from eth_abi.abi import encode
from hypothesis import given
from hypothesis import strategies as st

from pervasive.chain import Log, Receipt, decode_revert

ERROR = bytes.fromhex("08c379a0")
PANIC = bytes.fromhex("4e487b71")


@given(st.text(min_size=1))
def test_error_string_round_trip(reason: str) -> None:
    data = ERROR + encode(["string"], [reason])
    assert decode_revert(data) == reason
    assert decode_revert("0x" + data.hex()) == reason


def test_panics_custom_errors_and_nothing() -> None:
    assert decode_revert(PANIC + encode(["uint256"], [0x11])) == (
        "panic 0x11: arithmetic overflow or underflow"
    )
    assert decode_revert(PANIC + encode(["uint256"], [0x99])) == "panic 0x99: unknown panic"
    assert decode_revert(bytes.fromhex("deadbeef")) == "custom error 0xdeadbeef"
    assert decode_revert(ERROR + b"\x00" * 5) == "custom error 0x" + (ERROR + b"\x00" * 5).hex()
    assert decode_revert(None) is None
    assert decode_revert(b"") is None
    assert decode_revert("0x") is None


RAW_LOG = {
    "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
    "topics": ["0x" + "ab" * 32],
    "data": "0x" + "00" * 31 + "05",
    "blockNumber": "0x2",
    "blockHash": "0x" + "cd" * 32,
    "transactionHash": "0x" + "ef" * 32,
    "logIndex": "0x1",
    "removed": False,
}


def test_log_and_receipt_from_raw_json_rpc() -> None:
    log = Log.from_rpc(RAW_LOG)
    assert log.address == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert log.topics == (b"\xab" * 32,) and log.data[-1] == 5
    assert (log.block_number, log.log_index) == (2, 1)
    assert log.key == ("0x" + "cd" * 32, 1)
    assert log.retracted().removed and not log.removed
    receipt = Receipt.from_rpc(
        {
            "transactionHash": "0x" + "ef" * 32,
            "blockNumber": "0x2",
            "blockHash": "0x" + "cd" * 32,
            "status": "0x1",
            "gasUsed": "0x5208",
            "effectiveGasPrice": "0x3b9aca00",
            "contractAddress": None,
            "logs": [RAW_LOG],
        }
    )
    assert receipt.succeeded and receipt.fee == 21_000 * 10**9
    assert receipt.logs == (log,)
