"""The embedded broker: amqtt in this process, for machines without mosquitto.

It enforces what :class:`~pervasive.messaging.mosquitto.MosquittoBroker` enforces:

* a TLS listener that requires a client certificate signed by the platform CA;
* the certificate CN as identity and as the only client id it may use
  (:mod:`.embedded_access`): a serial on the CA's CRL, or a CN that holds no active
  certificate, is refused at CONNECT (CONNACK "not authorized"), another client id
  with "identifier rejected", before any session is looked up, so a refused connect
  never touches the session of the client id it named;
* the same access policy (:mod:`pervasive.messaging.access`) on every publish,
  subscribe and delivery, re-checked against the current CRL; :meth:`EmbeddedBroker.refresh`
  closes the live connections of a revoked certificate;
* the ``[mqtt]`` limits: a packet over ``max_message_bytes`` closes its connection
  (:mod:`.embedded_limits`), a durable session's offline queue keeps at most
  ``max_queued_messages`` messages and ``max_queued_bytes`` payload bytes (newer ones
  are dropped, as mosquitto does), and a connection that has not completed its TLS
  handshake and sent CONNECT within ``connect_timeout`` is closed.

Each refusal is counted in :attr:`EmbeddedBroker.refusals` by reason: ``not authorized``,
``client id mismatch``, ``revoked`` (a live connection closed), ``oversize packet``,
``queue full`` (one per message dropped), ``connect timeout``, ``tls refused``.

amqtt behaviours adjusted in the subclass: sessions follow [MQTT-3.1.2-4..6] (amqtt
reused a just-ended clean session for a durable connect, which then queued nothing and
was swept away within a second, and left a live connection open when a clean connect
discarded its session); a persistent session's TLS identity is taken from the new
connection; clients may publish on the AWS shadow topics ``$aws/...`` (amqtt refuses
every ``$`` topic, while MQTT only keeps them out of wildcard subscriptions); a
client's disconnect first routes the QoS 1 messages amqtt already acknowledged
(amqtt sends the PUBACK when it queues a message for routing, then drops that queue
on disconnect); and a QoS 1 message sent to a client stays in its session until the
client's PUBACK (:mod:`.embedded_delivery`).

Example::

    async with EmbeddedBroker(ca.broker_credentials(), ca.active_identities) as broker:
        print(broker.port, broker.refusals)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from types import TracebackType
from typing import Any

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, ListenerType
from amqtt.errors import AMQTTError, BrokerError, MQTTError, NoDataError
from amqtt.events import BrokerEvents
from amqtt.mqtt.connack import ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler

from pervasive.config import MqttSettings
from pervasive.messaging.embedded_access import (
    AccessPolicyPlugin,
    AccessState,
    CertificateAuthPlugin,
    connect_refusal,
)
from pervasive.messaging.embedded_delivery import SessionDeliveryHandler
from pervasive.messaging.embedded_limits import LimitedReader, PacketFramer
from pervasive.messaging.errors import BrokerUnavailable
from pervasive.messaging.mosquitto import free_port
from pervasive.messaging.tls import BrokerCredentials

__all__ = ["EmbeddedBroker"]

_SHADOW_ROOT = "$aws/"
_QUEUED_BYTES = "pervasive.queued_bytes"
"""Session attribute: the payload bytes of the session's offline queue."""
_log = logging.getLogger(__name__)


async def _close(writer: WriterAdapter) -> None:
    """Close a connection that may already be broken."""
    with contextlib.suppress(OSError):
        await writer.close()


