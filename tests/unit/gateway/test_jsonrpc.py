"""JSON-RPC 2.0 parsing as the specification's section 7 examples and random bytes demand."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.gateway import jsonrpc
from pervasive.gateway.jsonrpc import (
    INVALID_REQUEST,
    PARSE_ERROR,
    Call,
    Invalid,
    MalformedRequest,
    decode,
    encode,
    error_object,
    parse_request,
    read_request,
    single_call,
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


# -- the hot path: decode and single_call agree with json.loads and read_request -------

_ENVELOPES = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2.0]) | _JSON,
        "method": st.sampled_from(["eth_call", ""]) | _JSON,
        "id": _IDS | st.booleans() | st.floats(allow_nan=False) | _JSON,
        "params": st.lists(_JSON, max_size=2) | st.dictionaries(st.text(max_size=3), _JSON) | _JSON,
    },
)


@given(_ENVELOPES | _JSON)
def test_single_call_is_read_request_of_one_call_awaiting_an_answer(document: object) -> None:
    expected = None
    try:
        parsed = read_request(document, max_batch=5)
    except MalformedRequest:
        pass
    else:
        item = parsed.items[0]
        if not parsed.batch and isinstance(item, Call) and not item.notification:
            expected = (item.method, item.params)
    assert single_call(document) == expected


_SPACE = st.text(alphabet=" \t\n\r", max_size=2)
# decode reads with msgspec where it is installed, else with json's scanner: both ways
_DECODERS = ["json", *(["msgspec"] if importlib.util.find_spec("msgspec") else [])]
_NUMBERS = st.integers() | st.floats(allow_nan=False) | st.just(2**70) | st.just(-(2**65))


@contextmanager
def decoding_with(kind: str) -> Iterator[None]:
    saved = jsonrpc._fast_decode
    jsonrpc._fast_decode = jsonrpc._fast_decoder() if kind == "msgspec" else None
    try:
        yield
    finally:
        jsonrpc._fast_decode = saved


@pytest.mark.parametrize("kind", _DECODERS)
@given(
    _SPACE,
    _ENVELOPES | _JSON | st.lists(_NUMBERS, max_size=3),
    _SPACE,
    st.sampled_from(["utf-8", "utf-16", "utf-8-sig"]),
)
def test_decode_reads_what_json_loads_reads(
    kind: str, before: str, value: object, after: str, encoding: str
) -> None:
    body = (before + json.dumps(value) + after).encode(encoding)
    with decoding_with(kind):
        document = decode(body)
    assert document == json.loads(body)
    assert json.dumps(document) == json.dumps(json.loads(body))  # ints stay ints


@pytest.mark.parametrize("kind", _DECODERS)
@given(
    st.binary(max_size=200)
    | st.sampled_from([b"NaN", b"[1e999]", rb'"\ud800"', b'"\xed\xa0\x80"', b"[1,]", b"01"])
)
def test_decode_refuses_what_json_loads_refuses(kind: str, body: bytes) -> None:
    try:
        expected = json.loads(body)
    except (ValueError, RecursionError):
        with decoding_with(kind), pytest.raises(MalformedRequest) as refused:
            decode(body)
        assert refused.value.code == PARSE_ERROR
    else:
        with decoding_with(kind):
            assert json.dumps(decode(body)) == json.dumps(expected)
