"""``pervasive node run``: one intermediate node of a DIVERSITY agreement, as its own process.

The node reads the agreement and its sensors from the chain, resolves ``f`` by name
(its source hash must equal the agreement's), connects to the MQTT broker under its
service identity ``svc:node.<registry id>`` and runs until interrupted. Its state
(message log, round journal, window store, update table) lives in
``<home>/nodes/<node address>/node.sqlite``, so a node killed at any moment resumes
where it stopped when started again with the same arguments. The agreed source of
``f`` is put into ``<home>/content`` (``pervasive code get 0x<function_hash>``).
"""

from __future__ import annotations

import asyncio
import importlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from pervasive.cli.session import run, session, state_of
from pervasive.errors import ConfigError, InvalidInput, NotFound

if TYPE_CHECKING:
    from pervasive.contracts.registry import Registry
    from pervasive.offchain import FunctionRegistry
    from pervasive.offchain.node import NodeEvent

__all__ = ["DEFAULT_FUNCTIONS", "app", "load_functions", "run_node"]

app = typer.Typer(help="DIVERSITY intermediate nodes (paper 002).", no_args_is_help=True)

DEFAULT_FUNCTIONS = "pervasive.apps.smartlock:FUNCTIONS"


def load_functions(spec: str) -> FunctionRegistry:
    """The :class:`FunctionRegistry` named ``module:attribute``.

    Example: ``load_functions("pervasive.apps.smartlock:FUNCTIONS")``.
    """
    from pervasive.offchain import FunctionRegistry

    module_name, _, attribute = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute or "FUNCTIONS")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load off-chain functions {spec!r}: {exc}") from exc
    if not isinstance(found, FunctionRegistry):
        raise ConfigError(f"{spec!r} is not a FunctionRegistry")
    return found


async def _require_agreement(registry: Registry, address: str) -> None:
    """Refuse ``--agreement`` unless the registry recorded it (its factory created it).

    Without this, reading an account's or another contract's terms ends in a bare
    "transaction reverted: no reason given".
    """
    from pervasive.crypto import checksum_address

    checksummed = checksum_address(address)
    if not await registry.contract.call("is_agreement", checksummed):
        raise InvalidInput(
            f"{checksummed} is not an agreement contract (the registry at "
            f"{registry.address} has no agreement there): give --agreement the address "
            "printed when the agreement was created"
        )


def _print_event(event: NodeEvent) -> None:
    from rich.console import Console

    text = f"window {event.t}: {event.kind}" + (f" ({event.detail})" if event.detail else "")
    if event.receipt is not None:
        text += f", gas {event.receipt.gas_used:,}, tx {event.receipt.transaction_hash}"
    Console().print(escape(text), highlight=False)


@app.command("run")
def run_node(
    ctx: typer.Context,
    *,
    agreement: Annotated[str, typer.Option(help="Address of the agreement contract.")],
    account: Annotated[
        str | None, typer.Option(help="Keystore account of the node (its registered account).")
    ] = None,
    dev_account: Annotated[
        int | None, typer.Option(help="Development account 0-9 (embedded and anvil).")
    ] = None,
    functions: Annotated[
        str, typer.Option(help="Off-chain functions as module:attribute.")
    ] = DEFAULT_FUNCTIONS,
    credentials: Annotated[
        Path | None, typer.Option(help="Folder with ca.pem, cert.pem and key.pem for MQTT.")
    ] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="Broker port (default: settings).")] = None,
    gap_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds a missing message is awaited (default: [node] gap_timeout)."),
    ] = None,
    protocol_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds before a retry (default: [node] protocol_timeout)."),
    ] = None,
    takeover_after: Annotated[
        float | None,
        typer.Option(
            help="Seconds before a stand-in sends a missing update "
            "(default: [node] takeover_after)."
        ),
    ] = None,
) -> None:
    """Run the intermediate node of ``--account`` for ``--agreement`` until Ctrl-C (or SIGTERM).

    Timing and batching come from the ``[node]`` settings, the MQTT client's behaviour
    from ``[mqtt]`` (``pervasive config`` shows them); the three timing flags override.

    Example: ``pervasive node run --agreement 0xAb... --account node-insurer``.
    """
    from pervasive.contracts.registry import Registry
    from pervasive.messaging import ClientCredentials
    from pervasive.offchain.node.runner import running_node
    from pervasive.storage import ContentStore

    state = state_of(ctx)
    registry_functions = load_functions(functions)
    overrides = {"gap_timeout": gap_timeout, "protocol_timeout": protocol_timeout,
                 "takeover_after": takeover_after}  # fmt: skip

    async def go() -> None:
        async with session(state) as s:
            signer = s.signer(account, dev_account)
            registry = await Registry.find(s.ledger, s.book, artifacts=s.artifacts)
            await _require_agreement(registry, agreement)
            node = next(
                (n for n in await registry.list_nodes() if n.account == signer.address), None
            )
            if node is None:
                raise NotFound(f"{signer.address} is not a registered intermediate node")
            identity = f"svc:node.{node.id}"
            settings = state.settings
            options = s.platform.node_options(
                **{k: v for k, v in overrides.items() if v is not None}
            )
            given = None
            if credentials is not None:
                given = ClientCredentials(
                    credentials / "ca.pem", credentials / "cert.pem", credentials / "key.pem"
                )
            elif not s.platform.pki_directory.is_dir():
                raise ConfigError(
                    f"no MQTT credentials for {identity}: give --credentials DIR (ca.pem, "
                    f"cert.pem, key.pem) or create a local CA in {s.platform.pki_directory} "
                    "(pervasive up does)"
                )
            mqtt = s.platform.client_options(
                identity,
                port=mqtt_port or settings.mqtt_port,
                credentials=given,
                outbox=settings.path("nodes", signer.address.lower(), "outbox.sqlite"),
            )
            database = settings.path("nodes", signer.address.lower(), "node.sqlite")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            async with running_node(
                s.ledger, registry, agreement, signer, mqtt,
                database=database, functions=registry_functions,
                options=options, on_event=_print_event, artifacts=s.artifacts,
                content=ContentStore(settings.home / "content"),
            ) as service:  # fmt: skip
                state.console.print(
                    f"node {escape(node.id)} ({signer.address}) runs agreement {agreement} "
                    f"on {s.ledger.kind} chain {s.ledger.chain_id}; Ctrl-C stops it",
                    highlight=False,
                )
                await stop.wait()
                stats = service.stats
            state.console.print(
                f"stopped: {stats.accepted} messages accepted, {stats.windows} windows, "
                f"{stats.agreed} agreed, {stats.disputed} disputed, "
                f"{stats.updates_sent} updates sent",
                highlight=False,
            )

    run(go())
