"""The sale order of paper 004 (Table 1) and its factory, on the embedded chain.

One chain and one factory per module; every test creates its own orders (and, where it
counts lists, its own fresh accounts), so no test depends on another's state. Orders are
EIP-1167 minimal proxies of one implementation: the tests below also show that only the
factory can give a proxy its item, once, and that the implementation is no order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from pervasive.chain import ContractCall, Ledger, Signer, open_ledger
from pervasive.config import Settings
from pervasive.contracts import (
    DeploymentBook,
    SaleItem,
    SaleOrder,
    SaleOrderFactory,
    compile_contract,
    compile_source,
    deploy,
)
from pervasive.contracts.contract import Contract
from pervasive.contracts.sale_order import (
    MAX_PRICE,
    SALE_ORDER,
    SALE_ORDER_BLUEPRINT,
    SALE_ORDER_FACTORY,
)
from pervasive.crypto import keccak256
from pervasive.domain import SaleReceipt
from pervasive.errors import InvalidInput, NotFound, TransactionReverted

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("sale-order")]

PRICE = 50 * 10**18  # paper 004, Table 2: 50 ETH
ZERO = "0x" + "00" * 20
# EIP-1167: the code of every order, around the implementation's address
PROXY_PREFIX = bytes.fromhex("363d3d373d3d3d363d73")
PROXY_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


@dataclass
class World:
    ledger: Ledger
    book: DeploymentBook
    factory: SaleOrderFactory
    deployer: Signer

    async def account(self) -> Signer:
        """A fresh funded account (lists per account start empty)."""
        signer = Signer.generate()
        funding = ContractCall(to=signer.address, data=b"", value=200 * 10**18)
        await self.ledger.transactor(self.deployer).transact(funding)
        return signer

    async def order(self, seller: Signer, warehouse: Signer, price: int = PRICE) -> SaleOrder:
        factory = self.factory.with_signer(seller)
        return await factory.create("Tesla", "alpha", 2019, price, "4AA6", warehouse.address)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    home = tmp_path_factory.mktemp("sale-order")
    ledger = await open_ledger(Settings(home=home), persist=False)
    book = DeploymentBook(home / "deployments.sqlite")
    deployer = ledger.dev_signer(0)
    factory = await SaleOrderFactory.open(ledger, deployer, artifacts=home / "artifacts", book=book)
    yield World(ledger, book, factory, deployer)
    book.close()
    await ledger.close()


async def _pay(ledger: Ledger, signer: Signer, order: SaleOrder, value: int) -> None:
    call = ContractCall(to=order.address, data=order.contract.encode("buy"), value=value)
    await ledger.transactor(signer).transact(call)


async def test_an_order_holds_the_papers_fields(world: World) -> None:
    seller, warehouse = await world.account(), await world.account()
    order = await world.order(seller, warehouse)
    assert await world.factory.is_order(order.address)
    # getItem() as Table 1 returns it: make, model, year, price, sold, owner, buyer
    assert await order.contract.call("getItem") == (
        "Tesla", "alpha", 2019, PRICE, False, seller.address, ZERO
    )  # fmt: skip
    assert await order.item() == SaleItem(
        address=order.address, make="Tesla", model="alpha", year=2019, price=PRICE,
        serial="4AA6", seller=seller.address, warehouse=warehouse.address, buyer=None,
        sold=False, released=False,
    )  # fmt: skip
    assert not await order.is_sold()


async def test_buying_pays_the_seller_exactly_the_price_once(world: World) -> None:
    seller, warehouse, buyer = await world.account(), await world.account(), await world.account()
    order = await world.order(seller, warehouse)
    before = await world.ledger.balance(seller.address)
    for wrong in (PRICE - 1, PRICE + 1, 0):
        with pytest.raises(TransactionReverted, match="send exactly the item's price"):
            await _pay(world.ledger, buyer, order, wrong)
    with pytest.raises(TransactionReverted, match="the seller cannot buy their own item"):
        await order.with_signer(seller).buy()
    receipt = await order.with_signer(buyer).buy()
    assert receipt.succeeded
    assert await world.ledger.balance(seller.address) == before + PRICE
    assert await world.ledger.balance(order.address) == 0
    assert await order.is_sold()
    item = await order.item()
    assert (item.sold, item.buyer, item.seller) == (True, buyer.address, seller.address)
    second = await world.account()
    with pytest.raises(TransactionReverted, match="this item is already sold"):
        await order.with_signer(second).buy()
    assert await world.ledger.balance(seller.address) == before + PRICE


async def test_ownership_is_verified_for_the_buyer_only_until_release(world: World) -> None:
    # paper 004, Table 4: the valid buyer is verified, another address is not
    seller, warehouse, buyer = await world.account(), await world.account(), await world.account()
    order = await world.order(seller, warehouse)
    assert not await order.verify_ownership(buyer.address)
    await order.with_signer(buyer).buy()
    assert await order.verify_ownership(buyer.address)
    for other in (seller.address, warehouse.address, (await world.account()).address):
        assert not await order.verify_ownership(other)
    await order.with_signer(warehouse).release(buyer.address)
    assert not await order.verify_ownership(buyer.address)


async def test_release_only_by_the_warehouse_only_for_the_buyer_only_once(world: World) -> None:
    seller, warehouse, buyer = await world.account(), await world.account(), await world.account()
    order = await world.order(seller, warehouse)
    with pytest.raises(TransactionReverted, match="the item is not sold yet"):
        await order.with_signer(warehouse).release(buyer.address)
    await order.with_signer(buyer).buy()
    for intruder in (buyer, seller, await world.account()):
        with pytest.raises(TransactionReverted, match="only the order's warehouse account"):
            await order.with_signer(intruder).release(buyer.address)
    with pytest.raises(TransactionReverted, match="this account did not buy the item"):
        await order.with_signer(warehouse).release(seller.address)
    receipt = await order.with_signer(warehouse).release(buyer.address)
    assert receipt.succeeded
    item = await order.item()
    assert (item.sold, item.released) == (True, True)
    with pytest.raises(TransactionReverted, match="the item was already released"):
        await order.with_signer(warehouse).release(buyer.address)


async def test_orders_are_listed_by_seller_and_by_buyer(world: World) -> None:
    seller, other_seller, warehouse = (
        await world.account(), await world.account(), await world.account()
    )  # fmt: skip
    buyer = await world.account()
    count = await world.factory.order_count()
    first = await world.order(seller, warehouse)
    second = await world.order(seller, warehouse, price=10**15)
    third = await world.order(other_seller, warehouse)
    assert await world.factory.orders_of_seller(seller.address) == [first.address, second.address]
    assert await world.factory.orders_of_seller(other_seller.address) == [third.address]
    assert await world.factory.orders_of_buyer(buyer.address) == []
    await second.with_signer(buyer).buy()
    await third.with_signer(buyer).buy()
    assert await world.factory.orders_of_buyer(buyer.address) == [second.address, third.address]
    assert await world.factory.order_count() == count + 3
    assert await world.factory.orders(count, 10) == [first.address, second.address, third.address]
    assert await world.factory.orders(count + 1, 1) == [second.address]
    assert await world.factory.orders(count + 3) == []
    items = await world.factory.items([third.address, first.address])
    assert [i.address for i in items] == [third.address, first.address]
    assert items[0] == await third.item()
    assert (items[0].buyer, items[1].buyer) == (buyer.address, None)


async def test_items_of_an_address_that_is_no_order_is_not_found(world: World) -> None:
    seller, warehouse = await world.account(), await world.account()
    order = await world.order(seller, warehouse)
    assert not await world.factory.is_order(seller.address)
    with pytest.raises(NotFound, match=seller.address):
        await world.factory.items([order.address, seller.address])


async def test_events_follow_an_order_from_creation_to_release(world: World) -> None:
    seller, warehouse, buyer = await world.account(), await world.account(), await world.account()
    start = await world.ledger.block_number() + 1
    order = await world.order(seller, warehouse)
    await order.with_signer(buyer).buy()
    await order.with_signer(warehouse).release(buyer.address)
    events = [e for e in await world.factory.events(start) if e.order == order.address]
    assert [(e.kind, e.seller, e.buyer, e.price) for e in events] == [
        ("created", seller.address, None, PRICE),
        ("sold", seller.address, buyer.address, PRICE),
        ("released", seller.address, buyer.address, None),
    ]
    assert [e.block for e in events] == sorted(e.block for e in events)
    mined = await world.ledger.receipt(events[1].tx_hash)
    assert mined is not None and mined.block_number == events[1].block
    last = await world.ledger.block_number()
    assert await world.factory.events(start, last) == await world.factory.events(start)
    with pytest.raises(InvalidInput, match="no block range"):
        await world.factory.events(last, last - 1)


async def test_only_an_order_of_the_factory_may_report_a_sale_or_release(world: World) -> None:
    intruder = await world.account()
    with pytest.raises(TransactionReverted, match="only a sale order of this factory"):
        await world.factory.contract.transact(
            intruder, "record_sale", intruder.address, intruder.address, 1
        )
    with pytest.raises(TransactionReverted, match="only a sale order of this factory"):
        await world.factory.contract.transact(
            intruder, "record_release", intruder.address, intruder.address, intruder.address
        )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("make", "", "the make may not be empty"),
        ("make", "   ", "the make may not be empty"),
        ("model", " alpha", "leading or trailing spaces"),
        ("serial", "4A\nA6", "control characters"),
        ("serial", "", "the serial number may not be empty"),
        ("make", "é" * 33, "at most 64 bytes"),
        ("price", -1, "positive number of wei"),
        ("price", 0, "positive number of wei"),
        ("price", 2**256, "256 bits"),
        ("price", MAX_PRICE + 1, r"2\*\*96 - 1, more ether than exists"),
        ("year", -1, "year is a whole number"),
        ("year", 2019.5, "year is a whole number"),
        ("warehouse", "0x1234", "not an Ethereum address"),
        ("warehouse", ZERO, "zero address"),
    ],
)
async def test_bad_input_is_refused_before_sending(
    world: World, field: str, value: object, reason: str
) -> None:
    args: dict[str, object] = {
        "make": "Tesla", "model": "alpha", "year": 2019, "price": PRICE, "serial": "4AA6",
        "warehouse": world.deployer.address,
    }  # fmt: skip
    args[field] = value
    nonce = await world.ledger.nonce(world.deployer.address)
    with pytest.raises(InvalidInput, match=reason):
        await world.factory.create(**args)  # type: ignore[arg-type]
    assert await world.ledger.nonce(world.deployer.address) == nonce


async def test_bad_addresses_in_reads_and_release_are_refused(world: World) -> None:
    order = await world.order(await world.account(), await world.account())
    for call in (
        order.verify_ownership("not an address"),
        order.release("0x12"),
        world.factory.is_order("0xzz"),
        world.factory.orders_of_seller(""),
        world.factory.orders_of_buyer(ZERO),
        world.factory.items(["nope"]),
    ):
        with pytest.raises(InvalidInput):
            await call
    with pytest.raises(InvalidInput, match="no signer"):
        await SaleOrder.at(world.ledger, order.address).buy()


async def test_the_chain_refuses_what_the_wrapper_would(world: World) -> None:
    # the contract checks again, for callers that skip the wrapper
    cases = [
        (("", "m", 1, 1, "s", world.deployer.address), "the make may not be empty"),
        (("m", "", 1, 1, "s", world.deployer.address), "the model may not be empty"),
        (("m", "m", 1, 1, "", world.deployer.address), "the serial number may not be empty"),
        (("m", "m", 1, 0, "s", world.deployer.address), "the price must be positive"),
        (("m", "m", 1, 1, "s", ZERO), "the warehouse account may not be the zero address"),
        (("m", "m", 10_000, 1, "s", world.deployer.address), "a whole number from 0 to 9999"),
        (("m", "m", 1, MAX_PRICE + 1, "s", world.deployer.address), r"at most 2\*\*96 - 1 wei"),
    ]
    for args, reason in cases:
        with pytest.raises(TransactionReverted, match=reason):
            await world.factory.contract.transact(world.deployer, "create", *args)


SELLER_CONTRACT = """
# pragma version ~=0.4.3
# a seller that is a contract: it has no way to receive ether, and it can sell in bulk
interface Factory:
    def create(make: String[64], model: String[64], year: uint256, price: uint256,
               serial: String[64], warehouse: address) -> address: nonpayable

