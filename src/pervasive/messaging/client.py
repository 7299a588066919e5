"""The platform's MQTT client: TLS with a device or service certificate, durable outbox.

:class:`MqttClient` implements :class:`~pervasive.messaging.port.MqttConnection`
over aiomqtt (MQTT 3.1.1). Control flow:

1. :meth:`MqttClient.connect` opens the first connection; a refused certificate
   raises :class:`ConnectionRefused`, an unreachable broker :class:`BrokerUnavailable`.
2. A supervisor task then owns the connection. While connected it runs a reader
   (broker messages into :meth:`messages`) and, for a durable client, the drain
   (outbox rows to the broker in order, up to ``max_inflight`` awaiting their PUBACK
   at once, rows deleted after their PUBACK). When the
   connection drops it reconnects with exponential backoff and jitter, resubscribes
   and resumes the drain at the oldest unacknowledged row.
3. A durable client (``outbox`` set) also asks the broker for a persistent session
   (``clean_session=False``), so QoS 1 messages for it are queued while it is away.

``publish`` on a durable client returns once the message is committed to the
outbox (:meth:`MqttClient.publish_many`: a batch in one transaction);
:meth:`MqttClient.flush` waits until the broker acknowledged everything.
Publishes and subscriptions the access policy forbids raise :class:`TopicDenied`
before anything is sent: MQTT 3.1.1 brokers drop them silently otherwise.

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
import math
import random
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from pervasive.messaging.access import may_publish, may_subscribe
from pervasive.messaging.errors import BrokerUnavailable, ConnectionRefused, TopicDenied
from pervasive.messaging.outbox import Outbox, OutboxEntry, drain_outbox
from pervasive.messaging.port import MqttMessage
from pervasive.messaging.tls import ClientCredentials
from pervasive.messaging.topics import validate_topic, validate_topic_filter

__all__ = ["ClientOptions", "MqttClient"]

_log = logging.getLogger(__name__)
_REFUSAL_MARKERS = ("ssl", "certificate", "tls", "alert", "not authori", "bad user")


_HANDSHAKE_RESETS = 3
"""Handshakes reset by the broker in a row before the reset counts as a refusal."""


@dataclass(frozen=True)
class ClientOptions:
    """How to reach the broker and who to be."""

    host: str
    port: int
    credentials: ClientCredentials
    client_id: str | None = None
    """MQTT client id; defaults to the certificate CN (stable, so sessions persist)."""
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


def _classify(exc: aiomqtt.MqttError) -> BrokerUnavailable | ConnectionRefused:
    text = str(exc)
    if isinstance(exc, MqttConnectError) or any(m in text.lower() for m in _REFUSAL_MARKERS):
        return ConnectionRefused(
            f"the broker refused this client: {text}. Is the certificate issued by the "
            "platform CA, unrevoked and unexpired? `pervasive device cert <id> --rotate`."
        )
    return BrokerUnavailable(f"cannot reach the MQTT broker: {text}")


def _is_failure(code: object) -> bool:
    """A SUBACK return code of 0x80 or more refuses the subscription."""
    value = code if isinstance(code, int) else getattr(code, "value", 0)
    return isinstance(value, int) and value >= 0x80


class MqttClient:
    """A connected MQTT session with reconnects and an optional durable outbox."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self.identity = options.credentials.identity()
        self._client_id = options.client_id or self.identity
        self._outbox = Outbox.open(options.outbox) if options.outbox is not None else None
        self._subscriptions: dict[str, int] = {}
        self._incoming: asyncio.Queue[MqttMessage] = asyncio.Queue()
        self._connection: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self.reconnects = 0
        """How many times the connection was re-established (a figure for tests and ops)."""
        self.last_error: str | None = None
        """Why the last connection attempt or connection failed."""

    # -- MqttConnection ------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The MQTT client id (the certificate CN unless overridden)."""
        return self._client_id

    @property
    def durable(self) -> bool:
        """True when publishes go through the outbox and the broker keeps the session."""
        return self._outbox is not None

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
        validate_topic(topic)
        if self.options.check_access and not may_publish(self.identity, topic):
            raise TopicDenied(self.identity, topic, "publish on")
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
        for topic, _ in batch:
            validate_topic(topic)
            if self.options.check_access and not may_publish(self.identity, topic):
                raise TopicDenied(self.identity, topic, "publish on")
        if self._outbox is not None and qos >= 1:
            self._outbox.append_many(batch, qos=1, retain=retain)
            self._drained.clear()
            self._wakeup.set()
            return
        for topic, payload in batch:
            await self._publish_now(topic, payload, qos=qos, retain=retain)

    async def _publish_now(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        connection = self._require_connection()
        try:
            await connection.publish(
                topic, payload, qos=qos, retain=retain, timeout=self.options.ack_timeout
            )
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailable(f"publish on {topic!r} failed: {exc}") from exc

    async def subscribe(self, topic_filter: str, *, qos: int = 1) -> None:
        """Subscribe now and after every reconnect; ``TopicDenied`` when not allowed.

        Example: ``await client.subscribe("$aws/things/lock-7/shadow/update/delta")``.
        """
        validate_topic_filter(topic_filter)
        if self.options.check_access and not may_subscribe(self.identity, topic_filter):
            raise TopicDenied(self.identity, topic_filter, "subscribe to")
        self._subscriptions[topic_filter] = qos
        connection = self._connection
        if connection is not None:
            await self._subscribe_on(connection, topic_filter, qos)

    async def messages(self) -> AsyncIterator[MqttMessage]:
        """Every message delivered to this session, in arrival order (one consumer).

        Example: ``async for message in client.messages(): print(message.topic)``.
        """
        while True:
            yield await self._incoming.get()

    # -- lifecycle -----------------------------------------------------------

    async def connect(self) -> None:
        """Open the first connection and start the supervisor.

        Example: ``await client.connect()``; or use ``async with MqttClient(...)``.
        """
        if self._supervisor is not None:
            return
        connection = await self._open()
        self._supervisor = asyncio.create_task(
            self._supervise(connection), name=f"mqtt-{self._client_id}"
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

    async def close(self) -> None:
        """Disconnect; unacknowledged outbox messages stay on disk for the next run.

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

    def _require_connection(self) -> aiomqtt.Client:
        if self._connection is None:
            raise BrokerUnavailable(
                "not connected to the broker; use a durable client (outbox) to publish offline"
            )
        return self._connection

    async def _handshake(self, context: ssl.SSLContext) -> None:
        """One TLS handshake on its own, so a refused certificate is reported at once.

        paho leaks its socket when the handshake fails, so it should only ever see a
        broker that has just accepted our certificate. A reset in mid-handshake is how
        some servers (asyncio's, under the embedded broker) refuse a certificate, but
        also what a loaded broker does to a connection it has no room for: a reset is
        a refusal only when it happens again on a fresh attempt.
        """
        for attempt in range(_HANDSHAKE_RESETS):
            try:
                async with asyncio.timeout(self.options.ack_timeout):
                    _reader, writer = await asyncio.open_connection(
                        self.options.host,
                        self.options.port,
                        ssl=context,
                        server_hostname=self.options.host,
                    )
                break
            except ConnectionResetError as exc:
                if attempt + 1 < _HANDSHAKE_RESETS:
                    await asyncio.sleep(0.05 * 2**attempt)
                    continue
                raise self._refused("connection reset") from exc
            except ssl.SSLError as exc:
                raise self._refused(exc.reason or str(exc)) from exc
            except (OSError, TimeoutError) as exc:
                raise BrokerUnavailable(
                    f"cannot reach the MQTT broker at {self.options.host}:{self.options.port}: "
                    f"{exc}"
                ) from exc
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()

    def _refused(self, reason: str) -> ConnectionRefused:
        return ConnectionRefused(
            f"the broker refused the TLS handshake of {self.identity!r} ({reason}). Is the "
            "certificate issued by the platform CA, unrevoked and unexpired? A device "
            "gets a fresh one with `pervasive device cert <id> --rotate`."
        )

    async def _open(self) -> aiomqtt.Client:
        context = self.options.credentials.ssl_context()
        await self._handshake(context)
        connection = aiomqtt.Client(
            self.options.host,
            self.options.port,
            identifier=self._client_id,
            clean_session=not self.durable,
            keepalive=self.options.keepalive,
            max_inflight_messages=max(self.options.max_inflight, 20),  # paho's default
            tls_context=context,
            timeout=self.options.ack_timeout,
            logger=_log,
            # MQTT is small request/acknowledge packets: without TCP_NODELAY, Nagle's
            # algorithm meets the peer's delayed ACK and each round trip waits ~40 ms
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        # aiomqtt warns from 10 pending publishes on; a full drain window is intended
        connection.pending_calls_threshold = self.options.max_inflight + 10
        try:
            await connection.__aenter__()
        except aiomqtt.MqttError as exc:
            raise _classify(exc) from exc
        return connection

    async def _subscribe_on(self, connection: aiomqtt.Client, topic_filter: str, qos: int) -> None:
        granted = await connection.subscribe(topic_filter, qos, timeout=self.options.ack_timeout)
        if any(_is_failure(code) for code in granted):
            self._subscriptions.pop(topic_filter, None)
            raise TopicDenied(self.identity, topic_filter, "subscribe to")

    async def _supervise(self, connection: aiomqtt.Client) -> None:
        delay = self.options.reconnect_min
        while True:
            try:
                await self._serve(connection)
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                _log.info("%s: connection lost (%s); reconnecting", self._client_id, exc)
            finally:
                self._connected.clear()
                self._connection = None
                with contextlib.suppress(aiomqtt.MqttError):
                    await connection.__aexit__(None, None, None)
            while True:
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311
                delay = min(delay * 2, self.options.reconnect_max)
                try:
                    connection = await self._open()
                except (BrokerUnavailable, ConnectionRefused) as exc:
                    self.last_error = str(exc)
                    continue
                self.reconnects += 1
                delay = self.options.reconnect_min
                break

    async def _serve(self, connection: aiomqtt.Client) -> None:
        """Run one connection until it drops (raises ``MqttError``)."""
        for topic_filter, qos in list(self._subscriptions.items()):
            try:
                await self._subscribe_on(connection, topic_filter, qos)
            except TopicDenied as exc:
                self.last_error = str(exc)
                _log.warning("%s: resubscribing failed: %s", self._client_id, exc)
        self._connection = connection
        self._connected.set()
        tasks = {asyncio.create_task(self._read(connection))}
        if self._outbox is not None:
            tasks.add(asyncio.create_task(self._drain(connection, self._outbox)))
        try:
            done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()
        raise aiomqtt.MqttError("connection task ended")

    async def _read(self, connection: aiomqtt.Client) -> None:
        async for message in connection.messages:
            self._incoming.put_nowait(
                MqttMessage(
                    message.topic.value, bytes(message.payload), message.qos, message.retain
                )
            )

    async def _drain(self, connection: aiomqtt.Client, outbox: Outbox) -> None:
        async def send(entry: OutboxEntry) -> None:
            # no timeout per message (asyncio.wait_for would cost a task each): the
            # drain gives up when no PUBACK at all arrives within ack_timeout
            await connection.publish(
                entry.topic, entry.payload, qos=1, retain=entry.retain, timeout=math.inf
            )

        try:
            await drain_outbox(
                outbox,
                send,
                wakeup=self._wakeup,
                drained=self._drained,
                window=self.options.max_inflight,
                ack_timeout=self.options.ack_timeout,
            )
        except TimeoutError as exc:
            raise aiomqtt.MqttError(f"connection looks dead: {exc}") from exc
