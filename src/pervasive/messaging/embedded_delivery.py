"""The broker side of one embedded-broker connection: a session keeps what is unacknowledged.

amqtt forgets an outgoing QoS 1 message when the connection drops or no PUBACK comes
within 5 s, so a consumer that acknowledges after processing (``ClientOptions(
manual_ack=True)``) would lose what it had not yet acknowledged. Here a message leaves
the session only on its PUBACK, and on reconnection the session's messages leave again
in order ([MQTT-4.4.0-1]: those in flight, with DUP, then those queued while it was
away) before any new one.

Example::

    handler = SessionDeliveryHandler.adopt(amqtt_handler)
    handler.resume(queued_messages)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import OUTGOING

__all__ = ["SessionDeliveryHandler"]

_log = logging.getLogger(__name__)


class SessionDeliveryHandler(BrokerProtocolHandler):  # type: ignore[misc]
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
    def adopt(cls, handler: BrokerProtocolHandler) -> SessionDeliveryHandler:
        """Turn amqtt's handler into this class (it adds state, no slots)."""
        handler.__class__ = cls
        adopted: SessionDeliveryHandler = handler
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
            super(SessionDeliveryHandler, self).mqtt_publish(
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
