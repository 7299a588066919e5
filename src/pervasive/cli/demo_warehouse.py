"""``pervasive demo warehouse``: paper 004's sale order and warehouse release, end to end.

On the configured chain (the embedded one by default) with an MQTT broker, the shadow
service and the devices' JSON-RPC gateway of its own: a seller lists paper Table 2's
item, a buyer buys it and gets the signed barcode receipt (printed here as a QR code),
the warehouse door scans the receipt's PNG, checks ``verifyOwnership`` and releases
the sale through the gateway, and opens through its shadow; then receipts that must
not open the door are shown to it. Tables of the flow, the door's decisions with
their timings, the shadow's history and the gas; a PNG chart.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pervasive.cli.session import demo_platform, run, state_of

if TYPE_CHECKING:
    from pervasive.apps.salesorder.scenario import WarehouseReport

__all__ = ["warehouse"]

_DEMO_PASSWORD = "pervasive warehouse demo"  # noqa: S105 - the demo's own local CA
_ETHER = 10**18


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _tables(report: WarehouseReport) -> list[Table]:
    timeline = Table(title="Flow (paper 004, sections 4.1-4.8)")
    for column in ("t (s)", "step", "detail"):
        timeline.add_column(column, justify="right" if column == "t (s)" else "left")
    for step in report.steps:
        timeline.add_row(f"{step.at:.2f}", step.what, escape(step.detail))
    scans = Table(title="At the warehouse door (paper Table 4 and more); times in ms")
    for column in ("#", "receipt shown", "door", "verify", "release", "open", "scan to open"):
        scans.add_column(column, justify="left" if column in ("receipt shown", "door") else "right")
    for number, scan in enumerate(report.scans, 1):
        d, t = scan.decision, scan.decision.timings
        decoded = t.decoded or 0.0
        scans.add_row(
            str(number),
            scan.shown,
            "[green]open[/green]" if d.opened else "[red]refused[/red]",
            _ms(t.verified - decoded if t.verified is not None else None),
            _ms(t.released - (t.verified or decoded) if t.released is not None else None),
            _ms(t.reported_open - (t.released or decoded) if t.reported_open is not None
                else None),
            _ms(t.scan_to_open),
        )  # fmt: skip
    shadow = Table(title=f"Shadow of the door (desired -> delta -> reported), {len(report.shadow)}"
                   " stored changes")  # fmt: skip
    for column in ("version", "desired door", "reported door"):
        shadow.add_column(column, justify="right" if column == "version" else "left")
    for version, desired, reported in report.shadow:
        shadow.add_row(str(version), str(desired or "-"), str(reported or "-"))
    gas = Table(title="Gas")
    gas.add_column("transaction")
    gas.add_column("gas", justify="right")
    for name, used in report.gas.items():
        gas.add_row(name, f"{used:,}")
    gateway = Table(title="Gateway calls")
    gateway.add_column("outcome")
    gateway.add_column("calls", justify="right")
    for outcome, count in sorted(report.gateway_counters.items()):
        gateway.add_row(outcome, str(count))
    return [timeline, scans, shadow, gas, gateway]


def warehouse(
    ctx: typer.Context,
    *,
    hold: Annotated[float, typer.Option(help="Seconds the door stays open.")] = 0.5,
    chart: Annotated[
        Path | None, typer.Option(help="PNG to write (default <home>/warehouse/chart.png).")
    ] = None,
) -> None:
    """Run paper 004's case study: list, buy, QR receipt, scan, release, door opens once.

    Example: ``pervasive demo warehouse`` (``--backend anvil`` for a real node).
    """
    from pervasive.apps.salesorder.chart import write_chart
    from pervasive.apps.salesorder.scenario import Step, run_warehouse

    state = state_of(ctx)
    console: Console = state.console
    platform, root = demo_platform(state, "warehouse", _DEMO_PASSWORD)

    def on_step(step: Step) -> None:
        console.print(f"[dim]{step.at:6.2f} s[/dim]  {step.what}", highlight=False)

    # the chain is thrown away after each run: so is the door's journal of its releases
    shutil.rmtree(root / "run", ignore_errors=True)

    async def go() -> WarehouseReport:
        async with platform:
            return await run_warehouse(platform, root=root / "run", hold=hold, on_step=on_step)

    report = run(go())
    console.print(f"\nThe buyer's barcode receipt ({len(report.receipt)} characters: "
                  "PVR1:chain:order:buyer:signature):", highlight=False)  # fmt: skip
    console.print(report.qr, highlight=False, markup=False)
    console.print(report.receipt, highlight=False, markup=False, soft_wrap=True)
    tables = _tables(report)
    for table in tables[:2]:
        console.print(table)
    for number, scan in enumerate(report.scans, 1):  # what the person at the door read
        console.print(f"  #{number} {escape(scan.decision.message)}", highlight=False)
    for table in tables[2:]:
        console.print(table)
    target = chart or root / "chart.png"
    write_chart(report, target)
    opened = [s for s in report.scans if s.decision.opened]
    console.print(
        f"the seller received {report.seller_gain / _ETHER:g} ETH; the door opened "
        f"{len(opened)} time(s) for {len(report.scans)} receipts shown; chart written to "
        f"{escape(str(target))}",
        highlight=False,
    )
    if len(opened) != 1 or not report.scans[0].decision.opened:
        raise typer.Exit(1)
