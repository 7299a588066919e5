"""``pervasive oracle``: the oracle committee of pervasive contracts (paper 001, section 4).

- ``oracle init``: create the oracle accounts ``oracle-1..n`` in the keystore (when
  missing), fund them on development chains and deploy the hub with threshold ``t``;
- ``oracle run``: one oracle node as its own process (MQTT identity ``svc:oracle.<i>``
  from the platform CA), until Ctrl-C / SIGTERM; it follows the signed readings of the
  registry's sensors for DEVICE queries; its state lives in
  ``<home>/oracle/oracle-<i>.sqlite``: killed at any moment, it resumes;
- ``oracle status``: the hub, its oracle set and threshold, recent queries and outcomes.

Example::

    pervasive --backend anvil oracle init --oracles 3 --threshold 2
    pervasive --backend anvil oracle run --name oracle-1 --allow http://127.0.0.1:8080/
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pervasive.cli.session import Session, run, run_until_stopped, session, state_of
from pervasive.errors import ConfigError, InvalidInput, NotFound

if TYPE_CHECKING:
    from pervasive.contracts.oracle_hub import HubEvent, OracleHub

__all__ = ["app", "init_oracles", "oracle_status", "run_oracle"]

app = typer.Typer(
    help="The oracle committee: contracts ask, t of n oracles answer with a proof (paper 001).",
    no_args_is_help=True,
)

_NAME = re.compile(r"oracle-([1-9][0-9]?)")
_DEV_FUNDING = 10**18


def _index(name: str) -> int:
    match = _NAME.fullmatch(name)
    if match is None:
        raise InvalidInput(f"--name {name!r}: oracle names are oracle-1 .. oracle-16")
    return int(match.group(1))


@app.command("init")
def init_oracles(
    ctx: typer.Context,
    *,
    oracles: Annotated[int, typer.Option(help="n: how many oracle accounts.")] = 3,
    threshold: Annotated[int, typer.Option(help="t: agreeing reports an answer needs.")] = 2,
    timeout: Annotated[
        int | None, typer.Option(help="Seconds per attempt (default: settings.oracle.timeout).")
    ] = None,
    max_attempts: Annotated[
        int | None, typer.Option(help="Attempts before a timeout (default: settings).")
    ] = None,
    account: Annotated[str | None, typer.Option(help="Keystore account that deploys.")] = None,
    dev_account: Annotated[
        int | None, typer.Option(help="Development account 0-9 that deploys (default 0).")
    ] = None,
) -> None:
    """Create the oracle accounts if missing and deploy the hub (t of n); print the set.

    On the embedded and anvil chains each oracle account without ether gets 1 ether from
    the deployer (they pay for answers). Run again with other numbers for a new hub.

    Example: ``pervasive --backend anvil oracle init --oracles 3 --threshold 2``.
    """
    from pervasive.chain import ContractCall
    from pervasive.contracts.oracle_hub import MAX_ORACLES, OracleHub

    state = state_of(ctx)
    if not 0 < oracles <= MAX_ORACLES:
        raise InvalidInput(f"--oracles is 1 to {MAX_ORACLES}, got {oracles}")
    if not 0 < threshold <= oracles:
        raise InvalidInput(f"--threshold is 1 to --oracles ({oracles}), got {threshold}")
    settings = state.settings.oracle
    seconds = timeout if timeout is not None else max(1, round(settings.timeout))
    attempts = max_attempts if max_attempts is not None else settings.max_attempts

    async def go() -> None:
        async with session(state) as s:
            deployer = s.signer(account, dev_account)
            keystore = state.keystore()
            known = set(keystore.names())
            password = state.password(confirm=not any(n.startswith("oracle-") for n in known))
            addresses = []
            for i in range(1, oracles + 1):
                name = f"oracle-{i}"
                if name in known:
                    addresses.append(keystore.address_of(name))
                else:
                    addresses.append(keystore.create(name, password).address)
            hub = await OracleHub.open(
                s.ledger, deployer, oracles=addresses, threshold=threshold, timeout=seconds,
                max_attempts=attempts, book=s.book, artifacts=s.artifacts,
            )  # fmt: skip
            if s.ledger.kind in ("embedded", "anvil"):
                for address in addresses:
                    if await s.ledger.balance(address) == 0:
                        await s.ledger.transactor(deployer).transact(
                            ContractCall(to=address, data=b"", value=_DEV_FUNDING, gas=21_000)
                        )
            table = Table(title=f"Oracle hub {hub.address} (t = {threshold} of {oracles})")
            for column in ("name", "address", "MQTT identity", "balance (ether)"):
                table.add_column(column)
            for i, address in enumerate(addresses, 1):
                balance = await s.ledger.balance(address) / 10**18
                table.add_row(f"oracle-{i}", address, f"svc:oracle.{i}", f"{balance:.4f}")
            state.console.print(table)
            state.console.print(
                f"timeout {seconds} s per attempt, {attempts} attempt(s); start each node with "
                "`pervasive oracle run --name oracle-<i> --allow <url prefix>`",
                highlight=False,
            )

    run(go())


@app.command("run")
def run_oracle(
    ctx: typer.Context,
    *,
    name: Annotated[str, typer.Option(help="The oracle's keystore account: oracle-<i>.")],
    allow: Annotated[
        list[str] | None,
        typer.Option(help="A URL prefix this node may fetch (repeat); others are refused."),
    ] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="Broker port (default: settings).")] = None,
) -> None:
    """Run one oracle node until Ctrl-C (or SIGTERM).

    It follows the hub's queries, fetches each source (only URLs under ``--allow``; CIDs
    from ``<home>/content``; DEVICE queries from the signed readings it verified on
    ``pervasive/devices/+/sensors/+`` against the registry's sensors), signs its report,
    exchanges reports with the other nodes over MQTT and sends the answer when t agree.

    Example: ``pervasive --backend anvil oracle run --name oracle-1
    --allow http://127.0.0.1:8080/ShipmentCost``.
    """
    from pervasive.crypto import PrivateKey
    from pervasive.devices import Declarations, registered_declarations
    from pervasive.messaging import MqttClient
    from pervasive.oracle import OracleNode, SourceFetcher
    from pervasive.storage import Cid, ContentStore

    state = state_of(ctx)
    index = _index(name)
    settings = state.settings
    content = ContentStore(settings.home / "content")

    def read_cid(text: str) -> bytes:
        return content.get(Cid.parse(text))

    async def go() -> None:
        async with session(state) as s:

            async def read_declarations() -> Declarations:
                try:
                    registry = await s.registry()
                except NotFound:
                    return {}  # nothing registered yet: every reading is refused, counted
                return registered_declarations(await registry.list_sensors())

            signer = state.keystore().load(name, state.password())
            hub = await _hub(s)
            if not await hub.is_oracle(signer.address):
                raise ConfigError(
                    f"{name} ({signer.address}) is not in the hub's oracle set: run "
                    "`pervasive oracle init` with enough --oracles"
                )
            if not s.platform.pki_directory.is_dir():
                raise ConfigError(
                    f"no platform CA in {s.platform.pki_directory} for svc:oracle.{index}: "
                    "start `pervasive up` (or create the CA) first"
                )
            options = s.platform.client_options(
                f"svc:oracle.{index}", port=mqtt_port or settings.mqtt_port,
                outbox=settings.path("oracle", f"{name}-outbox.sqlite"),
            )  # fmt: skip
            client = MqttClient(options)
            await client.connect()
            try:
                deployment = s.book.get(s.ledger.chain_id, hub.NAME)
                fetcher = SourceFetcher(
                    allow=allow or [], fetch_timeout=settings.oracle.fetch_timeout,
                    max_response_bytes=settings.oracle.max_response_bytes, cid=read_cid,
                )  # fmt: skip
                node = OracleNode(
                    key=PrivateKey(signer.private_key), hub=hub.with_signer(signer),
                    connection=client, database=settings.path("oracle", f"{name}.sqlite"),
                    fetcher=fetcher, settings=settings.oracle,
                    start_block=deployment.block if deployment else 0,
                    declarations=read_declarations,
                )  # fmt: skip
                ready = asyncio.Event()
                task = asyncio.create_task(node.run(ready=ready))
                await asyncio.wait(
                    [task, asyncio.ensure_future(ready.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not task.done():
                    followed = len(node.readings.sensors) if node.readings else 0
                    state.console.print(
                        f"{name} ({signer.address}) answers queries of hub {hub.address} on "
                        f"chain {s.ledger.chain_id}; allowed: {', '.join(allow or []) or 'none'}"
                        f"; readings of {followed} registered sensor(s); Ctrl-C stops it",
                        highlight=False,
                    )
                await task
            finally:
                await client.close()

    run_until_stopped(go())


@app.command("status")
def oracle_status(
    ctx: typer.Context,
    *,
    limit: Annotated[int, typer.Option(help="How many recent queries to show.")] = 10,
) -> None:
    """Show the hub, its oracle set and threshold, and the outcome of recent queries.

    Example: ``pervasive --backend anvil oracle status --limit 5``.
    """
    state = state_of(ctx)

    async def go() -> None:
        async with session(state) as s:
            hub = await _hub(s)
            oracles = await hub.oracles()
            threshold = await hub.threshold()
            state.console.print(
                f"hub {hub.address} on chain {s.ledger.chain_id}: t = {threshold} of "
                f"{len(oracles)}, {await hub.timeout()} s per attempt, "
                f"{await hub.max_attempts()} attempt(s), owner {await hub.owner()}",
                highlight=False,
            )
            members = Table(title="Oracle set")
            for column in ("address", "balance (ether)"):
                members.add_column(column)
            for address in oracles:
                members.add_row(address, f"{await s.ledger.balance(address) / 10**18:.4f}")
            state.console.print(members)
            state.console.print(_queries_table(await hub.events(), limit))

    run(go())


async def _hub(s: Session) -> OracleHub:
    from pervasive.contracts.oracle_hub import OracleHub

    try:
        return await OracleHub.find(s.ledger, s.book, artifacts=s.artifacts)
    except NotFound:
        raise NotFound(
            f"no oracle hub on chain {s.ledger.chain_id} in {s.state.settings.home}: "
            "run `pervasive oracle init` first"
        ) from None


def _queries_table(events: list[HubEvent], limit: int) -> Table:
    from pervasive.contracts.oracle_hub import (
        QueryAnswered,
        QueryRequested,
        QueryRetried,
        QueryTimedOut,
    )

    outcome: dict[int, str] = {}
    asked: dict[int, QueryRequested] = {}
    for event in events:
        if isinstance(event, QueryRequested):
            asked[event.query_id] = event
            outcome[event.query_id] = "pending (attempt 1)"
        elif isinstance(event, QueryRetried):
            outcome[event.query_id] = f"pending (attempt {event.attempt})"
        elif isinstance(event, QueryAnswered):
            callback = "" if event.callback_ok else ", callback failed"
            outcome[event.query_id] = (
                f"answered {event.value} ({event.signers} signatures{callback})"
            )
        elif isinstance(event, QueryTimedOut):
            outcome[event.query_id] = f"timed out after {event.attempt} attempt(s)"
    table = Table(title=f"Recent queries ({min(limit, len(asked))} of {len(asked)})")
    for column in ("id", "consumer", "kind", "source", "path", "outcome"):
        table.add_column(column)
    kinds = {1: "URL", 2: "DEVICE", 3: "CID"}
    for query_id in sorted(asked)[-limit:] if limit > 0 else []:
        q = asked[query_id]
        table.add_row(
            str(query_id), q.consumer, kinds.get(q.kind, str(q.kind)), escape(q.source),
            escape(q.path) or "-", outcome[query_id],
        )  # fmt: skip
    return table
