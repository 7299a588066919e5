"""Every signed digest equals the EIP-712 digest of the same data as a full typed-data document.

This pins the encodings in docs/offchain-protocol.md: a wallet, eth-account or a Vyper
contract computing EIP-712 over these types gets the same 32 bytes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from offchain_harness import NODE_KEYS, SENSOR_KEYS, declaration, make_spec

from pervasive.crypto import abi_encode, hash_typed_data, keccak256
from pervasive.domain import QoS, Update, agreement_domain
from pervasive.offchain import ProofOfComputation, Reveal, commitment
from pervasive.sensing.message import sign_sensor_message

AGREEMENT_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
SPEC = make_spec(2)
DOMAIN = {
    "name": "DIVERSITY",
    "version": "1",
    "chainId": SPEC.chain_id,
    "verifyingContract": SPEC.address,
}


def document(
    primary: str, members: list[tuple[str, str]], message: dict[str, Any]
) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": AGREEMENT_DOMAIN_TYPE,
            primary: [{"name": n, "type": t} for t, n in members],
        },
        "primaryType": primary,
        "domain": DOMAIN,
        "message": message,
    }


words = st.binary(min_size=32, max_size=32)


@settings(max_examples=25, deadline=None)
@given(commit=words, window_hash=words, t=st.integers(0, 2**64))
def test_proof_digest(commit: bytes, window_hash: bytes, t: int) -> None:
    proof = ProofOfComputation(commit, t, SPEC.address, window_hash)
    members = [
        ("bytes32", "commitment"),
        ("uint256", "window"),
        ("address", "agreement"),
        ("bytes32", "windowHash"),
    ]
    doc = document(
        "ProofOfComputation",
        members,
        {"commitment": commit, "window": t, "agreement": SPEC.address, "windowHash": window_hash},
    )
    assert proof.typed_hash(SPEC.domain_separator) == hash_typed_data(doc)


@settings(max_examples=25, deadline=None)
@given(result=st.none() | st.binary(max_size=100), secret=words, t=st.integers(0, 2**64))
def test_reveal_digest_and_commitment(result: bytes | None, secret: bytes, t: int) -> None:
    reveal = Reveal(SPEC.address, t, result, secret)
    members = [
        ("address", "agreement"),
        ("uint256", "window"),
        ("bool", "present"),
        ("bytes", "result"),
        ("bytes32", "secret"),
    ]
    doc = document(
        "Reveal",
        members,
        {
            "agreement": SPEC.address,
            "window": t,
            "present": result is not None,
            "result": result or b"",
            "secret": secret,
        },
    )
    assert reveal.typed_hash(SPEC.domain_separator) == hash_typed_data(doc)
    node = NODE_KEYS[0].address
    expected = keccak256(
        abi_encode(
            ["bool", "bytes", "bytes32", "address"],
            [result is not None, result or b"", secret, node],
        )
    )
    assert commitment(result, secret, node) == expected
    assert commitment(None, secret, node) != commitment(b"", secret, node)


@settings(max_examples=25, deadline=None)
@given(
    result=st.binary(max_size=100),
    window_hash=words,
    proofs_hash=words,
    data_hash=words,
    t=st.integers(0, 2**64),
)
def test_update_digest(
    result: bytes, window_hash: bytes, proofs_hash: bytes, data_hash: bytes, t: int
) -> None:
    update = Update(SPEC.address, t, result, window_hash, proofs_hash, data_hash)
    members = [
        ("address", "agreement"),
        ("uint256", "window"),
        ("bytes", "result"),
        ("bytes32", "windowHash"),
        ("bytes32", "proofsHash"),
        ("bytes32", "dataHash"),
    ]
    doc = document(
        "Update",
        members,
        {
            "agreement": SPEC.address,
            "window": t,
            "result": result,
            "windowHash": window_hash,
            "proofsHash": proofs_hash,
            "dataHash": data_hash,
        },
    )
    # every protocol signs this one struct (the fast protocol's P_t included)
    assert update.typed_hash(SPEC.chain_id) == hash_typed_data(doc)


def test_sensor_message_digest() -> None:
    decl = declaration(0)
    message = sign_sensor_message(SENSOR_KEYS[0], decl, 12, ["abc", -5])
    doc = {
        "types": {
            "EIP712Domain": AGREEMENT_DOMAIN_TYPE[:2],
            "SensorMessage": [
                {"name": "publicKey", "type": "bytes"},
                {"name": "sensorType", "type": "string"},
                {"name": "sequence", "type": "uint64"},
                {"name": "values", "type": "bytes"},
            ],
        },
        "primaryType": "SensorMessage",
        "domain": {"name": "DIVERSITY Sensor", "version": "1"},
        "message": {
            "publicKey": decl.public_key.to_bytes(),
            "sensorType": "meter",
            "sequence": 12,
            "values": abi_encode(["string", "int64"], ["abc", -5]),
        },
    }
    assert message.typed_hash == hash_typed_data(doc)


def test_offchain_view_agrees_with_the_contract_wrappers() -> None:
    """``offchain`` mirrors two facts of ``contracts`` (it may not import them): pin both."""
    assert [(q.name, q.value) for q in QoS] == [(q.name, q.value) for q in QoS]
    assert SPEC.domain_separator == agreement_domain(SPEC.chain_id, SPEC.address)
