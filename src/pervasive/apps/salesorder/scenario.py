"""Paper 004's case study end to end: a sale order, a purchase, a receipt, a warehouse door.

The run (``pervasive demo warehouse``) goes through the real parts of a
:class:`~pervasive.platform.Platform`: the chain, the MQTT broker, the shadow service
and the devices' JSON-RPC gateway. Section by section:

- 4.1-4.3: the seller creates a sale order with paper Table 2's data (model alpha, year
  2019, 50 ETH, number 4AA6), naming the warehouse account that may release it;
- 4.4: the buyer buys it; the price moves to the seller; the buyer signs the barcode
  receipt (contract, buyer) and it is drawn as a QR code (PNG, and in the terminal);
- 4.5-4.8: the warehouse door, a device with a certificate of the platform CA and the
  gateway role ``warehouse``, scans the PNG, checks the signature, asks
  ``verifyOwnership`` through the gateway, releases the sale on-chain, and opens
  through its shadow (desired ``open`` -> delta -> actuator -> reported ``open``), then
  closes again;
- Table 4 and more: a receipt made by someone else for the same order, a tampered one
  and the same receipt shown a second time are refused with their reasons.

Example::

    async with Platform(settings, password="pw", persist=False) as platform:
        report = await run_warehouse(platform, root=Path("run"))
    print(report.decisions[0].timings.scan_to_open)
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.apps.salesorder.barcode import render_png, render_terminal
from pervasive.apps.salesorder.decision import DoorDecision
from pervasive.apps.salesorder.door import Door
from pervasive.apps.salesorder.journal import ReleaseJournal
from pervasive.apps.salesorder.warehouse import WarehouseDoor
from pervasive.chain import ContractCall, Ledger, Signer
from pervasive.crypto import PrivateKey
from pervasive.domain import SaleReceipt
from pervasive.gateway import RoleBook, open_gateway_ledger, roles_file
from pervasive.messaging import MqttClient
from pervasive.platform import Platform
from pervasive.shadow import ShadowRecord

__all__ = ["DOOR", "ITEM", "Scan", "Step", "WarehouseReport", "run_warehouse"]

ITEM = ("Acme", "alpha", 2019, 50 * 10**18, "4AA6")
"""Make, model, year, price (wei) and serial number: paper 004 Table 2's sale order."""
DOOR = "warehouse-door-1"
"""The door's device id: certificate CN and shadow name."""


@dataclass(frozen=True)
class Step:
    """One step of the run: seconds since the start, what happened, the detail."""

    at: float
    what: str
    detail: str


@dataclass(frozen=True)
class Scan:
    """A receipt shown at the door and the door's decision."""

    shown: str
    decision: DoorDecision


@dataclass
class WarehouseReport:
    """What the run did and measured."""

    chain_id: int
    order: str
    seller: str
    buyer: str
    warehouse: str
    gateway: str
    receipt: str
    """The receipt's QR payload (``SaleReceipt.encode()``)."""
    qr: str
    """The receipt as a terminal QR code."""
    receipt_png: Path
    steps: list[Step] = field(default_factory=list)
    scans: list[Scan] = field(default_factory=list)
    gas: dict[str, int] = field(default_factory=dict)
    shadow: list[tuple[int, object, object]] = field(default_factory=list)
    """Each stored change of the door's shadow: (version, desired door, reported door)."""
    seller_gain: int = 0
    """Wei the seller's balance grew by from the sale."""
    gateway_counters: dict[str, int] = field(default_factory=dict)


async def run_warehouse(
    platform: Platform,
    *,
    root: Path,
    hold: float = 0.5,
    on_step: Callable[[Step], None] | None = None,
) -> WarehouseReport:
    """Run the case study on ``platform``'s chain, broker, shadow service and gateway.

    ``root`` receives the receipt PNG and the door's release journal; ``hold`` is how
    long the door stays open; ``on_step`` sees each step as it happens.
    """
    run = _Run(time.perf_counter(), on_step)
    root.mkdir(parents=True, exist_ok=True)
    await platform.start("ledger", "broker", "shadow", "gateway")
    ledger = await platform.ledger()
    history: list[tuple[int, object, object]] = []

    def record(change: ShadowRecord) -> None:
        if change.key.thing == DOOR:
            history.append((change.version, change.desired.get("door"),
                            change.reported.get("door")))  # fmt: skip

    (await platform.shadow()).service.add_listener(record)
    gateway = await platform.gateway()
    factory = await platform.sale_orders()
    run.step("platform", f"chain {ledger.chain_id} ({ledger.kind}), broker, shadow service, "
                         f"gateway {gateway.url}, factory {factory.address}")  # fmt: skip
    warehouse = Signer.generate()
    funding = ContractCall(to=warehouse.address, data=b"", value=10**17)
    await ledger.transactor(ledger.dev_signer(0)).transact(funding)
    RoleBook.open(roles_file(platform.root)).assign(DOOR, "warehouse")
    run.step("door registered", f"{DOOR}: certificate of the platform CA, role warehouse, "
                                f"account {warehouse.address} (0.1 ETH)")  # fmt: skip
    report = await _sell(platform, run, warehouse, root)
    report.gateway, report.shadow = gateway.url, history
    await _show_receipts(platform, run, report, warehouse, hold=hold)
    report.gateway_counters = dict(gateway.counters)
    return report


