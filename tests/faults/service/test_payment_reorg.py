"""A trigger's payment that a reorganisation removes is made again, exactly once (issue 11.8).

On anvil a context trigger fires ``sendMoney``; ``anvil_reorg`` replaces the block
holding the payment with an empty one (the transaction is not re-included and anvil
forgets it). The episode is done only once its payment is ``confirmations`` blocks
deep, so the service notices the loss and sends the same signed transaction again;
if another transaction of the operator took its nonce meanwhile, the loss is counted
and a new transaction pays (the contract refuses a key twice). Either way the payee is
paid once and the episode is done once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from anvil_control import anvil_call
from pervasive.chain import ContractCall, Ledger, TransactionManager
from pervasive.contracts.asset_tracking import AssetTracking
from pervasive.crypto import PrivateKey
from pervasive.devices import sensor_topic, sign_reading
from pervasive.devices.simulator import LOCATION_SENSOR
from pervasive.service.triggers import (
    CoLocated,
    ContextSource,
    ContextTrigger,
    EpisodeStatus,
    SendMoney,
    TriggerService,
    TriggerStore,
)

pytestmark = pytest.mark.anvil

AMOUNT = 10**15
DEPTH = 2
KEYS = {"container-1": PrivateKey(b"\x01" * 32), "retailer-1": PrivateKey(b"\x02" * 32)}
DECLARATIONS = {n: LOCATION_SENSOR.declaration(k.public_key) for n, k in KEYS.items()}


def reading(device: str, q: int, cell: str, moment: int) -> tuple[str, bytes]:
    wire = sign_reading(KEYS[device], DECLARATIONS[device], q, {"cell": cell, "time": moment})
    return sensor_topic(device, "location"), wire


@pytest.fixture
async def world(ledger: Ledger, tmp_path: Path) -> tuple[TriggerService, AssetTracking, bytes]:
    """A service whose trigger has fired once; its payment is mined but not yet deep."""
    payer, operator, payee = (ledger.dev_signer(i) for i in range(3))
    tracking = await AssetTracking.open(ledger, payer)
    await tracking.open_shipment("ship-1", payee.address, operator.address,
                                 amount=AMOUNT, deposit=3 * AMOUNT)  # fmt: skip
    action = SendMoney(tracking.with_signer(operator), "ship-1")
    trigger = ContextTrigger("deliver", CoLocated(tuple(KEYS), window=60), scope=action.scope)
    # the service takes the ledger's depth (``Settings.confirmations``) unless given one
    ledger.options = replace(ledger.options, confirmations=DEPTH)
    service = TriggerService(
        TriggerStore.open(tmp_path / "triggers.sqlite"),
        [trigger],
        {"deliver": action},
        [ContextSource(n, d) for n, d in DECLARATIONS.items()],
    )
    service.accept(*reading("container-1", 0, "c-1", 100))
    (firing,) = service.accept(*reading("retailer-1", 0, "c-1", 110))
    assert await service.execute_pending() == 0  # mined in a block nothing is on top of yet
    (episode,) = service.store.episodes()
    assert episode.status is EpisodeStatus.SENT and episode.transaction_hash is not None
    assert await tracking.is_paid(firing.key)
    await anvil_call(ledger, "anvil_reorg", [1, []])  # that block replaced by an empty one
    assert not await tracking.is_paid(firing.key)
    assert await ledger.rpc.receipt(episode.transaction_hash) is None
    return service, tracking, firing.key


async def _settle(ledger: Ledger, service: TriggerService) -> None:
    """Let blocks come (anvil mines only with transactions) until the episode is done."""
    for _ in range(4):
        await service.execute_pending()
        if not service.store.pending():
            return
        await ledger.mine(DEPTH)
    raise AssertionError(f"still pending: {service.store.pending()}")


async def _paid_once(ledger: Ledger, service: TriggerService, tracking: AssetTracking) -> str:
    payee = ledger.dev_signer(2).address
    shipment = await tracking.get_shipment("ship-1")
    assert shipment.payments == 1
    (episode,) = service.store.episodes()
    assert episode.status is EpisodeStatus.DONE and episode.transaction_hash is not None
    receipt = await ledger.rpc.receipt(episode.transaction_hash)
    assert receipt is not None and receipt.succeeded
    assert await ledger.block_number() >= receipt.block_number + DEPTH
    # nothing more is sent, however long the service keeps looking
    before = await ledger.rpc.balance(payee)
    await ledger.mine(DEPTH)
    assert await service.execute_pending() == 0
    assert (await tracking.get_shipment("ship-1")).payments == 1
    assert await ledger.rpc.balance(payee) == before
    return episode.transaction_hash


async def test_a_reorganised_payment_is_sent_again_and_made_once(
    ledger: Ledger, world: tuple[TriggerService, AssetTracking, bytes]
) -> None:
    service, tracking, _ = world
    payee = ledger.dev_signer(2).address
    (lost,) = service.store.episodes()
    balance = await ledger.rpc.balance(payee)
    await ledger.mine(DEPTH)  # the chain grows past the payment's old height without it

    await _settle(ledger, service)

    assert await _paid_once(ledger, service, tracking) == lost.transaction_hash  # same bytes
    assert await ledger.rpc.balance(payee) == balance + AMOUNT
    assert service.reorganised == {"resent": 1}


async def test_a_payment_whose_nonce_was_taken_is_counted_and_made_once(
    ledger: Ledger, world: tuple[TriggerService, AssetTracking, bytes]
) -> None:
    service, tracking, _ = world
    payee = ledger.dev_signer(2).address
    (lost,) = service.store.episodes()
    balance = await ledger.rpc.balance(payee)
    # another process of the operator's account uses the freed nonce first
    elsewhere = TransactionManager(ledger.rpc, ledger.dev_signer(1))
    await elsewhere.send(ContractCall(to=ledger.dev_signer(7).address, data=b"", value=1))
    await ledger.mine(DEPTH)

    await _settle(ledger, service)

    assert await _paid_once(ledger, service, tracking) != lost.transaction_hash
    assert await ledger.rpc.balance(payee) == balance + AMOUNT
    assert service.reorganised == {"displaced": 1}
    (episode,) = service.store.episodes()
    assert episode.attempts == 1 and "took its nonce" in (episode.last_error or "")
