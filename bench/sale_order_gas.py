"""Paper 004's sale order on our contracts: gas of create, buy and release; verifyOwnership latency.

Setup: a fresh chain per backend (``persist=False``; embedded py-evm and anvil by
default). Development account 0 deploys; sellers, buyers and the warehouse are
development accounts. Every gas figure is the receipt's ``gas_used`` (21,000 base and
calldata included). Three ways to have one contract per sale order are compared:

- **clone** (ours): ``sale_order_factory.vy`` makes each order an EIP-1167 minimal proxy
  (45 bytes of code) of one implementation, initialized in the same call; the item is
  packed into storage (3 slots for Table 2's item);
- **blueprint** (the previous design, kept here as ``BLUEPRINT_ORDER`` and
  ``BLUEPRINT_FACTORY``: the order and the write functions of its factory as they were,
  the factory's list views left out as they cost nothing per order): each order is the
  full order contract created from an ERC-5202 blueprint, its item in immutables;
- **direct**: ``sale_order.vy`` deployed on its own with its item, no factory (no lists,
  no ``OrderCreated``); the previous order contract deployed the same way is shown too.

Rows: deploying what each design needs once per chain; ``create`` (a seller's first order,
whose counter slot goes from zero to one, and a further one); the code each order holds;
``buy()`` and ``release(buyer)`` of each (the factories' orders also update their factory's
lists and log its event); what a clone's ``DELEGATECALL`` adds, seen on the same code and
storage: the gas of ``verifyOwnership(buyer)`` sent as a transaction (exact on both
backends, unlike ``eth_estimateGas`` on py-evm) to a clone and to a directly deployed
order; and the ``verifyOwnership`` ``eth_call`` round trip through the
wrapper as the warehouse device makes it (median and 95th percentile over ``--calls``
calls, after 20 warm-up calls).

Paper 004 reports no gas or latency figures (its section 6, Tables 2-4, shows functional
results only, and section 4.7 says the check is "fast" and costs no Ether); the paper
column says so.

Usage: ``.venv/bin/python bench/sale_order_gas.py [--backends embedded,anvil] [--calls 500]``;
prints a table and writes ``bench/results/sale_order_gas.csv`` and ``sale_order_gas.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import cast

from pervasive.chain import ContractCall, Ledger, Signer, open_ledger
from pervasive.config import BackendName, Settings
from pervasive.contracts import (
    Contract,
    SaleOrder,
    SaleOrderFactory,
    blueprint_deploy_code,
    compile_contract,
    compile_source,
)
from pervasive.contracts.sale_order import SALE_ORDER, SALE_ORDER_FACTORY
from pervasive.crypto import abi_encode

RESULTS = Path(__file__).resolve().parent / "results"
PRICE = 50 * 10**18  # paper 004, Table 2: "Price-50ETH"
ITEM = ("Tesla", "alpha", 2019, PRICE, "4AA6")  # Table 2's model, year, price and number
ZERO = "0x" + "00" * 20
NOT_REPORTED = "not reported"

BLUEPRINT_ORDER = """
# pragma version ~=0.4.3
# the previous sale_order.vy (its NatSpec left out): the item in immutables
MAX_TEXT: constant(uint256) = 64

struct Item:
    make: String[MAX_TEXT]
    model: String[MAX_TEXT]
    year: uint256
    price: uint256
    serial: String[MAX_TEXT]
    seller: address
    warehouse: address
    buyer: address
    sold: bool
    released: bool

interface Factory:
    def record_sale(seller: address, buyer: address, price: uint256): nonpayable
    def record_release(seller: address, buyer: address, warehouse: address): nonpayable

event Sold:
    buyer: indexed(address)
    seller: indexed(address)
    price: uint256

event Released:
    buyer: indexed(address)
    warehouse: indexed(address)

make: immutable(String[MAX_TEXT])
model: immutable(String[MAX_TEXT])
year: immutable(uint256)
price: public(immutable(uint256))
serial: immutable(String[MAX_TEXT])
owner: public(immutable(address))
warehouse: public(immutable(address))
factory: public(immutable(address))

buyer: public(address)
released: public(bool)

@deploy
def __init__(_make: String[MAX_TEXT], _model: String[MAX_TEXT], _year: uint256,
             _price: uint256, _serial: String[MAX_TEXT], _seller: address,
             _warehouse: address, _factory: address):
    assert len(_make) > 0, "the make may not be empty"
    assert len(_model) > 0, "the model may not be empty"
    assert len(_serial) > 0, "the serial number may not be empty"
    assert _price > 0, "the price must be positive"
    assert _seller != empty(address), "the seller may not be the zero address"
    assert _warehouse != empty(address), "the warehouse account may not be the zero address"
    make = _make
    model = _model
    year = _year
    price = _price
    serial = _serial
    owner = _seller
    warehouse = _warehouse
    factory = _factory

