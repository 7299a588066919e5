"""Topic layout and validation; the access policy checked against paho's matcher."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from pervasive.errors import InvalidInput
from pervasive.messaging.access import (
    filter_covers,
    grants_for,
    may_publish,
    may_receive,
    may_subscribe,
    render_mosquitto_acl,
)
from pervasive.messaging.topics import (
    SHADOW_OPERATIONS,
    ShadowTopic,
    device_topic,
    parse_device_topic,
    parse_shadow_topic,
    service_role,
    shadow_topic,
    validate_device_id,
    validate_topic,
    validate_topic_filter,
)

device_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}", fullmatch=True)
levels = st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True)
suffixes = st.lists(levels, min_size=1, max_size=4).map("/".join)
shadow_names = st.from_regex(r"[A-Za-z0-9:_-]{1,12}", fullmatch=True)


@settings(max_examples=40)
@given(device_ids, suffixes)
def test_device_topics_round_trip(device_id: str, suffix: str) -> None:
    topic = device_topic(device_id, suffix)
    assert topic == f"pervasive/devices/{device_id}/{suffix}"
    assert parse_device_topic(topic) == (device_id, suffix)


@settings(max_examples=40)
@given(
    device_ids,
    st.sampled_from(SHADOW_OPERATIONS),
    st.sampled_from([None, "accepted", "rejected"]),
    st.one_of(st.none(), shadow_names),
)
def test_shadow_topics_round_trip(
    thing: str, operation: str, result: str | None, name: str | None
) -> None:
    topic = shadow_topic(thing, operation, result, shadow_name=name)
    assert parse_shadow_topic(topic) == ShadowTopic(thing, operation, result, name)


def test_shadow_topics_follow_aws_naming() -> None:
    assert shadow_topic("lock-7", "update", "delta") == "$aws/things/lock-7/shadow/update/delta"
    assert (
        shadow_topic("lock-7", "get", "accepted", shadow_name="door")
        == "$aws/things/lock-7/shadow/name/door/get/accepted"
    )
    with pytest.raises(InvalidInput, match="only for the 'update'"):
        shadow_topic("lock-7", "get", "delta")
    for bad in [
        "$aws/things/lock-7/shadow",
        "$aws/things/lock-7/shadow/patch",
        "$aws/things/lock-7/shadow/update/delta/extra",
        "$aws/things/lock-7/shadow/name/door",
        "$aws/things/a+b/shadow/get",
        "pervasive/devices/lock-7/x",
    ]:
        with pytest.raises(InvalidInput):
            parse_shadow_topic(bad)


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a+/b", "a\x00b"])
def test_bad_filters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        validate_topic_filter(bad)


@pytest.mark.parametrize("bad", ["", "a/+", "a/#", "x\x00", "a/\ud800"])
def test_bad_topics_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        validate_topic(bad)


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "a+", "a#", "$x", "a b", "é", "x" * 129])
def test_bad_device_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        validate_device_id(bad)


def test_service_roles() -> None:
    assert service_role("svc:shadow") == "shadow"
    assert service_role("svc:node.alpha") == "node"
    with pytest.raises(InvalidInput):
        service_role("svc:")


filter_levels = st.one_of(st.sampled_from(["+", "a", "b", "$aws"]), levels)
patterns = st.tuples(st.lists(filter_levels, min_size=1, max_size=4), st.booleans()).map(
    lambda parts: "/".join(parts[0] + (["#"] if parts[1] else []))
)
topics = st.lists(st.one_of(st.sampled_from(["a", "b", "$aws"]), levels), min_size=1, max_size=5)


@settings(max_examples=40)
@given(patterns, topics)
def test_filter_covers_agrees_with_paho_on_concrete_topics(pattern: str, parts: list[str]) -> None:
    topic = "/".join(parts)
    assert filter_covers(pattern, topic) == topic_matches_sub(pattern, topic)


@settings(max_examples=40)
@given(patterns, patterns, topics)
def test_a_covered_filter_only_matches_covered_topics(
    pattern: str, wanted: str, parts: list[str]
) -> None:
    topic = "/".join(parts)
    if filter_covers(pattern, wanted) and topic_matches_sub(wanted, topic):
        assert topic_matches_sub(pattern, topic)


def test_devices_use_only_their_own_topics() -> None:
    assert may_publish("lock-7", "pervasive/devices/lock-7/telemetry")
    assert may_publish("lock-7", "$aws/things/lock-7/shadow/update")
    assert may_subscribe("lock-7", "$aws/things/lock-7/shadow/#")
    assert may_subscribe("lock-7", "pervasive/devices/lock-7/+")
    assert not may_publish("lock-7", "pervasive/devices/lock-8/telemetry")
    assert not may_subscribe("lock-7", "pervasive/devices/+/telemetry")
    assert not may_subscribe("lock-7", "#")
    assert not may_receive("lock-7", "$aws/things/lock-8/shadow/update/delta")
    assert not may_publish("bad/id", "pervasive/devices/bad/id/x")


def test_services_get_their_role() -> None:
    assert may_publish("svc:shadow", "$aws/things/lock-7/shadow/update/delta")
    assert may_subscribe("svc:shadow", "$aws/things/+/shadow/#")
    assert not may_subscribe("svc:shadow", "pervasive/devices/+/#")
    assert may_subscribe("svc:node.n1", "pervasive/devices/+/readings")
    assert not may_publish("svc:node.n1", "pervasive/devices/lock-7/readings")
    assert may_subscribe("svc:monitor", "pervasive/#")
    assert not may_publish("svc:monitor", "pervasive/devices/lock-7/x")
    window_request = "pervasive/nodes/0xagreement/0xnode/windows"
    assert may_publish("svc:auditor.insurer", window_request)
    assert may_subscribe("svc:auditor.insurer", "pervasive/nodes/+/+/windows/reply")
    assert not may_subscribe("svc:auditor.insurer", "pervasive/nodes/#")  # no node traffic
    assert not may_publish("svc:auditor.insurer", "pervasive/nodes/0xagreement/0xnode")
    assert grants_for("svc:unknown") == ()
    assert not may_subscribe("svc:unknown", "pervasive/#")


def test_mosquitto_acl_grants_devices_by_pattern_and_each_service_once() -> None:
    text = render_mosquitto_acl(["lock-7", "svc:shadow", "lock-7", "bad/id"], denied=["lock-9"])
    blocks = [b.strip().splitlines() for b in text.split("\n\n") if b.strip()[:1] not in "#"]
    assert blocks == [
        [
            "pattern readwrite pervasive/devices/%u/#",
            "pattern readwrite $aws/things/%u/shadow/#",
        ],
        ["user svc:shadow", "topic readwrite $aws/things/+/shadow/#"],
        ["user lock-9", "topic deny #", "topic deny $aws/#"],
    ]
