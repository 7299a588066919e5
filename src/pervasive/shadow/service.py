"""The asyncio shadow service: MQTT requests in, :class:`ShadowCore` decisions, replies out.

It subscribes (through any :class:`~pervasive.messaging.port.MqttConnection`) to the
request topics of every thing's classic and named shadows, loads the record from
:class:`ShadowStore`, lets the core decide, commits the new record together with its
replies, publishes them and counts rejections by code. Requests are handled one at a
time, in arrival order, so one process never races itself; several processes
sharing a database retry on :class:`StaleShadowWrite`.

Two limits answer 429 (AWS IoT Device Shadow quotas): at most ``max_in_flight``
requests per shadow taken but not yet answered (the 11th is refused at once, while
the first ten wait), and ``requests_per_second`` per thing.

On an :class:`~pervasive.messaging.port.AcknowledgingConnection` (``MqttClient`` with
``ClientOptions(manual_ack=True)``: a persistent session) a request is acknowledged
once its answer is durable: right after the commit for a change (the outbox then
owns the replies), after publishing for a read or a refusal. Requests sent while the
service is down wait at the broker and are answered when it is back. A request
applied before (same operation, ``clientToken`` and payload within the store's
window: a redelivery, or a device retrying) is answered with the reply committed
the first time, never applied twice. Listeners (the live dashboard) hear of every
stored change right after its replies are published, in commit order.

Example::

    service = ShadowService(connection, ShadowStore.open(settings.path("shadow.sqlite")))
    service.add_listener(lambda record: print(record.key.prefix, record.version))
    await service.run()          # until the connection's message stream ends
    service.rejections[409]      # how many version conflicts were answered
    service.throttled["in flight"]   # 429s for an 11th request in flight
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

from pervasive.config import ShadowSettings
from pervasive.messaging.port import AcknowledgingConnection, MqttConnection, MqttMessage
from pervasive.shadow.core import OutboundMessage, Outcome, ShadowCore, ShadowRecord
from pervasive.shadow.limits import InFlightLimit, ThingRateLimiter
from pervasive.shadow.protocol import (
    INTERNAL_FAILURE,
    TOO_MANY_IN_FLIGHT,
    TOO_MANY_REQUESTS,
    Operation,
    Rejected,
    ShadowError,
    ShadowKey,
    parse_client_token,
    parse_request_topic,
    parse_update,
)
from pervasive.shadow.store import DuplicateShadowRequest, ShadowStore, StaleShadowWrite

__all__ = ["REQUEST_FILTERS", "ShadowListener", "ShadowService"]

_log = logging.getLogger(__name__)

REQUEST_FILTERS: tuple[str, ...] = tuple(
    f"$aws/things/+/shadow/{middle}{operation.value}"
    for middle in ("", "name/+/")
    for operation in Operation
)
"""Exactly the request topics: replies the service publishes never loop back to it."""

ShadowListener = Callable[[ShadowRecord], None]
"""Told each record an accepted update or delete stored; must return at once (no I/O)."""

_END: Final = None
"""Put in the worker's queue when the connection's message stream ends."""


class ShadowService:
    """Serve every shadow request arriving on ``connection``."""

    def __init__(
        self,
        connection: MqttConnection,
        store: ShadowStore,
        core: ShadowCore | None = None,
        *,
        limiter: ThingRateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 3,
    ) -> None:
        self._connection = connection
        self._acknowledge = (
            connection.acknowledge if isinstance(connection, AcknowledgingConnection) else None
        )
        self._store = store
        self.core = core or ShadowCore()
        self._limiter = limiter or ThingRateLimiter(self.core.limits)
        self._clock = clock
        self._max_attempts = max_attempts
        self._in_flight = InFlightLimit(self.core.limits.max_in_flight)
        self.accepted: Counter[Operation] = Counter()
        """Requests answered on ``/accepted``, by operation."""
        self.rejections: Counter[int] = Counter()
        """Requests answered on ``/rejected``, by error code (400, 404, 409, 413, 429...)."""
        self.throttled: Counter[str] = Counter()
        """The 429 answers by reason: ``"in flight"`` (over ``max_in_flight`` requests of
        one shadow not yet answered) or ``"rate"`` (over the thing's requests per second)."""
        self.ignored = 0
        """Messages on topics that are not shadow requests (malformed thing or shadow names)."""
        self.duplicates = 0
        """Requests applied before (same clientToken and payload), answered again, not applied."""
        self.listener_failures = 0
        """Listener calls that raised (logged; the service and the other listeners go on)."""
        self._listeners: list[ShadowListener] = []

    @property
    def store(self) -> ShadowStore:
        """The store the service commits to: read it, never write it (the service owns it)."""
        return self._store

    def in_flight(self, key: ShadowKey) -> int:
        """Requests of ``key`` taken from the connection and not yet answered.

        Example: ``service.in_flight(ShadowKey("lock-1"))``.
        """
        return self._in_flight.count(key)

    def add_listener(self, listener: ShadowListener) -> None:
        """Call ``listener`` with every record an accepted update or delete stored.

        It runs after the change's replies are published, in commit order, inside the
        service's task: it must return at once (queue the record, never block). A
        listener that raises is logged and counted in ``listener_failures``; it cannot
        stop the service.

        Example: ``service.add_listener(feed.shadow_changed)``.
        """
        self._listeners.append(listener)

    async def start(self) -> None:
        """Subscribe to the request topics and publish replies left over from a crash.

        Example: ``await service.start()`` then feed messages to :meth:`handle`.
        """
        for topic_filter in REQUEST_FILTERS:
            await self._connection.subscribe(topic_filter, qos=1)
        await self.flush_outbox()

    async def run(self) -> None:
        """Start, then handle messages until the connection's stream ends.

        One task takes messages as they arrive and refuses a shadow's request beyond
        ``max_in_flight`` at once (429); another answers the rest one at a time.

        Example: ``task = asyncio.create_task(service.run())``.
        """
        await self.start()
        queue: asyncio.Queue[MqttMessage | None] = asyncio.Queue()
        tasks = (
            asyncio.create_task(self._take(queue), name="shadow requests in"),
            asyncio.create_task(self._answer(queue), name="shadow requests answered"),
        )
        try:
            # until both end (the stream ended, all answered) or one fails: its error,
            # not an ExceptionGroup, is what the caller sees (the CLI prints it in a line)
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    async def _take(self, queue: asyncio.Queue[MqttMessage | None]) -> None:
        warned = False
        async for message in self._connection.messages():
            if message.delivery is None and message.qos and not warned:
                warned = True
                _log.warning(
                    "the shadow service's MQTT connection acknowledges requests on arrival: "
                    "those sent while it restarts are lost; connect it with "
                    "ClientOptions(manual_ack=True)"
                )
            route = parse_request_topic(message.topic, self.core.limits)
            if route is not None:
                key, operation = route
                if not self._in_flight.take(key):
                    await self._refuse(message, key, operation, TOO_MANY_IN_FLIGHT, "in flight")
                    continue
            queue.put_nowait(message)
        queue.put_nowait(_END)

    async def _answer(self, queue: asyncio.Queue[MqttMessage | None]) -> None:
        while (message := await queue.get()) is not _END:
            route = parse_request_topic(message.topic, self.core.limits)
            try:
                await self.handle(message)
            finally:
                if route is not None:
                    self._in_flight.done(route[0])

    async def flush_outbox(self) -> None:
        """Publish every committed reply not yet published (after a crash or lost connection)."""
        for outbox_id, message in self._store.pending():
            await self._connection.publish(message.topic, message.payload, qos=1)
            self._store.mark_sent([outbox_id])

    async def handle(self, message: MqttMessage) -> None:
        """Answer one request message (anything else is counted in ``ignored``).

        The message is acknowledged (on an acknowledging connection) once its answer
        is durable: committed, or published when nothing was stored.

        Example: ``await service.handle(MqttMessage("$aws/things/t/shadow/get", b""))``.
        """
        route = parse_request_topic(message.topic, self.core.limits)
        if route is None:
            self.ignored += 1
            _log.debug("ignored message on %s: not a shadow request topic", message.topic)
            self._acknowledged(message)
            return
        key, operation = route
        now = self._clock()
        if not self._limiter.allow(key.thing, now=now):
            await self._refuse(message, key, operation, TOO_MANY_REQUESTS, "rate")
            return
        try:
            decided = self._decide(key, operation, message.payload, now)
        except Exception:
            _log.exception("shadow request on %s failed inside the service", message.topic)
            decided = (
                self.core.reject(
                    key,
                    operation,
                    INTERNAL_FAILURE,
                    now=now,
                    client_token=_token(operation, message.payload, self.core.limits),
                ),
                [],
            )
        if isinstance(decided, OutboundMessage):
            self.duplicates += 1
            _log.info("%s: a request applied before, answered again", key.prefix)
            await self._publish([decided])
            self._acknowledged(message)
            return
        outcome, outbox_ids = decided
        if outbox_ids:
            self._acknowledged(message)  # committed: the outbox owns the replies now
        await self._finish(key, operation, outcome, outbox_ids)
        if not outbox_ids:
            self._acknowledged(message)

    async def _refuse(
        self,
        message: MqttMessage,
        key: ShadowKey,
        operation: Operation,
        error: ShadowError,
        reason: str,
    ) -> None:
        """Answer ``error`` (a 429) at once, counted under ``reason``; nothing is stored."""
        self.throttled[reason] += 1
        outcome = self.core.reject(
            key,
            operation,
            error,
            now=self._clock(),
            client_token=_token(operation, message.payload, self.core.limits),
        )
        await self._finish(key, operation, outcome, outbox_ids=[])
        self._acknowledged(message)

    def _acknowledged(self, message: MqttMessage) -> None:
        if self._acknowledge is not None:
            self._acknowledge(message)

    def _decide(
        self, key: ShadowKey, operation: Operation, payload: bytes, now: float
    ) -> tuple[Outcome, list[int]] | OutboundMessage:
        """The outcome and its outbox ids, or the answer of the same request applied before."""
        request_id = _request_id(operation, payload, self.core.limits)
        for _ in range(self._max_attempts):
            if request_id is not None:
                answer = self._store.answered(key, request_id, now=now)
                if answer is not None:
                    return answer
            record = self._store.load(key)
            outcome = self.core.handle(key, operation, payload, record=record, now=now)
            if outcome.record is None:
                return outcome, []
            try:
                ids = self._store.commit(
                    outcome.record,
                    previous=record,
                    messages=outcome.messages,
                    request_id=request_id,
                )
            except (StaleShadowWrite, DuplicateShadowRequest) as lost:
                # another writer changed the shadow (or applied this very request) first
                _log.info("shadow %s: %s; retrying", key.prefix, lost)
                continue
            return outcome, ids
        _log.warning(
            "shadow %s: gave up after %d conflicting writes", key.prefix, self._max_attempts
        )
        return self.core.reject(key, operation, INTERNAL_FAILURE, now=now), []

    async def _finish(
        self, key: ShadowKey, operation: Operation, outcome: Outcome, outbox_ids: Sequence[int]
    ) -> None:
        if outcome.error is None:
            self.accepted[operation] += 1
        else:
            self.rejections[outcome.error.code] += 1
            _log.debug("%s %s rejected: %s", key.prefix, operation.value, outcome.error.code)
        for index, message in enumerate(outcome.messages):
            await self._connection.publish(message.topic, message.payload, qos=1)
            # each one at once: a crash while the next is on its way re-sends only that one
            self._store.mark_sent(outbox_ids[index : index + 1])
        if outcome.error is None and outcome.record is not None:
            self._tell(outcome.record)

    def _tell(self, record: ShadowRecord) -> None:
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception:
                # a listener is an observer: its bug must not cost a device its reply
                self.listener_failures += 1
                _log.exception("shadow listener %r failed on %s", listener, record.key.prefix)

    async def _publish(self, messages: Sequence[OutboundMessage]) -> None:
        for message in messages:
            await self._connection.publish(message.topic, message.payload, qos=1)


def _token(operation: Operation, payload: bytes, limits: ShadowSettings) -> str | None:
    """The request's client token, if it has a valid one (for echoing in a rejection)."""
    if operation is Operation.UPDATE:
        return parse_update(payload, limits).client_token
    token = parse_client_token(payload, limits)
    return None if isinstance(token, Rejected) else token


def _request_id(operation: Operation, payload: bytes, limits: ShadowSettings) -> str | None:
    """What identifies a change request for its retries: operation, clientToken, payload.

    The payload's digest is part of it because devices that reuse one clientToken for
    every request exist: only the same token *and* the same payload is the same request.
    Reads (``get``) have none: a retried read gets a fresh answer.
    """
    if operation is Operation.GET:
        return None
    token = _token(operation, payload, limits)
    if token is None:
        return None
    return f"{operation.value}:{token}:{hashlib.sha256(payload).hexdigest()}"
