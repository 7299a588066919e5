"""EIP-712 of the agreement's terms and updates: our flat hashing vs eth-account's full path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.contracts import blueprint_deploy_code, compact_signature
from pervasive.contracts.agreement_records import expand_signature
from pervasive.crypto import (
    PrivateKey,
    Signature,
    hash_typed_data,
    recover_hash,
    sign_typed_data,
    unsafe_sign_hash,
)
from pervasive.domain import UPDATE_TYPE, AgreementTerms, QoS, Reaction, ReactionKind, Update

FACTORY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
keys = st.integers(min_value=1, max_value=2**200).map(lambda n: PrivateKey(n.to_bytes(32, "big")))
addresses = keys.map(lambda k: k.address)


@st.composite
def terms(draw: st.DrawFn) -> AgreementTerms:
    parties = draw(st.lists(addresses, min_size=2, max_size=8, unique=True))
    nodes = draw(st.lists(addresses, min_size=2, max_size=8, unique=True))
    sensors = draw(st.lists(addresses, min_size=1, max_size=8, unique=True))
    kind = draw(st.sampled_from(list(ReactionKind)))
    payer, payee = draw(st.permutations(range(len(parties))))[:2]
    return AgreementTerms(
        parties=tuple(parties),
        sensors=tuple(sensors),
        start_points=tuple(draw(st.integers(0, 2**64 - 1)) for _ in sensors),
        window_size=draw(st.integers(1, 2**64 - 1)),
        sliding_factor=draw(st.integers(1, 2**64 - 1)),
        function_name=draw(st.text(min_size=1, max_size=16)),
        function_hash=draw(st.binary(min_size=32, max_size=32).filter(any)),
        nodes=tuple(nodes),
        node_parties=tuple(draw(st.integers(0, len(parties) - 1)) for _ in nodes),
        qos=draw(st.sampled_from(list(QoS))),
        reward=draw(st.integers(0, 2**256 - 1)),
        reaction=Reaction(kind, payer, payee, draw(st.integers(1, 2**256 - 1))),
        expiry=draw(st.integers(0, 2**64 - 1)),
    )


@settings(max_examples=40, deadline=None)
@given(terms())
def test_terms_digest_matches_the_full_eip712_document(t: AgreementTerms) -> None:
    document = t.typed_document(31337, FACTORY)
    assert hash_typed_data(document) == t.typed_hash(31337, FACTORY)
    assert AgreementTerms.from_abi(t.as_abi()) == t


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**256 - 1),
    st.binary(max_size=200),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
)
def test_update_digest_matches_the_full_eip712_document(
    window: int, result: bytes, window_hash: bytes, data_hash: bytes
) -> None:
    payload = Update(FACTORY, window, result, window_hash, bytes(32), data_hash)
    members = UPDATE_TYPE[len("Update(") : -1].split(",")
    document = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Update": [{"name": m.split(" ")[1], "type": m.split(" ")[0]} for m in members],
        },
        "primaryType": "Update",
        "domain": {"name": "DIVERSITY", "version": "1", "chainId": 5, "verifyingContract": FACTORY},
        "message": {
            "agreement": FACTORY,
            "window": window,
            "result": result,
            "windowHash": window_hash,
            "proofsHash": bytes(32),
            "dataHash": data_hash,
        },
    }
    assert hash_typed_data(document) == payload.typed_hash(5)


@settings(max_examples=30, deadline=None)
@given(keys, st.binary(min_size=32, max_size=32))
def test_compact_signature_keeps_signer(key: PrivateKey, digest: bytes) -> None:
    signature = unsafe_sign_hash(key, digest)
    r, vs = compact_signature(signature)
    v = 27 + (vs[0] >> 7)
    s = int.from_bytes(vs, "big") & ((1 << 255) - 1)
    rebuilt = Signature(int.from_bytes(r, "big"), s, v)
    assert recover_hash(digest, rebuilt) == key.address
    assert expand_signature((r, vs)) == signature


def test_blueprint_has_the_erc5202_preamble() -> None:
    code = blueprint_deploy_code(b"\x60\x00")
    assert code[10:13] == b"\xfe\x71\x00"
    assert int.from_bytes(code[1:3], "big") == len(code) - 10


def test_sign_is_eip712_of_the_terms() -> None:
    key = PrivateKey(b"\x01" * 32)
    t = AgreementTerms(
        parties=(key.address, FACTORY), sensors=(FACTORY,), start_points=(0,), window_size=1,
        sliding_factor=1, function_name="f", function_hash=b"\x01" * 32,
        nodes=(key.address, FACTORY), node_parties=(0, 1), qos=QoS.NO_PROOF, reward=0,
        reaction=Reaction(), expiry=1,
    )  # fmt: skip
    assert t.sign(key, 1, FACTORY) == sign_typed_data(key, t.typed_hash(1, FACTORY))
