"""Paper 004's sale order on our contracts: gas of create, buy and release; verifyOwnership latency.

Setup: a fresh chain per backend (``persist=False``; embedded py-evm and anvil by
default). Development account 0 deploys the ERC-5202 blueprint and the factory
(``SaleOrderFactory.open``); sellers, buyers and the warehouse are development accounts.
Every gas figure is the receipt's ``gas_used`` (21,000 base and calldata included).

Rows:
- deploying the blueprint and the factory (once per chain);
- ``create`` through the factory (blueprint): a seller's first order (its counter slot goes
  from zero to one) and a further one;
- deploying the same order contract directly (init code in the transaction, no factory:
  not listed, no ``OrderCreated``), the comparison the blueprint is for;
- ``buy()`` and ``release(buyer)`` of a factory order (each also updates the factory's
  lists and logs its event) and of the directly deployed order;
- ``verifyOwnership(buyer)`` as the warehouse device calls it: the ``eth_call`` round trip
  through the wrapper (median and 95th percentile over ``--calls`` calls, after 20 warm-up
  calls), and the gas the call would use (``eth_estimateGas``).

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

from pervasive.chain import Ledger, Signer, open_ledger
from pervasive.config import BackendName, Settings
from pervasive.contracts import (
    Contract,
    SaleOrder,
    SaleOrderFactory,
    blueprint_deploy_code,
    compile_contract,
)
from pervasive.contracts.sale_order import SALE_ORDER, SALE_ORDER_FACTORY
from pervasive.crypto import abi_encode

RESULTS = Path(__file__).resolve().parent / "results"
PRICE = 50 * 10**18  # paper 004, Table 2: "Price-50ETH"
ITEM = ("Tesla", "alpha", 2019, PRICE, "4AA6")  # Table 2's model, year, price and number
ZERO = "0x" + "00" * 20
NOT_REPORTED = "not reported"


async def _deploy(ledger: Ledger, signer: Signer, init_code: bytes) -> tuple[str, int]:
    receipt = await ledger.transactor(signer).deploy(init_code)
    assert receipt.contract_address is not None
    return receipt.contract_address, receipt.gas_used


async def _gas(ledger: Ledger) -> dict[str, float]:
    deployer, seller, buyer, warehouse, other_seller = (ledger.dev_signer(i) for i in range(5))
    rows: dict[str, float] = {}
    order_artifact = compile_contract(SALE_ORDER)
    factory_artifact = compile_contract(SALE_ORDER_FACTORY)
    blueprint, rows["deploy the blueprint (once per chain)"] = await _deploy(
        ledger, deployer, blueprint_deploy_code(order_artifact.bytecode)
    )
    factory_at, rows["deploy the factory (once per chain)"] = await _deploy(
        ledger, deployer, factory_artifact.bytecode + abi_encode(["address"], [blueprint])
    )
    factory = SaleOrderFactory(
        Contract(ledger, factory_at, factory_artifact.abi), order_abi=order_artifact.abi
    )

    async def create(seller: Signer) -> tuple[str, int]:
        receipt = await factory.contract.transact(seller, "create", *ITEM, warehouse.address)
        [created] = factory.contract.events(receipt, "OrderCreated")
        return str(created.args["order"]), receipt.gas_used

    _, rows["create via factory (blueprint), seller's first order"] = await create(other_seller)
    order_at, rows["create via factory (blueprint), a further order"] = await create(other_seller)
    rows["order runtime code incl. immutables (bytes)"] = len(await ledger.code(order_at))

    types = ["string", "string", "uint256", "uint256", "string", "address", "address", "address"]
    args = [*ITEM, seller.address, warehouse.address, ZERO]
    direct_at, rows["deploy the order directly (no factory)"] = await _deploy(
        ledger, seller, order_artifact.bytecode + abi_encode(types, args)
    )

    order = factory.order((await create(seller))[0])
    rows["buy(), factory order"] = (await order.with_signer(buyer).buy()).gas_used
    rows["release(buyer), factory order"] = (
        await order.with_signer(warehouse).release(buyer.address)
    ).gas_used
    alone = SaleOrder(Contract(ledger, direct_at, order_artifact.abi))
    rows["buy(), order deployed directly"] = (await alone.with_signer(buyer).buy()).gas_used
    rows["release(buyer), order deployed directly"] = (
        await alone.with_signer(warehouse).release(buyer.address)
    ).gas_used
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
    data = order.contract.encode("verifyOwnership", buyer.address)
    estimate = await ledger.estimate_gas(warehouse.address, order.address, data)
    ordered = sorted(samples)
    rows = {
        "verifyOwnership eth_call, median (ms)": statistics.median(samples),
        "verifyOwnership eth_call, p95 (ms)": ordered[int(0.95 * (len(ordered) - 1))],
        "verifyOwnership gas if sent (eth_estimateGas)": estimate,
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
    operations = [
        ("create (factory)", "create via factory (blueprint), a further order"),
        ("deploy directly", "deploy the order directly (no factory)"),
        ("buy()", "buy(), factory order"),
        ("release()", "release(buyer), factory order"),
    ]
    figure, (gas_axes, latency_axes) = plt.subplots(1, 2, figsize=(11, 4.5))
    labels = [label for label, _ in operations]
    values = [first[key] / 1000 for _, key in operations]
    bars = gas_axes.bar(labels, values, color=["#4c72b0", "#999999", "#55a868", "#c44e52"])
    gas_axes.bar_label(bars, fmt="%.0fk")
    gas_axes.set_ylabel("gas used (thousands)")
    gas_axes.set_title(f"sale order gas ({backends[0]}; paper 004: not reported)")
    latency_axes.boxplot([samples[b] for b in backends], tick_labels=backends, showfliers=False)
    latency_axes.set_ylabel("verifyOwnership eth_call (ms)")
    latency_axes.set_title('the door\'s ownership check (paper 004: "fast")')
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
