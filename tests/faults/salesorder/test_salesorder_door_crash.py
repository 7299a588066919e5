"""The door process killed mid-release, then restarted: no second release, one opening.

The door runs as its own process, the command ``run`` of ``pervasive device warehouse``
(``pervasive.cli.warehouse``), on anvil, mosquitto and the gateway of the test process,
reading receipt texts on stdin. It is killed with SIGKILL

- after its release was mined but before the door reported ``open`` (the shadow service
  is down, so the door waits for its delta): restarted, it opens the door for that
  release at once ("released before a restart") and the same receipt is then refused as
  already released;
- after its release was sent but before the receipt came (anvil holds its blocks): on
  the restart nothing opens by itself; the buyer scans again, the door finds the order
  not released, sends the same signed bytes again (the node already has them) and opens
  once the block is mined.

Either way the warehouse account sent exactly one transaction (its nonce is 1).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pervasive.apps.salesorder import ReleaseJournal, Stage
from pervasive.messaging import MqttClient
from pervasive.platform import SHADOW_IDENTITY
from pervasive.shadow import ShadowCore, ShadowService, ShadowStore
from salesorder_world import SaleWorld, door_process, registered_door

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.mosquitto,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("sale-crash-world"),
]


@contextlib.asynccontextmanager
async def shadow_service(world: SaleWorld) -> AsyncIterator[ShadowService]:
    """The shadow service on the world's broker, on one SQLite file across restarts."""
    options = world.platform.client_options(SHADOW_IDENTITY)
    await (await world.platform.broker()).settle()
    store = ShadowStore.open(world.root / "shadow.sqlite")
    try:
        async with MqttClient(options) as client:
            service = ShadowService(client, store, ShadowCore(world.platform.shadow_limits()))
            service.add_listener(world.record)
            await service.start()
            task = asyncio.create_task(_serve(service, client))
            try:
                yield service
            finally:
                while not task.done():
                    task.cancel()
                    await asyncio.wait([task], timeout=0.2)
    finally:
        store.close()


async def _serve(service: ShadowService, client: MqttClient) -> None:
    async for message in client.messages():
        await service.handle(message)


def journal_stage(world: SaleWorld, thing: str, order: str) -> Stage | None:
    journal = ReleaseJournal.open(world.platform.settings.path("devices", thing, "releases.sqlite"))
    try:
        entry = journal.get(world.ledger.chain_id, order)
        return None if entry is None else entry.stage
    finally:
        journal.close()


async def until(condition: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.05)


async def set_automine(world: SaleWorld, on: bool) -> None:
    provider: Any = world.ledger.rpc.w3.provider
    reply = await provider.make_request("evm_setAutomine", [on])
    assert "error" not in reply, reply


async def test_killed_after_the_release_was_mined_opens_once_on_restart(
    crash_world: SaleWorld,
) -> None:
    world = crash_world
    thing, account = await registered_door(world)
    order = await world.order(account.address, buyer=world.buyer)
    text = world.receipt(order.address, world.buyer).encode()

    async with door_process(world, thing) as door:  # no shadow service: no delta comes
        await door.scan(text)

        async def released() -> bool:
            return journal_stage(world, thing, order.address) is Stage.RELEASED

        await until(released)
        door.kill()
    assert (await order.item()).released
    assert world.history[thing] == [], "the door never reached its shadow"

    async with shadow_service(world), door_process(world, thing) as door:
        opened = await door.expect(r"OPEN")
        assert "released before a restart" in opened
        await door.scan(text)
        refused = await door.expect(r"REFUSED")
        assert "already released at block" in refused
    assert ("open", "open") in world.history[thing]
    assert world.history[thing][-1] == ("closed", "closed")
    assert journal_stage(world, thing, order.address) is Stage.OPENED
    assert await world.ledger.nonce(account.address) == 1, "one release transaction"


async def test_killed_before_the_release_receipt_does_not_release_twice(
    crash_world: SaleWorld,
) -> None:
    world = crash_world
    thing, account = await registered_door(world)
    order = await world.order(account.address, buyer=world.buyer)
    text = world.receipt(order.address, world.buyer).encode()
    async with shadow_service(world):
        await set_automine(world, False)
        try:
            async with door_process(world, thing) as door:
                await door.scan(text)

                async def sent() -> bool:
                    return journal_stage(world, thing, order.address) is Stage.SENT

                await until(sent)
                door.kill()
            assert not (await order.item()).released, "the release waits in the pool"

            async with door_process(world, thing) as door:
                await asyncio.sleep(0.5)
                assert not any("OPEN" in line for line in door.lines), "nothing opens unasked"
                await door.scan(text)  # the buyer, still at the door, scans again
                await asyncio.sleep(0.5)
                await set_automine(world, True)
                await world.ledger.mine(1)
                opened = await door.expect(r"OPEN|REFUSED")
                assert "OPEN" in opened and "released before a restart" in opened, opened
        finally:
            await set_automine(world, True)
    assert (await order.item()).released
    assert await world.ledger.nonce(account.address) == 1, "the same bytes, sent again"
