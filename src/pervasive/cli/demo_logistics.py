"""``pervasive demo logistics``: paper 001's Fig. 1, three pervasive contracts end to end.

On the configured chain (the embedded one by default) with an MQTT broker of its own
(the embedded one): the oracle hub with three oracle nodes (t = 2), the Shipping,
AssetTracking and Payment pervasive contracts deployed from their spec files and run
as services, a local ``ShipmentCost?device=VerticalPump`` service, and two simulated
devices. Shipping gets its cost through the oracle; the container travels to the
retailer and ``sendMoney`` pays the carrier once; the container confirms the delivery
while offline and the confirmation reaches Payment later from its outbox, which pays
the supplier. Tables of the steps, payments, the oracle round trip, the CloudEvents
stream and the gas; a PNG timeline and the stream as JSON lines in ``--out``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pervasive.cli.session import demo_platform, run, run_until_stopped, state_of

if TYPE_CHECKING:
    from pervasive.apps.logistics.report import LogisticsReport

__all__ = ["logistics"]

_DEMO_PASSWORD = "pervasive logistics demo"  # noqa: S105 - the demo's own local CA
_ETHER = 10**18


def _eth(wei: int) -> str:
    return f"{wei / _ETHER:.6f} ETH"


def _tables(report: LogisticsReport) -> list[Table]:
    steps = Table(title="Steps (paper 001, Fig. 1)")
    for column in ("t (s)", "party", "step", "detail"):
        steps.add_column(column, justify="right" if column == "t (s)" else "left")
    for step in report.steps:
        steps.add_row(f"{step.at:.2f}", step.party, step.what, escape(step.detail))
    payments = Table(title="Payments")
    for column in ("payment", "from", "to", "amount", "payee received", "block"):
        payments.add_column(column, justify="right" if column in ("amount", "block") else "left")
    for p in report.payments:
        payments.add_row(p.what, p.payer, p.payee, _eth(p.amount), _eth(p.received), str(p.block))
    oracle = Table(title="Oracle round trip (query transaction -> stored answer)")
    oracle.add_column("")
    oracle.add_column("")
    if report.oracle is not None:
        o = report.oracle
        rows = [
            ("query", f"#{o.query_id}: GET {o.source} (path 'cost')"),
            ("answer", f"{o.cost:,} wei ({_eth(o.cost)}), stored in Shipping's C_d"),
            ("proof", f"{o.signers} signatures of {o.oracles} registered oracles verified "
                      f"on-chain (t = {o.threshold})"),
            ("response digest", o.digest),
            ("round trip", f"{o.seconds * 1000:.0f} ms (block {o.query_block} -> "
                           f"{o.answer_block})"),
            ("service fetches", str(o.fetches)),
            ("callback transaction gas", f"{o.callback_gas:,}"),
        ]  # fmt: skip
        for key, value in rows:
            oracle.add_row(key, escape(value))
    stream = Table(title=f"CloudEvents received over MQTT ({len(report.events)}, in chain order)")
    for column in ("id", "type", "service", "subject", "t (s)"):
        stream.add_column(column, justify="right" if column == "t (s)" else "left")
    for event in report.events:
        stream.add_row(event.id, event.type, event.service, event.subject or "-", f"{event.at:.2f}")
    by_type = Table(title="CloudEvents by type")
    by_type.add_column("type")
    by_type.add_column("events", justify="right")
    for event_type, count in report.events_by_type().items():
        by_type.add_row(event_type, str(count))
    gas = Table(title="Gas")
    gas.add_column("transaction")
    gas.add_column("gas", justify="right")
    for name, used in report.gas.items():
        gas.add_row(name, f"{used:,}")
    return [steps, payments, oracle, stream, by_type, gas]


def logistics(
    ctx: typer.Context,
    *,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the timeline PNG and the CloudEvents (default <home>/logistics)."
        ),
    ] = None,
    web: Annotated[
        bool,
        typer.Option(
            "--web",
            help="Serve the live dashboard (port [web] port) while the case study runs, and "
            "keep serving it afterwards until Ctrl-C.",
        ),
    ] = False,
) -> None:
    """Run paper 001's logistics case study: oracle cost, sendMoney once, late delivery, payment.

    Example: ``pervasive demo logistics --out ./logistics``.
    """
    from pervasive.apps.logistics.chart import write_chart
    from pervasive.apps.logistics.report import Step
    from pervasive.apps.logistics.scenario import run_logistics

    state = state_of(ctx)
    console: Console = state.console
    platform, root = demo_platform(state, "logistics", _DEMO_PASSWORD)
    target = out or root
    # the chain is thrown away after each run: so are the services' and devices' files
    shutil.rmtree(root / "run", ignore_errors=True)

    def on_step(step: Step) -> None:
        console.print(
            f"[dim]{step.at:6.2f} s[/dim]  [bold]{escape(step.party)}[/bold]  {escape(step.what)}",
            highlight=False,
        )

    def finish(report: LogisticsReport) -> bool:
        """Print the tables, write the chart and the stream; True when each paid once."""
        for table in _tables(report):
            console.print(table)
        chart = write_chart(report, target / "timeline.png")
        stream = target / "cloudevents.jsonl"
        lines = [
            {"id": e.id, "type": e.type, "source": e.source, "subject": e.subject, "data": e.data}
            for e in report.events
        ]
        stream.write_text("".join(json.dumps(line) + "\n" for line in lines))
        sent = report.send_money_calls
        released = [p for p in report.payments if p.what.startswith("payment")]
        console.print(
            f"sendMoney paid the carrier {sent} time(s) over {report.co_located_readings} "
            f"co-located readings; the supplier was paid {len(released)} time(s) after the "
            f"container was offline {report.offline_seconds:.1f} s; {len(report.events)} "
            f"CloudEvents in {report.duration:.1f} s; timeline {escape(str(chart))}, stream "
            f"{escape(str(stream))}",
            highlight=False,
        )
        return sent == 1 and len(released) == 1

    async def go() -> bool:
        async with platform:
            return finish(await run_logistics(platform, root=root / "run", on_step=on_step))

    async def go_with_dashboard() -> None:
        from pervasive.interop import events_path

        async with platform:
            server = await platform.web(events=events_path(root / "run"))
            console.print(
                f"live dashboard {server.url}/dashboard, CloudEvents {server.url}/events",
                highlight=False,
            )
            outcome.append(
                finish(await run_logistics(platform, root=root / "run", on_step=on_step))
            )
            console.print("still serving the dashboard; Ctrl-C stops", highlight=False)
            await asyncio.Event().wait()

    outcome: list[bool] = []
    if web:
        run_until_stopped(go_with_dashboard())
    else:
        with console.status("running the logistics case study", spinner="dots"):
            outcome.append(run(go()))
    if outcome != [True]:
        raise typer.Exit(1)
