"""``pervasive registry user|sensor|node add|list|show|deactivate``.

Writes are signed by ``--account NAME`` (keystore) or, on the embedded and anvil
backends, by a funded development account (``--dev-account N``, default 0). The first
write on a chain deploys the registry; reads never deploy.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pervasive.cli import render
from pervasive.cli.session import CliState, run, session, state_of

__all__ = [
    "Account",
    "DevAccount",
    "Limit",
    "Offset",
    "add_node",
    "add_sensor",
    "add_user",
    "app",
    "deactivate_node",
    "deactivate_sensor",
    "deactivate_user",
    "list_nodes",
    "list_sensors",
    "list_users",
    "nodes",
    "sensors",
    "show_node",
    "show_sensor",
    "show_user",
    "users",
]

app = typer.Typer(
    help="Register and inspect users, sensors and intermediate nodes (paper 002's mainContract).",
    no_args_is_help=True,
)
users = typer.Typer(
    help="Users: an id and the Ethereum account that acts for it.", no_args_is_help=True
)
sensors = typer.Typer(
    help="Sensors: declarations d_s = {PU_s, c_s, type_1 x_1, ...}.", no_args_is_help=True
)
nodes = typer.Typer(
    help="Intermediate nodes: account, public key and endpoint.", no_args_is_help=True
)
app.add_typer(users, name="user")
app.add_typer(sensors, name="sensor")
app.add_typer(nodes, name="node")

Account = Annotated[str | None, typer.Option("--account", help="Sign with this keystore account.")]
DevAccount = Annotated[
    int | None,
    typer.Option("--dev-account", help="Sign with development account N (embedded/anvil)."),
]
Offset = Annotated[int, typer.Option(min=0, help="Skip this many entries.")]
Limit = Annotated[int | None, typer.Option(min=1, help="Show at most this many entries.")]


# -- users ----------------------------------------------------------------------------
@users.command("add")
def add_user(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="Unique user id, e.g. alice.")],
    address: Annotated[
        str | None, typer.Option(help="The user's account (default: the signer's address).")
    ] = None,
    account: Account = None,
    dev_account: DevAccount = None,
) -> None:
    """Register a user. Example: ``pervasive registry user add alice --dev-account 1``."""
    state = state_of(ctx)

    async def go() -> None:
        async with session(state) as s:
            registry = await s.registry(s.signer(account, dev_account))
            receipt = await registry.add_user(user_id, address)
            user = await registry.get_user(user_id)
        state.console.print(f"registered user [bold]{user.id}[/bold] ({user.account}): "
                            + render.receipt_line(receipt))  # fmt: skip

    run(go())


@users.command("list")
def list_users(ctx: typer.Context, offset: Offset = 0, limit: Limit = None) -> None:
    """List users in registration order. Example: ``pervasive registry user list``."""
    state = state_of(ctx)

    async def go() -> None:
        async with session(state) as s:
            found = await (await s.registry()).list_users(offset, limit)
        state.console.print(render.users_table(found))

    run(go())


@users.command("show")
def show_user(ctx: typer.Context, user_id: str) -> None:
    """Show one user. Example: ``pervasive registry user show alice``."""
    state = state_of(ctx)

    async def go() -> None:
        async with session(state) as s:
            user = await (await s.registry()).get_user(user_id)
        state.console.print(render.user_detail(user))

    run(go())


@users.command("deactivate")
def deactivate_user(
    ctx: typer.Context, user_id: str, account: Account = None, dev_account: DevAccount = None
) -> None:
    """Deactivate a user for good (owner only).

    Example: ``pervasive registry user deactivate alice``.
    """
    _deactivate(state_of(ctx), "user", user_id, account, dev_account)


# -- sensors --------------------------------------------------------------------------
@sensors.command("add")
def add_sensor(
    ctx: typer.Context,
    *,
    sensor_id: Annotated[str, typer.Argument(help="Unique sensor id, e.g. temp-1.")],
    sensor_type: Annotated[
        str, typer.Option("--type", help="Sensor type c_s, e.g. temperature or lock.")
    ],
    public_key: Annotated[
        str, typer.Option(help="PU_s in hex: 64 bytes x||y, 65 bytes 04||x||y, or 33 compressed.")
    ],
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            help="A declared variable name:type (repeatable). Types: bool, int64, uint64, "
            "int256, uint256, string, bytes32, address.",
        ),
    ] = None,
    account: Account = None,
    dev_account: DevAccount = None,
) -> None:
    """Declare a sensor.

    Example: ``pervasive registry sensor add temp-1 --type temperature --public-key 04ab...
    --field celsius:int64 --field humidity:uint64``.
    """
    from pervasive.domain import SensorField

    state = state_of(ctx)
    fields = [SensorField.parse(text) for text in field or []]

    async def go() -> None:
        async with session(state) as s:
            registry = await s.registry(s.signer(account, dev_account))
            receipt = await registry.add_sensor(sensor_id, public_key, sensor_type, fields)
        state.console.print(f"registered sensor [bold]{sensor_id}[/bold] ({sensor_type}): "
                            + render.receipt_line(receipt))  # fmt: skip

    run(go())


@sensors.command("list")
def list_sensors(ctx: typer.Context, offset: Offset = 0, limit: Limit = None) -> None:
    """List sensors in registration order. Example: ``pervasive registry sensor list``."""
    state = state_of(ctx)

    async def go() -> None:
        async with session(state) as s:
            found = await (await s.registry()).list_sensors(offset, limit)
        state.console.print(render.sensors_table(found))

    run(go())


@sensors.command("show")
def show_sensor(ctx: typer.Context, sensor_id: str) -> None:
    """Show one sensor's declaration. Example: ``pervasive registry sensor show temp-1``."""
    state = state_of(ctx)

    async def go() -> None:
        async with session(state) as s:
            sensor = await (await s.registry()).get_sensor(sensor_id)
        state.console.print(render.sensor_detail(sensor))

    run(go())


