"""The in-memory neighbour routes like an MQTT broker (MQTT 3.1.1 section 4.7 examples)."""

import pytest
from shadow_fakes import InMemoryBroker, settle, topic_matches

from pervasive.messaging.port import MqttConnection


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/#", "sport", True),
        ("#", "sport/tennis", True),
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("#", "$SYS/broker", False),
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/#", "$SYS/broker", True),
        ("$aws/things/+/shadow/update", "$aws/things/lock-1/shadow/update", True),
        ("$aws/things/+/shadow/update", "$aws/things/lock-1/shadow/update/accepted", False),
        ("$aws/things/+/shadow/name/+/get", "$aws/things/t/shadow/name/door/get", True),
        ("$aws/things/+/shadow/#", "$aws/things/t/shadow/name/door/get", True),
    ],
)
def test_topic_filters_follow_the_mqtt_spec(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


async def test_only_matching_connected_sessions_receive() -> None:
    broker = InMemoryBroker()
    alice, bob = broker.connect("alice"), broker.connect("bob")
    port: MqttConnection = alice  # the fake satisfies the port
    await port.subscribe("a/+")
    await bob.subscribe("b/#")
    await bob.publish("a/x", b"1")
    await bob.publish("b", b"2")
    bob.disconnect()
    await alice.publish("b/y", b"lost")
    alice.disconnect()
    received = [m.payload async for m in alice.messages()]
    assert received == [b"1"]
    assert [m.payload async for m in bob.messages()] == [b"2"]
    await settle()
