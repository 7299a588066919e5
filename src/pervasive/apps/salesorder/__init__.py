"""The sale-order case study of paper 004: the warehouse door that releases a sold item.

A seller creates a sale order naming the warehouse's account, the buyer buys it and gets
a signed barcode receipt (``contracts.sale_order``, ``domain.sale_receipt``); at the
warehouse the door device reads the receipt from a camera frame, asks the order through
the devices' gateway whether the buyer owns it, releases it on-chain once and opens the
door through its shadow (sections 4.4-4.8). See ``README.md`` here.

Example::

    warehouse = WarehouseDoor("warehouse-7", ledger, account, ReleaseJournal.open(path))
    await warehouse.start(mqtt_client)
    decision = await warehouse.scan(Path("frame.png"))
"""

from pervasive.apps.salesorder.barcode import (
    ImageSource,
    UnreadableImage,
    read_barcode_text,
    read_barcode_texts,
    render_png,
    render_svg,
    render_terminal,
)
from pervasive.apps.salesorder.decision import (
    DoorDecision,
    DoorTimings,
    Refusal,
    failure_refusal,
    ownership_refusal,
)
from pervasive.apps.salesorder.door import (
    Actuator,
    Door,
    DoorEvent,
    DoorState,
    SimulatedActuator,
)
from pervasive.apps.salesorder.journal import ReleaseEntry, ReleaseJournal, Stage
from pervasive.apps.salesorder.shadow_door import DoorFault, ReleaseNote, ShadowDoor
from pervasive.apps.salesorder.warehouse import WarehouseDoor

__all__ = [
    "Actuator",
    "Door",
    "DoorDecision",
    "DoorEvent",
    "DoorFault",
    "DoorState",
    "DoorTimings",
    "ImageSource",
    "Refusal",
    "ReleaseEntry",
    "ReleaseJournal",
    "ReleaseNote",
    "ShadowDoor",
    "SimulatedActuator",
    "Stage",
    "UnreadableImage",
    "WarehouseDoor",
    "failure_refusal",
    "ownership_refusal",
    "read_barcode_text",
    "read_barcode_texts",
    "render_png",
    "render_svg",
    "render_terminal",
]
