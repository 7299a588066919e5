"""MQTT for the platform: topic names, access policy, brokers, the durable client.

See README.md in this folder for the control flow. Knows nothing of the chain.
"""

from pervasive.messaging.access import (
    SERVICE_ROLES,
    Access,
    Grant,
    grants_for,
    may_publish,
    may_receive,
    may_subscribe,
)
from pervasive.messaging.admission import admission_watch, admitted_file, await_admission
from pervasive.messaging.broker import Broker, create_broker
from pervasive.messaging.client import ClientOptions, MqttClient
from pervasive.messaging.dedupe import Deduplicator
from pervasive.messaging.embedded import EmbeddedBroker
from pervasive.messaging.errors import BrokerUnavailable, ConnectionRefused, TopicDenied
from pervasive.messaging.mosquitto import MosquittoBroker, find_mosquitto
from pervasive.messaging.outbox import Outbox, OutboxEntry
from pervasive.messaging.port import AcknowledgingConnection, Delivery, MqttConnection, MqttMessage
from pervasive.messaging.tls import BrokerCredentials, ClientCredentials
from pervasive.messaging.topics import (
    ShadowTopic,
    device_topic,
    device_topic_filter,
    parse_device_topic,
    parse_shadow_topic,
    shadow_topic,
    shadow_topic_filter,
    validate_device_id,
    validate_topic,
    validate_topic_filter,
)

__all__ = [
    "SERVICE_ROLES",
    "Access",
    "AcknowledgingConnection",
    "Broker",
    "BrokerCredentials",
    "BrokerUnavailable",
    "ClientCredentials",
    "ClientOptions",
    "ConnectionRefused",
    "Deduplicator",
    "Delivery",
    "EmbeddedBroker",
    "Grant",
    "MosquittoBroker",
    "MqttClient",
    "MqttConnection",
    "MqttMessage",
    "Outbox",
    "OutboxEntry",
    "ShadowTopic",
    "TopicDenied",
    "admission_watch",
    "admitted_file",
    "await_admission",
    "create_broker",
    "device_topic",
    "device_topic_filter",
    "find_mosquitto",
    "grants_for",
    "may_publish",
    "may_receive",
    "may_subscribe",
    "parse_device_topic",
    "parse_shadow_topic",
    "shadow_topic",
    "shadow_topic_filter",
    "validate_device_id",
    "validate_topic",
    "validate_topic_filter",
]
