"""``pervasive device warehouse register|run|scan``: the warehouse door of paper 004.

A warehouse door is a device (certificate CN = thing name, files in
``<home>/devices/<thing>/``) with a warehouse account (an Ethereum key in the keystore,
named ``warehouse-<thing>`` unless ``--account`` names another): sellers name that
account when they create a sale order, and only it can release the sold item. The door
reaches the chain through the devices' gateway only (its certificate, the gateway role
``warehouse``) and moves through its shadow on the broker (section 4.8).

``register`` makes the certificate and the account, funds the account on development
chains and gives the door the gateway role; ``run`` keeps the door running, scanning
receipt images dropped into ``--inbox`` (a camera's frames) or receipt texts typed on
stdin (a handheld scanner); ``scan`` decides on one image and exits (0: opened, 1:
refused). The CA and keystore passwords come from ``PERVASIVE_PASSWORD`` or the prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from pervasive.cli.session import CliState, run, run_until_stopped, state_of
from pervasive.errors import ConfigError, InvalidInput, NotFound

if TYPE_CHECKING:
    from pervasive.apps.salesorder import DoorDecision, WarehouseDoor
    from pervasive.chain import Signer

__all__ = ["IMAGE_SUFFIXES", "app", "register", "run_door", "scan"]

app = typer.Typer(
    help=(
        "The warehouse door of paper 004: scans the buyer's barcode receipt, checks "
        "verifyOwnership and releases the sale through the gateway, opens the door "
        "through its shadow, once per sale."
    ),
    no_args_is_help=True,
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
"""Files in ``--inbox`` the door scans; others are left alone."""

_SETTLE = 0.2  # seconds a dropped file must be unchanged before it is scanned (still written)

_Thing = Annotated[str, typer.Argument(help="The door's device id (certificate CN, shadow name).")]
_AccountName = Annotated[
    str | None,
    typer.Option("--account", help="Keystore account of the door (default warehouse-<thing>)."),
]
_Gateway = Annotated[
    str | None,
    typer.Option(
        "--gateway",
        help="The devices' gateway, https://host:port (default: the one `pervasive up` runs).",
    ),
]
_Hold = Annotated[
    float, typer.Option(min=0.0, help="Seconds the door stays open before it closes again.")
]
_MqttPort = Annotated[
    int | None,
    typer.Option("--mqtt-port", help="Broker TLS port (default: settings, or `pervasive up`'s)."),
]


def _account_name(thing: str, account: str | None) -> str:
    return account or f"warehouse-{thing}"


@app.command("register")
def register(
    ctx: typer.Context,
    thing: _Thing,
    *,
    account: _AccountName = None,
    fund: Annotated[
        float, typer.Option(min=0.0, help="Ether to give the account on dev chains (0: none).")
    ] = 1.0,
) -> None:
    """Make the door a device certificate, a warehouse account and the gateway role.

    The certificate is kept while it is active (a revoked one is replaced); the account
    is created in the keystore when missing and, on the embedded and anvil chains, topped
    up to ``--fund`` ether from development account 0 so it can pay for releases. The
    printed account is what sellers name as the warehouse of their orders.

    Example: ``pervasive device warehouse register warehouse-7``.
    """
    from pervasive.chain import ContractCall
    from pervasive.devices import DeviceFolder
    from pervasive.gateway import RoleBook, roles_file

    state = state_of(ctx)
    settings = state.settings
    folder = DeviceFolder(settings.path("devices", thing))
    name = _account_name(thing, account)
    keystore = state.keystore()
    if name in keystore.names():
        signer = keystore.load(name, state.password())
    else:
        signer = keystore.create(name, state.password(confirm=True))

    async def go() -> str:
        async with state.platform() as platform:
            ca = platform.authority
            active = thing in ca.active_identities() and (folder.path / "cert.pem").is_file()
            if not active:
                ca.write_credentials(ca.issue_device(thing), folder.path)
            ledger = await platform.ledger()
            wanted = int(fund * 10**18)
            if ledger.kind == "rpc" or not wanted:
                return "not funded (fund it from a funded account)"
            balance = await ledger.balance(signer.address)
            if balance < wanted:
                top_up = ContractCall(to=signer.address, data=b"", value=wanted - balance)
                await ledger.transactor(ledger.dev_signer(0)).transact(top_up)
            return f"{fund:g} ether"

    funded = run(go())
    RoleBook.open(roles_file(settings.home)).assign(thing, "warehouse")
    state.console.print(
        f"warehouse door [bold]{escape(thing)}[/bold]: certificate in {escape(str(folder.path))}, "
        f"gateway role warehouse; warehouse account [bold]{signer.address}[/bold] "
        f"(keystore {escape(name)}, {funded}). Sellers name this account as the warehouse "
        "of their orders.",
        soft_wrap=True,
    )


@app.command("run")
def run_door(
    ctx: typer.Context,
    thing: _Thing,
    *,
    gateway: _Gateway = None,
    inbox: Annotated[
        Path | None,
        typer.Option(
            file_okay=False, help="Folder a camera drops frames into; each is scanned once."
        ),
    ] = None,
    stdin: Annotated[
        bool | None,
        typer.Option(
            "--stdin/--no-stdin",
            help="Read receipt texts line by line from stdin (default: when no --inbox).",
        ),
    ] = None,
    hold: _Hold = 5.0,
    account: _AccountName = None,
    mqtt_port: _MqttPort = None,
) -> None:
    """Run the door: follow its shadow, scan receipts, print each decision, until Ctrl-C.

    On start the door settles its release journal: a release it sent before a crash and
    that is mined opens the door now. Images in ``--inbox`` are moved to ``done/`` (door
    opened) or ``refused/`` after their scan; texts come one per line on stdin (the end of
    stdin stops the door when there is no inbox).

    Example: ``pervasive device warehouse run warehouse-7 --inbox /var/camera``.
    """
    state = state_of(ctx)
    if inbox is not None:
        inbox.mkdir(parents=True, exist_ok=True)
    read_stdin = inbox is None if stdin is None else stdin
    if inbox is None and not read_stdin:
        raise InvalidInput("the door needs receipts: give --inbox DIR, or leave stdin on")
    signer = _signer(state, thing, account)

    async def go() -> None:
        async with _running(
            state, thing, signer, gateway=gateway, hold=hold, mqtt_port=mqtt_port
        ) as warehouse:
            state.console.print(
                f"door [bold]{escape(thing)}[/bold] ready (account {signer.address}); "
                + ("scanning " + escape(str(inbox)) if inbox else "")
                + (" and " if inbox and read_stdin else "")
                + ("reading receipts from stdin" if read_stdin else ""),
                highlight=False,
                soft_wrap=True,
            )
            tasks = []
            if inbox is not None:
                tasks.append(asyncio.create_task(_watch(state, warehouse, inbox)))
            if read_stdin:
                tasks.append(asyncio.create_task(_read_lines(state, warehouse)))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            await warehouse.door.wait_closed()

    run_until_stopped(go())
    state.console.print(f"door {escape(thing)} stopped", highlight=False)


@app.command("scan")
def scan(
    ctx: typer.Context,
    thing: _Thing,
    image: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A photo of the receipt.")
    ],
    *,
    gateway: _Gateway = None,
    hold: _Hold = 5.0,
    account: _AccountName = None,
    mqtt_port: _MqttPort = None,
) -> None:
    """Scan one receipt image, print the decision, let the door close, exit (1 if refused).

    Example: ``pervasive device warehouse scan warehouse-7 receipt.png --hold 2``.
    """
    state = state_of(ctx)
    signer = _signer(state, thing, account)

    async def go() -> bool:
        async with _running(
            state, thing, signer, gateway=gateway, hold=hold, mqtt_port=mqtt_port
        ) as warehouse:
            decision = await warehouse.scan(image)
            _print(state, decision, escape(image.name))
            await warehouse.door.wait_closed()
            return decision.opened

    if not run(go()):
        raise typer.Exit(1)


# -- composition -------------------------------------------------------------------------
def _signer(state: CliState, thing: str, account: str | None) -> Signer:
    name = _account_name(thing, account)
    keystore = state.keystore()
    if name not in keystore.names():
        raise NotFound(
            f"no keystore account {name!r}: run `pervasive device warehouse register {thing}`"
        )
    return keystore.load(name, state.password())


def _gateway_url(state: CliState, given: str | None) -> str:
    if given:
        return given
    from pervasive.platform.run_file import pid_alive, read_run_record, run_file

    record = read_run_record(run_file(state.settings.home))
    if record is not None and pid_alive(record.pid):
        for endpoint in record.endpoints:
            if endpoint.name == "gateway" and endpoint.address.startswith("https://"):
                return endpoint.address
    raise ConfigError(
        "no gateway to reach the chain through: give --gateway https://host:port, or start "
        "`pervasive up` from this data directory"
    )


@contextlib.asynccontextmanager
async def _running(
    state: CliState,
    thing: str,
    signer: Signer,
    *,
    gateway: str | None,
    hold: float,
    mqtt_port: int | None,
) -> AsyncIterator[WarehouseDoor]:
    """The door, started: gateway ledger, journal, MQTT session, shadow, journal settled."""
    from pervasive.apps.salesorder import ReleaseJournal, WarehouseDoor
    from pervasive.devices import DeviceFolder
    from pervasive.gateway import open_gateway_ledger
    from pervasive.messaging import MqttClient

    settings = state.settings
    folder = DeviceFolder(settings.path("devices", thing))
    credentials = folder.credentials()
    url = _gateway_url(state, gateway)
    async with contextlib.AsyncExitStack() as stack:
        ledger = await open_gateway_ledger(url, credentials, settings)
        stack.push_async_callback(ledger.close)
        options = state.platform().client_options(thing, port=mqtt_port, credentials=credentials)
        journal = ReleaseJournal.open(folder.path / "releases.sqlite")
        stack.callback(journal.close)
        warehouse = WarehouseDoor(
            thing, ledger, signer, journal, hold=hold, artifacts=settings.path("artifacts")
        )
        client = await stack.enter_async_context(MqttClient(options))
        recovered = await warehouse.start(client)
        stack.push_async_callback(warehouse.stop)
        for decision in recovered:
            _print(state, decision, "journal")
        yield warehouse


# -- receipts in -------------------------------------------------------------------------
async def _read_lines(state: CliState, warehouse: WarehouseDoor) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if line.strip():
            _print(state, await warehouse.scan_text(line.strip()), "stdin")


async def _watch(state: CliState, warehouse: WarehouseDoor, inbox: Path) -> None:
    done, refused = inbox / "done", inbox / "refused"
    done.mkdir(exist_ok=True)
    refused.mkdir(exist_ok=True)
    while True:
        for path in sorted(inbox.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):  # taken away meanwhile
                if _still_written(path):
                    continue
                decision = await warehouse.scan(path)
                _print(state, decision, escape(path.name))
                path.replace((done if decision.opened else refused) / path.name)
        await asyncio.sleep(_SETTLE)


def _still_written(path: Path) -> bool:
    return time.time() - path.stat().st_mtime < _SETTLE


def _print(state: CliState, decision: DoorDecision, source: str) -> None:
    timing = decision.timings.scan_to_open
    spent = f" [dim](scan to open {timing * 1000:.0f} ms)[/dim]" if timing is not None else ""
    if decision.opened:
        state.console.print(
            f"[green]OPEN[/green]    {source}: {escape(decision.message)}{spent}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        reason = decision.refusal.value if decision.refusal else "refused"
        state.console.print(
            f"[red]REFUSED[/red] {source} ({reason}): {escape(decision.message)}",
            highlight=False,
            soft_wrap=True,
        )
