"""decode_raw_transaction reads any signed transaction the way eth-account does.

The sender is what a notary acts on (an ``unpaid`` challenge punishes it), so it is
checked against eth-account's own signing and recovery for random keys and fields, in
every envelope a node can hand over: legacy before and after EIP-155, EIP-2930 and
EIP-1559 (the latter also through :func:`pervasive.chain.signing.sign_transaction`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import coincurve
import pytest
from eth_account import Account
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.chain import decode_raw_transaction
from pervasive.chain.signing import UnsignedTransaction, sign_transaction
from pervasive.crypto import checksum_address
from pervasive.errors import InvalidInput

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
secrets = st.integers(1, SECP256K1_ORDER - 1).map(lambda k: k.to_bytes(32, "big"))
addresses = st.binary(min_size=20, max_size=20)
uint64 = st.integers(0, 2**64 - 1)
values = st.integers(0, 2**256 - 1)
payloads = st.binary(max_size=300)
chain_ids = st.integers(1, 2**32)


def _check(raw: bytes, secret: bytes, to: bytes | None, fields: dict[str, Any]) -> None:
    decoded = decode_raw_transaction(raw)
    assert decoded.sender == Account.from_key(secret).address
    assert decoded.sender == Account.recover_transaction(raw)
    assert decoded.hash == "0x" + keccak(raw).hex()
    assert decoded.to == (checksum_address(to) if to else None)
    assert decoded.nonce == fields["nonce"]
    assert decoded.value == fields["value"]
    assert decoded.data == fields["data"]


@settings(max_examples=60, deadline=None)
@given(secrets, uint64, addresses, values, payloads, chain_ids, st.sampled_from([0, 1, 2]))
def test_sender_and_fields_equal_eth_accounts(
    secret: bytes, nonce: int, to: bytes, value: int, data: bytes, chain_id: int, kind: int
) -> None:
    fields: dict[str, Any] = {
        "nonce": nonce, "gas": 100_000, "to": checksum_address(to), "value": value,
        "data": data, "chainId": chain_id,
    }  # fmt: skip
    if kind == 2:
        fields |= {"type": 2, "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 1}
    else:
        fields["gasPrice"] = 10**9
        if kind == 1:
            fields |= {"type": 1, "accessList": [{"address": fields["to"], "storageKeys": []}]}
    raw = bytes(Account.sign_transaction(fields, secret).raw_transaction)
    _check(raw, secret, to, fields)
    assert decode_raw_transaction(raw).chain_id == chain_id


@settings(max_examples=30, deadline=None)
@given(secrets, uint64, addresses, values, payloads)
def test_pre_eip155_legacy_has_no_chain_id(
    secret: bytes, nonce: int, to: bytes, value: int, data: bytes
) -> None:
    fields: dict[str, Any] = {"nonce": nonce, "gas": 100_000, "gasPrice": 1, "to": to,
                              "value": value, "data": data}  # fmt: skip
    raw = bytes(Account.sign_transaction(fields, secret).raw_transaction)
    assert raw[0] >= 0xC0  # a bare RLP list, v = 27 or 28
    _check(raw, secret, to, fields)
    assert decode_raw_transaction(raw).chain_id is None


@settings(max_examples=30, deadline=None)
@given(secrets, uint64, st.none() | addresses, values, payloads, chain_ids)
def test_the_platforms_own_signer_is_read_back(
    secret: bytes, nonce: int, to: bytes | None, value: int, data: bytes, chain_id: int
) -> None:
    tx = UnsignedTransaction(chain_id, nonce, 1, 10**9, 100_000, to, value, data)
    signed = sign_transaction(tx, coincurve.PrivateKey(secret))
    _check(signed.raw, secret, to, {"nonce": nonce, "value": value, "data": data})
    decoded = decode_raw_transaction(signed.raw)
    assert decoded.chain_id == chain_id
    assert decoded.hash == signed.hash_hex


def test_a_contract_creation_has_no_recipient() -> None:
    fields = {"type": 2, "nonce": 0, "gas": 10**6, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1,
              "to": b"", "value": 0, "data": b"\x60\x00", "chainId": 1}  # fmt: skip
    raw = bytes(Account.sign_transaction(fields, b"\x07" * 32).raw_transaction)
    assert decode_raw_transaction(raw).to is None


def test_a_tampered_transaction_recovers_someone_else() -> None:
    fields = {"type": 2, "nonce": 0, "gas": 21_000, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1,
              "to": "0x" + "22" * 20, "value": 1000, "data": b"", "chainId": 1}  # fmt: skip
    secret = b"\x07" * 32
    raw = bytes(Account.sign_transaction(fields, secret).raw_transaction)
    tampered = raw.replace((1000).to_bytes(2, "big"), (9000).to_bytes(2, "big"), 1)
    assert tampered != raw
    try:
        decoded = decode_raw_transaction(tampered)
    except InvalidInput:
        return  # no key recovers at all: equally refused
    assert decoded.value == 9000
    assert decoded.sender != Account.from_key(secret).address


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00", b"\x01", b"\x02", b"\x7f", b"\x80", b"\xc0", b"\x02\xc0", bytes(100),
     b"\xf8\x01", b"\x02" + b"\xff" * 40],
)  # fmt: skip
def test_garbage_is_invalid_input(garbage: bytes) -> None:
    with pytest.raises(InvalidInput, match="not a signed EVM transaction"):
        decode_raw_transaction(garbage)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_invalid_input(raw: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        decode_raw_transaction(raw)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_truncated_or_extended_transactions_raise_only_invalid_input(data: st.DataObject) -> None:
    fields = {"type": 2, "nonce": 3, "gas": 21_000, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1,
              "to": "0x" + "22" * 20, "value": 10, "data": b"\x01" * 40, "chainId": 7}  # fmt: skip
    raw = bytes(Account.sign_transaction(fields, b"\x05" * 32).raw_transaction)
    cut = data.draw(st.integers(0, len(raw) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=8))
    for broken in (raw[:cut], raw + extra):
        with pytest.raises(InvalidInput):
            decode_raw_transaction(broken)
