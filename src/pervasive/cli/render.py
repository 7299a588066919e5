"""Rich tables for registry entities and receipts (presentation only, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from pervasive.chain import Receipt
    from pervasive.domain import IntermediateNode, Sensor, User

__all__ = [
    "node_detail",
    "nodes_table",
    "receipt_line",
    "sensor_detail",
    "sensors_table",
    "user_detail",
    "users_table",
]


def _status(active: bool) -> str:
    return "[green]active[/green]" if active else "[dim]deactivated[/dim]"


def _active(active: bool) -> str:
    return "[green]yes[/green]" if active else "[dim]no[/dim]"


def _short(address: str) -> str:
    return f"{address[:8]}…{address[-6:]}"


def users_table(users: Sequence[User], title: str = "Users") -> Table:
    """One row per user."""
    table = Table(title=title)
    for column in ("id", "account", "owner", "active"):
        table.add_column(column, no_wrap=True)
    for user in users:
        table.add_row(user.id, _short(user.account), _short(user.owner), _active(user.active))
    return table


def sensors_table(sensors: Sequence[Sensor], title: str = "Sensors") -> Table:
    """One row per sensor, with its declared fields as ``name:type``."""
    table = Table(title=title)
    for column in ("id", "type (c_s)", "fields", "owner", "active"):
        table.add_column(column, no_wrap=column != "fields", overflow="fold")
    for sensor in sensors:
        fields = "\n".join(f"{f.name}:{f.type.value}" for f in sensor.fields) or "-"
        table.add_row(
            sensor.id, sensor.sensor_type, fields, _short(sensor.owner), _active(sensor.active)
        )
    return table


def nodes_table(nodes: Sequence[IntermediateNode], title: str = "Intermediate nodes") -> Table:
    """One row per intermediate node."""
    table = Table(title=title)
    for column in ("id", "account", "endpoint", "owner", "active"):
        table.add_column(column, no_wrap=column != "endpoint", overflow="fold")
    for node in nodes:
        table.add_row(
            node.id, _short(node.account), escape(node.endpoint), _short(node.owner),
            _active(node.active),
        )  # fmt: skip
    return table


def _detail(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("property", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def user_detail(user: User) -> Table:
    """All properties of one user."""
    rows = [("id", user.id), ("account", user.account), ("owner", user.owner)]
    return _detail(f"User {user.id}", [*rows, ("status", _status(user.active))])


def sensor_detail(sensor: Sensor) -> Table:
    """All properties of one sensor, the full public key included."""
    rows = [
        ("id", sensor.id),
        ("type (c_s)", sensor.sensor_type),
        ("public key (PU_s)", sensor.public_key.hex()),
        *((f"field {f.name}", f.type.value) for f in sensor.fields),
        ("owner", sensor.owner),
        ("status", _status(sensor.active)),
    ]
    return _detail(f"Sensor {sensor.id}", rows)


def node_detail(node: IntermediateNode) -> Table:
    """All properties of one intermediate node."""
    rows = [
        ("id", node.id),
        ("account", node.account),
        ("endpoint", escape(node.endpoint)),
        ("public key", node.public_key.hex()),
        ("owner", node.owner),
        ("status", _status(node.active)),
    ]
    return _detail(f"Intermediate node {node.id}", rows)


def receipt_line(receipt: Receipt) -> str:
    """Block, gas and transaction hash of a receipt, on one line."""
    return f"block {receipt.block_number}, gas {receipt.gas_used:,}, tx {receipt.transaction_hash}"
