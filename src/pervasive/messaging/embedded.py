"""The embedded broker: amqtt in this process, for machines without mosquitto.

It enforces what :class:`~pervasive.messaging.mosquitto.MosquittoBroker` enforces:

* a TLS listener that requires a client certificate signed by the platform CA;
* the certificate CN as identity; a serial on the CA's CRL, or a CN that holds no
  active certificate, is refused at CONNECT (CONNACK "not authorized");
* the same access policy (:mod:`pervasive.messaging.access`) on every publish,
  subscribe and delivery, re-checked against the current CRL, so a revoked
  session that is still connected loses access at :meth:`EmbeddedBroker.refresh`.

Four amqtt behaviours are adjusted in subclasses: a persistent session's TLS
identity is taken from the new connection (amqtt keeps the first connection's);
clients may publish on the AWS shadow topics ``$aws/...`` (amqtt refuses every
``$`` topic, while MQTT only keeps them out of wildcard subscriptions); a
client's disconnect first routes the QoS 1 messages amqtt already acknowledged
(amqtt sends the PUBACK when it queues a message for routing, then drops that
queue on disconnect, losing what a client published just before leaving); and a
QoS 1 message sent to a client stays in its session until the client's PUBACK
(:class:`_SessionDeliveryHandler`): amqtt forgets it when the connection drops or
no PUBACK comes within 5 s, so a consumer that acknowledges after processing
(``ClientOptions(manual_ack=True)``) would lose what it had not yet acknowledged. On
reconnection the session's messages leave again in order ([MQTT-4.4.0-1]: those in
flight, with DUP, then those queued while it was away) before any new one.

Example::

    async with EmbeddedBroker(ca.broker_credentials(), ca.active_identities) as broker:
        print(broker.port)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import BrokerError
from amqtt.events import BrokerEvents
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import OUTGOING
from cryptography import x509

from pervasive.messaging.access import may_publish, may_receive, may_subscribe
from pervasive.messaging.errors import BrokerUnavailable
from pervasive.messaging.mosquitto import free_port
from pervasive.messaging.tls import BrokerCredentials, certificate_identity, load_revoked_serials

__all__ = ["EmbeddedBroker"]

_SHADOW_ROOT = "$aws/"
_log = logging.getLogger(__name__)


class _AccessState:
    """What the plugins consult: revoked serials, active identities, session owners."""

    def __init__(
        self, credentials: BrokerCredentials, identities: Callable[[], Iterable[str]]
    ) -> None:
        self._credentials = credentials
        self._identities = identities
        self.revoked: frozenset[int] = frozenset()
        self.active: frozenset[str] = frozenset()
        self.sessions: dict[str, tuple[str, int]] = {}
        """client id -> (identity, certificate serial) of its current connection."""

    def reload(self) -> None:
        self.revoked = load_revoked_serials(self._credentials.crl_file, self._credentials.ca_file)
        self.active = frozenset(self._identities())

    def identity_of(self, session: Any) -> str | None:
        """The identity a session may act as right now, or None."""
        owner = self.sessions.get(session.client_id)
        if owner is None or session.username != owner[0]:
            return None
        identity, serial = owner
        if serial in self.revoked or identity not in self.active:
            return None
        return identity


class _CertificateAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """amqtt auth plugin: the client certificate's CN is the identity."""

    @dataclass
    class Config:
        state: Any = None

    async def authenticate(self, *, session: Any) -> bool | None:
        state: _AccessState = self.config.state
        ssl_object = session.ssl_object
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return False
        serial = x509.load_der_x509_certificate(der).serial_number
        identity = certificate_identity(der)
        if serial in state.revoked or identity not in state.active:
            _log.info("refused %r: certificate %x revoked or not registered", identity, serial)
            return False
        previous = state.sessions.get(session.client_id)
        if previous is not None and previous[0] != identity:
            _log.info(
                "refused %r: client id %r belongs to %r", identity, session.client_id, previous[0]
            )
            return False
        session.username = identity
        state.sessions[session.client_id] = (identity, serial)
        return True


class _AccessPolicyPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """amqtt topic plugin: the access policy of :mod:`pervasive.messaging.access`."""

    @dataclass
    class Config:
        state: Any = None

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        state: _AccessState = self.config.state
        identity = state.identity_of(session) if session is not None else None
        if identity is None or not topic:
            return False
        if action == Action.PUBLISH:
            return may_publish(identity, topic)
        if action == Action.SUBSCRIBE:
            return may_subscribe(identity, topic)
        return may_receive(identity, topic)


