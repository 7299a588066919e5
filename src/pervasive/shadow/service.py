"""The asyncio shadow service: MQTT requests in, :class:`ShadowCore` decisions, replies out.

It subscribes (through any :class:`~pervasive.messaging.port.MqttConnection`) to the
request topics of every thing's classic and named shadows, rate-limits each thing
(429), loads the record from :class:`ShadowStore`, lets the core decide, commits the
new record together with its replies, publishes them and counts rejections by code.
Requests are handled one at a time, in arrival order, so one process never races
itself; several processes sharing a database retry on :class:`StaleShadowWrite`.
An update redelivered by QoS 1 (same ``clientToken`` and payload) is applied once.
Listeners (the live dashboard) hear of every stored change right after its replies
are published, in commit order.

Example::

    service = ShadowService(connection, ShadowStore.open(settings.path("shadow.sqlite")))
    service.add_listener(lambda record: print(record.key.prefix, record.version))
    await service.run()          # until the connection's message stream ends
    service.rejections[409]      # how many version conflicts were answered
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

from pervasive.config import ShadowSettings
from pervasive.messaging.port import MqttConnection, MqttMessage
from pervasive.shadow.core import OutboundMessage, Outcome, ShadowCore, ShadowRecord
from pervasive.shadow.limits import ThingRateLimiter
from pervasive.shadow.protocol import (
    INTERNAL_FAILURE,
    TOO_MANY_REQUESTS,
    Operation,
    Rejected,
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
        self._store = store
        self.core = core or ShadowCore()
        self._limiter = limiter or ThingRateLimiter(self.core.limits)
        self._clock = clock
        self._max_attempts = max_attempts
        self.accepted: Counter[Operation] = Counter()
        """Requests answered on ``/accepted``, by operation."""
        self.rejections: Counter[int] = Counter()
        """Requests answered on ``/rejected``, by error code (400, 404, 409, 413, 429...)."""
        self.ignored = 0
        """Messages on topics that are not shadow requests (malformed thing or shadow names)."""
        self.duplicates = 0
        """Redelivered updates (same clientToken and payload) that were not applied again."""
        self.listener_failures = 0
        """Listener calls that raised (logged; the service and the other listeners go on)."""
        self._listeners: list[ShadowListener] = []

    @property
    def store(self) -> ShadowStore:
        """The store the service commits to: read it, never write it (the service owns it)."""
        return self._store

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

        Example: ``task = asyncio.create_task(service.run())``.
        """
        await self.start()
        async for message in self._connection.messages():
            await self.handle(message)

    async def flush_outbox(self) -> None:
        """Publish every committed reply not yet published (after a crash or lost connection)."""
        for outbox_id, message in self._store.pending():
            await self._connection.publish(message.topic, message.payload, qos=1)
            self._store.mark_sent([outbox_id])

    async def handle(self, message: MqttMessage) -> None:
        """Answer one request message (anything else is counted in ``ignored``).

        Example: ``await service.handle(MqttMessage("$aws/things/t/shadow/get", b""))``.
        """
        route = parse_request_topic(message.topic, self.core.limits)
        if route is None:
            self.ignored += 1
            _log.debug("ignored message on %s: not a shadow request topic", message.topic)
            return
        key, operation = route
        now = self._clock()
        if not self._limiter.allow(key.thing, now=now):
            outcome = self.core.reject(
                key,
                operation,
                TOO_MANY_REQUESTS,
                now=now,
                client_token=_token(operation, message, self.core.limits),
            )
            await self._finish(key, operation, outcome, outbox_ids=[])
            return
        try:
            outcome, outbox_ids = self._decide(key, operation, message.payload, now)
        except DuplicateShadowRequest:
            self.duplicates += 1
            _log.info("dropped a redelivered update of %s", key.prefix)
            return
        except Exception:
            _log.exception("shadow request on %s failed inside the service", message.topic)
            outcome = self.core.reject(
                key,
                operation,
                INTERNAL_FAILURE,
                now=now,
                client_token=_token(operation, message, self.core.limits),
            )
            outbox_ids = []
        await self._finish(key, operation, outcome, outbox_ids)

    def _decide(
        self, key: ShadowKey, operation: Operation, payload: bytes, now: float
    ) -> tuple[Outcome, list[int]]:
        for _ in range(self._max_attempts):
            record = self._store.load(key)
            outcome = self.core.handle(key, operation, payload, record=record, now=now)
            if outcome.record is None:
                return outcome, []
            request_id = None
            if outcome.client_token is not None:
                digest = hashlib.sha256(payload).hexdigest()
                request_id = f"{outcome.client_token}:{digest}"
            try:
                ids = self._store.commit(
                    outcome.record,
                    previous=record,
                    messages=outcome.messages,
                    request_id=request_id,
                )
            except StaleShadowWrite:
                _log.info("shadow %s changed under us; retrying", key.prefix)
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
        await self._publish(outcome.messages)
        self._store.mark_sent(outbox_ids)
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


def _token(operation: Operation, message: MqttMessage, limits: ShadowSettings) -> str | None:
    """The request's client token, if it has a valid one (for echoing in a rejection)."""
    if operation is Operation.UPDATE:
        return parse_update(message.payload, limits).client_token
    token = parse_client_token(message.payload, limits)
    return None if isinstance(token, Rejected) else token
