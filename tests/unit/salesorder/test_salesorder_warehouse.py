"""The warehouse door on the embedded chain, broker and shadow service (paper 004, 4.4-4.8).

Each test builds its own warehouse account, door and orders in the module's world. What
is asserted is what the person at the door and the shop care about: the door opened (its
movement log), the shadow's reported state went open then closed (read from the shadow
service), the sale is released on-chain once, and every refusal says why and is counted.
"""

from __future__ import annotations

import asyncio

import pytest

from pervasive.apps.salesorder import (
    DoorState,
    Refusal,
    ReleaseJournal,
    Stage,
    render_png,
)
from pervasive.chain import ContractCall, Signer
from pervasive.crypto import PrivateKey
from pervasive.domain import SaleReceipt
from salesorder_world import SaleWorld

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("sale-world")]


async def eventually(condition: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_a_valid_receipt_opens_the_door_once_and_the_shadow_shows_it(
    world: SaleWorld,
) -> None:
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    async with world.door(account, hold=0.1) as warehouse:
        decision = await warehouse.scan(world.receipt_png(order.address, world.buyer))
        assert decision.opened, decision.message
        assert decision.refusal is None
        assert (decision.order, decision.buyer) == (order.address, world.buyer.address)
        assert decision.block is not None and decision.tx_hash is not None
        timings = decision.timings
        assert timings.decoded is not None and timings.verified is not None
        assert timings.released is not None and timings.reported_open is not None
        assert timings.decoded <= timings.verified <= timings.released <= timings.reported_open
        await warehouse.door.wait_closed()
        thing = warehouse.thing
        assert warehouse.door.door.openings_for(order.address) == 1
        assert warehouse.door.door.state is DoorState.CLOSED
    assert (await order.item()).released
    assert not await order.verify_ownership(world.buyer.address)
    # section 4.8 as the shadow service stored it: reset, desired open, reported open,
    # desired closed, reported closed
    assert world.history[thing] == [
        ("closed", "closed"),
        ("open", "closed"),
        ("open", "open"),
        ("closed", "open"),
        ("closed", "closed"),
    ]
    record = (await world.platform.shadow()).service.store.load(warehouse.door._shadow.key)
    assert record is not None
    assert record.reported["release"] == {
        "order": order.address,
        "buyer": world.buyer.address,
        "tx": decision.tx_hash,
        "block": decision.block,
    }


async def test_the_same_receipt_twice_opens_once(world: SaleWorld) -> None:
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    text = world.receipt(order.address, world.buyer).encode()
    async with world.door(account) as warehouse:
        first = await warehouse.scan_text(text)
        second = await warehouse.scan_text(text)
        assert first.opened and not second.opened
        assert second.refusal is Refusal.ALREADY_RELEASED
        assert f"already released at block {first.block}" in second.message
        assert warehouse.door.door.openings_for(order.address) == 1
        assert warehouse.refusals == {"already released": 1}


async def test_the_same_receipt_scanned_twice_at_once_opens_once(world: SaleWorld) -> None:
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    image = world.receipt_png(order.address, world.buyer)
    async with world.door(account) as warehouse:
        decisions = await asyncio.gather(*(warehouse.scan(image) for _ in range(3)))
        assert [d.opened for d in decisions].count(True) == 1
        assert {d.refusal for d in decisions if not d.opened} == {Refusal.ALREADY_RELEASED}
        assert warehouse.door.door.openings_for(order.address) == 1


async def test_two_doors_sharing_an_account_open_once_for_one_receipt(world: SaleWorld) -> None:
    # the chain is the guard: two devices, two journals, one sale
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    text = world.receipt(order.address, world.buyer).encode()
    async with world.door(account) as east, world.door(account) as west:
        decisions = await asyncio.gather(east.scan_text(text), west.scan_text(text))
        assert [d.opened for d in decisions].count(True) == 1
        refused = next(d for d in decisions if not d.opened)
        assert refused.refusal is Refusal.ALREADY_RELEASED, refused.message
        openings = east.door.door.openings + west.door.door.openings
        assert openings == 1


async def test_a_door_restarted_after_a_mined_release_opens_for_it(world: SaleWorld) -> None:
    # the device recorded and sent the release, then stopped before the door opened
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    thing, journal_path = world.thing(), world.root / "restart-journal.sqlite"
    journal = ReleaseJournal.open(journal_path)
    journal.begin(world.ledger.chain_id, order.address, world.buyer.address, account.address)
    manager = world.ledger.transactor(account)
    pending = await manager.send(
        ContractCall(order.address, order.contract.encode("release", world.buyer.address))
    )
    journal.sent(world.ledger.chain_id, order.address, pending.hashes[0], pending.raw)
    await manager.wait(pending)
    journal.close()
    async with world.door(account, thing=thing, journal=journal_path) as warehouse:
        # start() settled the journal: the door opened for the release at once
        assert warehouse.door.door.openings_for(order.address) == 1
        again = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
        assert again.refusal is Refusal.ALREADY_RELEASED
        entry = warehouse.journal.get(world.ledger.chain_id, order.address)
        assert entry is not None and entry.stage is Stage.OPENED
        assert entry.tx_hash == pending.hashes[0]


async def test_an_unmined_release_waits_for_the_receipt_and_is_not_sent_twice(
    world: SaleWorld,
) -> None:
    # recorded and signed, but the bytes never reached the node (the device died first)
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    thing, journal_path = world.thing(), world.root / "unsent-journal.sqlite"
    journal = ReleaseJournal.open(journal_path)
    journal.begin(world.ledger.chain_id, order.address, world.buyer.address, account.address)
    journal.close()
    async with world.door(account, thing=thing, journal=journal_path) as warehouse:
        assert warehouse.door.door.openings == 0, "nothing on-chain: no door opens by itself"
        decision = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
        assert decision.opened and decision.recovered, decision.message
        again = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
        assert again.refusal is Refusal.ALREADY_RELEASED
    assert await world.ledger.nonce(account.address) == 1, "one release transaction in all"


async def test_a_door_that_fails_to_open_opens_at_the_next_scan(world: SaleWorld) -> None:
    class JammedOnce:
        def __init__(self) -> None:
            self.jammed = False

        async def move(self, state: DoorState) -> None:
            if state is DoorState.OPEN and not self.jammed:
                self.jammed = True
                raise OSError("motor jammed")

    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    text = world.receipt(order.address, world.buyer).encode()
    async with world.door(account, actuator=JammedOnce(), timeout=5.0) as warehouse:
        fault = await warehouse.scan_text(text)
        assert fault.refusal is Refusal.DOOR_FAULT
        assert "released at block" in fault.message and "motor jammed" in fault.message
        assert (await order.item()).released, "the release stays: the receipt was valid"
        retry = await warehouse.scan_text(text)
        assert retry.opened and retry.recovered, retry.message
        assert warehouse.door.door.openings_for(order.address) == 1
    assert await world.ledger.nonce(account.address) == 1


@pytest.mark.parametrize("gateway", [True, False], ids=["factory-check", "no-factory-check"])
async def test_an_address_that_is_no_sale_order_is_refused(world: SaleWorld, gateway: bool) -> None:
    account = await world.account()
    stranger = Signer.generate().address  # an account: no code at all
    async with world.door(account, gateway=gateway) as warehouse:
        decision = await warehouse.scan_text(world.receipt(stranger, world.buyer).encode())
    assert decision.refusal is Refusal.NOT_AN_ORDER, decision.message
    assert "not a sale order" in decision.message


async def test_the_papers_invalid_data_set_is_refused(world: SaleWorld) -> None:
    # Table 4: the order's contract address with a buyer address that did not buy it
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    unsold = await world.order(account.address)
    async with world.door(account) as warehouse:
        other = await warehouse.scan_text(world.receipt(order.address, world.other_buyer).encode())
        not_sold = await warehouse.scan_text(world.receipt(unsold.address, world.buyer).encode())
        assert other.refusal is Refusal.OTHER_BUYER, other.message
        assert not_sold.refusal is Refusal.NOT_SOLD, not_sold.message
        assert warehouse.door.door.openings == 0
        assert warehouse.refusals == {"sold to someone else": 1, "not sold": 1}
    assert not (await order.item()).released


async def test_an_order_of_another_warehouse_is_refused(world: SaleWorld) -> None:
    ours, theirs = await world.account(), await world.account(0)
    order = await world.order(theirs.address, buyer=world.buyer)
    async with world.door(ours) as warehouse:
        decision = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
    assert decision.refusal is Refusal.OTHER_WAREHOUSE, decision.message
    assert not (await order.item()).released


async def test_a_warehouse_account_without_funds_cannot_release(world: SaleWorld) -> None:
    account = await world.account(0)
    order = await world.order(account.address, buyer=world.buyer)
    async with world.door(account) as warehouse:
        decision = await warehouse.scan_text(world.receipt(order.address, world.buyer).encode())
        assert decision.refusal is Refusal.RELEASE_REFUSED, decision.message
        assert "funds" in decision.message
        assert warehouse.journal.get(world.ledger.chain_id, order.address) is None
    assert not (await order.item()).released


async def test_receipts_that_are_no_valid_receipts_are_refused_with_their_reason(
    world: SaleWorld,
) -> None:
    account = await world.account()
    order = await world.order(account.address, buyer=world.buyer)
    good = world.receipt(order.address, world.buyer)
    stranger = PrivateKey(Signer.generate().private_key)
    forged = SaleReceipt.sign(stranger, good.chain_id, order.address, stranger.address)
    tampered = SaleReceipt(good.chain_id, good.order, world.other_buyer.address, good.signature)
    cases = {
        "not a receipt": (render_png("https://example.com/coupon"), Refusal.UNREADABLE),
        "no code": (render_png("x")[:40], Refusal.UNREADABLE),
        "malformed": (good.encode()[:-4], Refusal.MALFORMED),
        "other chain": (world.receipt(order.address, world.buyer, chain_id=1).encode(),
                        Refusal.OTHER_CHAIN),
        "tampered": (tampered.encode(), Refusal.FORGED),
        "someone else's key": (forged.encode().replace(stranger.address[2:].upper(),
                                                       world.buyer.address[2:].upper()),
                               Refusal.FORGED),
    }  # fmt: skip
    async with world.door(account) as warehouse:
        for name, (shown, expected) in cases.items():
            if isinstance(shown, bytes):
                decision = await warehouse.scan(shown)
            else:
                decision = await warehouse.scan_text(shown)
            assert decision.refusal is expected, (name, decision.message)
            assert not decision.opened and decision.message
        assert sum(warehouse.refusals.values()) == len(cases)
        assert warehouse.door.door.openings == 0
        # none of them spent the sale: the buyer's own receipt still opens the door
        assert (await warehouse.scan_text(good.encode())).opened