@external
@payable
@nonreentrant
def buy():
    assert self.buyer == empty(address), "this item is already sold"
    assert msg.sender != owner, "the seller cannot buy their own item"
    assert msg.value == price, "send exactly the item's price (getItem shows it)"
    self.buyer = msg.sender
    if factory != empty(address):
        extcall Factory(factory).record_sale(owner, msg.sender, msg.value)
    paid: bool = raw_call(owner, b"", value=msg.value, revert_on_failure=False)
    assert paid, "paying the seller failed: the seller's account does not accept ether"
    log Sold(buyer=msg.sender, seller=owner, price=msg.value)

@external
@nonreentrant
def release(_buyer: address):
    assert msg.sender == warehouse, "only the order's warehouse account may release it"
    assert self.buyer != empty(address), "the item is not sold yet"
    assert _buyer == self.buyer, "this account did not buy the item"
    assert not self.released, "the item was already released"
    self.released = True
    if factory != empty(address):
        extcall Factory(factory).record_release(owner, _buyer, warehouse)
    log Released(buyer=_buyer, warehouse=warehouse)

@external
@view
def isSold() -> bool:
    return self.buyer != empty(address)

@external
@view
def getItem() -> (String[MAX_TEXT], String[MAX_TEXT], uint256, uint256, bool, address, address):
    return make, model, year, price, self.buyer != empty(address), owner, self.buyer

@external
@view
def verifyOwnership(_buyer: address) -> bool:
    return _buyer != empty(address) and _buyer == self.buyer and not self.released

@external
@view
def details() -> Item:
    return Item(make=make, model=model, year=year, price=price, serial=serial, seller=owner,
                warehouse=warehouse, buyer=self.buyer, sold=self.buyer != empty(address),
                released=self.released)
"""

BLUEPRINT_FACTORY = """
# pragma version ~=0.4.3
# the previous sale_order_factory.vy without its list views: create_from_blueprint per order
MAX_TEXT: constant(uint256) = 64

event OrderCreated:
    order: indexed(address)
    seller: indexed(address)
    warehouse: indexed(address)
    price: uint256

event OrderSold:
    order: indexed(address)
    seller: indexed(address)
    buyer: indexed(address)
    price: uint256

event OrderReleased:
    order: indexed(address)
    seller: indexed(address)
    buyer: indexed(address)
    warehouse: address

BLUEPRINT: public(immutable(address))

isOrder: public(HashMap[address, bool])
order_count: public(uint256)
order_at: public(HashMap[uint256, address])
seller_order_count: public(HashMap[address, uint256])
seller_order_at: public(HashMap[address, HashMap[uint256, address]])
buyer_order_count: public(HashMap[address, uint256])
buyer_order_at: public(HashMap[address, HashMap[uint256, address]])

@deploy
def __init__(blueprint: address):
    assert blueprint.is_contract, "the sale order blueprint must be deployed"
    BLUEPRINT = blueprint

@external
def create(make: String[MAX_TEXT], model: String[MAX_TEXT], year: uint256, price: uint256,
           serial: String[MAX_TEXT], warehouse: address) -> address:
    assert len(make) > 0, "the make may not be empty"
    assert len(model) > 0, "the model may not be empty"
    assert len(serial) > 0, "the serial number may not be empty"
    assert price > 0, "the price must be positive"
    assert warehouse != empty(address), "the warehouse account may not be the zero address"
    order: address = create_from_blueprint(
        BLUEPRINT, make, model, year, price, serial, msg.sender, warehouse, self
    )
    self.isOrder[order] = True
    self.order_at[self.order_count] = order
    self.order_count += 1
    self.seller_order_at[msg.sender][self.seller_order_count[msg.sender]] = order
    self.seller_order_count[msg.sender] += 1
    log OrderCreated(order=order, seller=msg.sender, warehouse=warehouse, price=price)
    return order

@external
def record_sale(seller: address, buyer: address, price: uint256):
    assert self.isOrder[msg.sender], "only a sale order of this factory may report a sale"
    self.buyer_order_at[buyer][self.buyer_order_count[buyer]] = msg.sender
    self.buyer_order_count[buyer] += 1
    log OrderSold(order=msg.sender, seller=seller, buyer=buyer, price=price)

@external
def record_release(seller: address, buyer: address, warehouse: address):
    assert self.isOrder[msg.sender], "only a sale order of this factory may report a release"
    log OrderReleased(order=msg.sender, seller=seller, buyer=buyer, warehouse=warehouse)
