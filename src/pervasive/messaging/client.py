"""The platform's MQTT client: TLS with a device or service certificate, durable outbox.

:class:`MqttClient` implements :class:`~pervasive.messaging.port.MqttConnection`
over our MQTT 3.1.1 connection, :class:`~pervasive.messaging.link.Link` (one per
connection; why not paho or gmqtt is said there). Control flow:

1. :meth:`MqttClient.connect` opens the first connection; a refused certificate
   raises :class:`ConnectionRefused`, an unreachable broker :class:`BrokerUnavailable`.
2. A supervisor task then owns the connection. While connected the link hands
   broker messages to :meth:`messages` and, for a durable client, the drain runs
   (outbox rows to the broker in order, up to ``max_inflight`` awaiting their PUBACK
   at once). An acknowledged row is kept ``autosave_interval + 2`` seconds more, as
   long as the broker may not have saved it (:mod:`.outbox`). When the
   connection drops it reconnects with exponential backoff and jitter, resubscribes
   and resumes the drain at the oldest row the broker may not have saved.
3. A durable client (``outbox`` set) also asks the broker for a persistent session
   (``clean_session=False``), so QoS 1 messages for it are queued while it is away.
4. Received QoS 1 messages are acknowledged (PUBACK) as they arrive; with
   ``ClientOptions(manual_ack=True)`` only when the consumer calls
   :meth:`MqttClient.acknowledge` after making the message durable (the client is
   then an :class:`~pervasive.messaging.port.AcknowledgingConnection` with a
   persistent session): what it has not acknowledged when a connection drops, or
   its process dies, the broker delivers again on the next connection.

``publish`` on a durable client returns once the message is committed to the
outbox (:meth:`MqttClient.publish_many`: a batch in one transaction);
:meth:`MqttClient.flush` waits until the broker acknowledged everything.
Publishes and subscriptions the access policy forbids raise :class:`TopicDenied`
before anything is sent: MQTT 3.1.1 brokers drop them silently otherwise. So does a
publish larger than ``max_message_bytes`` (:class:`MessageTooLarge`, counted in
:attr:`MqttClient.refusals`); a packet from the broker larger than that closes the
connection.

The client id is always the certificate's identity (issue 11, item 1): brokers bind
a session to it, so no certificate can take over another identity's session.

Example::

    options = ClientOptions("127.0.0.1", broker.port, creds, outbox=tmp / "outbox.sqlite")
    async with MqttClient(options) as client:
        await client.subscribe("$aws/things/lock-7/shadow/update/delta")
        await client.publish("pervasive/devices/lock-7/telemetry", b'{"t": 21.5}')
        async for message in client.messages():
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pervasive.errors import InternalError, InvalidInput
from pervasive.messaging.access import may_publish, may_subscribe
from pervasive.messaging.errors import BrokerUnavailable, ConnectionRefused, TopicDenied
from pervasive.messaging.link import Link
from pervasive.messaging.outbox import Outbox, OutboxEntry, drain_outbox
from pervasive.messaging.packets import MessageTooLarge, publish_size
from pervasive.messaging.port import MqttMessage
from pervasive.messaging.tls import ClientCredentials
from pervasive.messaging.topics import validate_topic, validate_topic_filter

__all__ = ["ClientOptions", "MqttClient"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientOptions:
    """How to reach the broker and who to be."""

    host: str
    port: int
    credentials: ClientCredentials
    """The certificate and key; its identity (CN) is also the MQTT client id."""
    outbox: Path | None = None
    """SQLite file of the durable outbox; set it for a durable session."""
    keepalive: int = 30
    """Seconds between PINGREQs; a dead connection is noticed within 1.5x this."""
    reconnect_min: float = 0.05
    """First reconnect delay in seconds; doubles per failed attempt."""
    reconnect_max: float = 5.0
    """Longest reconnect delay in seconds."""
    ack_timeout: float = 10.0
    """Seconds to wait for a PUBACK or SUBACK before treating the connection as dead."""
    check_access: bool = True
    """Refuse publishes/subscriptions the access policy forbids before sending them."""
    max_inflight: int = 1
    """QoS 1 publishes awaiting their PUBACK at once (the outbox drain's window).

    One at a time costs a round trip per message; with mosquitto (configured for
    1,000 in flight) a window of 32-128 keeps the link busy. After a lost connection
    the whole window may be sent again (at least once, in order). Keep 1 with the
    embedded amqtt broker: with several in flight it acknowledged a message it then
    never routed."""
    manual_ack: bool = False
    """Acknowledge a received QoS 1 message only when the consumer calls
    :meth:`MqttClient.acknowledge` (after it made the message durable), not on arrival.

    Implies a persistent session (``clean_session=False``): the broker keeps what was
    not acknowledged and delivers it again when the session reconnects, a new process
    included. The consumer must acknowledge every message it takes, refused ones too,
    in order (a PUBACK acknowledged early waits for the earlier ones, [MQTT-4.6.0-2]);
    a message it never acknowledges holds back the PUBACKs after it on that
    connection."""
    max_message_bytes: int = 1024 * 1024
    """Largest PUBLISH packet sent (larger ones are refused before sending, counted) or
    accepted from the broker (a larger one closes the connection)."""
    autosave_interval: int = 5
    """Seconds between the broker's saves of its persistence (mosquitto's
    ``autosave_interval``). The outbox keeps an acknowledged message this long plus
    2 s and sends it again if the connection drops first; 0 forgets it at its PUBACK
    (only for a broker that saves before it acknowledges)."""


_RETENTION_MARGIN = 2.0
"""Seconds beyond ``autosave_interval`` that an acknowledged message is retained.

