"""Topics and transport of an intermediate node: sensor traces in, signed messages between nodes.

Everything travels over MQTT (:class:`~pervasive.messaging.port.MqttConnection`):

- a sensor publishes ``m_{s,q}`` (wire form) on ``pervasive/devices/<sensor id>/diversity``,
  under its device certificate; every node of the agreement subscribes, so the
  message is multicast to all of them (paper 002, section 2);
- node ``i`` of agreement ``a`` reads its point-to-point inbox
  ``pervasive/nodes/<a>/<i>`` (lower-case addresses) under its own service identity
  ``svc:node.<id>``, distinct from any device's; a :class:`~pervasive.offchain.outcomes.Send`
  action is one publish per recipient.

The transport does not trust the broker: every protocol message is an EIP-712
:class:`~pervasive.offchain.messages.ProtocolMessage` signed by its sending node's key
and checked by :meth:`pervasive.offchain.protocol.IntermediateNode.receive` (which
counts forgeries and replays); every sensor message is checked by the
:class:`~pervasive.offchain.node.verifier.SensorVerifier`.

Example::

    transport = NodeTransport(connection, spec.address, key.address, sensor_ids=("lock-1",))
    await transport.subscribe()
    await transport.send(send_action)
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from pervasive.errors import InvalidInput
from pervasive.messaging.port import MqttConnection, MqttMessage
from pervasive.messaging.topics import DEVICE_PREFIX, device_topic, validate_topic_filter
from pervasive.offchain.outcomes import Send

__all__ = [
    "NODES_PREFIX",
    "SENSOR_SUFFIX",
    "Inbound",
    "NodeTransport",
    "Outgoing",
    "node_inbox_topic",
    "node_update_topic",
    "sensor_topic",
    "window_reply_topic",
    "window_request_topic",
]

SENSOR_SUFFIX = "diversity"
"""The device-topic suffix on which a sensor publishes its signed messages."""
NODES_PREFIX = "pervasive/nodes"
"""Topics between intermediate nodes (the ``svc:node`` role may read and write them)."""
ALL_SENSORS = f"{DEVICE_PREFIX}/+/{SENSOR_SUFFIX}"


@dataclass(frozen=True)
class Outgoing:
    """One publish of a node: topic, payload and the message kind it counts as."""

    topic: str
    payload: bytes
    kind: str


class Inbound(enum.Enum):
    """What an inbound MQTT message is for the node."""

    SENSOR = "sensor"
    PROTOCOL = "protocol"
    UPDATE_SIGNATURE = "update-signature"
    WINDOW_REQUEST = "window-request"
    OTHER = "other"


def sensor_topic(sensor_id: str) -> str:
    """Where sensor ``sensor_id`` publishes ``m_{s,q}``.

    Example: ``sensor_topic("lock-1") == "pervasive/devices/lock-1/diversity"``.
    """
    return device_topic(sensor_id, SENSOR_SUFFIX)


def node_update_topic(agreement: str, node: str) -> str:
    """Where ``node`` receives the other nodes' signatures of contract updates.

    Example: ``node_update_topic(a, n) == node_inbox_topic(a, n) + "/updates"``.
    """
    return node_inbox_topic(agreement, node) + "/updates"


def node_inbox_topic(agreement: str, node: str) -> str:
    """The inbox of ``node`` in ``agreement``.

    Example: ``node_inbox_topic("0xAb..", "0xCd..") == "pervasive/nodes/0xab../0xcd.."``.
    """
    for value in (agreement, node):
        if not (value.startswith("0x") and len(value) == 42):
            raise InvalidInput(f"{value!r} is not an address")
    return f"{NODES_PREFIX}/{agreement.lower()}/{node.lower()}"


def window_request_topic(agreement: str, node: str) -> str:
    """Where ``node`` takes requests for its stored windows (``window_requests.py``).

    Example: ``window_request_topic(a, n) == node_inbox_topic(a, n) + "/windows"``.
    """
    return node_inbox_topic(agreement, node) + "/windows"


def window_reply_topic(agreement: str, requester: str) -> str:
    """Where ``requester`` (a party or node address) receives the windows it asked for.

    Example: ``window_reply_topic(a, p) == node_inbox_topic(a, p) + "/windows/reply"``.
    """
    return node_inbox_topic(agreement, requester) + "/windows/reply"


class NodeTransport:
    """The node's MQTT side: subscriptions, classification of inbound messages, sends.

    ``sensor_ids`` are the agreement sensors' device ids (their registry ids); when
    empty the node listens to every sensor topic and the verifier drops the others.
    """

    def __init__(
        self,
        connection: MqttConnection,
        agreement: str,
        node: str,
        *,
        sensor_ids: Sequence[str] = (),
    ) -> None:
        self.connection = connection
        self.agreement = agreement
        self.node = node
        self.inbox = node_inbox_topic(agreement, node)
        self.updates = node_update_topic(agreement, node)
        self.window_requests = window_request_topic(agreement, node)
        self.sensor_filters = tuple(sensor_topic(s) for s in sensor_ids) or (ALL_SENSORS,)
        for topic_filter in self.sensor_filters:
            validate_topic_filter(topic_filter)
        self.sent: collections.Counter[str] = collections.Counter()
        """Protocol messages published, by kind (one per recipient)."""
        self.bytes_sent = 0

    async def subscribe(self) -> None:
        """Subscribe to the agreement's sensor topics and to this node's inbox."""
        for topic_filter in self.sensor_filters:
            await self.connection.subscribe(topic_filter, qos=1)
        await self.connection.subscribe(self.inbox, qos=1)
        await self.connection.subscribe(self.updates, qos=1)
        await self.connection.subscribe(self.window_requests, qos=1)

    def classify(self, message: MqttMessage) -> Inbound:
        """Whether ``message`` is a sensor message, a protocol message for us, or neither."""
        if message.topic == self.inbox:
            return Inbound.PROTOCOL
        if message.topic == self.updates:
            return Inbound.UPDATE_SIGNATURE
        if message.topic == self.window_requests:
            return Inbound.WINDOW_REQUEST
        levels = message.topic.split("/")
        if (
            len(levels) == 4
            and message.topic.startswith(DEVICE_PREFIX + "/")
            and levels[3] == SENSOR_SUFFIX
        ):
            return Inbound.SENSOR
        return Inbound.OTHER

    def outgoing(self, action: Send) -> list[Outgoing]:
        """The publishes of ``action``: its signed message to each recipient's inbox."""
        payload = action.message.encode()
        kind = action.message.kind.name
        return [
            Outgoing(node_inbox_topic(self.agreement, recipient), payload, kind)
            for recipient in action.recipients
        ]

    def update_signature_outgoing(self, recipients: Sequence[str], body: bytes) -> list[Outgoing]:
        """The publishes of this node's signature of a contract update, one per recipient."""
        return [
            Outgoing(node_update_topic(self.agreement, recipient), body, "UPDATE_SIGNATURE")
            for recipient in recipients
        ]

    async def publish(self, outgoing: Outgoing) -> None:
        """Publish one message (QoS 1) and count it.

        The client puts it on the wire before its first await, so publishes started
        in some order leave in that order even when their PUBACKs are awaited together.
        """
        self.sent[outgoing.kind] += 1
        self.bytes_sent += len(outgoing.payload)
        await self.connection.publish(outgoing.topic, outgoing.payload, qos=1)

    async def send(self, action: Send) -> None:
        """Publish the signed message of ``action`` to each recipient's inbox, one by one."""
        for outgoing in self.outgoing(action):
            await self.publish(outgoing)

    async def send_update_signature(self, recipients: Sequence[str], body: bytes) -> None:
        """Publish this node's signature of a contract update to each recipient."""
        for outgoing in self.update_signature_outgoing(recipients, body):
            await self.publish(outgoing)