"""

CLONE = "clone"
BLUEPRINT = "blueprint"
DIRECT = "direct"


async def _deploy(ledger: Ledger, signer: Signer, init_code: bytes) -> tuple[str, int]:
    receipt = await ledger.transactor(signer).deploy(init_code)
    assert receipt.contract_address is not None
    return receipt.contract_address, receipt.gas_used


async def _factory(
    ledger: Ledger, deployer: Signer, variant: str, rows: dict[str, float]
) -> SaleOrderFactory:
    """Deploy one design's blueprint and factory; the wrapper drives both (same ABI)."""
    if variant == CLONE:
        order = compile_contract(SALE_ORDER)
        factory = compile_contract(SALE_ORDER_FACTORY)
        factory_row = "clone: deploy the factory and its implementation (once per chain)"
    else:
        order = compile_source("blueprint_order", BLUEPRINT_ORDER)
        factory = compile_source("blueprint_factory", BLUEPRINT_FACTORY)
        factory_row = "blueprint: deploy the factory, list views left out (once per chain)"
    blueprint, rows[f"{variant}: deploy the blueprint (once per chain)"] = await _deploy(
        ledger, deployer, blueprint_deploy_code(order.bytecode)
    )
    address, rows[factory_row] = await _deploy(
        ledger, deployer, factory.bytecode + abi_encode(["address"], [blueprint])
    )
    return SaleOrderFactory(Contract(ledger, address, factory.abi), order_abi=order.abi)


async def _gas(ledger: Ledger) -> dict[str, float]:
    deployer, seller, buyer, warehouse, other_seller = (ledger.dev_signer(i) for i in range(5))
    rows: dict[str, float] = {}
    factories = {v: await _factory(ledger, deployer, v, rows) for v in (CLONE, BLUEPRINT)}
    orders: dict[str, SaleOrder] = {}
    for variant, factory in factories.items():
        # a fresh seller per design, so "first order" is each design's first for that seller
        first_seller = ledger.dev_signer(5 if variant == CLONE else 6)
        for label, who in (
            ("seller's first order", first_seller),
            ("a further order", other_seller),
        ):
            receipt = await factory.contract.transact(who, "create", *ITEM, warehouse.address)
            rows[f"create via factory ({variant}), {label}"] = receipt.gas_used
        orders[variant] = await factory.with_signer(seller).create(*ITEM, warehouse.address)
    order_artifact = compile_contract(SALE_ORDER)
    types = ["string", "string", "uint256", "uint256", "string", "address", "address"]
    direct_at, rows["deploy the order directly (no factory)"] = await _deploy(
        ledger,
        seller,
        order_artifact.bytecode + abi_encode(types, [*ITEM, seller.address, warehouse.address]),
    )
    orders[DIRECT] = SaleOrder(Contract(ledger, direct_at, order_artifact.abi))
    previous = compile_source("blueprint_order", BLUEPRINT_ORDER)
    previous_args = abi_encode(
        [*types, "address"], [*ITEM, seller.address, warehouse.address, ZERO]
    )
    _, rows["deploy the previous order contract directly (no factory)"] = await _deploy(
        ledger, seller, previous.bytecode + previous_args
    )
    implementation = str(await factories[CLONE].contract.call("IMPLEMENTATION"))
    rows["code of an order, clone (bytes)"] = len(await ledger.code(orders[CLONE].address))
    rows["code of the implementation, clone (bytes)"] = len(await ledger.code(implementation))
    rows["code of an order, blueprint incl. immutables (bytes)"] = len(
        await ledger.code(orders[BLUEPRINT].address)
    )
    for variant, order in orders.items():
        rows[f"buy(), {variant}"] = (await order.with_signer(buyer).buy()).gas_used
    verify = "verifyOwnership sent as a transaction"
    for variant, order in orders.items():
        data = order.contract.encode("verifyOwnership", buyer.address)
        receipt = await ledger.transactor(warehouse).transact(ContractCall(order.address, data))
        rows[f"{verify}, {variant}"] = receipt.gas_used
    for variant, order in orders.items():
        receipt = await order.with_signer(warehouse).release(buyer.address)
        rows[f"release(buyer), {variant}"] = receipt.gas_used
    rows["what DELEGATECALL adds: verifyOwnership, clone - direct"] = (
        rows[f"{verify}, {CLONE}"] - rows[f"{verify}, {DIRECT}"]
    )
    for operation in ("buy()", "release(buyer)"):
        rows[f"{operation}: clone - blueprint"] = (
            rows[f"{operation}, {CLONE}"] - rows[f"{operation}, {BLUEPRINT}"]
        )
    return rows


