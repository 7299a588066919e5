"""The member's fast attestation digest is the oracle wrapper's EIP-712 digest, always."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.contracts.deposit_oracle import attestation_digest, sign_attestation
from pervasive.crosschain.check_server import CheckService
from pervasive.crosschain.deposit_check import Attestation, DepositCheck
from pervasive.crypto import PrivateKey, unsafe_sign_hash

# the wrapper refuses the zero address, as the server does
addresses = st.binary(min_size=20, max_size=20).filter(any).map(lambda raw: "0x" + raw.hex())
uint256 = st.integers(0, 2**256 - 1)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 2**64),
    addresses,
    addresses,
    addresses,
    uint256,
    uint256,
    uint256,
)
def test_digest_equals_the_oracle_wrappers(
    chain_id: int,
    oracle: str,
    consumer: str,
    provider: str,
    required: int,
    counter: int,
    expiry: int,
) -> None:
    key = PrivateKey(bytes([9]) * 32)
    service = CheckService(DepositCheck(coef_percent=100), key, chain_id=chain_id, oracle=oracle)
    attestation = Attestation(consumer, provider, required, counter, expiry)
    expected = attestation_digest(chain_id, oracle, consumer, provider, required, counter, expiry)
    assert service.digest(attestation) == expected
    signature = unsafe_sign_hash(key, service.digest(attestation)).to_bytes()
    wrapper = sign_attestation(key, chain_id, oracle, consumer, provider, required, counter, expiry)
    assert signature == wrapper
