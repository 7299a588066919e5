"""``ServiceRuntime``: one pervasive contract running as its own service (paper 001, 3.1).

``pervasive service run SPEC`` builds one from the spec, its deployment and the
platform's ledger, CA and broker, and runs it until stopped:

```
MQTT pervasive/devices/<id>/sensors/<s> ──► ReadingIntake (things.py) ──┐ one SQLite
                                        └─► TriggerService (triggers/)  │ transaction per
HTTPS POST /route (device certificate) ───► RestBindings (rest.py) ─────┤ accepted call
                                                                       ▼
                                            Inbox (inbox.py) ──► CallSender (calls.py)
                                                                  sign, store, broadcast,
                                                                  receipt: exactly once
HTTPS GET /route ──► eth_call of a view      contract logs ──► InteropFeed (interop/)
                                                                CloudEvents, MQTT
                                                                pervasive/events/...
```

- **MQTT bindings** (``[[mqtt]]``): a reading signed by a sensor declared for that
  device, with a sequence number above the last, calls the bound function with the
  resolved arguments; refusals counted by reason. The reading is acknowledged to the
  broker (PUBACK) only after its inbox transaction commits, or its refusal is
  counted, when the connection is an ``MqttClient`` with ``manual_ack=True``.
- **REST bindings** (``[[rest]]``): POST accepts a call (``202`` with its inbox id),
  GET answers a view in JSON; certificates of the platform CA, revocation checked per
  request.
- **Triggers** (``[[trigger]]``): the ``service/triggers`` engine (co-location), whose
  action asks the ``done`` view first and calls the function with ``$key`` through
  the same inbox.
- **Events** (``[[events]]``): the contract's logs through ``interop`` (CloudEvents
  1.0, exactly once across restarts and reorgs), published on MQTT.

Every call goes through the inbox and one sender, so every write of the operator
account is ordered and applied exactly once (see ``calls.py``). State lives under
``<home>/services/<name>/`` (``inbox.sqlite``, ``triggers.sqlite``); its events go to
the data directory's one event log ``<home>/interop/events.sqlite`` with origin
``service-<name>`` (the web app's ``/events/stream`` shows them beside the platform's
and the other services'; this runtime publishes only its own on MQTT).

Example::

    runtime = ServiceRuntime(spec, deployment, ledger=ledger, operator=signer,
                             authority=ca, home=settings.home, settings=settings,
                             declarations={"container-1": {"delivery": declaration}})
    connection = MqttClient(platform.client_options("svc:service.shipping", manual_ack=True))
    task = asyncio.create_task(runtime.run(connection, ready=ready))   # connected first
    await ready.wait(); runtime.rest_url; runtime.counters
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from pathlib import Path

from pervasive.chain import Ledger, Signer
from pervasive.config import Settings
from pervasive.contracts.contract import Contract, Function
from pervasive.devices import Declarations, parse_sensor_topic, sensor_topic
from pervasive.errors import (
    InvalidInput,
    ReplayedMessage,
    TransactionReverted,
)
from pervasive.interop import InteropFeed, compile_mappings, events_path
from pervasive.messaging.port import AcknowledgingConnection, MqttConnection, MqttMessage
from pervasive.pki import CertificateAuthority
from pervasive.service.arguments import ArgumentPlan
from pervasive.service.calls import CallSender
from pervasive.service.deployment import ServiceDeployment
from pervasive.service.inbox import CallStatus, Inbox, NewCall
from pervasive.service.rest import RestBindings, RestRoute
from pervasive.service.spec import ServiceSpec, SpecError, TriggerSpec
from pervasive.service.things import ReadingBinding, ReadingIntake
from pervasive.service.triggers import (
    CallbackAction,
    CoLocated,
    ContextSource,
    ContextTrigger,
    TriggerService,
    TriggerStore,
)

__all__ = ["ServiceRuntime", "service_folder", "topic_filters"]

_log = logging.getLogger(__name__)
_ALL_SENSORS = "pervasive/devices/+/sensors/+"


def service_folder(home: Path, name: str) -> Path:
    """Where service ``name`` keeps its state: ``<home>/services/<name>/``.

    Example: ``service_folder(settings.home, "shipping") / "inbox.sqlite"``.
    """
    return home / "services" / name


def _covers(wide: str, narrow: str) -> bool:
    """Whether filter ``wide`` matches every topic ``narrow`` matches (same depth, ``+`` only)."""
    return all(w in ("+", n) for w, n in zip(wide.split("/"), narrow.split("/"), strict=True))


def _overlap(a: str, b: str) -> bool:
    return all("+" in (x, y) or x == y for x, y in zip(a.split("/"), b.split("/"), strict=True))


def topic_filters(topics: set[str]) -> list[str]:
    """The subscriptions for sensor ``topics``: none covered by another, none overlapping.

    Overlapping subscriptions would make the broker deliver a reading twice; when two
    filters overlap without one covering the other, one wildcard filter replaces all.

    Example: ``topic_filters({"pervasive/devices/+/sensors/a", "pervasive/devices/d/sensors/a"})``
    is ``["pervasive/devices/+/sensors/a"]``.
    """
    kept = sorted(t for t in topics if not any(o != t and _covers(o, t) for o in topics))
    if any(_overlap(a, b) for i, a in enumerate(kept) for b in kept[i + 1 :]):
        return [_ALL_SENSORS]
    return kept


class ServiceRuntime:
    """One pervasive contract's bindings, triggers and events, around its deployment."""

    def __init__(
        self,
        spec: ServiceSpec,
        deployment: ServiceDeployment,
        *,
        ledger: Ledger,
        operator: Signer,
        authority: CertificateAuthority,
        home: Path,
        settings: Settings,
        declarations: Declarations,
    ) -> None:
        self.spec = spec
        self.deployment = deployment
        self.ledger = ledger
        self.operator = operator
        self.authority = authority
        self.home = home
        self.settings = settings
        self.declarations = declarations
        self.folder = service_folder(home, spec.name)
        self.contract = Contract(ledger, deployment.address, deployment.abi)
        self.counters: Counter[str] = Counter()
        """``accepted`` readings, ``rest_accepted``, ``applied`` and ``reverted`` calls,
        ``fired`` episodes, and refusals by reason (malformed, schema, signature,
        impostor, replay, no_certificate, revoked, expired, bad_body, too_large...)."""
        self.rest_url: str | None = None
        """``https://127.0.0.1:<port>`` once started, when the spec has ``[[rest]]``."""
        self.feed: InteropFeed | None = None
        """The event feed, while running, when the spec has ``[[events]]``."""
        self.inbox: Inbox | None = None
        """The inbox, while running."""
        self.readings = [
            ReadingBinding.compile(i, b, self._function(b.function, len(b.args)))
            for i, b in enumerate(spec.mqtt)
        ]
        self.routes = [
            RestRoute.compile(b, self._function(b.function, len(b.args))) for b in spec.rest
        ]
        self._trigger_plans = {
            t.name: ArgumentPlan.compile(
                t.args,
                self._function(t.function, len(t.args)).inputs,
                origin="trigger",
                function=t.function,
            )
            for t in spec.trigger
        }
        self._sources = self._context_sources()
        self._sender: CallSender | None = None
        self._intake: ReadingIntake | None = None
        self._triggers: TriggerService | None = None
        self._trigger_sensors = {
            (device, t.when.sensor) for t in spec.trigger for device in t.when.co_located
        }
        self._trigger_wakeup = asyncio.Event()
        self._warned = False

    def _function(self, name: str, arity: int) -> Function:
        candidates = [
            entry
            for entry in self.deployment.abi
            if entry.get("type") == "function"
            and entry.get("name") == name
            and len(entry.get("inputs", ())) == arity
        ]
        if not candidates:
            raise SpecError(
                f"{self.spec.file_label}: {name} with {arity} arguments is not a function of "
                f"the deployed {self.spec.name} at {self.deployment.address}: deploy the spec's "
                "version (pervasive service upgrade)",
                reason="unknown_function",
            )
        return self.contract.function(name, arity)

    # -- running ------------------------------------------------------------------------
    async def run(self, connection: MqttConnection, *, ready: asyncio.Event | None = None) -> None:
        """Serve the bindings, triggers and events until cancelled (or the stream ends).

        ``connection`` is a ``svc:service`` MQTT session (it reads device sensors and
        writes ``pervasive/events/#``). On an :class:`AcknowledgingConnection` each
        message is acknowledged after it is dispatched, i.e. after the inbox
        transaction that accepts it has committed, or after its refusal was counted;
        with ``MqttClient`` and ``ClientOptions(manual_ack=True)`` that is when its
        PUBACK leaves, so a reading is acknowledged only once it is stored, and one the
        process dies holding comes again from the broker (refused as a replay if it was
        stored after all).

        Example: ``task = asyncio.create_task(runtime.run(connection, ready=ready))``.
        """
        inbox = self.inbox = Inbox.open(self.folder / "inbox.sqlite")
        sender = self._sender = CallSender(
            inbox, self.ledger, self.operator, self.deployment.address, counters=self.counters
        )
        self._intake = ReadingIntake(
            self.readings, self.declarations, inbox, counters=self.counters
        )
        tasks = [asyncio.create_task(sender.run(), name=f"{self.spec.name} sender")]
        rest: RestBindings | None = None
        try:
            if self.spec.trigger:
                self._triggers = self._trigger_service()
                tasks.append(asyncio.create_task(self._run_triggers(), name="triggers"))
            if self.routes:
                rest = RestBindings(
                    self.routes, self.contract, inbox, sender, authority=self.authority,
                    settings=self.settings.service, name=self.spec.name, counters=self.counters,
                )  # fmt: skip
                self.rest_url = (await rest.start()).url
            if self.spec.events:
                self.feed = self._feed()
                tasks.append(asyncio.create_task(self._run_events(connection), name="events"))
            for topic_filter in topic_filters(self._topics()):
                await connection.subscribe(topic_filter, qos=1)
            if ready is not None:
                ready.set()
            acknowledge = (
                connection.acknowledge if isinstance(connection, AcknowledgingConnection) else None
            )
            async for message in connection.messages():
                self._dispatch(message)  # synchronous: commits (or refuses) in full...
                if acknowledge is not None:
                    acknowledge(message)  # ...then the PUBACK, no await between: acked = stored
                if message.delivery is None and message.qos and not self._warned:
                    self._warned = True
                    _log.warning(
                        "service %s: its MQTT connection acknowledges readings on arrival, so "
                        "a reading the process dies holding is lost; connect it with "
                        "ClientOptions(manual_ack=True)",
                        self.spec.name,
                    )
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if rest is not None:
                await rest.close()
            self._close()

    def _close(self) -> None:
        if self.feed is not None:
            self.feed.close()
        if self._triggers is not None:
            self._triggers.store.close()
        if self.inbox is not None:
            self.inbox.close()

    def _topics(self) -> set[str]:
        topics = {r.binding.topic for r in self.readings}
        for trigger in self.spec.trigger:
            topics.update(sensor_topic(d, trigger.when.sensor) for d in trigger.when.co_located)
        return topics

    def _dispatch(self, message: MqttMessage) -> None:
        """Accept one message (synchronously: a cancelled task never half-takes one)."""
        try:
            device, sensor = parse_sensor_topic(message.topic)
        except InvalidInput:
            return  # not a sensor topic: no subscription of ours delivers one
        handled = False
        intake = self._intake
        if intake is not None and intake.wants(device, sensor):
            handled = True
            try:
                ids = intake.accept(message.topic, message.payload)
            except (InvalidInput, ReplayedMessage) as exc:
                _log.info("refused a reading on %s: %s", message.topic, exc)
            else:
                if ids and self._sender is not None:
                    self._sender.wake()
        triggers = self._triggers
        if triggers is not None and (device, sensor) in self._trigger_sensors:
            before = Counter(triggers.rejections)
            try:
                firings = triggers.accept(message.topic, message.payload)
            except (InvalidInput, ReplayedMessage) as exc:
                if not handled:  # a reading both paths refuse is counted once
                    self.counters.update(triggers.rejections - before)
                    _log.info("refused a reading on %s: %s", message.topic, exc)
                return
            if not handled:
                self.counters["accepted"] += 1
            if firings:
                self.counters["fired"] += len(firings)
                self._trigger_wakeup.set()

    # -- triggers -----------------------------------------------------------------------
    def _context_sources(self) -> list[ContextSource]:
        """What the triggers watch: each device's sensor, by the attributes they compare."""
        sources: dict[tuple[str, str], set[str]] = {}
        for trigger in self.spec.trigger:
            for device in trigger.when.co_located:
                watched = sources.setdefault((device, trigger.when.sensor), set())
                watched.add(trigger.when.attribute)
        out = []
        for (device, sensor), attributes in sorted(sources.items()):
            declaration = self.declarations.get(device, {}).get(sensor)
            if declaration is None:
                raise SpecError(
                    f"{self.spec.file_label}: a trigger watches {device}'s sensor {sensor!r}, "
                    "which is not declared: register the device's sensor first",
                    reason="undeclared_sensor",
                )
            out.append(ContextSource(device, declaration, {a: a for a in sorted(attributes)}))
        return out

    def _trigger_service(self) -> TriggerService:
        triggers = [
            ContextTrigger(
                t.name,
                CoLocated(tuple(t.when.co_located), t.when.attribute, t.when.window),
                scope=self._scope(t),
            )
            for t in self.spec.trigger
        ]
        actions = {t.name: self._action(t) for t in self.spec.trigger}
        store = TriggerStore.open(self.folder / "triggers.sqlite")
        return TriggerService(store, triggers, actions, self._sources)

    def _scope(self, trigger: TriggerSpec) -> str:
        return f"{self.deployment.address}/{trigger.name}"

    def _action(self, trigger: TriggerSpec) -> CallbackAction:
        function = self._function(trigger.function, len(trigger.args))
        done = self.contract.function(trigger.done, 1)
        plan = self._trigger_plans[trigger.name]

        async def already_done(key: bytes) -> bool:
            data = await self.ledger.call(self.deployment.address, done.encode([key]))
            return bool(done.decode_output(data))

        async def execute(key: bytes) -> str:
            assert self.inbox is not None and self._sender is not None
            calldata = function.encode(plan.resolve({}, {"key": key}))
            call_id = self.inbox.accept(
                NewCall("trigger", trigger.name, f"trigger:{key.hex()}", function.name, calldata)
            )
            self._sender.wake()
            call = await self._sender.wait_for(call_id)
            if call.status is CallStatus.REVERTED:
                raise TransactionReverted(call.error, tx_hash=call.transaction_hash)
            assert call.transaction_hash is not None
            return call.transaction_hash

        return CallbackAction(self._scope(trigger), done=already_done, execute=execute)

    async def _run_triggers(self) -> None:
        """Finish episodes left pending, then run each new one's action once."""
        assert self._triggers is not None
        while True:
            self._trigger_wakeup.clear()
            await self._triggers.execute_pending()
            await self._trigger_wakeup.wait()

    # -- events -------------------------------------------------------------------------
    async def _run_events(self, connection: MqttConnection) -> None:
        """Follow the contract's logs into the data directory's event log; publish ours.

        ``InteropFeed.run``: a follower and a publisher (this service's events only),
        neither waiting on SQLite's lock with the event loop blocked, so other feeds
        of the directory (the platform's, other services', in this process or not)
        write the same file meanwhile.
        """
        assert self.feed is not None
        await self.feed.run(connection)

    def _feed(self) -> InteropFeed:
        mappings = compile_mappings(self.deployment.abi, self.spec.events, base=self.spec.root)
        feed = InteropFeed(
            self.ledger,
            self.home,
            name=f"service-{self.spec.name}",
            confirmations=self.settings.service.event_confirmations,
            poll_interval=self.settings.service.poll_interval,
            database=events_path(self.home),
        )
        # its own follower per deployment (checkpoint "service-<name>:<address>"): an
        # upgrade's new logic contract is read from its deployment block
        feed.follow(self.deployment.address, mappings, start_block=self.deployment.block)
        return feed
