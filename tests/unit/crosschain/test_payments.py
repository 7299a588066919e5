"""P reads C's signed pay transaction and checks its attestation exactly as C_o will.

Real transactions (eth-account and the platform's own EIP-1559 signer) and real member
signatures (``sign_attestation``, ``pack_signatures``); the digest is cross-checked
against ``attestation_digest`` by recovering each signer independently with eth-account.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import coincurve
import pytest
from eth_abi import encode as eth_abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_keys import keys as eth_keys
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.chain.signing import UnsignedTransaction, sign_transaction
from pervasive.contracts.deposit_oracle import attestation_digest, pack_signatures, sign_attestation
from pervasive.contracts.user_contract import payment_id, required_deposit
from pervasive.crosschain.payments import PAY_ARGUMENTS, Payment, check_attestation, decode_payment
from pervasive.crypto import PrivateKey, checksum_address
from pervasive.errors import InvalidInput, InvalidSignature

CHAIN_ID = 31337
USER_CONTRACT = checksum_address("0x" + "5a" * 20)
ORACLE = checksum_address("0x" + "0c" * 20)
PROVIDER = checksum_address("0x" + "b0" * 20)
PAY_SELECTOR = keccak(b"pay(address,uint256,uint256,bytes)")[:4]
COEF = 150
CONSUMER_SECRET = b"\x42" * 32
CONSUMER = Account.from_key(CONSUMER_SECRET).address
AMOUNT = 10**17
COUNTER = 3
EXPIRY = 120
THRESHOLD = 3
MEMBER_KEYS = [PrivateKey(bytes([i]) * 32) for i in range(1, 5)]
MEMBERS = [k.address for k in MEMBER_KEYS]
OUTSIDER = PrivateKey(b"\x66" * 32)


def pay_data(signatures: bytes, provider: str = PROVIDER, counter: int = COUNTER) -> bytes:
    return PAY_SELECTOR + eth_abi_encode(
        list(PAY_ARGUMENTS), [provider, counter, EXPIRY, signatures]
    )


def signed_pay(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "type": 2, "nonce": 0, "gas": 300_000, "maxFeePerGas": 10**9,
        "maxPriorityFeePerGas": 1, "to": USER_CONTRACT, "value": AMOUNT,
        "data": pay_data(b"\x01" * 65), "chainId": CHAIN_ID,
    }  # fmt: skip
    fields |= overrides
    fields = {k: v for k, v in fields.items() if v is not None}
    return bytes(Account.sign_transaction(fields, CONSUMER_SECRET).raw_transaction)


def decode(raw: bytes) -> Payment:
    return decode_payment(
        raw, chain_id=CHAIN_ID, user_contract=USER_CONTRACT, pay_selector=PAY_SELECTOR,
        coef_percent=COEF,
    )  # fmt: skip


# -- decode_payment ------------------------------------------------------------------------
def test_an_eip1559_pay_transaction_is_read() -> None:
    raw = signed_pay()
    payment = decode(raw)
    assert payment.consumer == CONSUMER
    assert payment.provider == PROVIDER
    assert payment.amount == AMOUNT
    assert payment.required == AMOUNT * COEF // 100 == required_deposit(AMOUNT, COEF)
    assert payment.counter == COUNTER
    assert payment.expiry == EXPIRY
    assert payment.signatures == b"\x01" * 65
    assert payment.tx_hash == "0x" + keccak(raw).hex()
    expected_id = keccak(
        eth_abi_encode(
            ["uint256", "address", "address", "uint256"],
            [CHAIN_ID, USER_CONTRACT, CONSUMER, COUNTER],
        )
    )
    assert payment.payment_id == expected_id == payment_id(CHAIN_ID, USER_CONTRACT, CONSUMER, 3)


def test_a_legacy_eip155_pay_transaction_is_read() -> None:
    raw = signed_pay(type=None, maxFeePerGas=None, maxPriorityFeePerGas=None, gasPrice=10**9)
    assert raw[0] >= 0xC0
    assert decode(raw) == replace(decode(signed_pay()), tx_hash="0x" + keccak(raw).hex())


def test_the_platforms_own_signer_is_read() -> None:
    tx = UnsignedTransaction(
        CHAIN_ID, 0, 1, 10**9, 300_000, bytes.fromhex(USER_CONTRACT[2:]), AMOUNT,
        pay_data(b"\x01" * 65),
    )  # fmt: skip
    signed = sign_transaction(tx, coincurve.PrivateKey(CONSUMER_SECRET))
    payment = decode(signed.raw)
    assert payment.consumer == CONSUMER
    assert payment.tx_hash == signed.hash_hex


def test_the_lower_case_user_contract_address_matches() -> None:
    raw = signed_pay()
    assert decode_payment(
        raw, chain_id=CHAIN_ID, user_contract=USER_CONTRACT.lower(), pay_selector=PAY_SELECTOR,
        coef_percent=COEF,
    ) == decode(raw)  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"to": checksum_address("0x" + "5b" * 20)}, "not sent to the user contract"),
        ({"to": b""}, "not sent to the user contract"),
        ({"chainId": 1}, "for chain 1"),
        ({"data": b"\xde\xad\xbe\xef" + pay_data(b"")[4:]}, "does not call pay"),
        ({"data": PAY_SELECTOR[:3]}, "does not call pay"),
        ({"data": b""}, "does not call pay"),
        ({"data": PAY_SELECTOR + b"\x00" * 64}, "ABI"),
        ({"data": pay_data(b"\x01" * 65) + b"\x00"}, "ABI"),
    ],
)
def test_what_is_no_payment_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode(signed_pay(**overrides))


def test_a_pre_eip155_transaction_has_no_chain_and_is_refused() -> None:
    fields = {"nonce": 0, "gas": 300_000, "gasPrice": 1, "to": USER_CONTRACT, "value": AMOUNT,
              "data": pay_data(b"")}  # fmt: skip
    raw = bytes(Account.sign_transaction(fields, CONSUMER_SECRET).raw_transaction)
    with pytest.raises(InvalidInput, match="for chain None"):
        decode(raw)


@pytest.mark.parametrize("garbage", [b"", b"\x02", b"\xc0", b"pay me"])
def test_garbage_is_refused(garbage: bytes) -> None:
    with pytest.raises(InvalidInput):
        decode(garbage)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_calldata_raises_only_invalid_input(tail: bytes) -> None:
    raw = signed_pay(data=PAY_SELECTOR + tail)
    try:
        payment = decode(raw)
    except InvalidInput:
        return
    assert payment.consumer == CONSUMER


# -- check_attestation -----------------------------------------------------------------------
def attested(
    signers: list[PrivateKey], *, required: int | None = None, order: bool = True
) -> Payment:
    payment = decode(signed_pay())
    req = payment.required if required is None else required
    sigs = {
        k.address: sign_attestation(
            k, CHAIN_ID, ORACLE, payment.consumer, payment.provider, req, payment.counter, EXPIRY
        )
        for k in signers
    }
    packed = pack_signatures(sigs) if order else b"".join(sigs.values())
    return replace(payment, signatures=packed)


def check(payment: Payment, head: int = EXPIRY) -> None:
    check_attestation(
        payment, chain_id=CHAIN_ID, oracle=ORACLE, members=MEMBERS, threshold=THRESHOLD, head=head
    )


def by_address(keys: list[PrivateKey]) -> list[PrivateKey]:
    return sorted(keys, key=lambda k: int(k.address, 16))


def test_the_digest_is_the_oracles_and_members_signed_it() -> None:
    payment = attested(MEMBER_KEYS[:3])
    digest = attestation_digest(
        CHAIN_ID, ORACLE, CONSUMER, PROVIDER, payment.required, COUNTER, EXPIRY
    )
    signers = [
        eth_keys.Signature(vrs=(sig[64] - 27, int.from_bytes(sig[:32]), int.from_bytes(sig[32:64])))
        .recover_public_key_from_msg_hash(digest)
        .to_checksum_address()
        for sig in (payment.signatures[i : i + 65] for i in range(0, len(payment.signatures), 65))
    ]
    assert signers == [k.address for k in by_address(MEMBER_KEYS[:3])]


@pytest.mark.parametrize("count", [3, 4])
def test_t_or_more_member_signatures_are_accepted(count: int) -> None:
    check(attested(MEMBER_KEYS[:count]))
    check(attested(MEMBER_KEYS[-count:]), head=0)


def test_t_minus_one_signatures_are_refused() -> None:
    with pytest.raises(InvalidSignature, match="2 member signatures, the oracle needs 3"):
        check(attested(MEMBER_KEYS[:2]))


def test_a_non_member_is_refused() -> None:
    with pytest.raises(InvalidSignature, match="is no member"):
        check(attested([*MEMBER_KEYS[:2], OUTSIDER]))


def test_a_duplicate_signer_is_refused() -> None:
    payment = attested(MEMBER_KEYS[:2])
    first = payment.signatures[:65]
    with pytest.raises(InvalidSignature, match="distinct and in increasing order"):
        check(replace(payment, signatures=first + payment.signatures + b""))
    with pytest.raises(InvalidSignature, match="distinct"):
        check(replace(payment, signatures=payment.signatures + payment.signatures[65:]))


def test_unsorted_signers_are_refused() -> None:
    ordered = by_address(MEMBER_KEYS[:3])
    payment = attested(list(reversed(ordered)), order=False)
    with pytest.raises(InvalidSignature, match="increasing order"):
        check(payment)


def test_an_expired_attestation_is_refused() -> None:
    with pytest.raises(InvalidInput, match="expired at block 120"):
        check(attested(MEMBER_KEYS[:3]), head=EXPIRY + 1)


def test_signatures_over_another_amount_recover_strangers() -> None:
    payment = attested(MEMBER_KEYS[:3], required=1)  # signed for a required deposit of 1 wei
    with pytest.raises(InvalidSignature, match="is no member"):
        check(payment)
    honest = attested(MEMBER_KEYS[:3])
    with pytest.raises(InvalidSignature):
        check(replace(honest, amount=honest.amount * 2, required=honest.required * 2))
    with pytest.raises(InvalidSignature):
        check(replace(honest, provider=checksum_address("0x" + "b1" * 20)))


@pytest.mark.parametrize(
    "signatures",
    [b"", b"\x00" * 64, b"\x00" * 66],
    ids=["none", "short", "ragged"],
)
def test_malformed_packing_is_refused(signatures: bytes) -> None:
    with pytest.raises(InvalidInput, match="packed 65-byte"):
        check(replace(attested(MEMBER_KEYS[:3]), signatures=signatures))


def test_an_unrecoverable_signature_is_invalid_signature() -> None:
    payment = attested(MEMBER_KEYS[:3])
    with pytest.raises(InvalidSignature):
        check(replace(payment, signatures=b"\x00" * 65 + payment.signatures[65:]))


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=65, max_size=65 * 4).filter(lambda b: len(b) % 65 == 0))
def test_random_signatures_raise_only_invalid_input(signatures: bytes) -> None:
    with pytest.raises(InvalidInput):
        check(replace(attested(MEMBER_KEYS[:3]), signatures=signatures))


def test_more_signatures_than_pay_can_carry_are_refused() -> None:
    # pay(..., signatures: Bytes[1040]) reverts on 17 signatures however valid they are
    keys = [PrivateKey(bytes([i]) * 32) for i in range(1, 18)]
    payment = decode(signed_pay())
    packed = b"".join(
        sign_attestation(
            k, CHAIN_ID, ORACLE, payment.consumer, payment.provider, payment.required,
            payment.counter, EXPIRY,
        )
        for k in sorted(keys, key=lambda k: int(k.address, 16))
    )  # fmt: skip
    members = [k.address for k in keys]
    args: dict[str, Any] = {"chain_id": CHAIN_ID, "oracle": ORACLE, "members": members,
                            "threshold": 3, "head": 0}  # fmt: skip
    check_attestation(replace(payment, signatures=packed[: 16 * 65]), **args)
    with pytest.raises(InvalidInput, match="at most 16"):
        check_attestation(replace(payment, signatures=packed), **args)


def test_the_digest_is_eth_accounts_eip712_digest() -> None:
    from eth_account.messages import encode_typed_data

    payment = attested(MEMBER_KEYS[:3])
    message = encode_typed_data(
        full_message={
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
            "domain": {"name": "pervasive deposit oracle", "version": "1", "chainId": CHAIN_ID,
                       "verifyingContract": ORACLE},
            "message": {"consumer": CONSUMER, "provider": PROVIDER, "required": payment.required,
                        "counter": COUNTER, "expiry": EXPIRY},
        }
    )  # fmt: skip
    digest = keccak(b"\x19" + message.version + message.header + message.body)
    assert digest == attestation_digest(
        CHAIN_ID, ORACLE, CONSUMER, PROVIDER, payment.required, COUNTER, EXPIRY
    )
