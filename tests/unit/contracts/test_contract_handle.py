"""The generic contract handle: canonical types, selectors, topics, encoding and event decoding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pervasive.chain import Log
from pervasive.contracts.contract import (
    Contract,
    EventSpec,
    Function,
    canonical_type,
    decode_values,
)
from pervasive.crypto import PrivateKey, abi_encode

ERC20_ABI = [
    {
        "type": "function", "name": "transfer", "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "event", "name": "Transfer", "anonymous": False,
        "inputs": [
            {"name": "sender", "type": "address", "indexed": True},
            {"name": "receiver", "type": "address", "indexed": True},
            {"name": "value", "type": "uint256", "indexed": False},
        ],
    },
]  # fmt: skip

ALICE = PrivateKey(b"\x01" * 32).address
BOB = PrivateKey(b"\x02" * 32).address


def test_selector_and_topic_match_the_well_known_erc20_values() -> None:
    contract = Contract(None, "0x" + "11" * 20, ERC20_ABI)  # type: ignore[arg-type]
    assert contract.function("transfer").selector.hex() == "a9059cbb"
    [spec] = contract._events.values()
    assert spec.topic.hex().startswith("ddf252ad")


def test_tuple_parameters_are_spelled_out() -> None:
    param = {
        "type": "tuple[]",
        "components": [{"type": "string"}, {"type": "tuple", "components": [{"type": "uint8"}]}],
    }
    assert canonical_type(param) == "(string,(uint8))[]"


def test_events_decode_indexed_and_data_fields_with_checksummed_addresses() -> None:
    contract = Contract(None, "0x" + "11" * 20, ERC20_ABI)  # type: ignore[arg-type]
    spec = EventSpec("Transfer", ("sender", "receiver", "value"), ("address", "address", "uint256"),
                     (True, True, False))  # fmt: skip
    log = Log(
        address="0x" + "11" * 20,
        topics=(spec.topic, bytes(12) + bytes.fromhex(ALICE[2:]), bytes(12) + bytes.fromhex(BOB[2:])),  # noqa: E501
        data=abi_encode(["uint256"], [5]),
        block_number=1, block_hash="0x00", transaction_hash="0x01", log_index=0,
    )  # fmt: skip
    [event] = contract.decode_logs([log])
    assert (event.name, dict(event.args)) == (
        "Transfer",
        {"sender": ALICE, "receiver": BOB, "value": 5},
    )
    other = Log(**{**log.__dict__, "address": "0x" + "22" * 20})
    assert contract.decode_logs([other]) == []


@given(
    st.text(max_size=80),
    st.lists(st.tuples(st.text(max_size=32), st.integers(0, 255)), max_size=16),
)
def test_outputs_round_trip_nested_tuples(text: str, fields: list[tuple[str, int]]) -> None:
    function = Function("sensor", ("string",), ("(string,address,(string,uint8)[])",), "view")
    encoded = abi_encode(function.outputs, [(text, ALICE.lower(), fields)])
    assert function.decode_output(encoded) == (text, ALICE, tuple(fields))
    assert decode_values(["address"], abi_encode(["address"], [BOB.lower()])) == (BOB,)
