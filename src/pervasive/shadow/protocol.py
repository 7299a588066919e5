"""Shadow topics, the error catalogue and request parsing (AWS IoT Device Shadow rules).

Topics are ``$aws/things/<thing>/shadow/<op>`` (classic) and
``$aws/things/<thing>/shadow/name/<shadow>/<op>`` (named); replies go to
``<op>/accepted``, ``<op>/rejected``, ``update/delta`` and ``update/documents``.
Error codes and messages are those of the AWS *Device Shadow error messages* page,
word for word, so that AWS device SDKs parse them unchanged.

Example::

    parse_request_topic("$aws/things/lock-1/shadow/name/door/update")
    # (ShadowKey(thing='lock-1', shadow='door'), Operation.UPDATE)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pervasive.config import ShadowSettings
from pervasive.errors import InvalidInput
from pervasive.shadow.document import JsonObject, JsonValue, contains_null_in_array, nesting_depth

__all__ = [
    "FORBIDDEN",
    "INTERNAL_FAILURE",
    "PAYLOAD_TOO_LARGE",
    "THING_NOT_FOUND",
    "TOO_MANY_IN_FLIGHT",
    "TOO_MANY_REQUESTS",
    "UNAUTHORIZED",
    "VERSION_CONFLICT",
    "Operation",
    "Rejected",
    "ShadowError",
    "ShadowKey",
    "UpdateRequest",
    "encode",
    "error_body",
    "parse_client_token",
    "parse_request_topic",
    "parse_update",
    "shadow_not_found",
]

_NAME = re.compile(r"[a-zA-Z0-9:_-]+")
_SECTIONS = ("desired", "reported")


class Operation(StrEnum):
    """A request a client can publish to a shadow."""

    GET = "get"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class ShadowKey:
    """Which shadow: the classic one of ``thing`` (``shadow=None``) or a named one."""

    thing: str
    shadow: str | None = None

    @property
    def prefix(self) -> str:
        """The topic prefix, e.g. ``$aws/things/lock-1/shadow/name/door``."""
        base = f"$aws/things/{self.thing}/shadow"
        return base if self.shadow is None else f"{base}/name/{self.shadow}"

    def topic(self, *parts: str) -> str:
        """A topic under this shadow: ``key.topic("update", "delta")``."""
        return "/".join((self.prefix, *parts))


@dataclass(frozen=True)
class ShadowError:
    """An error reply: HTTP-like ``code`` and the exact AWS ``message``."""

    code: int
    message: str


_INVALID_JSON = ShadowError(400, "Invalid JSON")
_MISSING_STATE = ShadowError(400, "Missing required node: state")
_STATE_NOT_OBJECT = ShadowError(400, "State node must be an object")
_DESIRED_NOT_OBJECT = ShadowError(400, "Desired node must be an object")
_REPORTED_NOT_OBJECT = ShadowError(400, "Reported node must be an object")
_INVALID_VERSION = ShadowError(400, "Invalid version")
_INVALID_CLIENT_TOKEN = ShadowError(400, "Invalid clientToken")
_INVALID_STATE_NODE = ShadowError(400, "State contains an invalid node")
UNAUTHORIZED = ShadowError(401, "Unauthorized")
FORBIDDEN = ShadowError(403, "Forbidden")
THING_NOT_FOUND = ShadowError(404, "Thing not found")
VERSION_CONFLICT = ShadowError(409, "Version conflict")
PAYLOAD_TOO_LARGE = ShadowError(413, "The payload exceeds the maximum size allowed")
_UNSUPPORTED_ENCODING = ShadowError(
    415, "Unsupported documented encoding; supported encoding is UTF-8"
)
TOO_MANY_REQUESTS = ShadowError(429, "Too many requests")
TOO_MANY_IN_FLIGHT = ShadowError(
    429, "Too many requests in flight; wait for the answers before sending more"
)
INTERNAL_FAILURE = ShadowError(500, "Internal service failure")


def _too_deep(limit: int) -> ShadowError:
    """400: a section nests deeper than ``limit`` levels."""
    return ShadowError(400, f"JSON contains too many levels of nesting; maximum is {limit}")


def shadow_not_found(key: ShadowKey) -> ShadowError:
    """404 for a shadow that does not exist (the classic one is named after its thing)."""
    return ShadowError(404, f"No shadow exists with name: '{key.shadow or key.thing}'")


@dataclass(frozen=True)
class Rejected:
    """A request that failed parsing; ``client_token`` is echoed when it was valid."""

    error: ShadowError
    client_token: str | None = None


@dataclass(frozen=True)
class UpdateRequest:
    """A valid ``/update`` request; ``sections`` holds only the sections it names.

    A section mapped to ``None`` (``"desired": null``) removes that whole section.
    """

    sections: dict[str, JsonObject | None]
    client_token: str | None = None
    version: int | None = None


def parse_request_topic(
    topic: str, limits: ShadowSettings | None = None
) -> tuple[ShadowKey, Operation] | None:
    """The shadow and operation of a request topic, or ``None`` for anything else.

    Reply topics (``.../accepted``) and malformed names give ``None``.

    Example: ``parse_request_topic("$aws/things/t/shadow/get")`` → ``(ShadowKey("t"), GET)``.
    """
    limits = limits or ShadowSettings()
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "$aws" or parts[1] != "things" or parts[3] != "shadow":
        return None
    thing, rest = parts[2], parts[4:]
    shadow: str | None = None
    if rest[0] == "name" and len(rest) == 3:
        shadow, rest = rest[1], rest[2:]
        if not _valid_name(shadow, limits.max_shadow_name_bytes):
            return None
    if len(rest) != 1 or not _valid_name(thing, limits.max_thing_name_bytes):
        return None
    try:
        return ShadowKey(thing, shadow), Operation(rest[0])
    except ValueError:
        return None


def _valid_name(name: str, max_bytes: int) -> bool:
    return bool(_NAME.fullmatch(name)) and len(name.encode()) <= max_bytes


def _reject_constant(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return result


def _decode(payload: bytes, limits: ShadowSettings) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys. Raises the shadow error."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise _Failure(_UNSUPPORTED_ENCODING) from None
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise _Failure(_too_deep(limits.max_depth)) from None
    except ValueError:
        raise _Failure(_INVALID_JSON) from None


class _Failure(InvalidInput):
    """Private control flow of the parsers; never escapes this module."""

    def __init__(self, error: ShadowError) -> None:
        super().__init__(error.message)
        self.error = error


def _client_token(body: dict[str, Any], limits: ShadowSettings) -> str | None:
    token = body.get("clientToken")
    if token is None and "clientToken" not in body:
        return None
    if not isinstance(token, str) or len(token.encode()) > limits.max_client_token_bytes:
        raise _Failure(_INVALID_CLIENT_TOKEN)
    return token


def parse_update(payload: bytes, limits: ShadowSettings | None = None) -> UpdateRequest | Rejected:
    """Validate an ``/update`` payload against the AWS rules.

    Example: ``parse_update(b'{"state":{"desired":{"door":"open"}}}')``.
    """
    limits = limits or ShadowSettings()
    token: str | None = None
    try:
        if len(payload) > limits.max_payload_bytes:
            raise _Failure(PAYLOAD_TOO_LARGE)
        body = _decode(payload, limits)
        if not isinstance(body, dict):
            raise _Failure(_INVALID_JSON)
        token = _client_token(body, limits)
        version = body.get("version")
        if "version" in body and (
            not isinstance(version, int) or isinstance(version, bool) or version < 0
        ):
            raise _Failure(_INVALID_VERSION)
        if "state" not in body:
            raise _Failure(_MISSING_STATE)
        state = body["state"]
        if not isinstance(state, dict):
            raise _Failure(_STATE_NOT_OBJECT)
        if any(name not in _SECTIONS for name in state):
            raise _Failure(_INVALID_STATE_NODE)
        sections: dict[str, JsonObject | None] = {}
        for name, not_object in (
            ("desired", _DESIRED_NOT_OBJECT),
            ("reported", _REPORTED_NOT_OBJECT),
        ):
            if name not in state:
                continue
            section: JsonValue = state[name]
            if section is not None and not isinstance(section, dict):
                raise _Failure(not_object)
            if nesting_depth(section) > limits.max_depth:
                raise _Failure(_too_deep(limits.max_depth))
            if contains_null_in_array(section):
                raise _Failure(_INVALID_JSON)
            sections[name] = section
        return UpdateRequest(sections=sections, client_token=token, version=version)
    except _Failure as failure:
        return Rejected(failure.error, token)


def parse_client_token(
    payload: bytes, limits: ShadowSettings | None = None
) -> str | Rejected | None:
    """The ``clientToken`` of a ``/get`` or ``/delete`` payload (their other content is ignored).

    Example: ``parse_client_token(b'{"clientToken":"abc"}') == "abc"``; ``b""`` gives ``None``.
    """
    limits = limits or ShadowSettings()
    if not payload.strip():
        return None
    if len(payload) > limits.max_payload_bytes:
        return Rejected(PAYLOAD_TOO_LARGE)
    try:
        body = _decode(payload, limits)
        return _client_token(body, limits) if isinstance(body, dict) else None
    except _Failure as failure:
        if failure.error is _INVALID_CLIENT_TOKEN:
            return Rejected(_INVALID_CLIENT_TOKEN)
        return None


def encode(body: JsonObject) -> bytes:
    """Compact UTF-8 JSON, the wire form of every reply."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(error: ShadowError, *, timestamp: int, client_token: str | None) -> JsonObject:
    """The error response document of ``/rejected`` topics."""
    body: JsonObject = {"code": error.code, "message": error.message, "timestamp": timestamp}
    if client_token is not None:
        body["clientToken"] = client_token
    return body
