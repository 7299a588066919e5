"""Paper 001's asset tracking end to end: devices report cells over mosquitto, the trigger
service pays once per co-location episode, on-chain, and survives a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from device_platform import DevicePlatform
from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.contracts.asset_tracking import AssetTracking
from pervasive.devices import Device
from pervasive.devices.simulator import LOCATION_SENSOR
from pervasive.messaging import MqttClient
from pervasive.service.triggers import (
    CoLocated,
    ContextSource,
    ContextTrigger,
    EpisodeStatus,
    SendMoney,
    TriggerService,
    TriggerStore,
)

pytestmark = pytest.mark.mosquitto
AMOUNT = 10**15


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    chain = await open_ledger(Settings(home=tmp_path / "home"), persist=False)
    try:
        yield chain
    finally:
        await chain.close()


async def wait_for(predicate: object, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def test_send_money_once_per_episode_and_not_again_after_restart(
    device_platform: DevicePlatform, ledger: Ledger, tmp_path: Path
) -> None:
    payer, operator, payee = (ledger.dev_signer(i) for i in range(3))
    tracking = await AssetTracking.open(ledger, payer)
    await tracking.open_shipment("ship-1", payee.address, operator.address,
                                 amount=AMOUNT, deposit=5 * AMOUNT)  # fmt: skip
    action = SendMoney(tracking.with_signer(operator), "ship-1")
    trigger = ContextTrigger("deliver", CoLocated(("container-1", "retailer-1"), window=120),
                             scope=action.scope)  # fmt: skip
    await device_platform.provision("container-1", "retailer-1")
    devices = {
        name: Device(
            name,
            device_platform.folder(name),
            host="127.0.0.1",
            port=device_platform.broker.port,
            sensors=[LOCATION_SENSOR],
        )
        for name in ("container-1", "retailer-1")
    }
    sources = [ContextSource(n, d.declaration("location")) for n, d in devices.items()]
    before = await ledger.balance(payee.address)

    def service() -> TriggerService:
        store = TriggerStore.open(tmp_path / "triggers.sqlite")
        return TriggerService(store, [trigger], {"deliver": action}, sources)

    first = service()
    async with MqttClient(await device_platform.service_options()) as connection:
        task = asyncio.create_task(first.run(connection))
        await asyncio.sleep(0.3)
        async with devices["container-1"] as container, devices["retailer-1"] as retailer:
            await container.publish("location", {"cell": "c-7", "time": 1000})
            await retailer.publish("location", {"cell": "c-3", "time": 1010})
            await retailer.publish("location", {"cell": "c-7", "time": 1020})  # arrival
            await container.publish("location", {"cell": "c-7", "time": 1030})  # still there
            await wait_for(lambda: first.accepted == 4)
            await wait_for(lambda: not first.store.pending())
            assert (await tracking.get_shipment("ship-1")).payments == 1

            task.cancel()
            first.store.close()
            second = service()  # a restart: same database
            task = asyncio.create_task(second.run(connection))
            await retailer.publish("location", {"cell": "c-7", "time": 1040})  # same episode
            await wait_for(lambda: second.accepted == 1)
            assert second.fired == 0
            await container.publish("location", {"cell": "c-8", "time": 1100})  # leaves
            await container.publish("location", {"cell": "c-7", "time": 1150})  # back: episode 2
            await wait_for(lambda: second.accepted == 3)
            await wait_for(lambda: not second.store.pending())
        task.cancel()
    episodes = second.store.episodes("deliver")
    assert [(e.episode, e.status) for e in episodes] == [(1, EpisodeStatus.DONE)] * 1 + [
        (2, EpisodeStatus.DONE)
    ]
    shipment = await tracking.get_shipment("ship-1")
    assert (shipment.payments, shipment.balance) == (2, 3 * AMOUNT)
    assert await ledger.balance(payee.address) == before + 2 * AMOUNT
    assert all([await tracking.is_paid(e.key) for e in episodes])