class _PlatformBroker(Broker):  # type: ignore[misc]
    def __init__(
        self,
        config: dict[str, Any],
        credentials: BrokerCredentials,
        state: AccessState,
        limits: MqttSettings,
        refusals: Counter[str],
    ) -> None:
        self._credentials = credentials
        self._state = state
        self._limits = limits
        self._refusals = refusals
        self._closing: set[asyncio.Task[None]] = set()
        super().__init__(config)

    def _refused(self, reason: str, detail: str) -> None:
        self._refusals[reason] += 1
        _log.info("refused (%s): %s", reason, detail)

    # -- accepting a connection: TLS and CONNECT within connect_timeout -------------

    def _create_ssl_context(self, _listener: Any) -> Any:
        # amqtt verifies client certificates only optionally; the platform requires them
        return self._credentials.server_ssl_context()

    async def _create_server_instance(
        self,
        listener_name: str,
        listener_type: ListenerType,
        address: str | None,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> Any:
        if listener_type != ListenerType.TCP or ssl_context is None:
            return await super()._create_server_instance(
                listener_name, listener_type, address, port, ssl_context
            )
        # TLS is started per connection, so the handshake falls under connect_timeout
        accept = partial(self._accept, listener_name=listener_name, context=ssl_context)
        return await asyncio.start_server(accept, address, port, reuse_address=True)

    async def _accept(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        listener_name: str,
        context: ssl.SSLContext,
    ) -> None:
        deadline = asyncio.get_running_loop().time() + self._limits.connect_timeout
        peer = writer.get_extra_info("peername")
        try:
            # no await that yields comes before start_tls: it takes the socket over
            # before the client's first TLS record can be read as plain data
            async with asyncio.timeout_at(deadline):
                await writer.start_tls(context)
        except TimeoutError:
            writer.transport.abort()
            self._refused("connect timeout", f"{peer}: no TLS handshake in time")
            return
        except (ssl.SSLError, OSError) as exc:
            writer.transport.abort()
            self._refused("tls refused", f"{peer}: {exc}")
            return
        framer = PacketFramer(self._limits.max_message_bytes)
        limited = LimitedReader(
            StreamReaderAdapter(reader), framer, partial(self._oversize, peer), deadline=deadline
        )
        await self._client_connected(listener_name, limited, StreamWriterAdapter(writer))

    def _oversize(self, peer: object, size: int) -> None:
        self._refused(
            "oversize packet",
            f"{peer}: a packet of {size} bytes (max {self._limits.max_message_bytes})",
        )

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[Any, Any]:
        """Read CONNECT, refuse it or find its session ([MQTT-3.1.2-4..6]).

        amqtt's own version discarded the session of a clean connect before the
        connection was authenticated, and reused a clean session for a durable connect.
        """
        where = f"{remote_address}:{remote_port}"
        deadline = reader.deadline if isinstance(reader, LimitedReader) else None
        try:
            async with asyncio.timeout_at(deadline):
                handler, session = await BrokerProtocolHandler.init_from_connect(
                    reader, writer, self.plugins_manager
                )
        except TimeoutError:
            self._refused("connect timeout", f"{where}: no CONNECT in time")
            await _close(writer)
            raise AMQTTError(f"no CONNECT from {where} in time") from None
        except (AMQTTError, MQTTError, NoDataError) as exc:
            await _close(writer)
            raise AMQTTError(f"no valid CONNECT from {where}: {exc}") from exc

        refusal = connect_refusal(self._state, session.ssl_object, session.client_id)
        if refusal is not None:
            self._refused(refusal.value, f"{where} as client id {session.client_id!r}")
            with contextlib.suppress(OSError):
                await ConnackPacket.build(0, refusal.return_code).to_stream(writer)
            await _close(writer)
            raise AMQTTError(f"refused {session.client_id!r}: {refusal.value}")

        previous = self._sessions.get(session.client_id)
        if previous is not None and (session.clean_session or previous[0].clean_session):
            # a clean session ends with its connection, and a clean connect discards
            # the stored one: either way the old connection closes, the state goes
            await self._end_connection(previous[1])
            await self._delete_session(session.client_id)
            previous = None
        if previous is None:
            session.parent = 0
        else:
            stored = previous[0]  # the connection brings its will, keepalive and certificate
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain"):
                setattr(stored, name, getattr(session, name))
            stored.keep_alive = session.keep_alive
            stored.username, stored.password = session.username, session.password
            stored.ssl_object = session.ssl_object
            session = stored
            session.parent = 1
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return SessionDeliveryHandler.adopt(handler), session

    async def _end_connection(self, handler: Any) -> None:
        """Close a session's live connection, as amqtt's take-over does."""
        session = handler.session if handler is not None else None
        if session is not None and session.transitions.is_connected():
            await handler.handle_connection_closed()
            await handler.stop()

    # -- revocation ----------------------------------------------------------------

    def close_revoked(self) -> None:
        """Close the live connections whose certificate may no longer act as its identity."""
        for session, handler in list(self._sessions.values()):
            if session.transitions.is_connected() and self._state.identity_of(session) is None:
                self._refused("revoked", f"closing the live session of {session.client_id!r}")
                task = asyncio.ensure_future(self._end_connection(handler))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def closed(self) -> None:
        """Return once the connections :meth:`close_revoked` closes are closed."""
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # -- offline queues --------------------------------------------------------------

    async def _retain_broadcast_message(
        self, broadcast: dict[str, Any], qos: int, target_session: Any
    ) -> None:
        """Queue a message for an offline session, within the queue's limits."""
        size = len(broadcast.get("data") or b"")
        queue = target_session.retained_messages
        queued = 0 if queue.empty() else target_session.attributes.get(_QUEUED_BYTES, 0)
        if (
            queue.qsize() >= self._limits.max_queued_messages
            or queued + size > self._limits.max_queued_bytes
        ):
            self._refused(
                "queue full",
                f"dropped a message on {broadcast.get('topic')!r} for the offline "
                f"{target_session.client_id!r} ({queue.qsize()} messages, {queued} bytes queued)",
            )
            return
        target_session.attributes[_QUEUED_BYTES] = queued + size
        await super()._retain_broadcast_message(broadcast, qos, target_session)

    async def _publish_session_retained_messages(self, session: Any) -> None:
        """Send the session's unacknowledged and queued messages again (see the handler)."""
        handler = self._get_handler(session)
        queued = []
        while not session.retained_messages.empty():
            queued.append(session.retained_messages.get_nowait())
        session.attributes[_QUEUED_BYTES] = 0
        if isinstance(handler, SessionDeliveryHandler):
            handler.resume(queued)

    async def _client_message_loop(self, client_session: Any, handler: Any) -> None:
        """amqtt's loop, except that a disconnect first routes every acknowledged message."""
        waiters: dict[str, asyncio.Future[Any]] = {
            "disconnect": asyncio.ensure_future(handler.wait_disconnect()),
            "subscribe": asyncio.ensure_future(handler.get_next_pending_subscription()),
            "unsubscribe": asyncio.ensure_future(handler.get_next_pending_unsubscription()),
            "deliver": asyncio.ensure_future(handler.mqtt_deliver_next_message()),
        }
        try:
            while True:
                done, _ = await asyncio.wait(waiters.values(), return_when=asyncio.FIRST_COMPLETED)
                if waiters["deliver"] in done:  # in order: before a disconnect seen with it
                    if not await self._handle_message_delivery(
                        client_session, handler, waiters["deliver"]
                    ):
                        break
                    waiters["deliver"] = asyncio.ensure_future(handler.mqtt_deliver_next_message())
                if waiters["disconnect"] in done:
                    queue = client_session.delivered_message_queue
                    while not queue.empty():
                        routed = asyncio.get_running_loop().create_future()
                        routed.set_result(queue.get_nowait())
                        await self._handle_message_delivery(client_session, handler, routed)
                    await self._handle_disconnect(client_session, handler, waiters["disconnect"])
                    break
                if waiters["subscribe"] in done:
                    await self._handle_subscription(client_session, handler, waiters["subscribe"])
                    waiters["subscribe"] = asyncio.ensure_future(
                        handler.get_next_pending_subscription()
                    )
                if waiters["unsubscribe"] in done:
                    await self._handle_unsubscription(
                        client_session, handler, waiters["unsubscribe"]
                    )
                    waiters["unsubscribe"] = asyncio.ensure_future(
                        handler.get_next_pending_unsubscription()
                    )
        except asyncio.CancelledError:
            _log.debug("client loop of %s cancelled", client_session.client_id)
        finally:
            for waiter in waiters.values():
                waiter.cancel()
            await asyncio.gather(*waiters.values(), return_exceptions=True)

    async def _handle_message_delivery(
        self, client_session: Any, handler: Any, wait_deliver: asyncio.Future[Any]
    ) -> bool:
        message = wait_deliver.result()
        topic = getattr(message, "topic", None)
        if not topic or not topic.startswith(_SHADOW_ROOT) or "+" in topic or "#" in topic:
            return bool(
                await super()._handle_message_delivery(client_session, handler, wait_deliver)
            )
        await self.plugins_manager.fire_event(
            BrokerEvents.MESSAGE_RECEIVED, client_id=client_session.client_id, message=message
        )
        if await self._topic_filtering(client_session, topic=topic, action=Action.PUBLISH):
            await self.plugins_manager.fire_event(
                BrokerEvents.MESSAGE_BROADCAST, client_id=client_session.client_id, message=message
            )
            await self._broadcast_message(client_session, topic, message.data)
            if message.publish_packet and message.publish_packet.retain_flag:
                await self.retain_message(client_session, topic, message.data, message.qos)
        return True


class EmbeddedBroker:
    """An amqtt broker with the platform's TLS identities, access policy and limits."""

    def __init__(
        self,
        credentials: BrokerCredentials,
        identities: Callable[[], Iterable[str]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: MqttSettings | None = None,
    ) -> None:
        self.credentials = credentials
        self.host = host
        self.port = port
        self.limits = limits or MqttSettings()
        """The ``[mqtt]`` settings whose limits the broker enforces."""
        self.refusals: Counter[str] = Counter()
        """What the broker refused or dropped since it was created, by reason (see the module)."""
        self._identities = identities
        self._state: AccessState | None = None
        self._broker: _PlatformBroker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start listening (on a free port when ``port`` is 0).

        Example: ``await broker.start()``.
        """
        if self._broker is not None:
            return
        state = AccessState(self.credentials, self._identities)
        state.reload()
        if self.port == 0:
            self.port = free_port(self.host)
        config = {
            "listeners": {
                "default": {
                    "type": "tcp",
                    "bind": f"{self.host}:{self.port}",
                    "ssl": True,
                    "cafile": str(self.credentials.ca_file),
                    "certfile": str(self.credentials.cert_file),
                    "keyfile": str(self.credentials.key_file),
                }
            },
            "plugins": {
                f"{CertificateAuthPlugin.__module__}.CertificateAuthPlugin": {"state": state},
                f"{AccessPolicyPlugin.__module__}.AccessPolicyPlugin": {"state": state},
            },
        }
        broker = _PlatformBroker(config, self.credentials, state, self.limits, self.refusals)
        try:
            await broker.start()
        except (BrokerError, OSError) as exc:
            raise BrokerUnavailable(f"the embedded broker could not start: {exc}") from exc
        self._state, self._broker = state, broker
        self._loop = asyncio.get_running_loop()

    def refresh(self) -> None:
        """Reload the CRL and the identities; close the live sessions of revoked certificates.

        Callable from any thread; the connections close on the broker's event loop
        (:meth:`settle` waits for that).

        Example: ``ca.add_listener(broker.refresh)``.
        """
        if self._state is None or self._broker is None or self._loop is None:
            return
        self._state.reload()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._broker.close_revoked()
        else:
            self._loop.call_soon_threadsafe(self._broker.close_revoked)

    async def settle(self) -> None:
        """Return once the connections :meth:`refresh` closes are closed.

        Example: ``broker.refresh(); await broker.settle()``.
        """
        await asyncio.sleep(0)
        if self._broker is not None:
            await self._broker.closed()

    @property
    def running(self) -> bool:
        """True while the broker is listening."""
        return self._broker is not None

    async def stop(self) -> None:
        """Stop the broker and close every session.

        Example: ``await broker.stop()``.
        """
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
