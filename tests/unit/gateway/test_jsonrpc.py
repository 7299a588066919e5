"""JSON-RPC 2.0 parsing as the specification's section 7 examples and random bytes demand."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.gateway.jsonrpc import (
    INVALID_REQUEST,
    PARSE_ERROR,
    Call,
    Invalid,
    MalformedRequest,
    encode,
    error_object,
    parse_request,
)


def test_a_single_call_keeps_method_params_and_id() -> None:
    body = b'{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}'
    parsed = parse_request(body, max_batch=10)
    assert parsed.batch is False
    assert parsed.items == (Call("subtract", [42, 23], 1, notification=False),)


def test_named_params_string_ids_and_null_ids_are_calls() -> None:
    body = (
        b'[{"jsonrpc":"2.0","method":"m","params":{"a":1},"id":"x"},'
        b'{"jsonrpc":"2.0","method":"n","id":null}]'
    )
    items = parse_request(body, max_batch=10).items
    assert items == (Call("m", {"a": 1}, "x", False), Call("n", [], None, False))


def test_a_call_without_id_is_a_notification() -> None:
    parsed = parse_request(b'{"jsonrpc":"2.0","method":"update","params":[1,2]}', max_batch=10)
    assert parsed.items[0].notification is True  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (
            b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
            PARSE_ERROR,
            "parse_error",
        ),
        (b"\xff\xfe{}", PARSE_ERROR, "parse_error"),
        (b"[" * 100_000, PARSE_ERROR, "parse_error"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, PARSE_ERROR, "parse_error"),
        (b'{"jsonrpc": "2.0", "method": 1, "params": "bar"}', INVALID_REQUEST, "invalid_request"),
        (b"[]", INVALID_REQUEST, "empty_batch"),
        (b"1", INVALID_REQUEST, "invalid_request"),
        (b'{"method": "eth_chainId", "id": 1}', INVALID_REQUEST, "invalid_request"),
    ],
)
def test_bodies_answered_by_one_error(body: bytes, code: int, reason: str) -> None:
    with pytest.raises(MalformedRequest) as refused:
        parse_request(body, max_batch=10)
    assert (refused.value.code, refused.value.reason) == (code, reason)
    assert "\n" not in refused.value.message


def test_a_single_invalid_call_keeps_its_readable_id() -> None:
    with pytest.raises(MalformedRequest) as refused:
        parse_request(b'{"jsonrpc":"1.0","method":"eth_chainId","id":9}', max_batch=10)
    assert refused.value.call_id == 9


def test_invalid_batch_items_are_answered_one_by_one() -> None:
    items = parse_request(b"[1, 2, 3]", max_batch=10).items
    assert [type(item) for item in items] == [Invalid, Invalid, Invalid]
    assert all(item.id is None for item in items)


def test_a_boolean_id_is_not_a_json_rpc_id() -> None:
    (item,) = parse_request(b'[{"jsonrpc":"2.0","method":"m","id":true}]', max_batch=10).items
    assert isinstance(item, Invalid)


def test_a_batch_larger_than_the_limit_is_refused_whole() -> None:
    call = {"jsonrpc": "2.0", "method": "eth_chainId", "id": 1}
    with pytest.raises(MalformedRequest) as refused:
        parse_request(json.dumps([call] * 11).encode(), max_batch=10)
    assert refused.value.reason == "batch_too_large"
    assert len(parse_request(json.dumps([call] * 10).encode(), max_batch=10).items) == 10


def test_error_objects_encode_compactly() -> None:
    answer = encode(error_object(7, -32005, "slow down"))
    assert answer == b'{"jsonrpc":"2.0","id":7,"error":{"code":-32005,"message":"slow down"}}'


@given(st.binary(max_size=300))
def test_random_bytes_parse_or_are_refused_as_json_rpc(body: bytes) -> None:
    try:
        parsed = parse_request(body, max_batch=50)
    except MalformedRequest as refused:
        assert refused.code in (PARSE_ERROR, INVALID_REQUEST)
    else:
        assert all(isinstance(item, Call | Invalid) for item in parsed.items)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
_IDS = st.none() | st.integers() | st.text(max_size=10)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"jsonrpc": st.just("2.0"), "method": st.text(min_size=1, max_size=20)},
            optional={"id": _IDS, "params": st.lists(_JSON, max_size=3)},
        ),
        min_size=1,
        max_size=20,
    )
)
def test_valid_batches_come_back_call_for_call(calls: list[dict[str, object]]) -> None:
    parsed = parse_request(json.dumps(calls).encode(), max_batch=20)
    assert parsed.batch
    for sent, item in zip(calls, parsed.items, strict=True):
        assert isinstance(item, Call)
        assert item.method == sent["method"]
        assert item.notification == ("id" not in sent)
        assert item.id == sent.get("id")
        assert item.params == sent.get("params", [])


@given(_JSON)
def test_any_json_value_is_a_call_an_invalid_item_or_one_error(value: object) -> None:
    try:
        parsed = parse_request(json.dumps(value).encode(), max_batch=5)
    except MalformedRequest as refused:
        assert refused.code == INVALID_REQUEST
    else:
        assert 1 <= len(parsed.items) <= 5
