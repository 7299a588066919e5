"""The warehouse door on anvil, mosquitto and the real gateway (paper 004, 4.4-4.8, Table 4).

Every door reaches the chain only through the gateway, with its device certificate and
the warehouse role; the shadow service runs on mosquitto. What a door may not do, the
gateway refuses, and the door says so at the door.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pervasive.apps.salesorder import DoorState, Refusal
from pervasive.chain import Signer
from pervasive.gateway import Gateway, RoleBook, roles_file
from salesorder_world import SaleWorld

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.mosquitto,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("sale-gateway-world"),
]


async def test_a_receipt_opens_the_door_once_through_the_gateway(
    gateway_world: SaleWorld,
) -> None:
    world = gateway_world
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    async with world.door(account, hold=0.05) as warehouse:
        opened = await warehouse.scan(world.receipt_png(order.address, world.buyer))
        assert opened.opened, opened.message
        again = await warehouse.scan(world.receipt_png(order.address, world.buyer))
        assert again.refusal is Refusal.ALREADY_RELEASED
        await warehouse.door.wait_closed()
        assert warehouse.door.door.openings_for(order.address) == 1
        assert warehouse.door.door.state is DoorState.CLOSED
        thing = warehouse.thing
    assert (await order.item()).released
    assert world.history[thing][-3:] == [("open", "open"), ("closed", "open"), ("closed", "closed")]
    assert world.gateway is not None and world.gateway.counters["served"] > 0


async def test_the_papers_data_sets_through_the_gateway(gateway_world: SaleWorld) -> None:
    # Table 4: valid data set (buyer and contract) -> verified; invalid buyer -> not
    world = gateway_world
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    async with world.door(account) as warehouse:
        invalid = await warehouse.scan_text(
            world.receipt(order.address, world.other_buyer).encode()
        )
        assert invalid.refusal is Refusal.OTHER_BUYER, invalid.message
        stranger = Signer.generate().address
        no_order = await warehouse.scan_text(world.receipt(stranger, world.buyer).encode())
        assert no_order.refusal is Refusal.NOT_AN_ORDER, no_order.message
        assert "not a sale order" in no_order.message
        valid = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
        assert valid.opened, valid.message
        assert warehouse.refusals == {"sold to someone else": 1, "not a sale order": 1}


async def test_a_revoked_door_is_refused_and_opens_nothing(gateway_world: SaleWorld) -> None:
    world = gateway_world
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    async with world.door(account) as warehouse:
        world.platform.authority.revoke_identity(warehouse.thing)
        decision = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
        assert decision.refusal is Refusal.DEVICE_REFUSED, decision.message
        assert "revoked" in decision.message
        assert warehouse.door.door.openings == 0
    assert not (await order.item()).released


async def test_a_door_without_the_warehouse_role_is_refused(gateway_world: SaleWorld) -> None:
    world = gateway_world
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    async with world.door(account) as warehouse:
        RoleBook.open(roles_file(world.platform.settings.home)).assign(warehouse.thing, None)
        decision = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
        assert decision.refusal is Refusal.DEVICE_REFUSED, decision.message
        assert "holds no role" in decision.message
    assert not (await order.item()).released


async def test_an_unreachable_gateway_opens_nothing(gateway_world: SaleWorld) -> None:
    world = gateway_world
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    async with world.door(account) as warehouse:
        gateway = world.gateway
        assert gateway is not None
        await gateway.close()
        try:
            decision = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
        finally:  # the same port again, so the door's ledger finds it
            settings = world.platform.settings
            world.gateway = await Gateway.start(
                world.ledger, world.platform.authority,
                replace(settings.gateway, port=gateway.port),
                roles=RoleBook.open(roles_file(settings.home)), orders=world.factory.is_order,
            )  # fmt: skip
        assert decision.refusal is Refusal.UNREACHABLE, decision.message
        assert "nothing was opened" in decision.message
        assert warehouse.door.door.openings == 0
        assert not (await order.item()).released
        # the network is back: the same receipt opens the door
        retry = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
        assert retry.opened, retry.message
