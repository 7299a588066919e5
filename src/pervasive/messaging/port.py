"""The MQTT port: what the rest of the platform needs from an MQTT connection.

Shadow service, device SDK, intermediate nodes and triggers talk MQTT only through
this protocol; :mod:`pervasive.messaging` provides the real client (:class:`MqttClient`) and
the brokers (mosquitto, embedded amqtt).

A consumer that must not lose a message it was sent (the service runtime: a reading is
"accepted" once its inbox transaction commits) needs more than :class:`MqttConnection`:
an :class:`AcknowledgingConnection` whose QoS 1 messages carry a :class:`Delivery` and
are acknowledged (PUBACK) only when the consumer says it has made them durable. Until
then the broker keeps them and delivers them again on the next connection of the
session.

Example::

    async for message in connection.messages():
        store(message)                       # commit first...
        connection.acknowledge(message)      # ...then the PUBACK
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["AcknowledgingConnection", "Delivery", "MqttConnection", "MqttMessage"]


@dataclass(frozen=True)
class Delivery:
    """What acknowledging a received QoS 1 message needs: its connection and packet id."""

    connection: int
    """Which connection of the client received it (the PUBACK must leave on that one)."""
    packet_id: int
    """The broker's packet identifier of the PUBLISH."""


@dataclass(frozen=True)
class MqttMessage:
    """One message as received from the broker."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    delivery: Delivery | None = field(default=None, compare=False, repr=False)
    """Set when the message awaits :meth:`AcknowledgingConnection.acknowledge`; ``None``
    when there is nothing to acknowledge (QoS 0, or a client that acknowledges on arrival)."""


class MqttConnection(Protocol):
    """A connected MQTT session."""

    @property
    def client_id(self) -> str:
        """The identity the broker knows this session by (the certificate CN under TLS)."""
        ...

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish; with qos 1 return once the broker acknowledged (PUBACK)."""
        ...

    async def subscribe(self, topic_filter: str, *, qos: int = 1) -> None:
        """Subscribe (and resubscribe after reconnects).

        Raises ``TopicDenied`` (a ``UserError`` and ``PermissionError``) when refused.
        """
        ...

    def messages(self) -> AsyncIterator[MqttMessage]:
        """Every message delivered to this session, in arrival order.

        QoS 1 means at least once: deduplicate with
        :class:`pervasive.messaging.dedupe.Deduplicator` where applying twice matters.
        """
        ...


@runtime_checkable
class AcknowledgingConnection(MqttConnection, Protocol):
    """A session whose consumer acknowledges each QoS 1 message after processing it.

    ``isinstance(connection, AcknowledgingConnection)`` tells a consumer that takes any
    :class:`MqttConnection` whether it can acknowledge after processing.
    """

    def acknowledge(self, message: MqttMessage) -> None:
        """Acknowledge ``message`` (a PUBACK) now that its consumer has made it durable.

        Acknowledge every message taken from :meth:`messages`, refused ones too (a
        refusal is final), in the order they came: MQTT 3.1.1 [MQTT-4.6.0-2] wants
        PUBACKs in the order the PUBLISHes arrived, so one acknowledged early waits
        until those before it are acknowledged. Synchronous, so nothing (no
        cancellation) comes between the consumer's commit and this call. A message
        whose connection is gone is not acknowledged: the broker sends it again on the
        next connection of the session (a message without :attr:`MqttMessage.delivery`
        has nothing to acknowledge).
        """
        ...
