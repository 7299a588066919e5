"""Exactly once under faults: the service restarted mid-stream, killed between storing a
signed transaction and broadcasting it (or between broadcasting and recording the
receipt), its nonce taken by another transaction, a device offline and back.

The contract (``runtime_sample/deliveries.vy``) counts every application of a reading
(device, sequence): ``duplicates`` would show a double application, ``total`` a loss.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pervasive import Platform
from pervasive.chain import ContractCall, Ledger
from pervasive.config import Settings
from pervasive.contracts import Contract
from pervasive.crypto import PrivateKey
from pervasive.devices import Device, DeviceFolder, SensorSpec
from pervasive.devices.simulator import LOCATION_SENSOR
from pervasive.messaging import MqttClient, find_mosquitto
from pervasive.service.calls import CallSender
from pervasive.service.deployment import ServiceBook, ServiceDeployment, deploy_service
from pervasive.service.inbox import CallStatus, Inbox, NewCall
from pervasive.service.runtime import ServiceRuntime, service_folder
from pervasive.service.spec import ServiceSpec, load_spec

SAMPLE = Path(__file__).parents[2] / "integration" / "service" / "runtime_sample"
DELIVERY = SensorSpec("delivery", "delivery", (("shipment", "string"), ("time", "uint64")))
RETAILER = LOCATION_SENSOR.declaration(PrivateKey(b"\x05" * 32).public_key)


async def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@dataclass
class World:
    platform: Platform
    settings: Settings
    ledger: Ledger
    port: int
    spec: ServiceSpec
    deployment: ServiceDeployment
    contract: Contract
    device: Device

    def runtime(self) -> ServiceRuntime:
        return ServiceRuntime(
            self.spec, self.deployment, ledger=self.ledger, operator=self.ledger.dev_signer(0),
            authority=self.platform.authority, home=self.settings.home, settings=self.settings,
            declarations={
                "container-1": {s: self.device.declaration(s) for s in ("delivery", "location")},
                "retailer-1": {"location": RETAILER},
            },
        )  # fmt: skip

    def sender(self) -> CallSender:
        inbox = Inbox.open(service_folder(self.settings.home, self.spec.name) / "inbox.sqlite")
        return CallSender(inbox, self.ledger, self.ledger.dev_signer(0), self.deployment.address)

    def calldata(self, sequence: int) -> bytes:
        return self.contract.encode("confirm_delivery", "ship-1", "container-1", sequence)

    async def view(self, name: str, *args: Any) -> Any:
        return await self.contract.call(name, *args)


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("anvil", marks=[pytest.mark.anvil, pytest.mark.mosquitto]),
    ]
)
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, artifacts: Path
) -> AsyncIterator[World]:
    if request.param == "anvil":
        if find_mosquitto() is None:
            pytest.skip("mosquitto is not installed")
        settings = Settings(home=tmp_path, backend="anvil", broker="mosquitto", password="pw")
    else:
        settings = Settings(home=tmp_path, broker="embedded", password="pw")
    async with Platform(settings, persist=False) as platform:
        ledger = await platform.ledger()
        broker = await platform.broker()
        spec = load_spec(SAMPLE / "deliveries.toml")
        book = ServiceBook.open(":memory:")
        deployment = await deploy_service(
            ledger, ledger.dev_signer(0), spec, book=book, artifacts=artifacts, oracle=None
        )
        book.close()
        folder = tmp_path / "devices" / "container-1"
        platform.authority.write_credentials(platform.authority.issue_device("container-1"), folder)
        await broker.settle()
        device = Device("container-1", DeviceFolder(folder), host="127.0.0.1", port=broker.port,
                        sensors=[DELIVERY, LOCATION_SENSOR])  # fmt: skip
        try:
            yield World(
                platform, settings, ledger, broker.port, spec, deployment,
                Contract(ledger, deployment.address, deployment.abi), device,
            )  # fmt: skip
        finally:
            await device.close()


async def test_restarts_mid_stream_apply_every_reading_exactly_once(world: World) -> None:
    readings = 40
    chance = random.Random(10)  # a reproducible schedule
    options = world.platform.client_options("svc:service", manual_ack=True)
    async with MqttClient(options) as connection, world.device as device:
        runtime = world.runtime()
        ready = asyncio.Event()
        task = asyncio.create_task(runtime.run(connection, ready=ready))
        await ready.wait()  # subscribed: the broker keeps the session's messages from now on

        async def publish() -> None:
            for index in range(readings):
                await device.publish("delivery", {"shipment": "ship-1", "time": 1000 + index})
                await asyncio.sleep(chance.uniform(0, 0.02))

        publisher = asyncio.create_task(publish())
        restarts = 0
        while not publisher.done() or restarts < 3:
            await asyncio.sleep(chance.uniform(0.005, 0.08))  # lands anywhere: mid-send too
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            restarts += 1
            runtime = world.runtime()
            task = asyncio.create_task(runtime.run(connection))
        await publisher
        await device.flush()
        await wait_for(lambda: runtime.inbox is not None and len(runtime.inbox.calls()) >= readings)
        await wait_for(lambda: runtime.inbox is not None and not runtime.inbox.open_calls())
        assert runtime.inbox is not None
        calls = runtime.inbox.calls()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert restarts >= 3
    assert len(calls) == readings and {c.status for c in calls} == {CallStatus.DONE}
    assert len({c.transaction_hash for c in calls}) == readings
    assert (await world.view("total"), await world.view("duplicates")) == (readings, 0)


async def test_a_kill_after_storing_the_signed_transaction_sends_those_bytes_once(
    world: World,
) -> None:
    first = world.sender()
    call_id = first.inbox.accept(NewCall("mqtt", "container-1", "s:1:0", "f", world.calldata(1)))
    signed = await first._sign(first.inbox.get(call_id))  # killed right after the commit
    assert signed.status is CallStatus.SIGNED and signed.raw is not None
    first.inbox.close()

    second = world.sender()  # the restart
    assert await second.send_open()
    done = second.inbox.get(call_id)
    assert (done.status, done.transaction_hash) == (CallStatus.DONE, signed.transaction_hash)
    assert await world.view("total") == 1
    second.inbox.close()


async def test_a_kill_after_the_broadcast_finds_the_receipt_and_sends_nothing(
    world: World,
) -> None:
    first = world.sender()
    call_id = first.inbox.accept(NewCall("mqtt", "container-1", "s:2:0", "f", world.calldata(2)))
    signed = await first._sign(first.inbox.get(call_id))
    assert signed.raw is not None and signed.transaction_hash is not None
    await world.ledger.rpc.send_raw(signed.raw)  # broadcast, then killed before the receipt
    await world.ledger.rpc.wait_for_receipt([signed.transaction_hash])
    first.inbox.close()

    second = world.sender()
    nonce = await world.ledger.nonce(world.ledger.dev_signer(0).address)
    assert await second.send_open()
    assert second.inbox.get(call_id).status is CallStatus.DONE
    assert await world.ledger.nonce(world.ledger.dev_signer(0).address) == nonce  # nothing sent
    assert (await world.view("total"), await world.view("duplicates")) == (1, 0)
    second.inbox.close()


async def test_a_stored_transaction_whose_nonce_was_taken_is_signed_again_once(
    world: World,
) -> None:
    first = world.sender()
    call_id = first.inbox.accept(NewCall("mqtt", "container-1", "s:3:0", "f", world.calldata(3)))
    signed = await first._sign(first.inbox.get(call_id))
    first.inbox.close()
    # the operator's account sends something else with that nonce before the restart
    note = world.contract.encode("note", "ship-1", "container-1", 5)
    operator = world.ledger.transactor(world.ledger.dev_signer(0))
    operator.forget_nonce()
    taken = await operator.transact(ContractCall(to=world.deployment.address, data=note))
    assert taken.transaction_hash != signed.transaction_hash

    second = world.sender()
    assert await second.send_open()
    done = second.inbox.get(call_id)
    assert done.status is CallStatus.DONE and done.transaction_hash != signed.transaction_hash
    assert second.counters["resigned"] == 1
    assert await world.ledger.receipt(str(signed.transaction_hash)) is None  # never mined
    assert (await world.view("total"), await world.view("notes", "ship-1")) == (1, 5)
    second.inbox.close()


async def test_a_device_offline_then_back_has_each_reading_applied_once(world: World) -> None:
    options = world.platform.client_options("svc:service", manual_ack=True)
    async with MqttClient(options) as connection:
        runtime = world.runtime()
        ready = asyncio.Event()
        task = asyncio.create_task(runtime.run(connection, ready=ready))
        await ready.wait()
        device = world.device
        await device.connect()
        await device.publish("delivery", {"shipment": "ship-1", "time": 1})
        await device.flush()
        await device.disconnect()  # offline: readings wait in its outbox
        for moment in range(2, 12):
            await device.publish("delivery", {"shipment": "ship-1", "time": moment})
        assert device.pending == 10
        await asyncio.sleep(0.3)
        assert await world.view("total") == 1
        await device.connect()  # back: the outbox drains in order
        await device.flush()
        await wait_for(lambda: runtime.counters["applied"] == 11)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # the first reading was acknowledged < autosave_interval + 2 s before the device went
    # offline, so its outbox sent it again (the broker may not have saved it): refused as
    # a sequence already seen, never applied twice
    assert runtime.counters["replay"] == 1
    assert (await world.view("total"), await world.view("duplicates")) == (11, 0)
