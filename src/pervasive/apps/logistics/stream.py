"""The one CloudEvents stream of the case study, collected from MQTT.

Every service publishes its contract's events as CloudEvents 1.0 (structured JSON) on
``pervasive/events/<chain id>/<contract>/<type>``; an :class:`EventCollector`
subscribes to ``pervasive/events/#`` with the ``svc:events`` identity, parses each
message with the interop layer's :func:`~pervasive.interop.envelope.read_event` and
keeps it once per id (QoS 1 may deliver a message twice). A payload that is no
CloudEvent is counted in :attr:`EventCollector.refusals`, never raised.

Example::

    collector = EventCollector({"0xAb..": "shipping"}, started=time.perf_counter())
    task = asyncio.create_task(collector.run(client))
    await collector.wait_for("dev.pervasive.logistics.cost-quoted")
    collector.in_chain_order()       # list[ReceivedEvent]
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping

from pervasive.apps.logistics.report import ReceivedEvent
from pervasive.interop.envelope import read_event
from pervasive.messaging import MqttConnection

__all__ = ["EVENTS_FILTER", "EventCollector"]

_log = logging.getLogger(__name__)

EVENTS_FILTER = "pervasive/events/#"
"""Where every service publishes its CloudEvents."""


class EventCollector:
    """Collects the CloudEvents stream; ``services`` names each contract address."""

    def __init__(self, services: Mapping[str, str], *, started: float) -> None:
        self.services = {address.lower(): name for address, name in services.items()}
        self.started = started
        self.events: dict[str, ReceivedEvent] = {}
        """Every event by id, first arrival kept."""
        self.duplicates = 0
        """Messages whose id had arrived before (QoS 1 redelivery)."""
        self.refusals: Counter[str] = Counter()
        """Messages that were no CloudEvent (``malformed``)."""
        self._changed = asyncio.Event()

    def add_service(self, address: str, name: str) -> None:
        """Name the events of the contract at ``address`` after ``name``."""
        self.services[address.lower()] = name

    def accept(self, topic: str, payload: bytes) -> ReceivedEvent | None:
        """Parse one message; the new event, or ``None`` (a duplicate or a refusal).

        Example: ``collector.accept(message.topic, message.payload)``.
        """
        try:
            event = read_event(payload)
        except Exception as exc:  # the SDK raises classes of its own: counted and logged
            self.refusals["malformed"] += 1
            _log.info("not a CloudEvent on %s: %s", topic, exc)
            return None
        identifier = str(event.get_id())
        if identifier in self.events:
            self.duplicates += 1
            return None
        source = str(event.get_source())
        address = source.rsplit(":", 1)[-1].lower()
        data = event.get_data()
        received = ReceivedEvent(
            at=time.perf_counter() - self.started,
            id=identifier,
            type=str(event.get_type()),
            source=source,
            service=self.services.get(address, address),
            subject=event.get_subject(),
            dataschema=event.get_dataschema(),
            data=dict(data) if isinstance(data, Mapping) else {"value": data},
            topic=topic,
        )
        self.events[identifier] = received
        self._changed.set()
        return received

    async def run(self, connection: MqttConnection) -> None:
        """Subscribe and collect until cancelled."""
        await connection.subscribe(EVENTS_FILTER, qos=1)
        async for message in connection.messages():
            self.accept(message.topic, message.payload)

    def count(self, event_type: str) -> int:
        """How many events of ``event_type`` arrived."""
        return sum(1 for e in self.events.values() if e.type == event_type)

    async def wait_for(self, event_type: str, count: int = 1, *, timeout: float = 20.0) -> None:
        """Wait until ``count`` events of ``event_type`` arrived; TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while self.count(event_type) < count:
                self._changed.clear()
                await self._changed.wait()

    def in_chain_order(self) -> list[ReceivedEvent]:
        """Every event, sorted by id: the chain position (block, transaction, log)."""
        return [self.events[key] for key in sorted(self.events)]
