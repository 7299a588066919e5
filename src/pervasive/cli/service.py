"""``pervasive service deploy|upgrade|show|list|run``: pervasive contracts as services.

A service is declared by one spec file (TOML, see ``docs/services.md``): its logic
contract, its contract database C_d, its MQTT/REST bindings, triggers and event
mappings. ``deploy`` puts C_d and the logic on the chain, ``upgrade`` replaces the
logic over the same C_d, ``show`` prints the deployment, its versions and C_d
records, ``list`` every service on the chain, and ``run`` serves the bindings until
Ctrl-C. Writes are signed by ``--account NAME`` (keystore) or a development account.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pervasive.cli.session import CliState, Session, run, run_until_stopped, session, state_of

if TYPE_CHECKING:
    from pervasive.devices import Declarations
    from pervasive.service.deployment import ServiceBook, ServiceDeployment
    from pervasive.service.spec import ServiceSpec

__all__ = [
    "Account",
    "DevAccount",
    "Oracle",
    "SpecFile",
    "app",
    "deploy",
    "list_services",
    "run_service",
    "show",
    "upgrade",
]

app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Pervasive contracts as services (paper 001): a logic contract, its contract "
        "database C_d, thing bindings, triggers and events, declared in one TOML spec.\n\n"
        "Examples:\n\n"
        "  pervasive service deploy shipping.toml --dev-account 0\n\n"
        "  pervasive service upgrade shipping.toml    # after raising its version\n\n"
        "  pervasive service show shipping.toml --record cost --id ship-1\n\n"
        "  pervasive service run shipping.toml --port 8883"
    ),
)

Account = Annotated[str | None, typer.Option("--account", help="Sign with this keystore account.")]
DevAccount = Annotated[
    int | None,
    typer.Option("--dev-account", help="Sign with development account N (embedded/anvil)."),
]
SpecFile = Annotated[Path, typer.Argument(help="The service spec (TOML).", show_default=False)]
Oracle = Annotated[
    str | None,
    typer.Option(help="OracleHub address for '$oracle' (default: the chain's deployed hub)."),
]


def _book(state: CliState) -> ServiceBook:
    from pervasive.service.deployment import ServiceBook

    return ServiceBook.open(state.settings.path("services.sqlite"))


async def _oracle(s: Session, spec: ServiceSpec, given: str | None) -> str | None:
    """The hub's address when the constructor asks for ``$oracle``."""
    if given is not None or "$oracle" not in spec.contract.constructor:
        return given
    from pervasive.contracts.oracle_hub import OracleHub

    return (await OracleHub.find(s.ledger, s.book, artifacts=s.artifacts)).address


def _deployed_line(deployment: ServiceDeployment) -> str:
    database = f", database {deployment.database}" if deployment.database else ""
    return (
        f"{deployment.name} v{deployment.version} on chain {deployment.chain_id}: logic "
        f"{deployment.address} (block {deployment.block}){database}"
    )


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    spec_file: SpecFile,
    account: Account = None,
    dev_account: DevAccount = None,
    oracle: Oracle = None,
) -> None:
    """Deploy the spec's contract database and logic; the same version again is reused.

    Example: ``pervasive service deploy shipping.toml --dev-account 0``.
    """
    from pervasive.service import load_spec
    from pervasive.service.deployment import deploy_service

    state = state_of(ctx)
    spec = load_spec(spec_file)
    book = _book(state)

    async def go() -> tuple[ServiceDeployment, bool]:
        async with session(state) as s:
            before = book.get(s.ledger.chain_id, spec.name)
            deployment = await deploy_service(
                s.ledger,
                s.signer(account, dev_account),
                spec,
                book=book,
                artifacts=s.artifacts,
                oracle=await _oracle(s, spec, oracle),
            )
            return deployment, deployment == before

    try:
        deployment, reused = run(go())
    finally:
        book.close()
    verb = "already deployed, reused" if reused else "deployed"
    state.console.print(
        f"{verb}: {escape(_deployed_line(deployment))}", highlight=False, soft_wrap=True
    )


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    spec_file: SpecFile,
    account: Account = None,
    dev_account: DevAccount = None,
    oracle: Oracle = None,
) -> None:
    """Deploy the spec's higher version over the same contract database; records stay.

    Sign with the account that deployed the service (C_d's owner).

    Example: ``pervasive service upgrade shipping.toml --dev-account 0``.
    """
    from pervasive.service import load_spec
    from pervasive.service.deployment import upgrade_service

    state = state_of(ctx)
    spec = load_spec(spec_file)
    book = _book(state)

    async def go() -> tuple[ServiceDeployment | None, ServiceDeployment]:
        async with session(state) as s:
            before = book.get(s.ledger.chain_id, spec.name)
            deployment = await upgrade_service(
                s.ledger,
                s.signer(account, dev_account),
                spec,
                book=book,
                artifacts=s.artifacts,
                oracle=await _oracle(s, spec, oracle),
            )
            return before, deployment

    try:
        before, deployment = run(go())
    finally:
        book.close()
    if before == deployment:
        state.console.print(
            f"already current: {escape(_deployed_line(deployment))}", soft_wrap=True
        )
        return
    old = f"v{before.version} -> " if before is not None else ""
    kept = " (same database, writer moved)" if deployment.database else ""
    state.console.print(
        f"upgraded {old}{escape(_deployed_line(deployment))}{kept}", highlight=False, soft_wrap=True
    )