@external
def sell(factory: address, warehouse: address, count: uint256):
    for i: uint256 in range(count, bound=64):
        extcall Factory(factory).create("m", "m", 1, 1 + i, "s", warehouse)
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seller_contract(world: World) -> Contract:
    artifact = compile_source("seller_contract", SELLER_CONTRACT)
    deployment = await deploy(world.ledger, world.deployer, artifact)
    return Contract(world.ledger, deployment.address, artifact.abi)


async def test_lists_longer_than_one_page_are_read_whole(
    world: World, seller_contract: Contract
) -> None:
    warehouse = await world.account()
    before = await world.factory.orders_of_seller(seller_contract.address)
    start = await world.factory.order_count()
    for count in (35, 35, 33):  # 35 orders fill most of a 30M gas block
        # the gas is given: estimating it would run these heavy transactions twice
        await seller_contract.transact(
            world.deployer, "sell", world.factory.address, warehouse.address, count, gas=29_000_000
        )
    created = await world.factory.orders(start, 103)
    assert len(created) == 103
    assert await world.factory.orders_of_seller(seller_contract.address) == before + created
    items = await world.factory.items(created)
    assert [i.price for i in items] == [*range(1, 36), *range(1, 36), *range(1, 34)]
    assert {i.seller for i in items} == {seller_contract.address}