@sensors.command("deactivate")
def deactivate_sensor(
    ctx: typer.Context, sensor_id: str, account: Account = None, dev_account: DevAccount = None
) -> None:
    """Deactivate a sensor for good (owner only).

    Example: ``pervasive registry sensor deactivate temp-1``.
    """
    _deactivate(state_of(ctx), "sensor", sensor_id, account, dev_account)


# -- intermediate nodes ---------------------------------------------------------------
@nodes.command("add")
def add_node(
    ctx: typer.Context,
    *,
    node_id: Annotated[str, typer.Argument(help="Unique node id, e.g. node-insurer.")],
    endpoint: Annotated[str, typer.Option(help="Where the node listens, e.g. mqtts://host:8883.")],
    address: Annotated[
        str | None, typer.Option(help="The node's account (default: the signer's address).")
    ] = None,
    public_key: Annotated[
        str | None, typer.Option(help="The node's public key in hex (default: the signer's).")
    ] = None,
    account: Account = None,
    dev_account: DevAccount = None,
) -> None:
    """Register an intermediate node.

    Example: ``pervasive registry node add node-1 --endpoint mqtts://node1.example:8883
    --dev-account 2`` (the node's account and key default to the signer's).
    """
    from pervasive.crypto import PrivateKey

    state = state_of(ctx)

    async def go() -> None:
        async with session(state) as s:
            signer = s.signer(account, dev_account)
            registry = await s.registry(signer)
            key = public_key or PrivateKey(signer.private_key).public_key.to_bytes()
            receipt = await registry.add_node(node_id, address or signer.address, key, endpoint)
        state.console.print(f"registered node [bold]{node_id}[/bold] ({endpoint}): "
                            + render.receipt_line(receipt))  # fmt: skip

    run(go())


@nodes.command("list")
def list_nodes(ctx: typer.Context, offset: Offset = 0, limit: Limit = None) -> None:
    """List intermediate nodes in registration order. Example: ``pervasive registry node list``."""
    state = state_of(ctx)

    async def go() -> None:
        async with session(state) as s:
            found = await (await s.registry()).list_nodes(offset, limit)
        state.console.print(render.nodes_table(found))

    run(go())


@nodes.command("show")
def show_node(ctx: typer.Context, node_id: str) -> None:
    """Show one intermediate node. Example: ``pervasive registry node show node-1``."""
    state = state_of(ctx)

    async def go() -> None:
        async with session(state) as s:
            node = await (await s.registry()).get_node(node_id)
        state.console.print(render.node_detail(node))

    run(go())


@nodes.command("deactivate")
def deactivate_node(
    ctx: typer.Context, node_id: str, account: Account = None, dev_account: DevAccount = None
) -> None:
    """Deactivate a node for good (owner only).

    Example: ``pervasive registry node deactivate node-1``.
    """
    _deactivate(state_of(ctx), "node", node_id, account, dev_account)


def _deactivate(
    state: CliState, kind: str, entity_id: str, account: str | None, dev_account: int | None
) -> None:
    async def go() -> None:
        async with session(state) as s:
            registry = (await s.registry()).with_signer(s.signer(account, dev_account))
            deactivate = {
                "user": registry.deactivate_user,
                "sensor": registry.deactivate_sensor,
                "node": registry.deactivate_node,
            }[kind]
            receipt = await deactivate(entity_id)
        state.console.print(f"deactivated {kind} [bold]{entity_id}[/bold]: "
                            + render.receipt_line(receipt))  # fmt: skip

    run(go())
