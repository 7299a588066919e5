"""JSON-RPC 2.0 as the gateway reads and answers it: requests, batches, error objects.

Sans I/O: bytes in, typed calls out, answers back to bytes. Follows the specification
(https://www.jsonrpc.org/specification, sections 4-6): a request is one call or a
non-empty batch of calls; a call without ``id`` is a notification and gets no answer;
a batch item that is no valid call gets its own ``-32600`` answer while the others are
served; unparsable JSON is ``-32700`` and an empty batch ``-32600``, each answered by a
single error object with ``id: null``. Above the specification, a batch holds at most
``max_batch`` calls (``-32600`` otherwise), so one request cannot hide thousands.

:func:`parse_request` is :func:`decode` (bytes to a JSON document) then
:func:`read_request` (the document to calls); :func:`single_call` is the gateway's
hot path: the method and params of a document that is one well-formed call awaiting
an answer, or ``None`` for anything else (which :func:`read_request` then explains).

The gateway's own error codes sit in the server range the specification leaves to
implementations, the way EIP-1474 uses it for Ethereum nodes:

====== =================== ===========================================================
code   name                meaning
====== =================== ===========================================================
-32700 PARSE_ERROR         the body is not JSON
-32600 INVALID_REQUEST     not a JSON-RPC 2.0 call, an empty or too large batch
-32603 INTERNAL_ERROR      the node's answer could not be read
-32000 NODE_UNAVAILABLE    the node behind the gateway cannot be reached
-32001 UNAUTHORISED        no certificate, revoked or expired, or no role at the gateway
-32003 NOT_ALLOWED         the identity's role may not make this call (method or params)
-32005 RATE_LIMITED        the identity sent more calls than its rate allows
====== =================== ===========================================================

Example::

    request = parse_request(b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}', max_batch=100)
    request.items[0].method                      # 'eth_chainId'
    encode(error_object(1, NOT_ALLOWED, "eth_sendTransaction is not allowed"))
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from pervasive.errors import InvalidInput

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_REQUEST",
    "MAX_DEPTH",
    "NODE_UNAVAILABLE",
    "NOT_ALLOWED",
    "PARSE_ERROR",
    "RATE_LIMITED",
    "UNAUTHORISED",
    "Call",
    "Invalid",
    "JsonId",
    "MalformedRequest",
    "ParsedRequest",
    "decode",
    "encode",
    "error_object",
    "parse_request",
    "read_request",
    "single_call",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
NODE_UNAVAILABLE = -32000
UNAUTHORISED = -32001
NOT_ALLOWED = -32003
RATE_LIMITED = -32005

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects read; Ethereum's calls need fewer than ten."""
_BRACKETS = re.compile(rb"[\[\]{}]")
_JSON_SPACE = " \t\n\r"


def _fast_decoder() -> Callable[[bytes], Any] | None:
    """msgspec's JSON decoder, where installed.

    It reads a call in a third of the time of json's scanner, into the same values
    (integers of any size included), and refuses what json refuses; what it refuses
    besides (a BOM, UTF-16, NaN, lone surrogates) goes to json.loads, which decides.
    """
    try:
        module = importlib.import_module("msgspec.json")
    except ImportError:
        return None
    return cast("Callable[[bytes], Any]", module.Decoder().decode)


_fast_decode = _fast_decoder()
# without msgspec: raw_decode of a str skips json.loads' encoding detection and its
# two regular expression passes; what it does not take as it is goes to json.loads
_raw_decode = json.JSONDecoder().raw_decode

JsonId = str | int | float | None
"""What the specification allows as an ``id``: a string, a number or null."""


class MalformedRequest(InvalidInput):
    """A request body the gateway cannot answer call by call (not JSON, an empty batch...).

    ``code`` is the JSON-RPC error code to answer with, ``reason`` the counter's key and
    ``call_id`` the id to answer (``None`` unless a single call had a readable one).
    """

    def __init__(self, code: int, reason: str, message: str, call_id: JsonId = None) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.call_id = call_id
        super().__init__(message)


class Call(NamedTuple):
    """One well-formed call of a request (a named tuple: cheap to build per request)."""

    method: str
    params: Any
    """A list or an object (an empty list when the call had none)."""
    id: JsonId
    notification: bool
    """No ``id`` member: the caller expects no answer."""


@dataclass(frozen=True, slots=True)
class Invalid:
    """A batch item (or the single request) that is no valid JSON-RPC 2.0 call."""

    id: JsonId
    """The item's ``id`` when it had a valid one, else ``None``."""
    message: str


class ParsedRequest(NamedTuple):
    """A request body: its items in order and whether they came as a batch."""

    items: tuple[Call | Invalid, ...]
    batch: bool

    @property
    def calls(self) -> int:
        """How many items there are (each one counts against the rate limit)."""
        return len(self.items)


_ID_TYPES = (str, int, float)
_PARAMS_TYPES = (list, dict)
_ABSENT = object()


def _valid_id(value: object) -> bool:
    # bool is an int in Python but not a JSON number
    return value is None or (isinstance(value, _ID_TYPES) and not isinstance(value, bool))