async def test_a_seller_refusing_ether_makes_the_purchase_fail_with_a_reason(
    world: World, seller_contract: Contract
) -> None:
    seller = seller_contract
    warehouse = await world.account()
    receipt = await seller.transact(
        world.deployer, "sell", world.factory.address, warehouse.address, 1
    )
    [created] = world.factory.contract.events(receipt, "OrderCreated")
    order = world.factory.order(str(created.args["order"]))
    assert (await order.item()).seller == seller.address
    buyer = await world.account()
    with pytest.raises(TransactionReverted, match="paying the seller failed"):
        await order.with_signer(buyer).buy()
    assert not await order.is_sold()


async def test_an_order_deployed_alone_works_without_a_factory(world: World) -> None:
    seller, warehouse, buyer = await world.account(), await world.account(), await world.account()
    artifact = compile_contract(SALE_ORDER)
    args = ("Tesla", "alpha", 2019, PRICE, "4AA6", seller.address, warehouse.address)
    order = SaleOrder.at(
        world.ledger, (await deploy(world.ledger, seller, artifact, *args)).address
    )
    assert (await order.item()).seller == seller.address
    assert await order.contract.call("factory") == ZERO
    with pytest.raises(TransactionReverted, match="only the factory may initialize"):
        await order.contract.transact(seller, "initialize", *args)
    with pytest.raises(TransactionReverted, match="the seller may not be the zero address"):
        await deploy(world.ledger, seller, artifact, *args[:5], ZERO, warehouse.address)
    await order.with_signer(buyer).buy()
    assert await order.verify_ownership(buyer.address)
    await order.with_signer(warehouse).release(buyer.address)
    assert (await order.item()).released
    assert not await world.factory.is_order(order.address)