@app.command("show")
def show(
    ctx: typer.Context,
    spec_file: SpecFile,
    record: Annotated[
        str | None, typer.Option(help="Read this C_d record (declared in [database]).")
    ] = None,
    record_id: Annotated[str | None, typer.Option("--id", help="The record's id.")] = None,
) -> None:
    """Show the deployment, its version history and, with --record/--id, one C_d record.

    Example: ``pervasive service show shipping.toml --record cost --id ship-1``.
    """
    from pervasive.contracts.contract_database import ContractDatabase
    from pervasive.errors import InvalidInput, NotFound
    from pervasive.service import load_spec

    state = state_of(ctx)
    spec = load_spec(spec_file)
    records = spec.database.records if spec.database else {}
    if (record is None) != (record_id is None):
        raise InvalidInput("give --record and --id together, e.g. --record cost --id ship-1")
    if record is not None and record not in records:
        declared = ", ".join(records) or "none"
        raise InvalidInput(f"record {record!r} is not declared in [database]; records: {declared}")
    book = _book(state)

    async def go() -> tuple[list[ServiceDeployment], object]:
        async with session(state) as s:
            history = book.history(s.ledger.chain_id, spec.name)
            if not history:
                raise NotFound(
                    f"{spec.name} is not deployed on chain {s.ledger.chain_id}: "
                    f"use `pervasive service deploy {spec_file}`"
                )
            value: object = None
            current = history[-1]
            if record is not None and record_id is not None and current.database is not None:
                database = ContractDatabase.at(s.ledger, current.database)
                value = await database.read(record, record_id, records[record])
            return history, value

    try:
        history, value = run(go())
    finally:
        book.close()
    current = history[-1]
    state.console.print(_history_table(spec, history))
    if current.database:
        state.console.print(
            f"contract database {current.database}: "
            + (", ".join(f"{n} ({t})" for n, t in records.items()) or "no records declared"),
            highlight=False,
        )
    if record is not None:
        shown = "0x" + value.hex() if isinstance(value, bytes) else str(value)
        state.console.print(
            f"{record}[{record_id}] = {shown} ({records[record]})", highlight=False, markup=False
        )


def _history_table(spec: ServiceSpec, history: list[ServiceDeployment]) -> Table:
    table = Table(title=f"{spec.name} on chain {history[-1].chain_id}")
    for column in ("version", "logic", "block", "deployer", "source"):
        table.add_column(column, no_wrap=True)
    for deployment in history:
        current = " (current)" if deployment is history[-1] else ""
        table.add_row(
            f"{deployment.version}{current}",
            deployment.address,
            str(deployment.block),
            deployment.deployer,
            deployment.source_hash[:12],
        )
    return table


