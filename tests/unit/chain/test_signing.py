"""Our fast EIP-1559 signer produces exactly eth-account's bytes and hash."""

from __future__ import annotations

import rlp
from coincurve import PrivateKey
from eth_account import Account
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.chain.signing import UnsignedTransaction, rlp_encode, sign_transaction

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

uint = st.integers(min_value=0, max_value=2**256 - 1)
uint64 = st.integers(min_value=0, max_value=2**64 - 2)
keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
transactions = st.builds(
    UnsignedTransaction,
    chain_id=st.integers(min_value=1, max_value=2**64 - 1),
    nonce=uint64,
    max_priority_fee_per_gas=uint,
    max_fee_per_gas=uint,
    gas=uint64,
    to=st.one_of(st.none(), st.binary(min_size=20, max_size=20)),
    value=uint,
    data=st.binary(max_size=300),
)


@settings(max_examples=100, deadline=None)
@given(tx=transactions, key=keys)
def test_matches_eth_account(tx: UnsignedTransaction, key: bytes) -> None:
    fields = {
        "type": 2,
        "chainId": tx.chain_id,
        "nonce": tx.nonce,
        "maxPriorityFeePerGas": tx.max_priority_fee_per_gas,
        "maxFeePerGas": tx.max_fee_per_gas,
        "gas": tx.gas,
        "value": tx.value,
        "data": tx.data,
        "accessList": [],
    }
    if tx.to is not None:
        fields["to"] = to_checksum_address(tx.to)
    expected = Account.sign_transaction(fields, key)
    ours = sign_transaction(tx, PrivateKey(key))
    assert ours.raw == bytes(expected.raw_transaction)
    assert ours.hash == bytes(expected.hash)
    assert ours.hash_hex == "0x" + bytes(expected.hash).hex()
    assert ours.nonce == tx.nonce
    assert Account.recover_transaction(ours.raw) == Account.from_key(key).address


rlp_items = st.recursive(
    st.one_of(st.integers(min_value=0, max_value=2**256), st.binary(max_size=80)),
    lambda children: st.lists(children, max_size=6),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(item=rlp_items)
def test_rlp_matches_the_reference_encoder(item: object) -> None:
    assert rlp_encode(item) == rlp.encode(item)  # type: ignore[arg-type]


def test_rlp_known_vectors() -> None:
    # from the Ethereum wiki's RLP page
    assert rlp_encode(b"dog") == bytes([0x83]) + b"dog"
    assert rlp_encode([b"cat", b"dog"]) == bytes([0xC8, 0x83]) + b"cat" + bytes([0x83]) + b"dog"
    assert rlp_encode(b"") == b"\x80"
    assert rlp_encode([]) == b"\xc0"
    assert rlp_encode(0) == b"\x80"
    assert rlp_encode(15) == b"\x0f"
    assert rlp_encode(1024) == b"\x82\x04\x00"
    assert rlp_encode([[], [[]], [[], [[]]]]) == bytes.fromhex("c7c0c1c0c3c0c1c0")
    long = b"Lorem ipsum dolor sit amet, consectetur adipisicing elit"
    assert rlp_encode(long) == b"\xb8\x38" + long