async def test_the_factory_is_deployed_once_per_chain_and_found_again(world: World) -> None:
    again = await SaleOrderFactory.open(world.ledger, await world.account(), book=world.book)
    assert again.address == world.factory.address
    found = await SaleOrderFactory.find(world.ledger, world.book)
    assert found.address == world.factory.address
    assert world.book.get(world.ledger.chain_id, SALE_ORDER_BLUEPRINT) is not None
    assert await found.order_count() == await world.factory.order_count()
    with pytest.raises(NotFound, match="no sale-order-factory contract is deployed"):
        await SaleOrderFactory.find(world.ledger, DeploymentBook(":memory:"))


async def test_a_new_blueprint_gives_a_new_factory(world: World) -> None:
    book = DeploymentBook(":memory:")
    first = await SaleOrderFactory.open(world.ledger, world.deployer, book=book)
    blueprint = book.get(world.ledger.chain_id, SALE_ORDER_BLUEPRINT)
    assert blueprint is not None
    # as if sale_order.vy had changed: the recorded blueprint no longer matches its source
    from dataclasses import replace

    book.record(replace(blueprint, source_hash="changed"))
    second = await SaleOrderFactory.open(world.ledger, world.deployer, book=book)
    assert second.address != first.address
    recorded = book.get(world.ledger.chain_id, SALE_ORDER_FACTORY)
    assert recorded is not None and recorded.address == second.address
    assert await second.contract.call("BLUEPRINT") != await first.contract.call("BLUEPRINT")


async def test_the_door_flow_with_a_signed_receipt(world: World) -> None:
    seller, warehouse, buyer = await world.account(), await world.account(), await world.account()
    order = await world.order(seller, warehouse)
    await order.with_signer(buyer).buy()
    from pervasive.crypto import PrivateKey

    text = SaleReceipt.sign(
        PrivateKey(buyer.private_key), world.ledger.chain_id, order.address, buyer.address
    ).encode()
    scanned = SaleReceipt.decode(text)
    scanned.verify(chain_id=world.ledger.chain_id)
    door = world.factory.order(scanned.order).with_signer(warehouse)
    assert await world.factory.is_order(scanned.order)
    assert await door.verify_ownership(scanned.buyer)
    await door.release(scanned.buyer)
    assert not await door.verify_ownership(scanned.buyer)