mosquitto saves when ``last_save + autosave_interval < now`` in whole seconds, so its
saves are ``autosave_interval + 1`` s apart, plus a turn of its main loop and the
write itself; one more second covers those."""


def _is_failure(code: int) -> bool:
    """A SUBACK return code of 0x80 or more refuses the subscription."""
    return code >= 0x80


class MqttClient:
    """A connected MQTT session with reconnects and an optional durable outbox."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        if options.autosave_interval < 0:
            raise InvalidInput(
                f"autosave_interval must be 0 or more seconds, got {options.autosave_interval}"
            )
        self.identity = options.credentials.identity()
        self._client_id = self.identity
        self._outbox = (
            Outbox.open(options.outbox, retention=self.retention)
            if options.outbox is not None
            else None
        )
        self._subscriptions: dict[str, int] = {}
        self._incoming: asyncio.Queue[MqttMessage] = asyncio.Queue()
        self._link: Link | None = None
        self._newest: Link | None = None
        """The latest connection, from its CONNACK on (``_link`` waits for resubscribing)."""
        self._links_opened = 0
        self._connected = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self.reconnects = 0
        """How many times the connection was re-established (a figure for tests and ops)."""
        self.last_error: str | None = None
        """Why the last connection attempt or connection failed."""
        self.refusals: Counter[str] = Counter()
        """Refusals by reason: ``message_too_large`` (a publish over ``max_message_bytes``),
        ``packet_too_large`` and ``malformed_packet`` (from the broker; the link closed)."""

    # -- MqttConnection ------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The MQTT client id: the certificate's identity (CN)."""
        return self._client_id

    @property
    def retention(self) -> float:
        """Seconds the outbox keeps a message after its PUBACK (0: forgotten at once)."""
        interval = self.options.autosave_interval
        return interval + _RETENTION_MARGIN if interval > 0 else 0.0

    @property
    def durable(self) -> bool:
        """True when publishes go through the outbox and the broker keeps the session."""
        return self._outbox is not None

    @property
    def persistent_session(self) -> bool:
        """True when the broker keeps this session while it is away (``clean_session=0``)."""
        return self.durable or self.options.manual_ack

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is up."""
        return self._connected.is_set()

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish ``payload``: durably via the outbox, or directly and await the PUBACK.

        Example: ``await client.publish("pervasive/devices/lock-7/telemetry", b"21.5")``.
        """
        self._check_publish(topic, payload, qos)
        if self._outbox is not None and qos >= 1:
            self._outbox.append(topic, payload, qos=1, retain=retain)
            self._drained.clear()
            self._wakeup.set()
            return
        await self._publish_now(topic, payload, qos=qos, retain=retain)

    async def publish_many(
        self, messages: Iterable[tuple[str, bytes]], *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish several messages; on a durable client commit them in one transaction.

        Every topic is checked first, so a refused one publishes nothing. Without an
        outbox (or with QoS 0) they are sent one after the other as by :meth:`publish`.

        Example: ``await client.publish_many([(topic, b"1"), (topic, b"2")])``.
        """
        batch = list(messages)
        for topic, payload in batch:
            self._check_publish(topic, payload, qos)
        if self._outbox is not None and qos >= 1:
            self._outbox.append_many(batch, qos=1, retain=retain)
            self._drained.clear()
            self._wakeup.set()
            return
        for topic, payload in batch:
            await self._publish_now(topic, payload, qos=qos, retain=retain)

    def _check_publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Refuse, before anything is stored or sent, what the broker would drop."""
        validate_topic(topic)
        if self.options.check_access and not may_publish(self.identity, topic):
            raise TopicDenied(self.identity, topic, "publish on")
        size = publish_size(topic, payload, qos=1 if qos else 0)
        limit = self.options.max_message_bytes
        if size > limit:
            self.refusals["message_too_large"] += 1
            raise MessageTooLarge(
                f"the message on {topic!r} is {size:,} bytes, over the {limit:,} bytes brokers "
                "accept ([mqtt] max_message_bytes): split it, or raise the limit on the "
                "broker and its clients"
            )

    async def _publish_now(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        link = self._require_link()
        await link.writable()
        acknowledged = link.publish(topic, payload, qos=qos, retain=retain)
        if acknowledged is None:
            return
        try:
            async with asyncio.timeout(self.options.ack_timeout):
                await acknowledged
        except TimeoutError as exc:
            raise BrokerUnavailable(
                f"publish on {topic!r} failed: no PUBACK within {self.options.ack_timeout} s"
            ) from exc

    async def subscribe(self, topic_filter: str, *, qos: int = 1) -> None:
        """Subscribe now and after every reconnect; ``TopicDenied`` when not allowed.

        Example: ``await client.subscribe("$aws/things/lock-7/shadow/update/delta")``.
        """
        validate_topic_filter(topic_filter)
        if self.options.check_access and not may_subscribe(self.identity, topic_filter):
            raise TopicDenied(self.identity, topic_filter, "subscribe to")
        self._subscriptions[topic_filter] = qos
        if qos not in (0, 1):
            raise InvalidInput(f"this client subscribes at QoS 0 or 1, not {qos}")
        link = self._link
        if link is not None:
            await self._subscribe_on(link, topic_filter, qos)

    async def messages(self) -> AsyncIterator[MqttMessage]:
        """Every message delivered to this session, in arrival order (one consumer).

        With ``manual_ack``, acknowledge each with :meth:`acknowledge` once processed.

        Example: ``async for message in client.messages(): print(message.topic)``.
        """
        while True:
            yield await self._incoming.get()

    def acknowledge(self, message: MqttMessage) -> None:
        """Send ``message``'s PUBACK on the connection that received it (``manual_ack``).

        Call it after the message is durable (committed), for every message taken
        from :meth:`messages`, in order; a message with nothing to acknowledge
        (QoS 0, or the client acknowledges on arrival) is ignored. When its connection
        is gone nothing is sent: the broker delivers the message again on the new one
        (so a consumer sees it twice and must deduplicate, as QoS 1 requires anyway).

        Example: ``store(message); client.acknowledge(message)``.
        """
        delivery = message.delivery
        link = self._newest
        if delivery is not None and link is not None:
            link.acknowledge(delivery)

    @property
    def unacknowledged(self) -> int:
        """Messages received on the current connection whose PUBACK waits (``manual_ack``)."""
        link = self._newest
        return link.unacknowledged if link is not None else 0

    # -- lifecycle -----------------------------------------------------------

    async def connect(self) -> None:
        """Open the first connection and start the supervisor.

        Example: ``await client.connect()``; or use ``async with MqttClient(...)``.
        """
        if self._supervisor is not None:
            return
        link = await self._open()
        self._supervisor = asyncio.create_task(
            self._supervise(link), name=f"mqtt-{self._client_id}"
        )
        await self._connected.wait()

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until the broker acknowledged every message in the outbox.

        Example: ``await client.flush(timeout=10)``.
        """
        if self._outbox is None:
            return
        async with asyncio.timeout(timeout):
            while len(self._outbox):
                self._wakeup.set()
                await self._drained.wait()

    @property
    def pending(self) -> int:
        """Messages in the outbox not yet acknowledged by the broker."""
        return len(self._outbox) if self._outbox is not None else 0

    @property
    def retained(self) -> int:
        """Acknowledged messages kept until the broker surely saved them (see ``retention``)."""
        return self._outbox.retained if self._outbox is not None else 0

    async def close(self) -> None:
        """Disconnect; outbox messages stay on disk for the next run.

        Those not acknowledged yet, and those acknowledged within ``retention`` (the
        broker may not have saved them), are sent on the next connection.

        Example: ``await client.close()``.
        """
        self._closing = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        if self._outbox is not None:
            self._outbox.close()

    async def __aenter__(self) -> MqttClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- connection handling -------------------------------------------------

    def _require_link(self) -> Link:
        if self._link is None:
            raise BrokerUnavailable(
                "not connected to the broker; use a durable client (outbox) to publish offline"
            )
        return self._link

    async def _open(self) -> Link:
        self._links_opened += 1
        link = await Link.open(
            self.options.host,
            self.options.port,
            self.options.credentials.ssl_context(),
            client_id=self._client_id,
            clean_session=not self.persistent_session,
            keepalive=self.options.keepalive,
            timeout=self.options.ack_timeout,
            deliver=self._incoming.put_nowait,
            manual_ack=self.options.manual_ack,
            number=self._links_opened,
            max_packet=self.options.max_message_bytes,
            refusals=self.refusals,
        )
        self._newest = link
        return link

    async def _subscribe_on(self, link: Link, topic_filter: str, qos: int) -> None:
        granted = await link.subscribe(topic_filter, qos, timeout=self.options.ack_timeout)
        if any(_is_failure(code) for code in granted):
            self._subscriptions.pop(topic_filter, None)
            raise TopicDenied(self.identity, topic_filter, "subscribe to")

    async def _supervise(self, link: Link) -> None:
        delay = self.options.reconnect_min
        while True:
            try:
                await self._serve(link)
            except BrokerUnavailable as exc:
                self.last_error = str(exc)
                _log.info("%s: connection lost (%s); reconnecting", self._client_id, exc)
            finally:
                self._connected.clear()
                self._link = None
                await link.close()
            while True:
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311
                delay = min(delay * 2, self.options.reconnect_max)
                try:
                    link = await self._open()
                except (BrokerUnavailable, ConnectionRefused) as exc:
                    self.last_error = str(exc)
                    continue
                self.reconnects += 1
                delay = self.options.reconnect_min
                break

    async def _serve(self, link: Link) -> None:
        """Run one connection until it drops (raises ``BrokerUnavailable``)."""
        for topic_filter, qos in list(self._subscriptions.items()):
            try:
                await self._subscribe_on(link, topic_filter, qos)
            except TopicDenied as exc:
                self.last_error = str(exc)
                _log.warning("%s: resubscribing failed: %s", self._client_id, exc)
        self._link = link
        self._connected.set()
        if self._outbox is None:
            raise BrokerUnavailable(await link.wait_lost())
        drain = asyncio.create_task(self._drain(link, self._outbox))
        lost = asyncio.create_task(link.wait_lost())
        try:
            await asyncio.wait({drain, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain  # raises what ended the drain (BrokerUnavailable: lost)
        raise BrokerUnavailable(link.lost_reason or "the drain ended")

    async def _drain(self, link: Link, outbox: Outbox) -> None:
        def send(entry: OutboxEntry) -> asyncio.Future[None]:
            acknowledged = link.publish(entry.topic, entry.payload, qos=1, retain=entry.retain)
            if acknowledged is None:
                raise InternalError("a QoS 1 publish returned no acknowledgement future")
            return acknowledged

        try:
            await drain_outbox(
                outbox,
                send,
                wakeup=self._wakeup,
                drained=self._drained,
                window=self.options.max_inflight,
                ack_timeout=self.options.ack_timeout,
                heard=lambda: link.heard_at,
            )
        except TimeoutError as exc:
            raise BrokerUnavailable(f"connection looks dead: {exc}") from exc
