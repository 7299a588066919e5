"""``pervasive gateway role|roles|run``: the devices' JSON-RPC gateway (paper 004, 4.6).

Devices reach the chain only through the gateway: HTTPS with a client certificate from
the platform CA, a role per identity, a method allow-list per role. ``role`` and
``roles`` edit and show the role book ``<home>/gateway/roles.json`` (a running gateway
follows it at once); ``run`` starts a gateway in front of the configured ledger (e.g.
``--backend rpc --rpc-url http://node:8545``) until Ctrl-C.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pervasive.cli.session import CliState, run_until_stopped, state_of

if TYPE_CHECKING:
    pass

__all__ = ["app", "assign_role", "list_roles", "run_gateway"]

app = typer.Typer(
    no_args_is_help=True,
    help="The devices' JSON-RPC gateway: HTTPS with client certificates, roles, rate limits.",
)


@app.command("role")
def assign_role(
    ctx: typer.Context,
    identity: Annotated[str, typer.Argument(help="The certificate's CN (device id or svc:...).")],
    role: Annotated[
        str, typer.Argument(help="warehouse, reader or operator; none takes the role away.")
    ],
) -> None:
    """Give ``identity`` a gateway role (a running gateway applies it at the next request).

    ``warehouse``: a door device (sale orders' views and release only); ``reader``:
    read-only eth/net/web3; ``operator``: everything. ``none`` withdraws the role.

    Example: ``pervasive gateway role door-1 warehouse``.
    """
    from pervasive.gateway import RoleBook, parse_role, roles_file

    state = state_of(ctx)
    book = RoleBook.open(roles_file(state.settings.home))
    if role.strip().lower() == "none":
        book.assign(identity, None)
        state.console.print(f"{escape(identity)} holds no gateway role now", highlight=False)
        return
    chosen = parse_role(role)
    book.assign(identity, chosen)
    state.console.print(f"{escape(identity)} is a {chosen} at the gateway", highlight=False)


@app.command("roles")
def list_roles(ctx: typer.Context) -> None:
    """List the identities holding a gateway role.

    Example: ``pervasive gateway roles``.
    """
    from pervasive.gateway import RoleBook, roles_file

    state = state_of(ctx)
    book = RoleBook.open(roles_file(state.settings.home))
    table = Table(title=f"Gateway roles ({escape(str(book.path))})")
    table.add_column("identity", no_wrap=True)
    table.add_column("role", no_wrap=True)
    for identity, role in book.roles().items():
        table.add_row(escape(identity), role.value)
    state.console.print(table)


@app.command("run")
def run_gateway(
    ctx: typer.Context,
    *,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default [gateway] host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTPS port (default [gateway] port).")] = None,
) -> None:
    """Serve the gateway in front of the configured ledger until Ctrl-C.

    Its server certificate comes from the platform CA (``<home>/pki/gateway/``), so the
    CA password is needed. Warehouse devices reach the sale orders of the factory
    recorded in this data directory (looked up again until one is deployed). Prints
    the calls served and refused when it stops.

    Example: ``pervasive --backend rpc --rpc-url http://127.0.0.1:8545 gateway run --port 8545``.
    """
    from pervasive.platform import Platform

    state = state_of(ctx)
    settings = state.settings
    gateway_settings = replace(
        settings.gateway,
        host=settings.gateway.host if host is None else host,
        port=settings.gateway.port if port is None else port,
    )
    settings = replace(settings, gateway=gateway_settings)
    counters: dict[str, int] = {}

    async def go() -> None:
        async with Platform(settings, password=state.password) as platform:
            running = await platform.gateway()
            ledger = await platform.ledger()
            try:
                state.console.print(
                    f"gateway listening on {running.url} in front of "
                    f"{escape(ledger.url or 'the embedded chain')} (client certificates of "
                    f"{escape(str(platform.pki_directory))}); Ctrl-C stops it",
                    highlight=False,
                    soft_wrap=True,
                )
                await asyncio.Event().wait()
            finally:
                counters.update(running.counters)

    from pervasive.gateway import loop_factory

    run_until_stopped(go(), loop_factory=loop_factory())
    _report(state, counters)


def _report(state: CliState, counters: dict[str, int]) -> None:
    served = counters.pop("served", 0)
    refused = ", ".join(f"{reason}: {count}" for reason, count in sorted(counters.items()))
    state.console.print(
        f"gateway stopped: {served} calls served, refused: {refused or 'none'}", highlight=False
    )
