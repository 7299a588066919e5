"""The rows of the live dashboard and how platform records become them (pure, no I/O).

Every table of the dashboard holds frozen rows of display-ready values (text and
numbers), so the server-rendered page, ``state.json`` and the browser's script show
exactly the same thing and format nothing themselves. A :class:`Change` puts a row
into a table (or takes it out); a :class:`Snapshot` is every table at once.

Example::

    row = device_row("door-1", record, "active")
    row.door                     # 'closed → open' while the device has not acted yet
    describe_shadow(None, record)  # 'created (version 1): desired door="open"'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pervasive.contracts import Agreement
from pervasive.contracts.sale_order import SaleEvent, SaleItem
from pervasive.shadow import ShadowKey, ShadowRecord

__all__ = [
    "AgreementRow",
    "Change",
    "DeviceRow",
    "EventRow",
    "OrderRow",
    "Row",
    "Snapshot",
    "StatusRow",
    "Table",
    "agreement_row",
    "clock_text",
    "describe_sale",
    "describe_shadow",
    "device_key",
    "device_row",
    "ether",
    "order_row",
    "short_value",
]

Table = Literal["devices", "agreements", "orders", "events", "status"]
"""The tables of the dashboard."""


@dataclass(frozen=True)
class DeviceRow:
    """One shadow of a thing (``shadow`` empty: the classic one), or a device without one."""

    key: str
    """``<thing>`` or ``<thing>/<shadow name>``."""
    thing: str
    shadow: str
    certificate: str
    """The device certificate: ``active``, ``revoked``, ``expired``, ``not yet valid``, ``none``."""
    door: str
    """The reported ``door`` (paper 004's release); ``closed → open`` while desired differs."""
    version: int | None
    desired: str
    reported: str
    delta: str
    updated: str


@dataclass(frozen=True)
class AgreementRow:
    """A DIVERSITY agreement (paper 002): its terms in brief, its updates and disputes."""

    key: str
    address: str
    creator: str
    function: str
    parties: int
    nodes: int
    window: str
    qos: str
    updates: int
    last_window: str
    last_result: str
    disputes: int
    last_dispute: str
    block: int


@dataclass(frozen=True)
class OrderRow:
    """A sale order (paper 004): the item, its price and where it stands."""

    key: str
    address: str
    item: str
    serial: str
    price: str
    seller: str
    buyer: str
    warehouse: str
    state: Literal["listed", "sold", "released"]
    block: int


@dataclass(frozen=True)
class EventRow:
    """One line of the recent-events log."""

    key: str
    time: str
    source: str
    subject: str
    text: str
    block: int | None


@dataclass(frozen=True)
class StatusRow:
    """How one source stands: ``chain``, ``agreements``, ``orders`` or ``devices``."""

    key: str
    ok: bool
    text: str
    time: str


Row = DeviceRow | AgreementRow | OrderRow | EventRow | StatusRow
"""A row of any table."""


@dataclass(frozen=True)
class Change:
    """Row ``row`` put into ``table`` under ``key``; ``row`` ``None`` takes the key out."""

    id: str
    """``<epoch>.<sequence>``: what a reconnecting browser sends back as ``Last-Event-ID``."""
    table: Table
    key: str
    row: Row | None

    @property
    def sequence(self) -> int:
        """The change's number within its feed."""
        return int(self.id.rpartition(".")[2])


@dataclass(frozen=True)
class Snapshot:
    """Every table after change ``id``: devices by name, the others newest first."""

    id: str
    devices: tuple[DeviceRow, ...]
    agreements: tuple[AgreementRow, ...]
    orders: tuple[OrderRow, ...]
    events: tuple[EventRow, ...]
    status: tuple[StatusRow, ...]


def clock_text(moment: float | None = None) -> str:
    """Local time of day ``HH:MM:SS`` of ``moment`` (default: now)."""
    when = datetime.now() if moment is None else datetime.fromtimestamp(moment)
    return when.astimezone().strftime("%H:%M:%S")


# -- devices ----------------------------------------------------------------------------------
def device_key(key: ShadowKey) -> str:
    """The row key of a shadow: ``<thing>`` or ``<thing>/<shadow name>``."""
    return key.thing if key.shadow is None else f"{key.thing}/{key.shadow}"


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True) if value else ""