class _SessionDeliveryHandler(BrokerProtocolHandler):  # type: ignore[misc]
    """amqtt's broker side of one connection, keeping unacknowledged messages in the session.

    amqtt builds :class:`BrokerProtocolHandler` by name, so :meth:`adopt` turns the
    instance it built into this class. Differences:

    - an outgoing QoS 1 message leaves ``session.inflight_out`` only on its PUBACK
      (amqtt drops it on disconnect or after 5 s without one);
    - amqtt's redelivery in :meth:`start` is replaced by :meth:`resume`, called by the
      broker once the connection is accepted: the in-flight messages (DUP), then the
      ones queued while the session was away, in order and without waiting for their
      PUBACKs (amqtt waited, holding back SUBACKs, then gave up after 10 s);
    - a new message waits until the session's earlier ones have left.
    """

    _resumed: asyncio.Event
    _resends: set[asyncio.Task[Any]]
    _stopped: bool

    @classmethod
    def adopt(cls, handler: BrokerProtocolHandler) -> _SessionDeliveryHandler:
        """Turn amqtt's handler into this class (it adds state, no slots)."""
        handler.__class__ = cls
        adopted: _SessionDeliveryHandler = handler
        adopted._resumed = asyncio.Event()
        adopted._resends = set()
        adopted._stopped = False
        return adopted

    async def stop(self) -> None:
        """Stop; messages still waiting to be sent stay in the session for its next connection."""
        self._stopped = True
        self._resumed.set()
        await super().stop()

    async def _retry_deliveries(self) -> None:
        """Nothing at :meth:`start`: :meth:`resume` sends the session's messages again."""

    def resume(self, queued: list[Any]) -> None:
        """Send again what the session holds, in order, then let new messages through.

        ``queued``: the messages amqtt queued (``session.retained_messages``) while the
        session was away; each leaves as a new publish (its QoS) after those in flight.
        """
        flows = [
            self._handle_message_flow(message)
            for message in (*self.session.inflight_in.values(), *self.session.inflight_out.values())
        ]
        flows += [
            super(_SessionDeliveryHandler, self).mqtt_publish(
                message.topic, message.data, message.qos, retain=False
            )
            for message in queued
        ]
        for flow in flows:  # tasks start in creation order: the write lock keeps it
            task = asyncio.ensure_future(flow)
            self._resends.add(task)
            task.add_done_callback(self._resent)
        self._resumed.set()

    def _resent(self, task: asyncio.Task[Any]) -> None:
        self._resends.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.warning("resending to %s failed: %s", self.session, task.exception())

    async def mqtt_publish(
        self,
        topic: str,
        data: bytes | bytearray,
        qos: int | None,
        retain: bool,
        ack_timeout: int | None = None,
    ) -> Any:
        """amqtt's publish, after the session's earlier messages have left."""
        await self._resumed.wait()
        return await super().mqtt_publish(topic, data, qos, retain, ack_timeout)

    async def _handle_qos1_message_flow(self, app_message: Any) -> None:
        if app_message.direction != OUTGOING:
            await super()._handle_qos1_message_flow(app_message)
            return
        session = self.session
        packet_id = app_message.packet_id
        session.inflight_out[packet_id] = app_message  # a resend keeps its place
        if self._stopped:  # the connection is gone: the session's next one sends it
            return
        packet = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
        acknowledged: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # registered before sending (the PUBACK may come before the send returns) and
        # with no await since the check above, so stop() cancels it
        self._puback_waiters[packet_id] = acknowledged
        try:
            await self._send_packet(packet)
            app_message.publish_packet = packet
            app_message.puback_packet = await acknowledged  # cancelled when the link drops
        finally:
            if self._puback_waiters.get(packet_id) is acknowledged:
                del self._puback_waiters[packet_id]
        session.inflight_out.pop(packet_id, None)


class _PlatformBroker(Broker):  # type: ignore[misc]
    def __init__(self, config: dict[str, Any], credentials: BrokerCredentials) -> None:
        self._credentials = credentials
        super().__init__(config)

    def _create_ssl_context(self, _listener: Any) -> Any:
        # amqtt verifies client certificates only optionally; the platform requires them
        return self._credentials.server_ssl_context()

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[Any, Any]:
        handler, session = await super()._initialize_client_session(
            reader, writer, remote_address, remote_port
        )
        # a resumed session must be judged by the certificate of *this* connection
        session.ssl_object = writer.get_ssl_info()
        return _SessionDeliveryHandler.adopt(handler), session

    async def _publish_session_retained_messages(self, session: Any) -> None:
        """Send the session's unacknowledged and queued messages again (see the handler)."""
        handler = self._get_handler(session)
        queued = []
        while not session.retained_messages.empty():
            queued.append(session.retained_messages.get_nowait())
        if isinstance(handler, _SessionDeliveryHandler):
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
    """An amqtt broker with the platform's TLS identities and access policy."""

    def __init__(
        self,
        credentials: BrokerCredentials,
        identities: Callable[[], Iterable[str]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.credentials = credentials
        self.host = host
        self.port = port
        self._identities = identities
        self._state: _AccessState | None = None
        self._broker: _PlatformBroker | None = None

    async def start(self) -> None:
        """Start listening (on a free port when ``port`` is 0).

        Example: ``await broker.start()``.
        """
        if self._broker is not None:
            return
        state = _AccessState(self.credentials, self._identities)
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
                f"{__name__}._CertificateAuthPlugin": {"state": state},
                f"{__name__}._AccessPolicyPlugin": {"state": state},
            },
        }
        broker = _PlatformBroker(config, self.credentials)
        try:
            await broker.start()
        except (BrokerError, OSError) as exc:
            raise BrokerUnavailable(f"the embedded broker could not start: {exc}") from exc
        self._state, self._broker = state, broker

    def refresh(self) -> None:
        """Reload the CRL and the identities; revoked sessions lose access at once.

        Example: ``ca.add_listener(broker.refresh)``.
        """
        if self._state is not None:
            self._state.reload()

    async def settle(self) -> None:
        """Nothing to wait for: :meth:`refresh` takes effect before it returns."""

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
