"""``pervasive demo dataexchange``: paper 003's fast cross-chain IoT data exchange.

On the configured chain as the user chain B_u (the embedded one by default) and a
second chain as the data chain B_d (a second chain of the same backend with its own
chain id, or ``--data-chain litecoin`` for a real litecoind in regtest), with an MQTT
broker of its own: a 4-member notary committee runs its DKG and deploys its contracts,
C and P lock deposits, P's thermometer feeds P's data exchange system, C buys the
data three times without waiting for any confirmation, then a provider that takes
the payment and withholds the index is challenged and punished. Tables (timeline,
deposits, gas) and a PNG chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from pervasive.cli.session import demo_platform, run, state_of

if TYPE_CHECKING:
    from pervasive.apps.dataexchange.scenario import DataExchangeReport

__all__ = ["dataexchange"]

_ETHER = 10**18
_DEMO_PASSWORD = "pervasive data-exchange demo"  # noqa: S105 - the demo's own local CA


def _tables(report: DataExchangeReport) -> list[Table]:
    setup = Table(title="Setup (paper 003, V-A)")
    setup.add_column("")
    setup.add_column("")
    rows = [
        ("committee", f"n = {report.members}, t = {report.threshold}"),
        ("DKG (eq. 2-5)", f"{report.dkg_seconds:.2f} s to every member holding its share"),
        ("group key PK", report.group_key[:26] + "…"),
        ("DKG transcript", report.transcript or "-"),
        ("notary C_sp", report.notary),
        ("chains", f"B_u {report.user_chain}, B_d {report.data_chain}"),
    ]
    for key, value in rows:
        setup.add_row(key, value)
    timeline = Table(title="Timeline")
    for column in ("t (s)", "step", "detail"):
        timeline.add_column(column, justify="right" if column == "t (s)" else "left")
    for step in report.steps:
        timeline.add_row(f"{step.at:.2f}", step.what, step.detail)
    exchanges = Table(title="Honest exchanges: C asks -> C holds the data (no confirmation)")
    for column in ("#", "pay (ms)", "index (ms)", "data (ms)", "total (ms)"):
        exchanges.add_column(column, justify="right")
    for i, e in enumerate(report.exchanges, 1):
        exchanges.add_row(
            str(i), *(f"{e[k] * 1000:.1f}" for k in ("pay", "index", "data", "total"))
        )
    deposits = Table(title="Deposits in C_sp (ETH)")
    for column in ("party", "before", "after", "change"):
        deposits.add_column(column, justify="right")
    for party in report.deposits_before:
        before, after = report.deposits_before[party], report.deposits_after.get(party, 0)
        deposits.add_row(
            party, f"{before / _ETHER:.6f}", f"{after / _ETHER:.6f}",
            f"{(after - before) / _ETHER:+.6f}",
        )  # fmt: skip
    gas = Table(title="Gas")
    gas.add_column("transaction")
    gas.add_column("gas", justify="right")
    for name, used in report.gas.items():
        gas.add_row(name, f"{used:,}")
    return [setup, timeline, exchanges, deposits, gas]


def dataexchange(
    ctx: typer.Context,
    *,
    data_chain: Annotated[
        str, typer.Option(help="The data chain B_d: 'evm' (a second chain) or 'litecoin'.")
    ] = "evm",
    exchanges: Annotated[int, typer.Option(help="Honest exchanges to run.")] = 3,
    publish_window: Annotated[
        int, typer.Option(help="T: seconds P has to post the index after a payment.")
    ] = 5,
    chart: Annotated[
        Path | None, typer.Option(help="PNG to write (default <home>/dataexchange/chart.png).")
    ] = None,
) -> None:
    """Run paper 003's case study: DKG, deposits, fast exchanges, a challenge and a penalty.

    Example: ``pervasive demo dataexchange --data-chain litecoin``.
    """
    from pervasive.apps.dataexchange.chart import write_chart
    from pervasive.apps.dataexchange.scenario import Step, run_dataexchange

    if data_chain not in ("evm", "litecoin"):
        raise typer.BadParameter("choose 'evm' or 'litecoin'", param_hint="--data-chain")
    kind: Literal["evm", "litecoin"] = "litecoin" if data_chain == "litecoin" else "evm"
    state = state_of(ctx)
    console: Console = state.console
    platform, root = demo_platform(state, "dataexchange", _DEMO_PASSWORD)

    def on_step(step: Step) -> None:
        console.print(f"[dim]{step.at:7.2f} s[/dim]  {step.what}", highlight=False)

    async def go() -> DataExchangeReport:
        async with platform:
            return await run_dataexchange(
                platform, root=root / "run", data=kind, exchanges=exchanges,
                publish_window=publish_window, artifacts=platform.settings.path("artifacts"),
                on_step=on_step,
            )  # fmt: skip

    report = run(go())
    for table in _tables(report):
        console.print(table)
    target = chart or root / "chart.png"
    write_chart(report, target)
    punished = report.deposits_after.get("P", 0) < report.deposits_before.get("P", 0)
    console.print(
        f"{len(report.exchanges)} exchanges, {report.readings} readings each; the withholding "
        f"provider was {'punished' if punished else 'NOT punished'}; chart written to {target}",
        highlight=False,
    )
    if not punished or not report.exchanges:
        raise typer.Exit(1)