def _item(value: object) -> Call | Invalid:
    if type(value) is not dict:
        return Invalid(None, "a call is a JSON object with jsonrpc, method, params and id")
    call_id = value.get("id", _ABSENT)
    notification = call_id is _ABSENT
    if notification:
        call_id = None
    elif not _valid_id(call_id):
        return Invalid(None, "a call's id is a string, a number or null")
    if value.get("jsonrpc") != "2.0":
        return Invalid(call_id, 'a call says "jsonrpc": "2.0"')
    method = value.get("method")
    if type(method) is not str or not method:
        return Invalid(call_id, "a call names its method as a non-empty string")
    params = value.get("params", ())
    if params == ():
        params = []
    elif not isinstance(params, _PARAMS_TYPES):
        return Invalid(call_id, f"the params of {method} are an array or an object")
    return Call(method, params, call_id, notification)


def parse_request(body: bytes, *, max_batch: int) -> ParsedRequest:
    """Read a request body into its calls.

    Raises :class:`MalformedRequest` for a body answered by one error: not JSON (-32700),
    an empty batch or one of more than ``max_batch`` calls, or a single value that is no
    call (-32600).

    Example: ``parse_request(b'[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}]',
    max_batch=100).batch  # True``.
    """
    return read_request(decode(body), max_batch=max_batch)


def decode(body: bytes) -> Any:
    """The JSON document of a request body.

    Raises :class:`MalformedRequest` (-32700) for a body that is not JSON or nests
    deeper than :data:`MAX_DEPTH`.

    Example: ``decode(b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}')["method"]``.
    """
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _too_deep(body):
        raise MalformedRequest(
            PARSE_ERROR, "parse_error", f"the request nests deeper than {MAX_DEPTH} levels"
        )
    try:
        if _fast_decode is not None:
            return _fast_decode(body)
        text = body.decode()
        document, end = _raw_decode(text)
        if end == len(text) or not text[end:].strip(_JSON_SPACE):
            return document
    except (ValueError, RecursionError):
        pass  # json.loads says what is wrong, or reads what the fast way did not
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedRequest(
            PARSE_ERROR, "parse_error", f"the request body is not JSON ({_short(exc)})"
        ) from exc


def single_call(document: Any) -> tuple[str, Any] | None:
    """``(method, params)`` of a document that is one call awaiting an answer, else ``None``.

    The rules of :func:`read_request` for a single call, without building it: an object
    with ``"jsonrpc": "2.0"``, an ``id`` (string, number or null), a non-empty method
    name and params that are an array or an object (absent: ``[]``). ``None`` for a
    batch, a notification or anything invalid: :func:`read_request` says what it is.

    Example: ``single_call({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})``
    is ``("eth_chainId", [])``.
    """
    if type(document) is not dict:
        return None
    call_id = document.get("id", _ABSENT)
    kind = type(call_id)
    if not (kind is int or kind is str or call_id is None or kind is float):
        return None  # absent (a notification), a bool, an array...
    method = document.get("method")
    if type(method) is not str or not method or document.get("jsonrpc") != "2.0":
        return None
    params = document.get("params", _ABSENT)
    if params is _ABSENT:
        return method, []
    kind = type(params)
    if kind is list or kind is dict:
        return method, params
    return None


def read_request(document: Any, *, max_batch: int) -> ParsedRequest:
    """The calls of a decoded request document (see :func:`parse_request`).

    Example: ``read_request(decode(body), max_batch=100).items``.
    """
    if isinstance(document, list):
        if not document:
            raise MalformedRequest(
                INVALID_REQUEST, "empty_batch", "an empty batch is no request: send calls"
            )
        if len(document) > max_batch:
            raise MalformedRequest(
                INVALID_REQUEST,
                "batch_too_large",
                f"a batch holds at most {max_batch} calls, this one {len(document)}: split it",
            )
        return ParsedRequest(tuple(_item(value) for value in document), batch=True)
    item = _item(document)
    if isinstance(item, Invalid):
        raise MalformedRequest(INVALID_REQUEST, "invalid_request", item.message, item.id)
    return ParsedRequest((item,), batch=False)


def _too_deep(body: bytes) -> bool:
    """Whether brackets nest deeper than :data:`MAX_DEPTH` (strings not told apart).

    The C JSON decoder recurses per level; a body of a hundred thousand ``[`` must not
    reach it (it can exhaust the C stack before Python's recursion limit stops it).
    """
    depth = 0
    for bracket in _BRACKETS.finditer(body):
        if bracket[0] in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth = max(depth - 1, 0)
    return False


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def error_object(call_id: JsonId, code: int, message: str) -> dict[str, Any]:
    """The answer to a call that failed: ``{"jsonrpc": "2.0", "id": ..., "error": ...}``.

    Example: ``error_object(7, RATE_LIMITED, "slow down: 200 calls/s")``.
    """
    return {"jsonrpc": "2.0", "id": call_id, "error": {"code": code, "message": message}}


def encode(answer: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    """One answer or a batch of answers as compact JSON bytes.

    Example: ``encode([error_object(None, PARSE_ERROR, "not JSON")])``.
    """
    return json.dumps(answer, separators=(",", ":")).encode()
