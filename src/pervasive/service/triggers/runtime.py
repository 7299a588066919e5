"""The trigger service: signed readings in over MQTT, idempotent contract calls out.

Control flow for one message on ``pervasive/devices/<id>/sensors/<name>``:

1. :meth:`TriggerService.accept` (synchronous): the topic names the device (only
   that device may publish there, the broker's ACL says so); the payload must be a
   reading of a sensor declared *for that device*, correctly signed
   (:class:`~pervasive.devices.wire.ReadingVerifier`), with a sequence number above
   the last accepted one. Rejections raise the documented error and are counted in
   :attr:`TriggerService.rejections` by reason.
2. The reading's values become :class:`Observation` s; the engine evaluates the
   triggers; the store commits sequence number, context, edge states and new
   episodes in one transaction.
3. :meth:`TriggerService.execute_pending` then runs each pending episode's action:
   it first asks the chain whether the key is already paid (a crash after sending),
   and only otherwise sends. Failures leave the episode pending for the next pass.

Example::

    service = TriggerService(store, triggers, actions, sources)
    await service.run(connection)      # a svc:service MQTT identity
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pervasive.devices.declarations import SENSOR_LEVEL, parse_sensor_topic
from pervasive.devices.wire import ReadingVerifier, peek_public_key
from pervasive.errors import (
    ChainUnavailable,
    InvalidInput,
    InvalidSignature,
    ReplayedMessage,
    SchemaViolation,
    TransactionReverted,
    TransactionTimeout,
)
from pervasive.messaging.port import MqttConnection, MqttMessage
from pervasive.messaging.topics import device_topic_filter
from pervasive.sensing import SensorDeclaration
from pervasive.service.triggers.actions import ALREADY_PAID, TriggerAction
from pervasive.service.triggers.conditions import Observation
from pervasive.service.triggers.engine import ContextTrigger, Firing, TriggerEngine
from pervasive.service.triggers.store import TriggerStore

__all__ = ["ContextSource", "TriggerService"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContextSource:
    """A sensor of ``device`` whose readings feed the context.

    ``attributes`` maps a declared variable to the context attribute it sets;
    ``time_field`` names the variable holding the reading's time (seconds).
    """

    device: str
    declaration: SensorDeclaration
    attributes: Mapping[str, str] = field(default_factory=lambda: {"cell": "cell"})
    time_field: str = "time"

    def observations(self, values: tuple[object, ...]) -> list[Observation]:
        """The observations of one verified reading."""
        names = [f.name for f in self.declaration.fields]
        by_name = dict(zip(names, values, strict=True))
        moment = by_name.get(self.time_field)
        if not isinstance(moment, int):
            raise SchemaViolation(f"sensor of {self.device} has no integer {self.time_field!r}")
        out = []
        for variable, attribute in self.attributes.items():
            value = by_name.get(variable)
            if not isinstance(value, str | int | bool):
                raise SchemaViolation(f"sensor of {self.device} has no scalar {variable!r}")
            out.append(Observation(self.device, attribute, value, moment))
        return out


class TriggerService:
    """Context triggers of one pervasive contract, persistent and idempotent."""

    def __init__(
        self,
        store: TriggerStore,
        triggers: Iterable[ContextTrigger],
        actions: Mapping[str, TriggerAction],
        sources: Iterable[ContextSource],
    ) -> None:
        self.store = store
        triggers = list(triggers)
        missing = [t.name for t in triggers if t.name not in actions]
        if missing:
            raise InvalidInput(f"triggers without an action: {missing}")
        for trigger in triggers:
            if trigger.scope != actions[trigger.name].scope:
                raise InvalidInput(
                    f"trigger {trigger.name!r} has scope {trigger.scope!r} but its action acts "
                    f"on {actions[trigger.name].scope!r}: keys would not match the action"
                )
        self.engine = TriggerEngine(triggers, context=store.context(), states=store.states())
        self.actions = dict(actions)
        self._sources = {s.declaration.public_key.to_bytes(): s for s in sources}
        self._verifier = ReadingVerifier(s.declaration for s in self._sources.values())
        self._lock = asyncio.Lock()
        self.accepted = 0
        """Readings accepted into the context."""
        self.rejections: Counter[str] = Counter()
        """Rejected readings by reason: malformed, schema, signature, impostor, replay."""
        self.fired = 0
        """Episodes that began (and were recorded) in this process."""

    # -- input --------------------------------------------------------------------------
    def accept(self, topic: str, payload: bytes) -> list[Firing]:
        """Verify and apply one reading; return the episodes it began (already recorded).

        Raises, after counting: :class:`InvalidInput` (malformed topic or bytes),
        :class:`SchemaViolation` (undeclared sensor or wrong values),
        :class:`InvalidSignature` (forged, or published on another device's topic),
        :class:`ReplayedMessage` (sequence number not above the last accepted).

        Example: ``service.accept(message.topic, message.payload)``.
        """
        try:
            device, _ = parse_sensor_topic(topic)
            reading = self._verifier.verify(payload)
        except SchemaViolation:
            self.rejections["schema"] += 1
            raise
        except InvalidSignature:
            self.rejections["signature"] += 1
            raise
        except InvalidInput:
            self.rejections["malformed"] += 1
            raise
        source = self._sources[peek_public_key(payload)]
        if source.device != device:
            self.rejections["impostor"] += 1
            raise InvalidSignature(
                f"a reading signed by {source.device}'s sensor arrived on {device}'s topic"
            )
        last = self.store.last_sequence(reading.sensor)
        if last is not None and reading.sequence <= last:
            self.rejections["replay"] += 1
            raise ReplayedMessage(
                f"sensor {reading.sensor} sent q={reading.sequence}, already accepted up to {last}"
            )
        firings: list[Firing] = []
        for observation in source.observations(reading.values):
            step = self.engine.observe(observation)
            self.store.apply(step, sensor=reading.sensor, sequence=reading.sequence)
            firings.extend(step.firings)
        self.accepted += 1
        self.fired += len(firings)
        return firings

    async def handle(self, message: MqttMessage) -> None:
        """Accept one MQTT message (rejections are counted and logged, not raised).

        Example: ``await service.handle(message)``.
        """
        try:
            firings = self.accept(message.topic, message.payload)
        except (InvalidInput, ReplayedMessage) as exc:
            _log.info("rejected a reading on %s: %s", message.topic, exc)
            return
        if firings:
            await self.execute_pending()

    # -- output -------------------------------------------------------------------------
    async def execute_pending(self) -> int:
        """Run the action of every pending episode once; return how many are now done.

        Example: ``await service.execute_pending()`` after a restart.
        """
        done = 0
        async with self._lock:
            for episode in self.store.pending():
                action = self.actions.get(episode.trigger)
                if action is None:
                    continue
                try:
                    if await action.already_done(episode.key):
                        self.store.mark_done(episode.key, None)
                    else:
                        self.store.mark_done(episode.key, await action.execute(episode.key))
                    done += 1
                except TransactionReverted as exc:
                    if exc.reason == ALREADY_PAID:
                        self.store.mark_done(episode.key, exc.tx_hash)
                        done += 1
                        continue
                    _log.warning(
                        "%s episode %d reverted: %s", episode.trigger, episode.episode, exc
                    )
                    self.store.mark_failed_attempt(episode.key, str(exc))
                except (ChainUnavailable, TransactionTimeout) as exc:
                    _log.warning(
                        "%s episode %d not sent: %s", episode.trigger, episode.episode, exc
                    )
                    self.store.mark_failed_attempt(episode.key, str(exc))
        return done

    # -- MQTT ---------------------------------------------------------------------------
    def topic_filters(self) -> list[str]:
        """The sensor topics of the watched devices."""
        devices = sorted({s.device for s in self._sources.values()})
        return [device_topic_filter(d).removesuffix("#") + f"{SENSOR_LEVEL}/+" for d in devices]

    async def start(self, connection: MqttConnection) -> None:
        """Subscribe to the watched devices' sensors and finish episodes left pending."""
        for topic_filter in self.topic_filters():
            await connection.subscribe(topic_filter, qos=1)
        await self.execute_pending()

    async def run(self, connection: MqttConnection) -> None:
        """Start, then handle messages until the connection's stream ends.

        Example: ``task = asyncio.create_task(service.run(client))``.
        """
        await self.start(connection)
        async for message in connection.messages():
            await self.handle(message)
