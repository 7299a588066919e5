"""Every documented 400-class parse error, word for word, and topic routing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.config import ShadowSettings
from pervasive.shadow.protocol import (
    Operation,
    Rejected,
    ShadowKey,
    UpdateRequest,
    parse_client_token,
    parse_request_topic,
    parse_update,
)

DEEP_OK = {"one": {"two": {"three": {"four": {"five": {}}}}}}
TOO_DEEP = {"one": {"two": {"three": {"four": {"five": {"six": {}}}}}}}


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (b"{not json", 400, "Invalid JSON"),
        (b"[1, 2]", 400, "Invalid JSON"),
        (b'{"state": {"desired": {"x": NaN}}}', 400, "Invalid JSON"),
        (b'{"state": {"desired": {"x": 1, "x": 2}}}', 400, "Invalid JSON"),
        (b'{"state": {"desired": {"colors": [null, "RED"]}}}', 400, "Invalid JSON"),
        (b'{"clientToken": "t"}', 400, "Missing required node: state"),
        (b'{"state": 5}', 400, "State node must be an object"),
        (b'{"state": null}', 400, "State node must be an object"),
        (b'{"state": {"desired": [1]}}', 400, "Desired node must be an object"),
        (b'{"state": {"reported": "on"}}', 400, "Reported node must be an object"),
        (b'{"state": {}, "version": "3"}', 400, "Invalid version"),
        (b'{"state": {}, "version": -1}', 400, "Invalid version"),
        (b'{"state": {}, "version": true}', 400, "Invalid version"),
        (b'{"state": {}, "version": 1.5}', 400, "Invalid version"),
        (b'{"state": {}, "clientToken": 7}', 400, "Invalid clientToken"),
        (json.dumps({"state": {}, "clientToken": "x" * 65}).encode(), 400, "Invalid clientToken"),
        (b'{"state": {"delta": {"x": 1}}}', 400, "State contains an invalid node"),
        (
            json.dumps({"state": {"desired": TOO_DEEP}}).encode(),
            400,
            "JSON contains too many levels of nesting; maximum is 6",
        ),
        (
            b'{"state":{"desired":' + b'{"a":' * 5000 + b"1" + b"}" * 5002,
            400,
            "JSON contains too many levels of nesting; maximum is 6",
        ),
        (
            b'{"state": {"desired": {"x": "\xff"}}}',
            415,
            "Unsupported documented encoding; supported encoding is UTF-8",
        ),
        (b" " * (128 * 1024 + 1), 413, "The payload exceeds the maximum size allowed"),
    ],
)
def test_bad_updates_get_the_documented_error(payload: bytes, code: int, message: str) -> None:
    result = parse_update(payload)
    assert isinstance(result, Rejected)
    assert (result.error.code, result.error.message) == (code, message)


def test_token_is_kept_for_echo_once_it_is_valid() -> None:
    result = parse_update(b'{"clientToken": "abc", "version": "x", "state": {}}')
    assert isinstance(result, Rejected) and result.client_token == "abc"
    bad_token = parse_update(json.dumps({"clientToken": "é" * 33, "state": {}}).encode())
    assert isinstance(bad_token, Rejected) and bad_token.client_token is None


def test_depth_six_is_accepted_with_scalars_below_it() -> None:
    deepest = {"one": {"two": {"three": {"four": {"five": {"six": 1}, "list": [1, 2]}}}}}
    assert isinstance(
        parse_update(json.dumps({"state": {"reported": deepest}}).encode()), UpdateRequest
    )


def test_valid_update_keeps_only_desired_and_reported() -> None:
    payload = {
        "state": {"desired": DEEP_OK, "reported": None},
        "clientToken": "x" * 64,
        "version": 0,
        "other": {"ignored": True},
    }
    result = parse_update(json.dumps(payload).encode())
    assert result == UpdateRequest({"desired": DEEP_OK, "reported": None}, "x" * 64, 0)


def test_depth_limit_is_configurable() -> None:
    result = parse_update(b'{"state": {"desired": {"a": {"b": {}}}}}', ShadowSettings(max_depth=2))
    assert isinstance(result, Rejected)
    assert result.error.message == "JSON contains too many levels of nesting; maximum is 2"


def test_get_and_delete_payloads_only_carry_a_token() -> None:
    assert parse_client_token(b"") is None
    assert parse_client_token(b'{"clientToken": "abc"}') == "abc"
    assert parse_client_token(b"anything at all") is None
    rejected = parse_client_token(json.dumps({"clientToken": "x" * 65}).encode())
    assert isinstance(rejected, Rejected) and rejected.error.message == "Invalid clientToken"


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("$aws/things/lock-1/shadow/update", (ShadowKey("lock-1"), Operation.UPDATE)),
        ("$aws/things/lock-1/shadow/get", (ShadowKey("lock-1"), Operation.GET)),
        ("$aws/things/a:b_c/shadow/delete", (ShadowKey("a:b_c"), Operation.DELETE)),
        ("$aws/things/t/shadow/name/door/update", (ShadowKey("t", "door"), Operation.UPDATE)),
        ("$aws/things/t/shadow/update/accepted", None),
        ("$aws/things/t/shadow/name/door/update/delta", None),
        ("$aws/things/t/shadow/list", None),
        ("$aws/things/t/shadow/name/do.or/get", None),
        ("$aws/things/t h/shadow/get", None),
        ("$aws/things/" + "t" * 129 + "/shadow/get", None),
        ("$aws/things/t/shadow/name/" + "n" * 65 + "/get", None),
        ("things/t/shadow/get", None),
    ],
)
def test_request_topics(topic: str, expected: object) -> None:
    assert parse_request_topic(topic) == expected


@settings(deadline=None)
@given(
    st.from_regex(r"[a-zA-Z0-9:_-]{1,128}", fullmatch=True),
    st.none() | st.from_regex(r"[a-zA-Z0-9:_-]{1,64}", fullmatch=True),
    st.sampled_from(list(Operation)),
)
def test_topics_round_trip(thing: str, shadow: str | None, operation: Operation) -> None:
    key = ShadowKey(thing, shadow)
    assert parse_request_topic(key.topic(operation.value)) == (key, operation)
    assert parse_request_topic(key.topic(operation.value, "accepted")) is None


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_update_parser_never_raises(payload: bytes) -> None:
    assert isinstance(parse_update(payload), UpdateRequest | Rejected)
