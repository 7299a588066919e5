"""``pervasive demo registry``: the registry of paper 002's bicycle-lock case study.

Two users (an insurer and a rental provider), their two sensors (a temperature sensor
and a smart lock, each with declared fields) and their two intermediate nodes are
registered on the configured chain (the embedded one by default), then the registry
is printed. Entries already present are left as they are, so the demo can be run
again on the same data directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from pervasive.cli import render
from pervasive.cli.session import Session, run, session, state_of

if TYPE_CHECKING:
    from pervasive.contracts import Registry
    from pervasive.crypto import PrivateKey

__all__ = [
    "NODES",
    "SENSORS",
    "USERS",
    "DemoNode",
    "DemoSensor",
    "DemoUser",
    "app",
    "registry_demo",
]

app = typer.Typer(help="Demonstrations on the local chain.", no_args_is_help=True)


@dataclass(frozen=True)
class DemoUser:
    id: str
    dev_account: int


@dataclass(frozen=True)
class DemoSensor:
    id: str
    sensor_type: str
    fields: tuple[str, ...]
    owner: int

    @property
    def key(self) -> PrivateKey:
        """The sensor's key, derived from its id so reruns declare the same PU_s."""
        from pervasive.crypto import PrivateKey, keccak256

        return PrivateKey(keccak256(f"pervasive demo sensor {self.id}".encode()))


@dataclass(frozen=True)
class DemoNode:
    id: str
    dev_account: int
    endpoint: str
    owner: int


USERS = (DemoUser("insurer", 0), DemoUser("rental-provider", 1))
SENSORS = (
    DemoSensor("temp-1", "temperature", ("celsius:int64", "humidity:uint64"), owner=0),
    DemoSensor(
        "lock-1", "lock", ("locked:bool", "rider:address", "rental_seconds:uint64"), owner=1
    ),
)
NODES = (
    DemoNode("node-insurer", 2, "mqtts://node-insurer.local:8883", owner=0),
    DemoNode("node-provider", 3, "mqtts://node-provider.local:8883", owner=1),
)


async def _register_all(s: Session, progress: Progress) -> tuple[Registry, int]:
    """Register what is missing; return the registry and how many entries were new."""
    from pervasive.crypto import PrivateKey
    from pervasive.domain import SensorField

    steps = 1 + len(USERS) + len(SENSORS) + len(NODES)
    task = progress.add_task("deploying the registry", total=steps)
    registry = await s.registry(s.signer(None, 0))
    progress.advance(task)
    added = 0

    def step(what: str) -> None:
        progress.update(task, description=what)

    for user in USERS:
        step(f"user {user.id}")
        if not await registry.has_user(user.id):
            signer = s.signer(None, user.dev_account)
            await registry.with_signer(signer).add_user(user.id)
            added += 1
        progress.advance(task)
    for sensor in SENSORS:
        step(f"sensor {sensor.id}")
        if not await registry.has_sensor(sensor.id):
            owner = registry.with_signer(s.signer(None, sensor.owner))
            fields = [SensorField.parse(text) for text in sensor.fields]
            await owner.add_sensor(
                sensor.id, sensor.key.public_key.to_bytes(), sensor.sensor_type, fields
            )
            added += 1
        progress.advance(task)
    for node in NODES:
        step(f"intermediate node {node.id}")
        if not await registry.has_node(node.id):
            node_key = PrivateKey(s.signer(None, node.dev_account).private_key)
            owner = registry.with_signer(s.signer(None, node.owner))
            await owner.add_node(
                node.id, node_key.address, node_key.public_key.to_bytes(), node.endpoint
            )
            added += 1
        progress.advance(task)
    step("done")
    return registry, added


@app.command("registry")
def registry_demo(ctx: typer.Context) -> None:
    """Register two users, two sensors and two intermediate nodes, then print the registry.

    Runs on the embedded chain by default; safe to run again (existing entries are kept).
    Example: ``pervasive demo registry`` or ``pervasive --backend anvil demo registry``.
    """
    state = state_of(ctx)
    console = state.console

    async def go() -> None:
        async with session(state) as s:
            columns = (TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, console=console) as progress:
                registry, added = await _register_all(s, progress)
            users = await registry.list_users()
            sensors = await registry.list_sensors()
            nodes = await registry.list_nodes()
            chain = f"{s.ledger.kind} chain {s.ledger.chain_id}"
        console.print(render.users_table(users))
        console.print(render.sensors_table(sensors))
        console.print(render.nodes_table(nodes))
        total = len(USERS) + len(SENSORS) + len(NODES)
        console.print(
            f"registry {registry.address} on the {escape(chain)}: "
            f"{added} registered now, {total - added} already present"
        )

    run(go())
