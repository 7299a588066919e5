"""Deposit attestations without a chain: the digest equals eth-account's EIP-712 hashing
of the full typed-data document, signatures recover to their signer, packing orders
signers as the contract requires."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.contracts.deposit_oracle import (
    ATTESTATION_TYPE,
    DepositAttestation,
    attestation_digest,
    pack_signatures,
    sign_attestation,
)
from pervasive.crypto import generate_private_key, hash_typed_data, recover_hash
from pervasive.errors import InvalidInput

ORACLE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
KEY = generate_private_key()
addresses = st.binary(min_size=20, max_size=20).filter(any).map(lambda b: "0x" + b.hex())
uint256 = st.integers(0, 2**256 - 1)
attestations = st.tuples(addresses, addresses, uint256, uint256, uint256)


def _document(chain_id: int, fields: tuple[str, str, int, int, int]) -> dict[str, object]:
    consumer, provider, required, counter, expiry = fields
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "DepositAttestation": [
                {"name": "consumer", "type": "address"},
                {"name": "provider", "type": "address"},
                {"name": "required", "type": "uint256"},
                {"name": "counter", "type": "uint256"},
                {"name": "expiry", "type": "uint256"},
            ],
        },
        "primaryType": "DepositAttestation",
        "domain": {
            "name": "pervasive deposit oracle",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": ORACLE,
        },
        "message": {
            "consumer": consumer,
            "provider": provider,
            "required": required,
            "counter": counter,
            "expiry": expiry,
        },
    }


@given(
    chain_id=st.integers(1, 2**63),
    fields=st.tuples(addresses, addresses, uint256, uint256, uint256),
)
@settings(max_examples=50)
def test_the_digest_is_eip712(chain_id: int, fields: tuple[str, str, int, int, int]) -> None:
    expected = hash_typed_data(_document(chain_id, fields)).digest
    assert attestation_digest(chain_id, ORACLE, *fields) == expected
    assert ATTESTATION_TYPE.startswith("DepositAttestation(address consumer,")


@given(fields=attestations)
@settings(max_examples=20)
def test_a_signature_recovers_to_its_member(fields: tuple[str, str, int, int, int]) -> None:
    signature = sign_attestation(KEY, 31337, ORACLE, *fields)
    digest = attestation_digest(31337, ORACLE, *fields)
    assert len(signature) == 65
    assert recover_hash(digest, signature) == KEY.address


@given(count=st.integers(1, 16))
@settings(max_examples=10)
def test_packing_orders_signers_by_address(count: int) -> None:
    keys = [generate_private_key() for _ in range(count)]
    fields = ("0x" + "01" * 20, "0x" + "02" * 20, 5, 0, 9)
    signed = {k.address: sign_attestation(k, 1, ORACLE, *fields) for k in keys}
    packed = pack_signatures(signed)
    chunks = [packed[i : i + 65] for i in range(0, len(packed), 65)]
    digest = attestation_digest(1, ORACLE, *fields)
    signers = [int(recover_hash(digest, chunk), 16) for chunk in chunks]
    assert signers == sorted(signers) and len(set(signers)) == count


def test_bad_attestations_are_refused() -> None:
    with pytest.raises(InvalidInput, match="counter"):
        DepositAttestation("0x" + "01" * 20, "0x" + "02" * 20, 1, -1, 9)
    with pytest.raises(InvalidInput, match="consumer"):
        DepositAttestation("0x1234", "0x" + "02" * 20, 1, 0, 9)
    with pytest.raises(InvalidInput, match="65 bytes"):
        pack_signatures({KEY.address: bytes(64)})
    many = {generate_private_key().address: bytes(65) for _ in range(17)}
    with pytest.raises(InvalidInput, match="at most 16"):
        pack_signatures(many)