async def _latency(ledger: Ledger, calls: int) -> tuple[dict[str, float], list[float]]:
    deployer, seller, buyer, warehouse = (ledger.dev_signer(i) for i in range(4))
    factory = await SaleOrderFactory.open(ledger, deployer)
    order = await factory.with_signer(seller).create(*ITEM, warehouse.address)
    await order.with_signer(buyer).buy()
    door = order.with_signer(warehouse)
    for _ in range(20):
        assert await door.verify_ownership(buyer.address)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await door.verify_ownership(buyer.address)
        samples.append((time.perf_counter() - started) * 1000)
    ordered = sorted(samples)
    rows = {
        "verifyOwnership eth_call on a clone, median (ms)": statistics.median(samples),
        "verifyOwnership eth_call on a clone, p95 (ms)": ordered[int(0.95 * (len(ordered) - 1))],
    }
    return rows, samples


async def run(
    backends: list[str], calls: int
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]]]:
    by_backend: dict[str, dict[str, float]] = {}
    samples: dict[str, list[float]] = {}
    for backend in backends:
        home = Path(tempfile.mkdtemp(prefix="sale-order-gas-"))
        settings = replace(Settings(home=home), backend=cast(BackendName, backend))
        ledger = await open_ledger(settings, persist=False)
        try:
            gas = await _gas(ledger)
            latency, samples[backend] = await _latency(ledger, calls)
            by_backend[backend] = gas | latency
        finally:
            await ledger.close()
    return by_backend, samples


def _plot(by_backend: dict[str, dict[str, float]], samples: dict[str, list[float]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(by_backend)
    first = by_backend[backends[0]]
    operations = ("create", "buy()", "release(buyer)")
    variants = {CLONE: "#4c72b0", BLUEPRINT: "#999999", DIRECT: "#dd8452"}
    labels = {CLONE: "clone (ours)", BLUEPRINT: "blueprint (previous design)", DIRECT: "direct"}

    def key(operation: str, variant: str) -> str:
        if operation != "create":
            return f"{operation}, {variant}"
        if variant == DIRECT:
            return "deploy the order directly (no factory)"
        return f"create via factory ({variant}), a further order"

    figure, (gas_axes, latency_axes) = plt.subplots(
        1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]}
    )
    width = 0.27
    for offset, (variant, color) in enumerate(variants.items()):
        xs = [i + (offset - 1) * width for i in range(len(operations))]
        values = [first[key(o, variant)] / 1000 for o in operations]
        bars = gas_axes.bar(xs, values, width, label=labels[variant], color=color)
        gas_axes.bar_label(bars, fmt="%.0fk", fontsize=8)
    gas_axes.set_xticks(
        range(len(operations)), [f"{o} (further order)" if o == "create" else o for o in operations]
    )
    gas_axes.set_ylabel("gas used (thousands)")
    gas_axes.set_title(f"one contract per sale order ({backends[0]}; paper 004: not reported)")
    gas_axes.legend()
    latency_axes.boxplot([samples[b] for b in backends], tick_labels=backends, showfliers=False)
    latency_axes.set_ylabel("verifyOwnership eth_call on a clone (ms)")
    latency_axes.set_title('the door\'s ownership check (paper 004: "fast")', fontsize=10)
    figure.tight_layout()
    path = RESULTS / "sale_order_gas.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="embedded,anvil")
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("embedded", "anvil")]
    if unknown or not backends:
        parser.error(f"--backends takes embedded and/or anvil, not {', '.join(unknown)}")
    if args.calls < 20:
        parser.error("--calls must be at least 20")
    by_backend, samples = asyncio.run(run(backends, args.calls))
    rows = list(by_backend[backends[0]])
    RESULTS.mkdir(exist_ok=True)
    csv_path = RESULTS / "sale_order_gas.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["operation", *backends, "paper 004"])
        for row in rows:
            writer.writerow([row, *(round(by_backend[b][row], 3) for b in backends), NOT_REPORTED])
    width = max(len(r) for r in rows)
    print(f"{'operation':<{width}}  " + "  ".join(f"{b:>10}" for b in backends) + "  paper 004")
    for row in rows:
        values = [by_backend[b][row] for b in backends]
        shown = [f"{v:>10.2f}" if "(ms)" in row else f"{int(v):>10,}" for v in values]
        print(f"{row:<{width}}  " + "  ".join(shown) + f"  {NOT_REPORTED}")
    print("paper 004 gives no gas or latency figures (section 6 shows functional Tables 2-4 only)")
    print(f"wrote {csv_path} and {_plot(by_backend, samples)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
