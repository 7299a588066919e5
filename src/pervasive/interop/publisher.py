"""The MQTT publisher: sends one origin's events in order, QoS 1, remembering where it stopped.

The event log of a data directory holds every writer's events; a feed's publisher
sends only those its own feed appended (``origin``), each to its topic
(``pervasive/events/<chain id>/<contract>/<type>``, ``pervasive/events/shadow/<thing>/<type>``)
as CloudEvents structured JSON, with QoS 1; after the broker's PUBACK the publisher's
cursor (``interop_cursors``, by ``name``) moves past it. Nothing is skipped: the cursor
never moves past an event that was not acknowledged.

A publish once sent is finished even when the publisher is cancelled (a stop, a
restart): it waits for that PUBACK and writes the cursor, then stops, so a restarted
publisher does not send it again. Only a crash (``kill -9``, power) between a PUBACK
and the cursor write sends that one event again: MQTT QoS 1 is at least once anyway,
and CloudEvents lets consumers deduplicate by ``source`` + ``id``
(``messaging.dedupe.Deduplicator`` does). The cursor write never waits on SQLite's lock
with the event loop blocked: while another writer holds it, the publisher retries a
few milliseconds later.

Example::

    publisher = EventPublisher(store, connection, name="platform:mqtt", origin="platform")
    task = asyncio.create_task(publisher.run())
    publisher.wake()          # something was committed
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from pervasive.interop.store import EventStore, StoredEvent
from pervasive.messaging.port import MqttConnection

__all__ = ["EventPublisher"]

_LOCK_RETRY = 0.005
"""Seconds between two tries of a cursor write while another writer holds the lock."""


class EventPublisher:
    """Publishes ``store``'s events of ``origin`` (all when ``None``) after its cursor ``name``."""

    def __init__(
        self,
        store: EventStore,
        connection: MqttConnection,
        *,
        name: str = "mqtt",
        origin: str | None = None,
        poll_interval: float = 0.05,
        batch: int = 200,
    ) -> None:
        self.store = store
        self.connection = connection
        self.name = name
        self.origin = origin
        self.poll_interval = poll_interval
        self.batch = batch
        self.counters: Counter[str] = Counter()
        """``published`` (events sent and acknowledged)."""
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for new events now instead of at the next poll."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish every stored event of the origin after the cursor; return how many.

        Example: ``await publisher.publish_pending()``.
        """
        sent = 0
        while True:
            cursor = self.store.cursor(self.name)
            events = self.store.after(cursor, limit=self.batch, origin=self.origin)
            if not events:
                return sent
            for event in events:
                await _finish_even_if_cancelled(self._publish(event))
                sent += 1

    async def _publish(self, event: StoredEvent) -> None:
        await self.connection.publish(event.topic, event.body, qos=1)
        while not self.store.advance(self.name, event.seq):
            await asyncio.sleep(_LOCK_RETRY)  # another writer is mid-transaction
        self.counters["published"] += 1

    async def run(self) -> None:
        """Publish until cancelled (a lost broker connection raises: restart to resume)."""
        while True:
            self._wake.clear()
            await self.publish_pending()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)


async def _finish_even_if_cancelled(step: Coroutine[Any, Any, None]) -> None:
    """Run ``step`` to its end; a cancellation meanwhile is raised after it."""
    task = asyncio.ensure_future(step)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            # the PUBLISH may have left: wait for its PUBACK (bounded by the client's
            # ack_timeout) and the cursor write, or a restart would send it again
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        raise
