"""``pervasive demo smartlock``: paper 002's bicycle-lock case study, end to end.

On the configured chain (the embedded one by default) and an MQTT broker of its own
(the embedded one), it registers the rental provider and the insurer, the locks and
one intermediate node per party, creates the agreement both parties sign, funds the
provider's escrow, runs both nodes as tasks of this process (the code of
``pervasive node run``), plays a simulated month of rentals through MQTT with a
progress bar, and prints the window, the daily and monthly rental time, the premium
paid and the gas. A chart goes to a PNG.
"""

from __future__ import annotations

import collections
import datetime
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pervasive.cli.session import run, state_of

if TYPE_CHECKING:
    from pervasive.apps.smartlock.scenario import MonthReport

__all__ = ["smartlock"]

_ETHER = 10**18


def _tables(report: MonthReport) -> list[Table]:
    from pervasive.apps.smartlock.chart import raw_data_gas

    window = Table(title=f"Window w[0]: one month of every lock (z = sl = {report.window_size})")
    for column in ("locks", "messages", "T_m (h)", "rentals", "tokens", "update gas", "latency"):
        window.add_column(column, justify="right")
    latency = f"{report.latency * 1000:.0f} ms" if report.latency is not None else "-"
    window.add_row(
        str(len(report.month.locks)),
        str(report.message_count),
        f"{(report.result_seconds or 0) / 3600:.2f}",
        str(report.rentals or 0),
        str(report.tokens or 0),
        f"{report.update.gas_used:,}" if report.update else "not recorded",
        latency,
    )
    daily = Table(title="Daily rental time T_d (sum over tokens) and top token of the day")
    for column in ("day", "rental time", "tokens", "top token", "its T_d(k)"):
        daily.add_column(column, justify="right")
    per_day: dict[int, list[tuple[str, int]]] = collections.defaultdict(list)
    for token, day, seconds in report.daily_table:
        per_day[day].append((token, seconds))
    for day in sorted(per_day):
        rows = per_day[day]
        token, top = max(rows, key=lambda r: r[1])
        date = datetime.date(1970, 1, 1) + datetime.timedelta(days=day)
        total = sum(s for _, s in rows)
        daily.add_row(
            date.isoformat(), f"{total // 3600}h{total % 3600 // 60:02d}m", str(len(rows)), token,
            f"{top // 60} min",
        )  # fmt: skip
    monthly = Table(title="Month: premium from the provider's escrow to the insurer")
    for column in ("month", "T_m", "rate (wei/s)", "premium paid", "escrow left", "disputes"):
        monthly.add_column(column, justify="right")
    monthly.add_row(
        str(report.result_month or "-"),
        f"{(report.result_seconds or 0):,} s",
        f"{report.rate:,}",
        f"{report.premium_paid / _ETHER:.6f} ETH",
        f"{report.escrow_left / _ETHER:.6f} ETH",
        str(report.disputes),
    )
    gas = Table(title="Gas and messages")
    for column in ("", "transactions", "gas"):
        gas.add_column(column, justify="right")
    gas.add_row(
        "DIVERSITY update (measured)", "1", f"{report.update.gas_used:,}" if report.update else "-"
    )
    gas.add_row(
        "raw data, one tx per message (est.)",
        str(report.message_count),
        f"{raw_data_gas(report):,}",
    )
    nodes = Table(title="Intermediate nodes")
    for column in ("node", "accepted", "rejected", "protocol msgs", "bytes", "updates sent"):
        nodes.add_column(column, justify="right")
    for node in report.nodes:
        rejected = ", ".join(f"{k} {v}" for k, v in node.rejected.items()) or "0"
        nodes.add_row(
            node.id, str(node.accepted), rejected, str(node.protocol_messages),
            f"{node.protocol_bytes:,}", str(node.updates_sent),
        )  # fmt: skip
    return [window, daily, monthly, gas, nodes]


def smartlock(
    ctx: typer.Context,
    *,
    locks: Annotated[int, typer.Option(help="Bicycles (one lock each).")] = 4,
    rentals: Annotated[int, typer.Option(help="Rentals per bicycle in the month.")] = 40,
    tokens: Annotated[int, typer.Option(help="Riders' tokens.")] = 25,
    year: Annotated[int, typer.Option(help="Year of the simulated month.")] = 2026,
    month: Annotated[int, typer.Option(help="Month (1-12).")] = 3,
    rate: Annotated[int, typer.Option(help="Premium in wei per rental second.")] = 10**9,
    seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 7,
    chart: Annotated[
        Path | None, typer.Option(help="PNG to write (default <home>/smartlock/chart.png).")
    ] = None,
) -> None:
    """Run the smart-lock case study of paper 002 for one month and print the results.

    Example: ``pervasive demo smartlock --locks 4 --rentals 40``.
    """
    from pervasive.apps.smartlock.chart import write_chart
    from pervasive.apps.smartlock.scenario import demo_platform, run_month

    state = state_of(ctx)
    console: Console = state.console
    # the embedded broker logs every TLS probe of a connecting client as an error
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)

    async def go() -> MonthReport:
        async with demo_platform(state.settings) as platform:
            columns = (
                TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(),
            )  # fmt: skip
            with Progress(*columns, console=console) as progress:
                setup = progress.add_task("setting up", total=4)
                messages = progress.add_task("lock messages published", total=None)
                outcome = progress.add_task("window agreed and recorded", total=2)

                def on_setup(step: str) -> None:
                    progress.update(setup, description=step)
                    progress.advance(setup)

                def on_message(done: int, total: int) -> None:
                    progress.update(messages, completed=done, total=total)

                def on_event(event: object) -> None:
                    kind = getattr(event, "kind", "")
                    if kind in ("agreed", "recorded", "disputed"):
                        progress.advance(outcome, 0.5 if kind != "disputed" else 1)

                report = await run_month(
                    platform, year=year, month=month, locks=locks, rentals=rentals,
                    tokens=tokens, rate=rate, seed=seed,
                    artifacts=state.settings.path("artifacts"),
                    on_setup=on_setup, on_message=on_message, on_event=on_event,
                )  # fmt: skip
                progress.update(setup, completed=4, description="set up")
                progress.update(outcome, completed=2)
        return report

    report = run(go())
    for table in _tables(report):
        console.print(table)
    target = chart or state.settings.path("smartlock", "chart.png")
    write_chart(report, target)
    truth = report.month.total_seconds
    status = "matches" if report.result_seconds == truth else "DOES NOT match"
    console.print(
        f"agreement {report.agreement}: recorded T_m {status} the simulated rentals ({truth:,} s); "
        f"chart written to {target}",
        highlight=False,
    )
    if report.result_seconds != truth:
        raise typer.Exit(1)
