"""The topics of an intermediate node: sensor traces in, committee inboxes, window requests.

Everything travels over MQTT (:class:`~pervasive.messaging.port.MqttConnection`):

- a sensor publishes ``m_{s,q}`` (wire form) on ``pervasive/devices/<sensor id>/diversity``,
  under its device certificate; every node of the agreement subscribes, so the
  message is multicast to all of them (paper 002, section 2);
- node ``i`` of agreement ``a`` reads its committee inbox ``pervasive/nodes/<a>/<i>``
  (lower-case addresses; :class:`~pervasive.committee.MemberTransport`) under its own
  service identity ``svc:node.<id>``, distinct from any device's; every protocol phase,
  the update signatures included, arrives there inside a signed envelope;
- it takes window requests (off-chain proof of storage) on ``<inbox>/windows`` and
  answers on the requester's ``<inbox of requester>/windows/reply``.

The transport does not trust the broker: every envelope is checked by an
:class:`~pervasive.committee.EnvelopeReceiver`, every sensor message by the
:class:`~pervasive.sensing.SensorVerifier`.

Example::

    topics = NodeTopics(spec.address, key.address, sensor_ids=("lock-1",))
    kind = topics.classify(message)
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from pervasive.committee import member_inbox_topic
from pervasive.messaging.port import MqttConnection, MqttMessage
from pervasive.messaging.topics import DEVICE_PREFIX, device_topic, validate_topic_filter

__all__ = [
    "NODES_PREFIX",
    "SENSOR_SUFFIX",
    "Inbound",
    "NodeTopics",
    "node_inbox_topic",
    "sensor_topic",
    "window_reply_topic",
    "window_request_topic",
]

SENSOR_SUFFIX = "diversity"
"""The device-topic suffix on which a sensor publishes its signed messages."""
NODES_PREFIX = "pervasive/nodes"
"""Topics between intermediate nodes (the ``svc:node`` role may read and write them)."""
_ALL_SENSORS = f"{DEVICE_PREFIX}/+/{SENSOR_SUFFIX}"


class Inbound(enum.Enum):
    """What an inbound MQTT message is for the node."""

    SENSOR = "sensor"
    PROTOCOL = "protocol"
    WINDOW_REQUEST = "window-request"
    OTHER = "other"


def sensor_topic(sensor_id: str) -> str:
    """Where sensor ``sensor_id`` publishes ``m_{s,q}``.

    Example: ``sensor_topic("lock-1") == "pervasive/devices/lock-1/diversity"``.
    """
    return device_topic(sensor_id, SENSOR_SUFFIX)


def node_inbox_topic(agreement: str, node: str) -> str:
    """The committee inbox of ``node`` in ``agreement``.

    Example: ``node_inbox_topic("0xAb..", "0xCd..") == "pervasive/nodes/0xab../0xcd.."``.
    """
    return member_inbox_topic(NODES_PREFIX, agreement, node)


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


class NodeTopics:
    """The node's subscriptions besides its committee inbox, and inbound classification.

    ``sensor_ids`` are the agreement sensors' device ids (their registry ids); when
    empty the node listens to every sensor topic and the verifier drops the others.
    """

    def __init__(self, agreement: str, node: str, *, sensor_ids: Sequence[str] = ()) -> None:
        self.inbox = node_inbox_topic(agreement, node)
        self.window_requests = window_request_topic(agreement, node)
        self.sensor_filters = tuple(sensor_topic(s) for s in sensor_ids) or (_ALL_SENSORS,)
        for topic_filter in self.sensor_filters:
            validate_topic_filter(topic_filter)

    async def subscribe(self, connection: MqttConnection) -> None:
        """Subscribe to the agreement's sensor topics and to this node's window requests."""
        for topic_filter in self.sensor_filters:
            await connection.subscribe(topic_filter, qos=1)
        await connection.subscribe(self.window_requests, qos=1)

    def classify(self, message: MqttMessage) -> Inbound:
        """Whether ``message`` is a sensor message, a protocol message for us, or neither."""
        if message.topic == self.inbox:
            return Inbound.PROTOCOL
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
