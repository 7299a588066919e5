"""What a run of the logistics case study did and measured: the data its tables and chart show.

Plain frozen records, filled by :mod:`pervasive.apps.logistics.scenario` and read by
the CLI's tables, :mod:`pervasive.apps.logistics.chart` and the tests; nothing here
does I/O, so the chart and the tables need neither a chain nor a broker.

Example::

    report = await run_logistics(platform, root=path)
    [e.type for e in report.events]        # the CloudEvents stream, in chain order
    report.payments[0].amount              # wei sendMoney paid the carrier
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PARTIES",
    "LogisticsReport",
    "OracleRoundTrip",
    "Payment",
    "ReceivedEvent",
    "Step",
]

PARTIES = (
    "retailer",
    "supplier",
    "carrier",
    "container-1",
    "retailer-1",
    "oracle nodes",
    "shipping",
    "asset-tracking",
    "payment",
)
"""The lanes of the timeline: people, devices, the oracle committee, the three contracts."""


@dataclass(frozen=True)
class Step:
    """One step of the run: seconds since the start, whose step, what happened, the detail."""

    at: float
    party: str
    what: str
    detail: str = ""


@dataclass(frozen=True)
class ReceivedEvent:
    """One CloudEvent as the stream delivered it over MQTT."""

    at: float
    """Seconds since the start when it arrived."""
    id: str
    type: str
    source: str
    """``eip155:<chain id>:<contract address>``."""
    service: str
    """The pervasive contract that emitted it (``shipping``, ``asset-tracking``, ``payment``)."""
    subject: str | None
    dataschema: str | None
    """The ``$id`` of the JSON Schema its ``data`` was validated against."""
    data: dict[str, Any]
    topic: str

    @property
    def short_type(self) -> str:
        """The type's last part: ``cost-quoted`` for ``dev.pervasive.logistics.cost-quoted``."""
        return self.type.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Payment:
    """Value that moved to a party, and the transaction that moved it."""

    what: str
    payer: str
    payee: str
    amount: int
    """Wei."""
    received: int
    """How much the payee's balance grew by over the run (wei)."""
    transaction: str
    block: int


@dataclass(frozen=True)
class OracleRoundTrip:
    """The Shipping contract's cost query: from its transaction to the stored answer."""

    query_id: int
    source: str
    cost: int
    """The value t of n oracles agreed on (wei), as stored in the Shipping contract's C_d."""
    digest: str
    """keccak256 of the exact response bytes the oracles observed."""
    signers: int
    """How many oracle signatures the hub verified on-chain."""
    threshold: int
    oracles: int
    seconds: float
    """Wall time from sending the query transaction to the CostQuoted event."""
    query_block: int
    answer_block: int
    fetches: int
    """Times the ShipmentCost service answered (each oracle node observes it itself)."""
    callback_gas: int
    """Gas of the transaction that carried the reports and called ``oracle_callback``."""


@dataclass
class LogisticsReport:
    """Everything the run did, for the tables, the chart and the tests."""

    chain_id: int
    chain_kind: str
    contracts: dict[str, str] = field(default_factory=dict)
    """Service name (and ``oracle-hub``) -> logic contract address."""
    databases: dict[str, str] = field(default_factory=dict)
    """Service name -> its contract database C_d."""
    steps: list[Step] = field(default_factory=list)
    events: list[ReceivedEvent] = field(default_factory=list)
    """The CloudEvents stream, sorted by id (chain position)."""
    payments: list[Payment] = field(default_factory=list)
    oracle: OracleRoundTrip | None = None
    gas: dict[str, int] = field(default_factory=dict)
    """Transaction label -> gas used."""
    counters: dict[str, Counter[str]] = field(default_factory=dict)
    """Each service's and node's counters (accepted, refusals by reason)."""
    send_money_calls: int = 0
    """MoneySent events seen for the shipment: the trigger fired this many times."""
    co_located_readings: int = 0
    """Location readings sent while container and retailer shared a cell."""
    offline_seconds: float = 0.0
    """How long the container was offline with its delivery reading in the outbox."""
    duration: float = 0.0

    def events_by_type(self) -> Counter[str]:
        """How many CloudEvents of each type arrived."""
        return Counter(event.type for event in self.events)