async def test_the_view_and_release_selectors_match_the_abi() -> None:
    abi = compile_contract(SALE_ORDER).abi
    views = {
        keccak256(f"{e['name']}({','.join(i['type'] for i in e['inputs'])})".encode())[:4]
        for e in abi
        if e.get("type") == "function" and e.get("stateMutability") in ("view", "pure")
    }
    assert views == SaleOrder.VIEW_SELECTORS
    assert keccak256(b"release(address)")[:4] == SaleOrder.RELEASE_SELECTOR
    assert SaleOrder.RELEASE_SELECTOR not in SaleOrder.VIEW_SELECTORS


async def test_an_address_without_an_order_is_not_found_before_anything_is_sent(
    world: World,
) -> None:
    nobody, warehouse = await world.account(), await world.account()
    stray = SaleOrder.at(world.ledger, nobody.address, warehouse)
    for read in (stray.item(), stray.is_sold(), stray.verify_ownership(warehouse.address)):
        with pytest.raises(NotFound, match="there is no sale order at"):
            await read
    nonce = await world.ledger.nonce(warehouse.address)
    with pytest.raises(NotFound, match="check the order address"):
        await stray.release(warehouse.address)
    with pytest.raises(NotFound):
        await stray.buy()
    assert await world.ledger.nonce(warehouse.address) == nonce


async def test_events_can_follow_one_account(world: World) -> None:
    seller, warehouse, buyer = await world.account(), await world.account(), await world.account()
    start = await world.ledger.block_number() + 1
    bought = await world.order(seller, warehouse)
    unsold = await world.order(seller, warehouse)
    await bought.with_signer(buyer).buy()
    followed = await world.factory.events(start, account=buyer.address)
    assert [(e.kind, e.order) for e in followed] == [("sold", bought.address)]
    by_seller = await world.factory.events(start, account=seller.address)
    assert [(e.kind, e.order) for e in by_seller] == [
        ("created", bought.address),
        ("created", unsold.address),
        ("sold", bought.address),
    ]
    by_order = await world.factory.events(start, account=unsold.address)
    assert [e.kind for e in by_order] == ["created"]
    with pytest.raises(InvalidInput, match="account"):
        await world.factory.events(start, account="someone")


async def test_an_order_is_a_minimal_proxy_of_the_implementation(world: World) -> None:
    order = await world.order(await world.account(), await world.account())
    implementation = await world.factory.contract.call("IMPLEMENTATION")
    code = await world.ledger.code(order.address)
    assert code == PROXY_PREFIX + bytes.fromhex(implementation[2:]) + PROXY_SUFFIX
    assert await order.contract.call("factory") == world.factory.address
    index = await world.factory.order_count() - 1
    assert await world.factory.contract.call("order_at", index) == order.address
    assert await world.factory.contract.call("order_at", index + 1) == ZERO


@pytest.mark.parametrize(
    ("make", "model", "serial"),
    [
        ("a", "b", "c"),
        ("x" * 31, "y" * 32, "z" * 33),  # words end inside, at and past a 32-byte boundary
        ("é" * 32, "Ünïcødé ✓", "9" * 64),
        ("M" * 64, "m" * 64, "S" * 64),  # all six words of text
    ],
)
async def test_the_packed_item_reads_back_exactly(
    world: World, make: str, model: str, serial: str
) -> None:
    seller, warehouse = await world.account(), await world.account()
    factory = world.factory.with_signer(seller)
    order = await factory.create(make, model, 9999, MAX_PRICE, serial, warehouse.address)
    item = await order.item()
    assert (item.make, item.model, item.serial) == (make, model, serial)
    assert (item.year, item.price, item.seller, item.warehouse) == (
        9999, MAX_PRICE, seller.address, warehouse.address
    )  # fmt: skip
    assert await order.contract.call("getItem") == (
        make, model, 9999, MAX_PRICE, False, seller.address, ZERO
    )  # fmt: skip
    assert await world.factory.items([order.address]) == [item]


async def test_nobody_but_the_factory_initializes_an_order(world: World) -> None:
    seller, warehouse, intruder = (
        await world.account(), await world.account(), await world.account()
    )  # fmt: skip
    order = await world.order(seller, warehouse)
    item = await order.item()
    args = ("Fake", "fake", 1, 1, "0", intruder.address, intruder.address)
    with pytest.raises(TransactionReverted, match="only the factory may initialize"):
        await order.contract.transact(intruder, "initialize", *args)
    assert await order.item() == item


