"""The fast exchange between two anvil chains, and the ``unpaid`` challenge (paper 003, V-B/V-C).

Real components only: B_u and B_d are two anvil nodes, the committee runs its DKG over
the embedded MQTT broker, P's thermometer signs readings that reach Sys over MQTT.
B_u's auto-mining is switched off where a test needs C's pay to stay pending, which is
the paper's point: C holds the data before the payment is confirmed, and P holds C's
signed pay transaction, the evidence of an ``unpaid`` challenge should it vanish.
"""

from __future__ import annotations

import asyncio

import coincurve
import pytest
from crosschain_harness import (
    WINDOW,
    deposits,
    fresh_consumer,
    mine,
    set_automine,
    submit,
    wait_outcome,
    wait_settled,
)

from pervasive.apps.dataexchange.world import ExchangeWorld
from pervasive.chain.signing import UnsignedTransaction, sign_transaction
from pervasive.crosschain.challenge import Challenge, ChallengeKind
from pervasive.crosschain.errors import DepositInsufficient
from pervasive.sensing.message import decode_sensor_message

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("exchange-evm"),
]

READINGS = 6


async def test_c_gets_exactly_the_readings_while_its_pay_is_still_pending(
    evm_world: ExchangeWorld,
) -> None:
    w = evm_world
    await w.publish_readings(READINGS)
    await set_automine(w.user_ledger, False)
    try:
        result = await fresh_consumer(w).exchange(
            w.sys.url, provider=w.provider.address, dataset=w.dataset.digest, amount=w.price
        )
        # C holds the data and B_u has not mined the payment: nobody waited for it
        assert await w.user_ledger.receipt(result.pay.hashes[0]) is None
    finally:
        await set_automine(w.user_ledger, True)
    declaration = w.dataset.sensors[0]
    got = sorted(
        declaration.decode_values(decode_sensor_message(r.message).values) for r in result.readings
    )
    expected = sorted((-18 - i % 5, 1_800_000_000 + i) for i in range(READINGS))
    assert got == expected
    assert {decode_sensor_message(r.message).sensor for r in result.readings} == {
        declaration.address
    }
    # P keeps C's signed pay transaction, byte for byte, for its payment id
    payment, raw = w.desk.accepted[-1]
    assert raw == result.pay.raw and payment.payment_id == result.payment_id
    # and the payment does land once B_u mines
    await mine(w.user_ledger)
    receipt = await w.user_ledger.transactor(w.consumer_signer).wait(result.pay)
    assert receipt.status
    assert [p.payment_id for p in w.user.payments(receipt)] == [result.payment_id]


async def test_an_unpaid_challenge_about_an_included_payment_is_refused_and_moves_nothing(
    evm_world: ExchangeWorld,
) -> None:
    w = evm_world
    await w.publish_readings(1, start=READINGS)
    result = await fresh_consumer(w).exchange(
        w.sys.url, provider=w.provider.address, dataset=w.dataset.digest, amount=w.price
    )
    await w.user_ledger.transactor(w.consumer_signer).wait(result.pay)
    await w.desk.postings.drain()
    before = await deposits(w)
    challenge = Challenge(ChallengeKind.UNPAID, result.payment_id, w.desk.accepted[-1][1])
    code, body = await submit(w, 2, challenge)
    assert code == 202 and body["new"] is True
    verdict = await wait_outcome(w, 2, challenge, "refuse")
    assert "is in B_u's canonical chain: it was paid" in verdict["reason"]
    assert verdict["settled"] is False
    await asyncio.sleep(1.0)  # every member has decided by now (relayed at once)
    for member in (1, 3, 4):
        assert (await wait_outcome(w, member, challenge, "refuse"))["settled"] is False
    assert await deposits(w) == before
    assert not await w.notary.is_settled(challenge.id)


async def test_a_double_spent_pay_gets_c_penalized_to_p(evm_world: ExchangeWorld) -> None:
    """C signs a pay, hands it to P, then replaces it with a same-nonce, higher-fee transfer."""
    w = evm_world
    ledger = w.user_ledger
    c_before, p_before = await deposits(w)
    p_balance = await ledger.balance(w.provider.address)
    await set_automine(ledger, False)
    try:
        result = await fresh_consumer(w).exchange(
            w.sys.url, provider=w.provider.address, dataset=w.dataset.digest, amount=w.price
        )
        pay = result.pay
        # the double spend: the same nonce to C itself, fees well above the pay's
        replacement = UnsignedTransaction(
            chain_id=ledger.chain_id, nonce=pay.nonce,
            max_priority_fee_per_gas=pay.fees[0] * 3 + 10**9,
            max_fee_per_gas=pay.fees[1] * 3 + 10**9, gas=21_000,
            to=bytes.fromhex(w.consumer_signer.address[2:]), value=1, data=b"",
        )  # fmt: skip
        signed = sign_transaction(replacement, coincurve.PrivateKey(w.consumer_signer.private_key))
        await ledger.rpc.send_raw(signed.raw)
        await mine(ledger)
    finally:
        await set_automine(ledger, True)
    assert await ledger.receipt(pay.hashes[0]) is None  # the pay is gone for good
    assert await ledger.receipt(signed.hash) is not None
    await w.desk.postings.drain()  # P's index is on B_d
    assert await w.data_chain.find_index(result.payment_id) is not None
    payment, raw = w.desk.accepted[-1]
    assert payment.payment_id == result.payment_id
    challenge = Challenge(ChallengeKind.UNPAID, result.payment_id, raw)
    code, body = await submit(w, 3, challenge)
    assert code == 202 and body["challenge_id"] == "0x" + challenge.id.hex()
    # not before the consumer's deadline (T after the posting)
    assert (await wait_outcome(w, 3, challenge, "wait"))["settled"] is False
    await wait_settled(w, challenge, timeout=WINDOW + 30)
    assert await deposits(w) == (c_before - payment.required, p_before)
    assert await ledger.balance(w.provider.address) == p_balance + payment.required
    final = await wait_outcome(w, 1, challenge, "penalize")
    assert final["settled"] is True


async def test_members_one_block_apart_still_give_c_a_valid_attestation(
    evm_world: ExchangeWorld,
) -> None:
    """Each member signs its own expiry (head + validity): C must combine alike ones only."""
    w = evm_world
    ledger = w.user_ledger
    members = w.committee.members
    head = await ledger.block_number()
    # member 1 has already seen block head + 1 (the others have not): its expiry is one later
    assert members[0].check is not None
    members[0].check.advance_block(head + 1)
    pending = await fresh_consumer(w).pay(w.provider.address, w.price)
    receipt = await ledger.transactor(w.consumer_signer).wait(pending)
    assert receipt.status  # C_o accepted the attestation
    assert [p.amount for p in w.user.payments(receipt)] == [w.price]
    # two members ahead, two behind: no t = 3 signatures over one expiry exist
    head = await ledger.block_number()
    for member in members[:2]:
        assert member.check is not None
        member.check.advance_block(head + 1)
    nonce = await ledger.rpc.w3.eth.get_transaction_count(w.consumer_signer.address)
    with pytest.raises(DepositInsufficient, match="different expiries"):
        await fresh_consumer(w).pay(w.provider.address, w.price)
    # refused before anything was sent: no transaction, no gas spent
    assert await ledger.rpc.w3.eth.get_transaction_count(w.consumer_signer.address) == nonce
    await mine(ledger)  # the chain catches up with the members ahead
