"""Every signed digest equals the EIP-712 digest of the same data as a full typed-data document.

This pins the encodings in docs/offchain-protocol.md: a wallet, eth-account or a Vyper
contract computing EIP-712 over these types gets the same 32 bytes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from offchain_harness import NODE_KEYS, SENSOR_KEYS, declaration, make_spec

from pervasive.contracts import QoSLevel, UpdatePayload, agreement_domain
from pervasive.crypto import abi_encode, hash_typed_data, keccak256
from pervasive.offchain import (
    CompactUpdate,
    ProofOfComputation,
    ProtocolMessage,
    QoS,
    Reveal,
    commitment,
)
from pervasive.offchain.messages import MessageKind
from pervasive.offchain.sensor_message import sign_sensor_message

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
def test_compact_update_digest(
    result: bytes, window_hash: bytes, proofs_hash: bytes, data_hash: bytes, t: int
) -> None:
    update = CompactUpdate(SPEC.address, t, result, window_hash, proofs_hash, data_hash)
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
    assert update.typed_hash(SPEC.domain_separator) == hash_typed_data(doc)
    # the fast protocol's P_t is the very struct the Agreement contract verifies
    payload = UpdatePayload(SPEC.address, t, result, window_hash, proofs_hash, data_hash)
    assert update.typed_hash(SPEC.domain_separator) == payload.typed_hash(SPEC.chain_id)


def test_protocol_message_digest() -> None:
    message = ProtocolMessage.create(
        NODE_KEYS[0],
        SPEC.domain_separator,
        agreement=SPEC.address,
        window=4,
        kind=MessageKind.REVEAL,
        nonce=9,
        body=b"body",
    )
    members = [
        ("address", "agreement"),
        ("uint256", "window"),
        ("uint8", "kind"),
        ("address", "sender"),
        ("uint64", "nonce"),
        ("bytes", "body"),
    ]
    doc = document(
        "ProtocolMessage",
        members,
        {
            "agreement": SPEC.address,
            "window": 4,
            "kind": 6,
            "sender": NODE_KEYS[0].address,
            "nonce": 9,
            "body": b"body",
        },
    )
    assert message.digest(SPEC.domain_separator) == hash_typed_data(doc).digest


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
    assert [(q.name, q.value) for q in QoS] == [(q.name, q.value) for q in QoSLevel]
    assert SPEC.domain_separator == agreement_domain(SPEC.chain_id, SPEC.address)


@settings(max_examples=50, deadline=None)
@given(
    window=st.integers(0, 2**256 - 1),
    kind=st.sampled_from(list(MessageKind)),
    nonce=st.integers(0, 2**64 - 1),
    body=st.binary(max_size=300),
    tamper=st.one_of(st.none(), st.tuples(st.integers(0, 2000), st.integers(1, 255))),
)
def test_the_wire_form_is_the_abi_encoding_and_the_fast_decoder_agrees_with_abi_decode(
    window: int, kind: MessageKind, nonce: int, body: bytes, tamper: tuple[int, int] | None
) -> None:
    from pervasive.crypto import abi_decode, checksum_address
    from pervasive.offchain import decode_protocol_message
    from pervasive.offchain.messages import _WIRE, _decode_wire_fast

    message = ProtocolMessage.create(
        NODE_KEYS[0], SPEC.domain_separator, agreement=SPEC.address, window=window, kind=kind,
        nonce=nonce, body=body,
    )  # fmt: skip
    fields = [SPEC.address, window, int(kind), message.sender, nonce, body]
    wire = message.encode()
    assert wire == abi_encode(_WIRE, [*fields, message.signature.to_bytes()])
    assert decode_protocol_message(wire) == message
    if tamper is None:
        return
    at, flip = tamper
    damaged = bytearray(wire)
    damaged[at % len(wire)] ^= flip
    # the fast path either declines (the reference decoder then decides) or agrees with it
    fast = _decode_wire_fast(bytes(damaged))
    if fast is not None:
        agreement, window_, kind_, sender, nonce_, body_, signature = abi_decode(
            _WIRE, bytes(damaged)
        )
        expected = (
            checksum_address(agreement), window_, kind_, checksum_address(sender), nonce_,
            body_, signature,
        )  # fmt: skip
        assert fast == expected
