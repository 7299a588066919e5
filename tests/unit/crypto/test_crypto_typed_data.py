"""EIP-712 against all go-ethereum typed-data vectors (vendored in tests/vectors/eip712)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.crypto import (
    PrivateKey,
    checksum_address,
    domain_separator,
    hash_typed_data,
    keccak256,
    recover_hash,
    sign_typed_data,
    struct_hash,
    typed_data_digest,
)
from pervasive.errors import InvalidInput

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "eip712" / "go-ethereum-typed-data.json"


def _load() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(VECTORS.read_text())
    return cases


CASES = _load()


def _document(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": case["types"],
        "primaryType": case["primaryType"],
        "domain": case["domain"],
        "message": case["data"],
    }


def _flat_value(kind: str, value: Any) -> Any:
    if kind.startswith(("uint", "int")):
        return int(value, 0) if isinstance(value, str) else int(value)
    if kind == "bytes" or (kind.startswith("bytes") and kind != "bytes"):
        return bytes.fromhex(value.removeprefix("0x"))
    return value


def _flat_struct_hash(types: dict[str, Any], name: str, data: dict[str, Any]) -> bytes | None:
    """Our flat-struct path, or None when the struct has arrays or nested structs."""
    members = types[name]
    kinds = [m["type"] for m in members]
    if any(k.endswith("]") or k[:1].isupper() for k in kinds):
        return None
    signature = f"{name}({','.join(m['type'] + ' ' + m['name'] for m in members)})"
    values = [_flat_value(m["type"], data[m["name"]]) for m in members]
    return struct_hash(signature, values)


def test_all_vectors_are_read() -> None:
    assert len(CASES) == 123


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_go_ethereum_vector(case: dict[str, Any]) -> None:
    hashed = hash_typed_data(_document(case))
    # struct hash: keccak of the vector's encodeData (typeHash || encoded members)
    assert hashed.struct_hash == keccak256(bytes.fromhex(case["encoded"][2:]))
    # digest as go-ethereum computed it
    assert hashed.digest.hex() == case["digest"][2:]
    # domain separator recomputed by our flat path from the vector's EIP712Domain type
    ours = _flat_struct_hash(case["types"], "EIP712Domain", case["domain"])
    assert ours == hashed.domain_separator
    assert typed_data_digest(ours, hashed.struct_hash).digest == hashed.digest
    # flat primary structs: our fast path gives the same struct hash
    flat = _flat_struct_hash(case["types"], case["primaryType"], case["data"])
    if flat is not None:
        assert flat == hashed.struct_hash


def test_signature_on_vector_digest_matches_eth_account() -> None:
    key = PrivateKey(bytes(range(1, 33)))
    case = next(c for c in CASES if c["name"] == "EIP712 example")
    ours = sign_typed_data(key, hash_typed_data(_document(case)))
    theirs = Account.sign_typed_data(key.secret, full_message=_document(case))
    assert ours.to_bytes() == bytes(theirs.signature)
    assert recover_hash(bytes(theirs.message_hash), ours) == key.address


def test_domain_separator_matches_eth_account() -> None:
    address = "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
    full = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Ping": [{"name": "n", "type": "uint256"}],
            },
            "primaryType": "Ping",
            "domain": {
                "name": "DIVERSITY",
                "version": "1",
                "chainId": 5,
                "verifyingContract": address,
            },
            "message": {"n": 1},
        }
    )
    assert domain_separator("DIVERSITY", "1", 5, address) == bytes(full.header)
    assert struct_hash("Ping(uint256 n)", [1]) == bytes(full.body)


def test_malformed_document_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        hash_typed_data({"types": {}, "primaryType": "Nope", "domain": {}, "message": {}})


def test_sign_typed_data_refuses_inconsistent_hash() -> None:
    good = typed_data_digest(b"\x01" * 32, b"\x02" * 32)
    forged = type(good)(good.domain_separator, good.struct_hash, b"\x00" * 32)
    with pytest.raises(InvalidInput):
        sign_typed_data(PrivateKey(b"\x07" * 32), forged)


@settings(max_examples=60, deadline=None)
@given(
    word=st.binary(min_size=32, max_size=32),
    number=st.integers(0, 2**256 - 1),
    small=st.integers(0, 2**64 - 1),
    flag=st.booleans(),
    address=st.binary(min_size=20, max_size=20),
    blob=st.binary(max_size=80),
    text=st.text(max_size=20),
)
def test_struct_hash_matches_eth_account(
    word: bytes, number: int, small: int, flag: bool, address: bytes, blob: bytes, text: str
) -> None:
    members = [
        ("a", "bytes32", word),
        ("b", "uint256", number),
        ("c", "uint64", small),
        ("d", "bool", flag),
        ("e", "address", checksum_address(address)),
        ("f", "bytes", blob),
        ("g", "string", text),
    ]
    signature = "Thing(" + ",".join(f"{t} {n}" for n, t, _ in members) + ")"
    full = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}],
                "Thing": [{"name": n, "type": t} for n, t, _ in members],
            },
            "primaryType": "Thing",
            "domain": {"name": "x"},
            "message": {n: v for n, _, v in members},
        }
    )
    assert struct_hash(signature, [v for _, _, v in members]) == bytes(full.body)
