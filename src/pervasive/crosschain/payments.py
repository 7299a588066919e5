"""A consumer's payment through the user contract, read from its signed transaction.

Two parties read C's raw ``pay`` transaction before (or without) the chain having it:
the provider P, which delivers the data index as soon as it holds the transaction (no
confirmation awaited: paper 003's point), and the notary members deciding an
``unpaid`` challenge. Both need the same answers: who pays whom how much under which
counter (the sender is recovered from the signature), and whether the t-of-n deposit
attestation it carries is one C_o will accept (the same EIP-712 digest, signers
members of the committee, strictly increasing, enough of them, not expired).

Example::

    payment = decode_payment(raw, chain_id=31337, user_contract=u, pay_selector=s,
                             coef_percent=150)
    attestation = payment_attestation(raw)       # (counter, expiry, signatures)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from pervasive.chain import decode_raw_transaction
from pervasive.contracts.deposit_oracle import MAX_ATTESTATION_SIGNERS, attestation_digest
from pervasive.contracts.user_contract import payment_id, required_deposit
from pervasive.crypto import Signature, abi_decode, checksum_address, recover_hash
from pervasive.errors import InvalidInput, InvalidSignature

__all__ = ["PAY_ARGUMENTS", "Payment", "check_attestation", "decode_payment"]

PAY_ARGUMENTS = ("address", "uint256", "uint256", "bytes")
"""The argument types of ``pay(provider, counter, expiry, signatures)``."""


@dataclass(frozen=True)
class Payment:
    """C's payment through C_u, as its ``Paid`` event or its pay transaction states it."""

    consumer: str
    provider: str
    payment_id: bytes
    amount: int
    required: int
    """The deposit the payment needed (amount x coef): what a penalty moves."""
    counter: int
    tx_hash: str
    expiry: int = 0
    """The attestation's last valid block (0 when read from a ``Paid`` event)."""
    signatures: bytes = b""
    """The packed member signatures the transaction carries (empty from an event)."""


def decode_payment(
    raw: bytes, *, chain_id: int, user_contract: str, pay_selector: bytes, coef_percent: int
) -> Payment:
    """The payment C's signed raw transaction makes; :class:`InvalidInput` if it makes none."""
    tx = decode_raw_transaction(raw)
    if tx.to != checksum_address(user_contract):
        raise InvalidInput("the transaction is not sent to the user contract")
    if tx.chain_id != chain_id:
        raise InvalidInput(f"the transaction is for chain {tx.chain_id}, not {chain_id}")
    if tx.data[:4] != pay_selector:
        raise InvalidInput("the transaction does not call pay(provider, counter, expiry, sigs)")
    provider, counter, expiry, signatures = abi_decode(list(PAY_ARGUMENTS), tx.data[4:])
    return Payment(
        consumer=tx.sender,
        provider=checksum_address(provider),
        payment_id=payment_id(chain_id, user_contract, tx.sender, counter),
        amount=tx.value,
        required=required_deposit(tx.value, coef_percent),
        counter=int(counter),
        tx_hash=tx.hash,
        expiry=int(expiry),
        signatures=bytes(signatures),
    )


def check_attestation(
    payment: Payment,
    *,
    chain_id: int,
    oracle: str,
    members: Collection[str],
    threshold: int,
    head: int,
) -> None:
    """Raise unless C_o would accept the attestation ``payment`` carries at block ``head``.

    The same rules as the contract: ``head <= expiry``; 65-byte signatures over the
    EIP-712 ``DepositAttestation`` digest; signers committee members in strictly
    increasing address order; at least ``threshold`` of them.
    """
    if head > payment.expiry:
        raise InvalidInput(f"the attestation expired at block {payment.expiry}; ask again")
    if not payment.signatures or len(payment.signatures) % 65:
        raise InvalidInput("the payment carries no packed 65-byte member signatures")
    if len(payment.signatures) > 65 * MAX_ATTESTATION_SIGNERS:
        # pay() takes Bytes[65 * MAX_ATTESTATION_SIGNERS]: a longer argument reverts
        raise InvalidInput(f"the oracle takes at most {MAX_ATTESTATION_SIGNERS} signatures")
    digest = attestation_digest(
        chain_id, oracle, payment.consumer, payment.provider,
        payment.required, payment.counter, payment.expiry,
    )  # fmt: skip
    allowed = {checksum_address(m) for m in members}
    previous = -1
    count = 0
    for start in range(0, len(payment.signatures), 65):
        signer = recover_hash(digest, Signature.from_bytes(payment.signatures[start : start + 65]))
        if signer not in allowed:
            raise InvalidSignature(f"{signer} signed the attestation but is no member")
        if int(signer, 16) <= previous:
            raise InvalidSignature("attestation signers must be distinct and in increasing order")
        previous = int(signer, 16)
        count += 1
    if count < threshold:
        raise InvalidSignature(f"{count} member signatures, the oracle needs {threshold}")
