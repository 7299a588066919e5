"""The user contract C_u (paper 003, Algorithm 1): pay a provider when the deposit oracle
accepts the notaries' attestation, on both backends; the gas of a payment on anvil.

What a user cares about: when the oracle refuses, no ether moves and the counter stays;
when it accepts, the provider is credited exactly the amount (and can withdraw it), the
consumer's counter moves on, and the ``Paid`` event carries the payment id everyone else
refers to.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.chain import Ledger, Receipt
from pervasive.contracts.deposit_oracle import DepositOracle, pack_signatures, sign_attestation
from pervasive.contracts.user_contract import (
    Payment,
    UserContract,
    payment_id,
    required_deposit,
)
from pervasive.crypto import generate_private_key
from pervasive.errors import InvalidInput, TransactionReverted

ANVIL = [pytest.param("anvil", marks=pytest.mark.anvil)]
MEMBERS = [generate_private_key() for _ in range(4)]
AMOUNT, COEF = 10**17, 150


async def _deploy(ledger: Ledger, artifacts: Path) -> tuple[DepositOracle, UserContract]:
    admin = ledger.dev_signer(0)
    oracle = await DepositOracle.deploy(
        ledger, admin, [k.address for k in MEMBERS], 3, admin.address, artifacts=artifacts
    )
    user = await UserContract.deploy(ledger, admin, oracle.address, COEF, artifacts=artifacts)
    return oracle, user.with_signer(ledger.dev_signer(1))


async def _pay(
    ledger: Ledger,
    oracle: DepositOracle,
    user: UserContract,
    *,
    counter: int,
    signed_counter: int | None = None,
    signers: int = 3,
    amount: int = AMOUNT,
) -> Receipt:
    consumer, provider = ledger.dev_signer(1).address, ledger.dev_signer(2).address
    expiry = await ledger.block_number() + 20
    fields = (
        consumer,
        provider,
        required_deposit(amount, COEF),
        counter if signed_counter is None else signed_counter,
        expiry,
    )
    signed = {
        k.address: sign_attestation(k, ledger.chain_id, oracle.address, *fields)
        for k in MEMBERS[:signers]
    }
    return await user.pay(provider, amount, counter, expiry, pack_signatures(signed))


async def test_an_accepted_payment_moves_exactly_the_amount(
    ledger: Ledger, artifacts: Path
) -> None:
    oracle, user = await _deploy(ledger, artifacts)
    consumer, provider = ledger.dev_signer(1).address, ledger.dev_signer(2).address
    before = (await ledger.balance(consumer), await ledger.balance(provider))

    receipt = await _pay(ledger, oracle, user, counter=0)

    assert await ledger.balance(consumer) == before[0] - AMOUNT - receipt.fee
    assert await user.credit(provider) == AMOUNT
    assert await ledger.balance(user.address) == AMOUNT
    assert await user.counter(consumer) == 1
    assert user.payments(receipt) == [
        Payment(
            payment_id=payment_id(ledger.chain_id, user.address, consumer, 0),
            consumer=consumer,
            provider=provider,
            amount=AMOUNT,
            counter=0,
            required=AMOUNT * COEF // 100,
            block_number=receipt.block_number,
            transaction_hash=receipt.transaction_hash,
        )
    ]
    on_chain = await user.contract.call("payment_id", consumer, 0)
    assert on_chain == payment_id(ledger.chain_id, user.address, consumer, 0)
    assert await user.required_deposit(AMOUNT) == required_deposit(AMOUNT, COEF)
    assert await user.oracle() == oracle.address

    await _pay(ledger, oracle, user, counter=1, amount=AMOUNT // 2)
    payee = user.with_signer(ledger.dev_signer(2))
    withdrawal = await payee.withdraw()
    assert await ledger.balance(provider) == before[1] + AMOUNT * 3 // 2 - withdrawal.fee
    assert await user.credit(provider) == 0
    assert await ledger.balance(user.address) == 0
    (event,) = user.contract.events(withdrawal, "Withdrawn")
    assert event.args == {"provider": provider, "amount": AMOUNT * 3 // 2}
    with pytest.raises(InvalidInput, match="no payments to withdraw"):
        await payee.withdraw()
    with pytest.raises(TransactionReverted, match="nothing to withdraw"):
        await payee.contract.transact(ledger.dev_signer(2), "withdraw")


async def test_a_refused_payment_moves_nothing(ledger: Ledger, artifacts: Path) -> None:
    oracle, user = await _deploy(ledger, artifacts)
    provider = ledger.dev_signer(2).address
    before = await ledger.balance(ledger.dev_signer(1).address)
    refusals = {}
    for name, kwargs in {
        "t-1 signatures": {"counter": 0, "signers": 2},
        "an attestation for another counter": {"counter": 0, "signed_counter": 1},
        "a counter ahead of the contract": {"counter": 1},
    }.items():
        try:
            await _pay(ledger, oracle, user, **kwargs)
        except TransactionReverted as exc:
            refusals[name] = exc.reason
    assert refusals == {
        "t-1 signatures": "the deposit oracle refused",
        "an attestation for another counter": "the deposit oracle refused",
        "a counter ahead of the contract": "wrong counter: read counters(consumer)",
    }
    # refused at gas estimation: nothing was sent, not even a fee
    assert await ledger.balance(ledger.dev_signer(1).address) == before
    assert await user.credit(provider) == 0
    assert await ledger.balance(user.address) == 0
    assert await user.counter(ledger.dev_signer(1).address) == 0


async def test_an_attestation_pays_once(ledger: Ledger, artifacts: Path) -> None:
    oracle, user = await _deploy(ledger, artifacts)
    consumer, provider = ledger.dev_signer(1).address, ledger.dev_signer(2).address
    expiry = await ledger.block_number() + 20
    fields = (consumer, provider, required_deposit(AMOUNT, COEF), 0, expiry)
    packed = pack_signatures(
        {k.address: sign_attestation(k, ledger.chain_id, oracle.address, *fields) for k in MEMBERS}
    )
    await user.pay(provider, AMOUNT, 0, expiry, packed)
    with pytest.raises(TransactionReverted, match="wrong counter"):
        await user.pay(provider, AMOUNT, 0, expiry, packed)
    # the same signatures for a larger amount: the required deposit differs
    with pytest.raises(TransactionReverted, match="the deposit oracle refused"):
        await user.pay(provider, 2 * AMOUNT, 1, expiry, packed)


async def test_the_wrapper_refuses_bad_input(ledger: Ledger, artifacts: Path) -> None:
    _, user = await _deploy(ledger, artifacts)
    provider = ledger.dev_signer(2).address
    with pytest.raises(InvalidInput, match="positive"):
        await user.pay(provider, 0, 0, 10, bytes(195))
    with pytest.raises(InvalidInput, match="itself"):
        await user.pay(ledger.dev_signer(1).address, 1, 0, 10, bytes(195))
    with pytest.raises(InvalidInput, match="pack_signatures"):
        await user.pay(provider, 1, 0, 10, bytes(64))


@pytest.mark.parametrize("ledger", ANVIL, indirect=True)
async def test_the_gas_of_a_payment(ledger: Ledger, artifacts: Path) -> None:
    oracle, user = await _deploy(ledger, artifacts)
    gas = [(await _pay(ledger, oracle, user, counter=k)).gas_used for k in range(3)]
    # the first payment creates the consumer's counter and the provider's credit slot
    assert gas[0] <= 91_000
    assert max(gas[1:]) <= 57_000
    # a withdrawal leaves the provider's slot non-zero: the next credit stays cheap
    await user.with_signer(ledger.dev_signer(2)).withdraw()
    assert (await _pay(ledger, oracle, user, counter=3)).gas_used <= 57_000
