"""The exchange with Litecoin regtest as the data chain B_d (paper 003, V-B/V-C).

B_u is anvil (deposits, C_u, the BLS-verifying C_sp); P posts the data index as an
OP_RETURN commitment on a real ``litecoind`` regtest. The honest exchange delivers the
device's readings; an ``undelivered`` challenge (P never posts) punishes P on B_u.
"""

from __future__ import annotations

import pytest
from crosschain_harness import (
    WINDOW,
    deposits,
    fresh_consumer,
    status,
    submit,
    undelivered_challenge,
    wait_outcome,
    wait_settled,
)

from pervasive.apps.dataexchange.world import ExchangeWorld
from pervasive.crosschain.challenge import Challenge, ChallengeKind
from pervasive.sensing.message import decode_sensor_message

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.litecoin,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("exchange-litecoin"),
]


async def test_an_exchange_with_litecoin_as_data_chain_delivers_the_readings(
    litecoin_world: ExchangeWorld,
) -> None:
    w = litecoin_world
    await w.publish_readings(4)
    result = await fresh_consumer(w).exchange(
        w.sys.url, provider=w.provider.address, dataset=w.dataset.digest, amount=w.price
    )
    declaration = w.dataset.sensors[0]
    got = sorted(
        declaration.decode_values(decode_sensor_message(r.message).values) for r in result.readings
    )
    assert got == sorted((-18 - i % 5, 1_800_000_000 + i) for i in range(4))
    await w.desk.postings.drain()
    assert w.desk.postings.failed == 0
    # regtest has no miners of its own: the test mines the block the network would
    rpc = w.data_chain.rpc  # type: ignore[attr-defined]
    await rpc.call("generatetoaddress", 1, await rpc.call("getnewaddress", wallet="pervasive"))
    posted = await w.data_chain.find_index(result.payment_id)
    assert posted is not None and posted.chain == "litecoin:regtest"
    assert posted.provider in ("", w.provider.address)  # Litecoin names no EVM sender
    # P delivered in time: C's undelivered challenge is refused and moves nothing
    receipt = await w.user_ledger.transactor(w.consumer_signer).wait(result.pay)
    evidence = bytes.fromhex(receipt.transaction_hash.removeprefix("0x"))
    challenge = Challenge(ChallengeKind.UNDELIVERED, result.payment_id, evidence)
    before = await deposits(w)
    code, _ = await submit(w, 1, challenge)
    assert code == 202
    refused = await wait_outcome(w, 1, challenge, "refuse", timeout=15)
    assert "posted the index in time" in refused["reason"]
    assert await deposits(w) == before and refused["settled"] is False


async def test_undelivered_on_litecoin_penalizes_p_once(litecoin_world: ExchangeWorld) -> None:
    w = litecoin_world
    challenge, required = await undelivered_challenge(w)
    c_deposit, p_deposit = await deposits(w)
    c_balance = await w.user_ledger.balance(w.consumer_signer.address)
    code, body = await submit(w, 2, challenge)
    assert (code, body["new"]) == (202, True)
    assert (await wait_outcome(w, 2, challenge, "wait", timeout=5))["settled"] is False
    await wait_settled(w, challenge, timeout=WINDOW + 30)
    assert await deposits(w) == (c_deposit, p_deposit - required)
    assert await w.user_ledger.balance(w.consumer_signer.address) == c_balance + required
    code, final = await status(w, 3, "0x" + challenge.id.hex())
    assert code == 200 and (final["outcome"], final["settled"]) == ("penalize", True)
