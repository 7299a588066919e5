"""``pervasive up`` and ``pervasive status``: the local stack in one command, and a look at it.

``up`` builds a :class:`~pervasive.platform.Platform` from the settings and starts the
chain, the CA, the MQTT broker and the shadow service, prints every endpoint and the
credential files in a table, writes ``<home>/run.json`` and runs until Ctrl-C or
SIGTERM, when it stops every part and removes the run file. ``status`` reads the run
file and checks each endpoint (process alive, port connectable).

``up`` also runs the platform's CloudEvents feed (shadow changes, sale orders,
DIVERSITY agreements into ``<home>/interop/events.sqlite``, published on
``pervasive/events/#`` as ``svc:service.platform``; the services' runtimes append
theirs to the same log) and serves the devices' JSON-RPC gateway and the web app with
its live dashboard and ``/events/stream``. The embedded chain is an in-process EVM:
``up`` holds it (its web app and gateway need it), and the other commands of the same
data directory reach it through the gateway as the platform's operator while ``up``
runs (one process may run an embedded chain at a time). With ``backend = "anvil"``
``up`` runs the anvil node and prints how other commands reach it.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pervasive.cli.session import CliState, run_until_stopped, state_of
from pervasive.errors import InternalError, InvalidInput
from pervasive.platform import (
    Platform,
    RunRecord,
    check,
    read_run_record,
    run_file,
    write_run_record,
)

if TYPE_CHECKING:
    from pervasive.platform import EndpointHealth

__all__ = ["EXIT_DEGRADED", "EXIT_NOT_RUNNING", "status", "up"]

EXIT_NOT_RUNNING = 3
"""``pervasive status`` exit code when nothing runs (as LSB's *program is not running*)."""
EXIT_DEGRADED = 1
"""``pervasive status`` exit code when the stack runs but an endpoint does not answer."""


def up(
    ctx: typer.Context,
    *,
    port: Annotated[
        int | None,
        typer.Option(help="Broker TLS port (default: the mqtt_port setting; 0 picks a free one)."),
    ] = None,
) -> None:
    """Start the local stack (chain, CA, broker, shadows, events, gateway, web) until Ctrl-C.

    The chain is the configured backend (the embedded EVM by default, or anvil); the
    broker follows the ``broker`` setting (mosquitto when installed, else the embedded
    one). Every endpoint and credential path is printed, and written to
    ``<home>/run.json`` for ``pervasive status``; Ctrl-C or SIGTERM stops every part and
    removes the file. The CA key needs the platform password (PERVASIVE_PASSWORD).

    Example: ``PERVASIVE_PASSWORD=s3cret pervasive up --port 8883``.
    """
    state = state_of(ctx)
    settings = state.settings if port is None else replace(state.settings, mqtt_port=port)
    path = run_file(settings.home)
    previous = read_run_record(path)
    if previous is not None and any(h.process_alive for h in check(previous, timeout=0.2)):
        raise InvalidInput(
            f"a stack already runs from {settings.home} (pid {previous.pid}); "
            "`pervasive status` shows it, Ctrl-C in its terminal (or kill -TERM) stops it"
        )

    async def go() -> None:
        async with Platform(settings, password=state.password, shared=True) as platform:
            await platform.start("ledger", "broker", "shadow", "interop", "gateway", "web")
            record = platform.run_record()
            write_run_record(path, record)
            try:
                _print_record(state, record)
                state.console.print(
                    f"stack running from {escape(str(settings.home))}; "
                    f"run file {escape(str(path))}. Ctrl-C stops it",
                    highlight=False,
                    soft_wrap=True,
                )
                # runs until cancelled (Ctrl-C); a shadow service that fails, or a mosquitto
                # that dies, ends `up` with its error (one line) instead of leaving a stack
                # that only looks alive
                await _until_a_part_fails(platform)
            finally:
                path.unlink(missing_ok=True)

    from pervasive.gateway import loop_factory

    # the gateway's loop (uvloop where installed) runs the whole stack
    run_until_stopped(go(), loop_factory=loop_factory())
    state.console.print("stack stopped", highlight=False)


async def _until_a_part_fails(platform: Platform) -> None:
    """Wait while the shadow service serves and mosquitto (when it is the broker) runs."""
    from pervasive.messaging import MosquittoBroker

    watched: list[asyncio.Future[None]] = [(await platform.shadow()).task]
    broker = await platform.broker()
    if isinstance(broker, MosquittoBroker):
        watched.append(asyncio.ensure_future(broker.supervise()))
    try:
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in watched[1:]:  # the supervisor; the platform stops the shadow service
            task.cancel()
        await asyncio.gather(*watched[1:], return_exceptions=True)
    raise InternalError("the shadow service stopped serving without an error")


def status(
    ctx: typer.Context,
    *,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run record and checks as JSON.")
    ] = False,
) -> None:
    """Show what ``pervasive up`` runs from this data directory, and whether it answers.

    Reads ``<home>/run.json`` and checks every endpoint: its process is alive and its
    port accepts a connection. Exit code 0 when everything runs, 1 when some endpoint
    does not answer, 3 when nothing runs (no run file, or its process is gone).

    Example: ``pervasive status --json``.
    """
    state = state_of(ctx)
    home = state.settings.home
    record = read_run_record(run_file(home))
    health = check(record) if record is not None else []
    alive = record is not None and any(h.process_alive for h in health)
    if as_json:
        document = {
            "home": str(home),
            "state": _state(record, health),
            "record": asdict(record) if record is not None else None,
            "endpoints": [
                {
                    "name": h.endpoint.name,
                    "running": h.running,
                    "process_alive": h.process_alive,
                    "port_open": h.port_open,
                }
                for h in health
            ],
        }
        typer.echo(json.dumps(document, indent=2))
    elif record is None:
        state.console.print(f"stopped: nothing runs from {escape(str(home))} (no run file)")
    elif not alive:
        state.console.print(
            f"stopped: the stack started from {escape(str(home))} (pid {record.pid}) is gone; "
            f"its stale run file {escape(str(run_file(home)))} can be removed",
            soft_wrap=True,
        )
    else:
        _print_record(state, record, health)
    code = {"running": 0, "degraded": EXIT_DEGRADED}.get(_state(record, health), EXIT_NOT_RUNNING)
    raise typer.Exit(code)