def device_row(key: str, record: ShadowRecord | None, certificate: str) -> DeviceRow:
    """The row of shadow ``record`` (``None`` or deleted: the device without a shadow)."""
    thing, _, shadow = key.partition("/")
    if record is None or not record.exists:
        return DeviceRow(key, thing, shadow, certificate, "", None, "", "", "", "")
    delta = record.delta()
    reported, wanted = record.reported.get("door"), delta.get("door")
    door = "" if reported is None else str(reported)
    if wanted is not None:
        door = f"{door or '?'} → {wanted}"
    return DeviceRow(
        key, thing, shadow, certificate, door, record.version, _compact(record.desired),
        _compact(record.reported), _compact(delta), clock_text(record.updated_at),
    )  # fmt: skip


def _leaves(section: str, value: Any, path: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for name, inner in value.items():
            out |= _leaves(section, inner, f"{path}.{name}" if path else name)
        return out
    return {f"{section} {path}": json.dumps(value)}


def describe_shadow(previous: ShadowRecord | None, record: ShadowRecord) -> str:
    """What changed in a shadow, in brief: ``updated (version 3): reported door="open"``."""
    if not record.exists:
        return f"deleted (version {record.version})"
    before: dict[str, str] = {}
    if previous is not None and previous.exists:
        before = _leaves("desired", previous.desired) | _leaves("reported", previous.reported)
    after = _leaves("desired", record.desired) | _leaves("reported", record.reported)
    changed = [f"{path}={value}" for path, value in after.items() if before.get(path) != value]
    changed += [f"{path} removed" for path in before if path not in after]
    verb = "created" if previous is None or not previous.exists else "updated"
    detail = ", ".join(changed[:4]) + (" ..." if len(changed) > 4 else "")
    return f"{verb} (version {record.version}): {detail or 'no change'}"


# -- agreements (paper 002) ---------------------------------------------------------------------
def short_value(value: Any) -> str:
    """An event argument as text; bytes as ``0x…`` cut to 32 characters."""
    if isinstance(value, bytes | bytearray):
        text = "0x" + bytes(value).hex()
        return text if len(text) <= 34 else text[:32] + "…"
    return str(value)


def agreement_row(agreement: Agreement, creator: str, block: int) -> AgreementRow:
    """The row of a newly recorded agreement (no update, no dispute yet)."""
    terms = agreement.terms
    return AgreementRow(
        key=agreement.address,
        address=agreement.address,
        creator=creator,
        function=terms.function_name,
        parties=len(terms.parties),
        nodes=len(terms.nodes),
        window=f"size {terms.window_size}, slide {terms.sliding_factor}",
        qos=terms.qos.name.lower().replace("_", " "),
        updates=0,
        last_window="",
        last_result="",
        disputes=0,
        last_dispute="",
        block=block,
    )


# -- sale orders (paper 004) ----------------------------------------------------------------------
def ether(wei: int) -> str:
    """``wei`` in ether without trailing zeros: ``50 ETH``, ``0.001 ETH``."""
    text = format(Decimal(wei) / Decimal(10**18), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} ETH"


def order_row(item: SaleItem, block: int) -> OrderRow:
    """The row of a sale order as its item stands at ``block``."""
    state: Literal["listed", "sold", "released"] = (
        "released" if item.released else "sold" if item.sold else "listed"
    )
    return OrderRow(
        key=item.address,
        address=item.address,
        item=f"{item.make} {item.model} {item.year}",
        serial=item.serial,
        price=ether(item.price),
        seller=item.seller,
        buyer=item.buyer or "",
        warehouse=item.warehouse,
        state=state,
        block=block,
    )


def describe_sale(event: SaleEvent) -> str:
    """A factory event as a log line: ``sold to 0x... for 50 ETH``."""
    if event.kind == "created":
        price = "" if event.price is None else f" for {ether(event.price)}"
        return f"listed by {event.seller}{price}"
    if event.kind == "sold":
        price = "" if event.price is None else f" for {ether(event.price)}"
        return f"sold to {event.buyer}{price}"
    return f"released to {event.buyer} at the warehouse"