@app.command("list")
def list_services(ctx: typer.Context) -> None:
    """List the current version of every service deployed on this chain.

    Example: ``pervasive service list``.
    """
    state = state_of(ctx)
    book = _book(state)

    async def go() -> list[ServiceDeployment]:
        async with session(state) as s:
            return book.services(s.ledger.chain_id)

    try:
        services = run(go())
    finally:
        book.close()
    if not services:
        state.console.print("no services deployed on this chain: `pervasive service deploy SPEC`")
        return
    table = Table(title="Services")
    for column in ("name", "version", "logic", "database", "block"):
        table.add_column(column, no_wrap=True)
    for deployment in services:
        table.add_row(
            deployment.name,
            str(deployment.version),
            deployment.address,
            deployment.database or "-",
            str(deployment.block),
        )
    state.console.print(table)


@app.command("run")
def run_service(
    ctx: typer.Context,
    spec_file: SpecFile,
    port: Annotated[
        int | None, typer.Option(help="TLS port of the broker (default: the running one).")
    ] = None,
    account: Account = None,
    dev_account: DevAccount = None,
) -> None:
    """Serve the spec's bindings, triggers and events until Ctrl-C.

    The service connects to the broker as ``svc:service.<name>``, calls its deployed
    logic from the operator account (``--account``/``--dev-account``), checks readings
    against the sensors registered as ``<device>.<sensor>`` and prints its counters
    when it stops.

    Example: ``pervasive service run shipping.toml --port 8883 --dev-account 0``.
    """
    from pervasive.errors import NotFound
    from pervasive.messaging import MqttClient, await_admission
    from pervasive.service import load_spec
    from pervasive.service.deployment import DeploymentRefused, compile_logic
    from pervasive.service.runtime import ServiceRuntime

    state = state_of(ctx)
    spec = load_spec(spec_file)
    identity = f"svc:service.{spec.name}"
    book = _book(state)
    counters: dict[str, int] = {}

    async def go() -> None:
        async with session(state) as s:
            deployment = book.get(s.ledger.chain_id, spec.name)
            if deployment is None:
                raise NotFound(
                    f"{spec.name} is not deployed on chain {s.ledger.chain_id}: "
                    f"use `pervasive service deploy {spec_file}`"
                )
            if compile_logic(spec, s.artifacts).source_hash != deployment.source_hash:
                raise DeploymentRefused(
                    f"{spec_file} (version {spec.version}) is not the deployed version "
                    f"{deployment.version}: `pervasive service upgrade {spec_file}` first"
                )
            runtime = ServiceRuntime(
                spec,
                deployment,
                ledger=s.ledger,
                operator=s.signer(account, dev_account),
                authority=s.platform.authority,
                home=state.settings.home,
                settings=state.settings,
                declarations=await _declarations(s, spec),
            )
            options = s.platform.client_options(identity, port=port, manual_ack=True)
            await await_admission(state.settings.home, identity)
            try:
                async with MqttClient(options) as client:
                    ready = asyncio.Event()
                    task = asyncio.ensure_future(runtime.run(client, ready=ready))
                    started = asyncio.ensure_future(ready.wait())
                    await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
                    started.cancel()
                    if not task.done():
                        rest = f", REST on {runtime.rest_url}" if runtime.rest_url else ""
                        state.console.print(
                            f"{spec.name} v{deployment.version} at {deployment.address} as "
                            f"{identity}{rest}; Ctrl-C stops it",
                            highlight=False,
                            soft_wrap=True,
                        )
                    await task
            finally:
                counters.update(runtime.counters)

    try:
        run_until_stopped(go())
    finally:
        book.close()
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(counters.items())) or "nothing"
    state.console.print(f"stopped: {shown}", highlight=False)


async def _declarations(s: Session, spec: ServiceSpec) -> Declarations:
    """The registered sensors ``<device>.<sensor>`` of the sensors the spec uses."""
    from pervasive.devices import registered_declarations
    from pervasive.errors import NotFound

    wanted = {m.sensor for m in spec.mqtt} | {t.when.sensor for t in spec.trigger}
    try:
        registry = await s.registry()
    except NotFound:
        return {}  # nothing registered yet: every reading is refused, and counted
    found = registered_declarations(await registry.list_sensors())
    return {
        device: {name: d for name, d in sensors.items() if name in wanted}
        for device, sensors in found.items()
        if any(name in wanted for name in sensors)
    }
