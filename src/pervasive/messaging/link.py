"""One MQTT 3.1.1 connection over TLS: an asyncio protocol around :mod:`.packets`.

:class:`~pervasive.messaging.client.MqttClient` owns reconnects, resubscriptions and
the durable outbox; a :class:`Link` is one connection and dies with it. Why our own
and not paho (through aiomqtt) or gmqtt: measured on the device-throughput bench,
paho reads each packet's header and length in 1-byte TLS reads and writes each
PUBACK as its own TLS record and system call, about 100 µs of CPU per received
message, half the cost of verifying its signature. Here:

- every TLS read is decoded whole (:class:`~.packets.PacketDecoder`), however many
  packets it holds;
- everything written during one turn of the event loop (a window of PUBLISHes from
  the outbox drain, the PUBACKs for a read's PUBLISHes) leaves in one write:
  :meth:`Link._send` buffers and a ``call_soon`` flushes;
- a QoS 1 publish is a future resolved by its PUBACK, with no task per message.

A received QoS 1 PUBLISH is acknowledged as it arrives, or, with ``manual_ack``, when
its consumer calls :meth:`Link.acknowledge` after making it durable: the PUBACKs
then leave in the order the PUBLISHes arrived ([MQTT-4.6.0-2]; one acknowledged
early waits for those before it, :class:`Acknowledgements`), and what is not
acknowledged when the connection drops the broker sends again on the next one.

A refused TLS handshake (certificate revoked, unknown CA) raises
:class:`ConnectionRefused` with the reason; TLS is pinned to 1.2 on clients
(:meth:`ClientCredentials.ssl_context`) so the refusal comes in the handshake. A
reset in mid-handshake is how some servers refuse a certificate, but also what a
loaded broker does to a connection it has no room for: it counts as a refusal only
when it happens again on fresh attempts. A CONNACK refusal raises
:class:`ConnectionRefused` too.

Keepalive: a PINGREQ goes out when nothing was sent, or nothing received, for half
the keepalive; when
nothing at all arrives for 1.5 times the keepalive the connection is closed as dead
(the broker applies the same 1.5 rule to us, [MQTT-3.1.2-24]).

Example::

    link = await Link.open("127.0.0.1", port, creds.ssl_context(), client_id="lock-7",
                           clean_session=False, keepalive=30, timeout=10,
                           deliver=queue.put_nowait)
    await link.publish("pervasive/devices/lock-7/telemetry", b"21.5", qos=1)
    await link.close()
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import cast

from pervasive.errors import InternalError
from pervasive.messaging.errors import BrokerUnavailable, ConnectionRefused
from pervasive.messaging.packets import (
    MAX_REMAINING_LENGTH,
    ConnAck,
    ConnectReturnCode,
    MalformedPacket,
    PacketDecoder,
    PacketTooLarge,
    PubAck,
    Publish,
    SubAck,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_puback,
    encode_publish,
    encode_subscribe,
)
from pervasive.messaging.port import Delivery, MqttMessage

__all__ = ["Acknowledgements", "Link"]

_log = logging.getLogger(__name__)
_HANDSHAKE_RESETS = 3
"""Handshakes reset by the broker in a row before the reset counts as a refusal."""
_CLOSE_TIMEOUT = 2.0
"""Seconds to wait for the TLS close of a connection we are leaving anyway."""
_REFUSALS = {
    ConnectReturnCode.UNACCEPTABLE_PROTOCOL_VERSION: "it does not speak MQTT 3.1.1",
    ConnectReturnCode.IDENTIFIER_REJECTED: "it rejected the client id",
    ConnectReturnCode.SERVER_UNAVAILABLE: "it is unavailable",
    ConnectReturnCode.BAD_USERNAME_OR_PASSWORD: "bad credentials",
    ConnectReturnCode.NOT_AUTHORIZED: "this identity is not authorised",
}


def _fail_quietly(future: asyncio.Future[object], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # whoever awaits it sees the error; nobody else must log it


class Acknowledgements:
    """Received QoS 1 packet ids, released for PUBACK in arrival order (sans I/O).

    MQTT 3.1.1 [MQTT-4.6.0-2]: a client sends PUBACKs in the order the PUBLISHes
    arrived. A consumer that acknowledges out of order gets its PUBACK held until every
    earlier message is acknowledged too.

    Example::

        acks = Acknowledgements()
        acks.received(7); acks.received(8)
        acks.acknowledge(8)    # []: 7 first
        acks.acknowledge(7)    # [7, 8]
    """

    def __init__(self) -> None:
        self._waiting: OrderedDict[int, None] = OrderedDict()
        """Packet ids whose PUBACK has not left, in arrival order."""
        self._done: set[int] = set()
        """Those of them the consumer acknowledged."""

    def __len__(self) -> int:
        return len(self._waiting)

    def received(self, packet_id: int) -> None:
        """Record an arrived PUBLISH whose PUBACK waits for the consumer."""
        self._waiting[packet_id] = None
        self._done.discard(packet_id)

    def acknowledge(self, packet_id: int) -> list[int]:
        """Mark ``packet_id`` acknowledged; return the ids whose PUBACK may leave now, in order.

        An id not waiting (acknowledged twice, or never received) releases nothing.
        """
        if packet_id not in self._waiting:
            return []
        self._done.add(packet_id)
        released = []
        for waiting in self._waiting:
            if waiting not in self._done:
                break
            released.append(waiting)
        for waiting in released:
            del self._waiting[waiting]
            self._done.discard(waiting)
        return released


class Link(asyncio.Protocol):
    """One connection: publish with a PUBACK future, subscribe with SUBACK codes."""

    def __init__(
        self,
        deliver: Callable[[MqttMessage], None],
        *,
        keepalive: int,
        manual_ack: bool = False,
        number: int = 0,
        max_packet: int = MAX_REMAINING_LENGTH,
        refusals: Counter[str] | None = None,
    ) -> None:
        self._deliver = deliver
        self._refusals = refusals if refusals is not None else Counter()
        self._keepalive = keepalive
        self._manual_ack = manual_ack
        self.number = number
        """Which connection of its client this is (:attr:`Delivery.connection`)."""
        self._received = Acknowledgements()
        self._decoder = PacketDecoder(max_packet)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._subacks: dict[int, asyncio.Future[tuple[int, ...]]] = {}
        self._next_id = 0
        self._connack: asyncio.Future[ConnAck] = self._loop.create_future()
        self._last_sent = self._last_received = self._loop.time()
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._lost: asyncio.Future[str] = self._loop.create_future()
        """Resolves, with the reason, when the connection is gone (never cancelled)."""
        self._closed: asyncio.Future[None] = self._loop.create_future()
        """Resolves in ``connection_lost``: the socket itself is closed."""

    # -- opening and closing --------------------------------------------------

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        context: ssl.SSLContext,
        *,
        client_id: str,
        clean_session: bool,
        keepalive: int,
        timeout: float,
        deliver: Callable[[MqttMessage], None],
        manual_ack: bool = False,
        number: int = 0,
        max_packet: int = MAX_REMAINING_LENGTH,
        refusals: Counter[str] | None = None,
    ) -> Link:
        """Connect over TLS, send CONNECT and wait for a successful CONNACK.

        With ``manual_ack`` a received QoS 1 message carries a :class:`Delivery` and
        its PUBACK waits for :meth:`acknowledge`; ``number`` tells this connection
        from the client's others. A packet from the broker longer than ``max_packet``
        (its remaining length) closes the connection; each such refusal, and each
        malformed packet, is counted in ``refusals`` (``packet_too_large``,
        ``malformed_packet``).

        Raises :class:`ConnectionRefused` (TLS or CONNACK refusal) or
        :class:`BrokerUnavailable` (unreachable, closed or silent before CONNACK).

        Example: ``await Link.open(host, port, ctx, client_id="lock-7", ...)``.
        """

        def protocol() -> Link:
            return cls(
                deliver,
                keepalive=keepalive,
                manual_ack=manual_ack,
                number=number,
                max_packet=max_packet,
                refusals=refusals,
            )

        link = await cls._connect(host, port, context, timeout=timeout, protocol=protocol)
        try:
            code = await link._handshake_mqtt(client_id, clean_session, timeout, f"{host}:{port}")
        except BaseException:
            link.abort("the MQTT handshake did not complete")
            raise
        if code != ConnectReturnCode.ACCEPTED:
            link.abort(f"CONNACK {code}")
            reason = _REFUSALS.get(ConnectReturnCode(code)) if code <= 5 else None
            raise ConnectionRefused(
                f"the MQTT broker refused {client_id!r}: {reason or f'return code {code}'}"
            )
        link._schedule_keepalive()
        return link

    async def _handshake_mqtt(
        self, client_id: str, clean_session: bool, timeout: float, where: str
    ) -> int:
        """Send CONNECT; return the CONNACK's return code."""
        self._send(
            encode_connect(client_id, clean_session=clean_session, keepalive=self._keepalive)
        )
        try:
            async with asyncio.timeout(timeout):
                connack = await self._connack
        except TimeoutError:
            raise BrokerUnavailable(
                f"the MQTT broker at {where} sent no CONNACK within {timeout} s"
            ) from None
        except BrokerUnavailable as exc:  # _lose fails the CONNACK future
            raise BrokerUnavailable(
                f"the MQTT broker at {where} closed the connection before CONNACK "
                f"({self._lost.result()})"
            ) from exc
        return connack.return_code

    @classmethod
    async def _connect(
        cls,
        host: str,
        port: int,
        context: ssl.SSLContext,
        *,
        timeout: float,
        protocol: Callable[[], Link],
    ) -> Link:
        loop = asyncio.get_running_loop()
        for attempt in range(_HANDSHAKE_RESETS):
            try:
                async with asyncio.timeout(timeout):
                    _transport, link = await loop.create_connection(
                        protocol,
                        host,
                        port,
                        ssl=context,
                        server_hostname=host,
                        ssl_shutdown_timeout=_CLOSE_TIMEOUT,
                    )
                return link
            except ConnectionResetError as exc:
                if attempt + 1 < _HANDSHAKE_RESETS:
                    await asyncio.sleep(0.05 * 2**attempt)
                    continue
                raise _refused(host, port, "connection reset in the handshake") from exc
            except ssl.SSLError as exc:
                raise _refused(host, port, exc.reason or str(exc)) from exc
            except (OSError, TimeoutError) as exc:
                raise BrokerUnavailable(
                    f"cannot reach the MQTT broker at {host}:{port}: {exc or 'timed out'}"
                ) from exc
        raise InternalError("the handshake loop ended without a result")  # pragma: no cover

    async def close(self) -> None:
        """Send DISCONNECT, close the connection and return once its socket is closed.

        Example: ``await link.close()``.
        """
        transport = self._transport
        if transport is None:
            return
        if not self._lost.done():
            self._send(encode_disconnect())
            self._flush()
            if not transport.is_closing():  # a second close() would disarm abort()
                transport.close()
        try:
            async with asyncio.timeout(2 * _CLOSE_TIMEOUT):
                await asyncio.shield(self._closed)
        except TimeoutError:
            self.abort("the TLS close timed out")
            await asyncio.sleep(0)  # the transport closes its socket on the next turn

    @property
    def heard_at(self) -> float:
        """Wall-clock time (``time.time()``) of the last bytes received from the broker."""
        return time.time() - (self._loop.time() - self._last_received)

    @property
    def lost_reason(self) -> str | None:
        """Why the connection is gone, or ``None`` while it is up."""
        return self._lost.result() if self._lost.done() else None

    async def wait_lost(self) -> str:
        """Wait until the connection is gone; return why (cancelling the wait is safe).

        Example: ``reason = await link.wait_lost()``.
        """
        return await asyncio.shield(self._lost)

    def abort(self, reason: str) -> None:
        """Drop the connection at once; everything awaiting an answer fails."""
        if self._transport is not None:
            self._transport.abort()
        self._lose(reason)

    # -- publishing and subscribing ------------------------------------------

    def publish(
        self, topic: str, payload: bytes, *, qos: int, retain: bool
    ) -> asyncio.Future[None] | None:
        """Queue a PUBLISH; for QoS 1 return a future that its PUBACK resolves.

        The future fails with :class:`BrokerUnavailable` when the connection is lost.
        The PUBLISH leaves with everything else queued in this turn of the loop.

        Example: ``await link.publish("pervasive/devices/lock-7/telemetry", b"1", qos=1)``.
        """
        self._check_open(f"publish on {topic!r}")
        if not qos:
            self._send(encode_publish(topic, payload, retain=retain))
            return None
        packet_id = self._allocate_id()
        acknowledged: asyncio.Future[None] = self._loop.create_future()
        self._acks[packet_id] = acknowledged
        self._send(encode_publish(topic, payload, qos=qos, retain=retain, packet_id=packet_id))
        return acknowledged

    async def writable(self) -> None:
        """Return once the transport's write buffer is below its high-water mark.

        Example: ``await link.writable()`` before a burst of QoS 0 publishes.
        """
        await self._writable.wait()

    async def subscribe(self, topic_filter: str, qos: int, *, timeout: float) -> tuple[int, ...]:
        """Subscribe and return the SUBACK's return codes (0x80: refused).

        Example: ``await link.subscribe("pervasive/#", 1, timeout=10)``.
        """
        self._check_open(f"subscribe to {topic_filter!r}")
        packet_id = self._allocate_id()
        granted: asyncio.Future[tuple[int, ...]] = self._loop.create_future()
        self._subacks[packet_id] = granted
        self._send(encode_subscribe(packet_id, [(topic_filter, qos)]))
        try:
            async with asyncio.timeout(timeout):
                return await granted
        except TimeoutError:
            self.abort(f"no SUBACK within {timeout} s")
            raise BrokerUnavailable(f"no SUBACK for {topic_filter!r} within {timeout} s") from None
        finally:
            self._subacks.pop(packet_id, None)

    def acknowledge(self, delivery: Delivery) -> None:
        """Send the PUBACK of a received QoS 1 message (``manual_ack``), in arrival order.

        Nothing is sent for a message of another connection, or when this one is lost:
        the broker delivers it again on the session's next connection.

        Example: ``link.acknowledge(message.delivery)``.
        """
        if delivery.connection != self.number or self._lost.done():
            return
        for packet_id in self._received.acknowledge(delivery.packet_id):
            self._send(encode_puback(packet_id))

    @property
    def unacknowledged(self) -> int:
        """Received QoS 1 messages whose PUBACK waits for the consumer (``manual_ack``)."""
        return len(self._received)

    def _check_open(self, what: str) -> None:
        if self._lost.done():
            raise BrokerUnavailable(f"{what} failed: {self._lost.result()}")

    def _allocate_id(self) -> int:
        for _ in range(0xFFFF):
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self._acks and self._next_id not in self._subacks:
                return self._next_id
        raise InternalError("65,535 packets await acknowledgement on one connection")

    # -- writing --------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        self._outgoing.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outgoing or self._transport is None or self._lost.done():
            self._outgoing.clear()
            return
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        self._transport.write(data)
        self._last_sent = self._loop.time()

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        raw = transport.get_extra_info("socket")
        if raw is not None:
            # MQTT is small request/acknowledge packets: without TCP_NODELAY, Nagle's
            # algorithm meets the peer's delayed ACK and a round trip waits ~40 ms
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._last_received = self._loop.time()
        try:
            packets = self._decoder.feed(data)
        except MalformedPacket as exc:
            reason = "packet_too_large" if isinstance(exc, PacketTooLarge) else "malformed_packet"
            self._refusals[reason] += 1
            _log.warning("malformed packet from the broker, closing: %s", exc)
            self.abort(f"malformed packet from the broker: {exc}")
            return
        for packet in packets:
            if type(packet) is Publish:
                if packet.qos and self._manual_ack:
                    self._received.received(packet.packet_id)
                    delivery = Delivery(self.number, packet.packet_id)
                    message = MqttMessage(
                        packet.topic, packet.payload, packet.qos, packet.retain, delivery
                    )
                    self._deliver(message)
                    continue
                self._deliver(MqttMessage(packet.topic, packet.payload, packet.qos, packet.retain))
                if packet.qos:
                    self._outgoing.append(encode_puback(packet.packet_id))
            elif type(packet) is PubAck:
                acknowledged = self._acks.pop(packet.packet_id, None)
                if acknowledged is not None and not acknowledged.done():
                    acknowledged.set_result(None)
            elif type(packet) is SubAck:
                granted = self._subacks.get(packet.packet_id)
                if granted is not None and not granted.done():
                    granted.set_result(packet.return_codes)
            elif type(packet) is ConnAck and not self._connack.done():
                self._connack.set_result(packet)
        if self._outgoing and not self._flush_scheduled:
            self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(f"connection lost ({exc})" if exc else "connection closed by the broker")
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- keepalive and loss ---------------------------------------------------

    def _schedule_keepalive(self) -> None:
        if self._keepalive and not self._lost.done():
            self._keepalive_timer = self._loop.call_later(self._keepalive / 2, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        if now - self._last_received > 1.5 * self._keepalive:
            self.abort(f"nothing from the broker for {1.5 * self._keepalive:.0f} s")
            return
        # a PINGREQ when either side has been quiet, so a client that only sends (QoS 0)
        # still hears from the broker before it would take the silence for a dead link
        quiet = max(now - self._last_sent, now - self._last_received)
        if quiet >= self._keepalive / 2:
            self._send(encode_pingreq())
        self._schedule_keepalive()

    def _lose(self, reason: str) -> None:
        if self._lost.done():
            return
        self._lost.set_result(reason)
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
        self._writable.set()
        error = BrokerUnavailable(f"the connection to the MQTT broker was lost: {reason}")
        for future in (*self._acks.values(), *self._subacks.values(), self._connack):
            _fail_quietly(cast("asyncio.Future[object]", future), error)
        self._acks.clear()


def _refused(host: str, port: int, reason: str) -> ConnectionRefused:
    return ConnectionRefused(
        f"the MQTT broker at {host}:{port} refused the TLS handshake ({reason}). Is the "
        "certificate issued by the platform CA, unrevoked and unexpired? A device gets a "
        "fresh one with `pervasive device cert <id> --rotate`."
    )