@dataclass
class _Run:
    started: float
    on_step: Callable[[Step], None] | None
    steps: list[Step] = field(default_factory=list)

    def step(self, what: str, detail: str) -> None:
        entry = Step(time.perf_counter() - self.started, what, detail)
        self.steps.append(entry)
        if self.on_step is not None:
            self.on_step(entry)


async def _sell(platform: Platform, run: _Run, warehouse: Signer, root: Path) -> WarehouseReport:
    """Sections 4.1-4.4: the seller lists, the buyer buys and signs the receipt."""
    ledger = await platform.ledger()
    factory = await platform.sale_orders()
    seller, buyer = ledger.dev_signer(1), ledger.dev_signer(2)
    make, model, year, price, serial = ITEM
    order = await factory.with_signer(seller).create(make, model, year, price, serial,
                                                     warehouse.address)  # fmt: skip
    created = await factory.events(await ledger.block_number())  # the block of the creation
    gas = {"create (EIP-1167 clone)": await _gas(ledger, created[-1].tx_hash)}
    run.step("4.1 seller lists", f"order {order.address}: {make} {model} {year}, 50 ETH, "
                                 f"number {serial}, released at {warehouse.address}")  # fmt: skip
    before = await ledger.balance(seller.address)
    bought = await order.with_signer(buyer).buy()
    gas["buy"] = bought.gas_used
    receipt = SaleReceipt.sign(PrivateKey(buyer.private_key), ledger.chain_id, order.address,
                               buyer.address)  # fmt: skip
    png = root / "receipt.png"
    png.write_bytes(render_png(receipt.encode()))
    run.step("4.4 buyer buys", f"{buyer.address} paid 50 ETH to the seller in block "
                               f"{bought.block_number}; receipt signed (EIP-712): "
                               f"{png}")  # fmt: skip
    return WarehouseReport(
        ledger.chain_id, order.address, seller.address, buyer.address, warehouse.address,
        "", receipt.encode(), render_terminal(receipt.encode()), png, steps=run.steps, gas=gas,
        seller_gain=await ledger.balance(seller.address) - before,
    )  # fmt: skip


async def _show_receipts(
    platform: Platform, run: _Run, report: WarehouseReport, warehouse: Signer, *, hold: float
) -> None:
    """Sections 4.5-4.8 and Table 4: the door scans good and bad receipts."""
    ledger = await platform.ledger()
    stranger = ledger.dev_signer(3)
    receipt = SaleReceipt.decode(report.receipt)
    forged = SaleReceipt.sign(PrivateKey(stranger.private_key), ledger.chain_id, report.order,
                              stranger.address)  # fmt: skip
    tampered = dataclasses.replace(receipt, buyer=stranger.address)
    options = platform.client_options(DOOR)
    async with contextlib.AsyncExitStack() as stack:
        door_ledger = await open_gateway_ledger(report.gateway, options.credentials,
                                                platform.settings)  # fmt: skip
        stack.push_async_callback(door_ledger.close)
        journal = ReleaseJournal.open(report.receipt_png.parent / f"{DOOR}-releases.sqlite")
        stack.callback(journal.close)
        door = WarehouseDoor(DOOR, door_ledger, warehouse, journal, door=Door(), hold=hold,
                             artifacts=platform.settings.path("artifacts"))  # fmt: skip
        client = await stack.enter_async_context(MqttClient(options))
        await door.start(client)
        stack.push_async_callback(door.stop)
        run.step("door online", f"{DOOR} follows its shadow and reaches the chain only "
                                "through the gateway")  # fmt: skip
        png = report.receipt_png.read_bytes()
        shown: list[tuple[str, Callable[[], Awaitable[DoorDecision]]]] = [
            ("the buyer's receipt (PNG)", lambda: door.scan(png)),
            ("a stranger's receipt for the order", lambda: door.scan_text(forged.encode())),
            ("the receipt with its buyer changed", lambda: door.scan_text(tampered.encode())),
            ("the buyer's receipt again", lambda: door.scan(png)),
        ]
        for label, scan in shown:
            decision = await scan()
            report.scans.append(Scan(label, decision))
            run.step("4.7-4.8 door", f"{label}: {decision.decision}: {decision.message}")
            if decision.opened and decision.tx_hash:
                report.gas["release"] = await _gas(ledger, decision.tx_hash)
                await door.door.wait_closed()
                run.step("4.8 door closed", "desired closed -> delta -> actuator -> reported "
                                            "closed")  # fmt: skip


async def _gas(ledger: Ledger, tx_hash: str) -> int:
    receipt = await ledger.receipt(tx_hash)
    return receipt.gas_used if receipt is not None else 0
