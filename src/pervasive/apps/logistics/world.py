"""The logistics world of paper 001's Fig. 1: its specs, parties, devices and their paths.

Three pervasive contracts ship as spec files beside this module (package data):
``shipping.toml`` (cost from the oracle, records in C_d), ``asset-tracking.toml``
(``sendMoney`` when container and retailer share a cell) and ``payment.toml`` (escrow
released by the container's delivery reading), with their Vyper logic in
``contracts/`` and the JSON Schemas of their CloudEvents in ``schemas/``. Two devices
take part: ``container-1`` (sensors ``location`` and ``delivery``) and ``retailer-1``
(``location``); :func:`container_path` is the container's route, cell by cell, until it
reaches the retailer's cell.

Example::

    spec = load_spec(spec_path("shipping"))
    container = Device(CONTAINER, folder, host=h, port=p, sensors=CONTAINER_SENSORS)
"""

from __future__ import annotations

from pathlib import Path

from pervasive.devices import SensorSpec
from pervasive.devices.simulator import LOCATION_SENSOR

__all__ = [
    "CONTAINER",
    "CONTAINER_SENSORS",
    "DELIVERY_SENSOR",
    "DEVICE_CATEGORY",
    "GOODS_PRICE",
    "RETAILER",
    "RETAILER_CELL",
    "RETAILER_SENSORS",
    "SERVICES",
    "SHIPMENT",
    "container_path",
    "spec_path",
]

SERVICES = ("shipping", "asset-tracking", "payment")
"""The three pervasive contracts of Fig. 1, in deployment order."""
SHIPMENT = "ship-1"
"""The shipment every contract of the run is about (the trigger's spec names it)."""
DEVICE_CATEGORY = "VerticalPump"
"""What is shipped: the paper's ``ShipmentCost?device=VerticalPump``."""
GOODS_PRICE = 50_000_000_000_000_000
"""Wei the retailer escrows in the Payment contract for the supplier (0.05 ETH)."""
CONTAINER = "container-1"
RETAILER = "retailer-1"
RETAILER_CELL = "cell-5"
"""Where the retailer is: the container's route ends here."""

DELIVERY_SENSOR = SensorSpec("delivery", "delivery", (("shipment", "string"), ("time", "uint64")))
"""The container's delivery confirmation: which shipment, when."""
CONTAINER_SENSORS = (LOCATION_SENSOR, DELIVERY_SENSOR)
RETAILER_SENSORS = (LOCATION_SENSOR,)

_HERE = Path(__file__).parent


def spec_path(service: str) -> Path:
    """The spec file of ``service`` (one of :data:`SERVICES`), shipped with the package.

    Example: ``spec_path("payment").name == "payment.toml"``.
    """
    return _HERE / f"{service}.toml"


def container_path(stops: int = 4) -> list[str]:
    """The container's cells, one per reading: ``stops`` cells on the way, then the retailer's.

    Example: ``container_path(2) == ["cell-1", "cell-2", "cell-5"]``.
    """
    return [f"cell-{n}" for n in range(1, stops + 1) if f"cell-{n}" != RETAILER_CELL] + [
        RETAILER_CELL
    ]
