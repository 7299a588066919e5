"""The asset-tracking contract: one payment per idempotency key, operator only, refunds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.contracts.asset_tracking import AssetTracking
from pervasive.errors import InvalidInput, NotFound, TransactionReverted
from pervasive.service.triggers import episode_key

AMOUNT = 10**15


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    chain = await open_ledger(Settings(home=tmp_path / "home"), persist=False)
    try:
        yield chain
    finally:
        await chain.close()


async def test_a_key_pays_once_only_the_operator_pays_and_the_payer_gets_the_rest(
    ledger: Ledger,
) -> None:
    payer, operator, payee = (ledger.dev_signer(i) for i in range(3))
    tracking = await AssetTracking.open(ledger, payer)
    await tracking.open_shipment("ship-1", payee.address, operator.address,
                                 amount=AMOUNT, deposit=2 * AMOUNT + 5)  # fmt: skip
    key = episode_key("deliver", f"{tracking.address}/ship-1", 1)
    with pytest.raises(TransactionReverted, match="only the shipment's operator"):
        await tracking.send_money("ship-1", key)
    as_operator = tracking.with_signer(operator)
    before = await ledger.balance(payee.address)
    receipt = await as_operator.send_money("ship-1", key)
    assert [e.name for e in tracking.contract.events(receipt)] == ["MoneySent"]
    with pytest.raises(TransactionReverted, match="already paid for this key"):
        await as_operator.send_money("ship-1", key)
    assert await ledger.balance(payee.address) == before + AMOUNT
    assert await tracking.is_paid(key)
    with pytest.raises(InvalidInput):
        await as_operator.send_money("ship-1", bytes(32))
    with pytest.raises(InvalidInput, match="already used"):
        await tracking.open_shipment("ship-1", payee.address, operator.address,
                                     amount=AMOUNT, deposit=AMOUNT)  # fmt: skip
    await tracking.close_shipment("ship-1")
    shipment = await tracking.get_shipment("ship-1")
    assert (shipment.open, shipment.balance, shipment.payments) == (False, 0, 1)
    with pytest.raises(TransactionReverted, match="shipment is closed"):
        await as_operator.send_money("ship-1", episode_key("deliver", "x", 2))
    with pytest.raises(NotFound):
        await tracking.get_shipment("nope")