def _health_json(health: EndpointHealth) -> dict[str, object]:
    return {
        "name": health.endpoint.name,
        "running": health.running,
        "process_alive": health.process_alive,
        "port_open": health.port_open,
    }


def _state(record: RunRecord | None, health: list[EndpointHealth]) -> str:
    if record is None or not any(h.process_alive for h in health):
        return "stopped"
    return "running" if all(h.running for h in health) else "degraded"


def _print_record(
    state: CliState, record: RunRecord, health: list[EndpointHealth] | None = None
) -> None:
    started = datetime.datetime.fromtimestamp(record.started_at).isoformat(timespec="seconds")
    table = Table(title=f"local stack (pid {record.pid}, since {started})")
    for column in ("part", "kind", "endpoint", "pid"):
        table.add_column(column, overflow="fold")
    if health is not None:
        table.add_column("status", no_wrap=True)
    by_name = {h.endpoint.name: h for h in health or []}
    for endpoint in record.endpoints:
        row = [escape(cell) for cell in (endpoint.name, endpoint.kind, endpoint.address,
                                         str(endpoint.pid or "-"))]  # fmt: skip
        if health is not None:
            found = by_name[endpoint.name]
            row.append("[green]running[/green]" if found.running else "[red]not answering[/red]")
        table.add_row(*row)
    state.console.print(table)
    for endpoint in record.endpoints:
        if endpoint.detail:
            state.console.print(
                f"  [bold]{escape(endpoint.name)}[/bold]: {escape(endpoint.detail)}",
                highlight=False,
                soft_wrap=True,
            )
    files = Table(title="credentials")
    files.add_column("what")
    files.add_column("path", overflow="fold")
    for name, path in record.credentials.items():
        files.add_row(escape(name), escape(path))
    state.console.print(files)
