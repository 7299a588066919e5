"""The MQTT port: what the rest of the platform needs from an MQTT connection.

Shadow service, device SDK, intermediate nodes and triggers talk MQTT only through
this protocol; :mod:`pervasive.messaging` provides the real client (:class:`MqttClient`) and
the brokers (mosquitto, embedded amqtt).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MqttConnection", "MqttMessage"]


@dataclass(frozen=True)
class MqttMessage:
    """One message as received from the broker."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


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
