"""Paper 001's logistics case study (Fig. 1): three pervasive contracts as microservices.

Shipping (its cost from a local ``ShipmentCost?device=VerticalPump`` service through the
oracle hub, kept in its contract database C_d), AssetTracking (``sendMoney`` by a
co-location trigger, once) and Payment (an escrow released by the container's delivery
confirmation that arrives late, through store-and-forward). Each is a spec file and
Vyper logic shipped here; :func:`run_logistics` runs them with oracle nodes, services
and simulated devices and reports every step, the CloudEvents stream and the gas
(``pervasive demo logistics``). See ``README.md`` here.

Example::

    async with Platform(settings, password="pw", persist=False) as platform:
        report = await run_logistics(platform, root=Path("run"))
    write_chart(report, Path("timeline.png"))
"""

from pervasive.apps.logistics.chart import write_chart
from pervasive.apps.logistics.cost_service import COST_PATH, PRICES, CostService
from pervasive.apps.logistics.handles import Payment, Shipping
from pervasive.apps.logistics.report import (
    PARTIES,
    LogisticsReport,
    OracleRoundTrip,
    ReceivedEvent,
    Step,
)
from pervasive.apps.logistics.scenario import ORACLES, THRESHOLD, DemoStalled, run_logistics
from pervasive.apps.logistics.stream import EVENTS_FILTER, EventCollector
from pervasive.apps.logistics.world import (
    CONTAINER,
    CONTAINER_SENSORS,
    DELIVERY_SENSOR,
    DEVICE_CATEGORY,
    GOODS_PRICE,
    RETAILER,
    RETAILER_CELL,
    RETAILER_SENSORS,
    SERVICES,
    SHIPMENT,
    container_path,
    spec_path,
)

__all__ = [
    "CONTAINER",
    "CONTAINER_SENSORS",
    "COST_PATH",
    "DELIVERY_SENSOR",
    "DEVICE_CATEGORY",
    "EVENTS_FILTER",
    "GOODS_PRICE",
    "ORACLES",
    "PARTIES",
    "PRICES",
    "RETAILER",
    "RETAILER_CELL",
    "RETAILER_SENSORS",
    "SERVICES",
    "SHIPMENT",
    "THRESHOLD",
    "CostService",
    "DemoStalled",
    "EventCollector",
    "LogisticsReport",
    "OracleRoundTrip",
    "Payment",
    "ReceivedEvent",
    "Shipping",
    "Step",
    "container_path",
    "run_logistics",
    "spec_path",
    "write_chart",
]
