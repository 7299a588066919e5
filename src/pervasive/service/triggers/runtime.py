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
   A :class:`~pervasive.service.triggers.actions.TransactionAction` (``SendMoney``) is
   signed and stored before it is broadcast, and the episode is done only once its
   receipt is ``confirmations`` blocks deep in the canonical chain; a transaction a
   reorganisation dropped is sent again as the same signed bytes (same nonce: paid at
   most once), and one whose nonce another transaction took is reported, counted in
   :attr:`TriggerService.reorganised` and signed anew (the contract refuses a key
   twice). :meth:`TriggerService.run` looks at unsettled episodes every
   ``settle_interval`` seconds.

Example::

    service = TriggerService(store, triggers, actions, sources)
    await service.run(connection)      # a svc:service MQTT identity
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pervasive.chain import Finality, TransactionRefused
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
from pervasive.service.triggers.actions import ALREADY_PAID, TransactionAction, TriggerAction
from pervasive.service.triggers.conditions import Observation
from pervasive.service.triggers.engine import ContextTrigger, Firing, TriggerEngine
from pervasive.service.triggers.store import Episode, EpisodeStatus, TriggerStore

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
    """Context triggers of one pervasive contract, persistent and idempotent.

    ``confirmations``: blocks on top of a payment's block before its episode is done;
    ``None`` takes the ledger's (``Settings.confirmations``, 0 by default: the receipt
    alone, right for the embedded chain and anvil, where nothing reorganises on its
    own). ``settle_interval``: seconds between :meth:`run`'s looks at episodes not yet
    done.
    """

    def __init__(
        self,
        store: TriggerStore,
        triggers: Iterable[ContextTrigger],
        actions: Mapping[str, TriggerAction],
        sources: Iterable[ContextSource],
        *,
        confirmations: int | None = None,
        settle_interval: float = 1.0,
    ) -> None:
        if (confirmations is not None and confirmations < 0) or settle_interval <= 0:
            raise InvalidInput(
                f"confirmations must be 0 or more (got {confirmations}) and settle_interval "
                f"more than 0 (got {settle_interval})"
            )
        self.store = store
        self.confirmations = confirmations
        self.settle_interval = settle_interval
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
        self.reorganised: Counter[str] = Counter()
        """Payments a reorganisation touched: ``resent`` (the same signed bytes sent again)
        and ``displaced`` (their nonce taken by another transaction: signed anew)."""

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
        """Run or settle the action of every episode not yet done; return how many are now done.

        Example: ``await service.execute_pending()`` after a restart.
        """
        done = 0
        async with self._lock:
            for episode in self.store.pending():
                action = self.actions.get(episode.trigger)
                if action is None:
                    continue
                try:
                    if await self._advance(episode, action):
                        done += 1
                except TransactionReverted as exc:
                    if exc.reason == ALREADY_PAID:
                        self.store.mark_done(episode.key, exc.tx_hash)
                        done += 1
                        continue
                    _log.warning(
                        "%s episode %d reverted: %s", episode.trigger, episode.episode, exc
                    )
                    if not self.store.mark_unsent(episode.key, str(exc)):  # mined, reverted
                        self.store.mark_failed_attempt(episode.key, str(exc))  # or estimated
                except (ChainUnavailable, TransactionTimeout, TransactionRefused) as exc:
                    _log.warning(
                        "%s episode %d not settled: %s", episode.trigger, episode.episode, exc
                    )
                    self.store.mark_failed_attempt(episode.key, str(exc))
        return done

    async def _advance(self, episode: Episode, action: TriggerAction) -> bool:
        """Take one episode as far as it goes now; ``True`` once it is done."""
        if episode.status is EpisodeStatus.PENDING and await action.already_done(episode.key):
            self.store.mark_done(episode.key, None)
            return True
        if not isinstance(action, TransactionAction):
            self.store.mark_done(episode.key, await action.execute(episode.key))
            return True
        manager = action.transactor
        tx_hash, raw = episode.transaction_hash, episode.raw_transaction
        if episode.status is EpisodeStatus.PENDING or tx_hash is None or raw is None:
            pending = await manager.prepare(action.call(episode.key))
            tx_hash, raw = pending.hashes[0], pending.raw
            self.store.mark_sent(episode.key, tx_hash, raw)  # before anything leaves
            await manager.broadcast(tx_hash, raw)
            # the receipt usually follows within a block: wait for it as a plain send would
            # (not for the depth, which needs later blocks: the next passes look for it)
            with contextlib.suppress(TransactionTimeout):
                await manager.wait_final(tx_hash, raw, confirmations=0)
        depth = self.confirmations
        if depth is None:
            depth = manager.rpc.options.confirmations
        settled = await manager.settle(tx_hash, raw, confirmations=depth)
        if settled.resent:
            self.reorganised["resent"] += 1
            _log.warning(
                "%s episode %d: payment %s is no longer on the chain; sent the same signed "
                "transaction again",
                episode.trigger, episode.episode, tx_hash,
            )  # fmt: skip
        if settled.finality is Finality.DISPLACED:
            self.reorganised["displaced"] += 1
            message = (
                f"{episode.trigger} episode {episode.episode}: payment {tx_hash} was dropped by "
                "a reorganisation and another transaction of the same account took its nonce; "
                "signing a new one (the contract refuses a key twice)"
            )
            _log.warning("%s", message)
            self.store.mark_unsent(episode.key, message)
            return False
        if settled.finality is Finality.FINAL:
            self.store.mark_done(episode.key, tx_hash)
            return True
        return False

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
        settler = asyncio.create_task(self._settle_forever())
        try:
            async for message in connection.messages():
                await self.handle(message)
        finally:
            settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settler

    async def _settle_forever(self) -> None:
        """Retry and settle episodes not yet done (confirmations come without messages)."""
        while True:
            await asyncio.sleep(self.settle_interval)
            if self.store.unsettled():
                await self.execute_pending()