async def test_the_implementation_is_no_order_and_cannot_be_initialized_or_bought(
    world: World,
) -> None:
    buyer = await world.account()
    implementation = SaleOrder.at(
        world.ledger, await world.factory.contract.call("IMPLEMENTATION"), buyer
    )
    assert await implementation.contract.call("factory") == world.factory.address
    args = ("Tesla", "alpha", 2019, PRICE, "4AA6", buyer.address, buyer.address)
    with pytest.raises(TransactionReverted, match="only the factory may initialize"):
        await implementation.contract.transact(buyer, "initialize", *args)
    with pytest.raises(TransactionReverted, match="this contract holds no item"):
        await implementation.buy()
    with pytest.raises(TransactionReverted, match="this contract holds no item"):
        await _pay(world.ledger, buyer, implementation, PRICE)
    assert (await implementation.item()).seller == ZERO
    assert not await implementation.is_sold()
    assert not await world.factory.is_order(implementation.address)
    with pytest.raises(NotFound, match=implementation.address):
        await world.factory.items([implementation.address])


CLONER_CONTRACT = """
# pragma version ~=0.4.3
# someone else's contract: it clones implementations and initializes proxies
interface SaleOrder:
    def initialize(make: String[64], model: String[64], year: uint256, price: uint256,
                   serial: String[64], seller: address, warehouse: address): nonpayable

implementation: public(address)

@external
def make_implementation(blueprint: address):
    # constructed without an item by this contract, it is this contract's implementation
    self.implementation = create_from_blueprint(
        blueprint, empty(String[64]), empty(String[64]), empty(uint256), empty(uint256),
        empty(String[64]), empty(address), empty(address))

@external
def clone(target: address) -> address:
    return create_minimal_proxy_to(target)

@external
def initialize(order: address, seller: address, warehouse: address):
    extcall SaleOrder(order).initialize("m", "m", 1, 1, "s", seller, warehouse)
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cloner(world: World) -> Contract:
    artifact = compile_source("cloner", CLONER_CONTRACT)
    deployment = await deploy(world.ledger, world.deployer, artifact)
    return Contract(world.ledger, deployment.address, artifact.abi)


async def _clone(world: World, cloner: Contract, target: str) -> str:
    address = str(await cloner.call("clone", target))  # where the next clone lands
    await cloner.transact(world.deployer, "clone", target)
    assert await world.ledger.code(address) != b""
    return address


async def test_a_proxy_made_by_someone_else_is_no_order_and_stays_empty(
    world: World, cloner: Contract
) -> None:
    seller, warehouse, buyer = await world.account(), await world.account(), await world.account()
    implementation = await world.factory.contract.call("IMPLEMENTATION")
    stray = SaleOrder.at(world.ledger, await _clone(world, cloner, implementation), buyer)
    with pytest.raises(TransactionReverted, match="only the factory may initialize"):
        await cloner.transact(
            world.deployer, "initialize", stray.address, seller.address, warehouse.address
        )
    assert not await world.factory.is_order(stray.address)
    with pytest.raises(NotFound, match=stray.address):
        await world.factory.items([stray.address])
    with pytest.raises(TransactionReverted, match="this contract holds no item"):
        await _pay(world.ledger, buyer, stray, 0)


async def test_the_implementations_creator_initializes_each_proxy_once_and_never_itself(
    world: World, cloner: Contract
) -> None:
    # the checks behind the factory's guarantee, run by a creator that tries what it never does
    seller, warehouse = await world.account(), await world.account()
    blueprint = await world.factory.contract.call("BLUEPRINT")
    await cloner.transact(world.deployer, "make_implementation", blueprint)
    implementation = await cloner.call("implementation")
    with pytest.raises(TransactionReverted, match="the implementation itself is never initialized"):
        await cloner.transact(
            world.deployer, "initialize", implementation, seller.address, warehouse.address
        )
    proxy = await _clone(world, cloner, implementation)
    await cloner.transact(world.deployer, "initialize", proxy, seller.address, warehouse.address)
    assert (await SaleOrder.at(world.ledger, proxy).item()).seller == seller.address
    with pytest.raises(TransactionReverted, match="this sale order is already initialized"):
        await cloner.transact(
            world.deployer, "initialize", proxy, warehouse.address, seller.address
        )
    assert (await SaleOrder.at(world.ledger, proxy).item()).seller == seller.address
    assert not await world.factory.is_order(proxy)  # a proxy of another implementation
