"""The sans-I/O shadow service: a request and the stored record in, messages and a new record out.

Paper 004 section 4.8: the shadow keeps the thing's desired and reported states and,
when they differ, publishes a *delta* that the device subscribes to; the device acts
and reports back. :class:`ShadowCore` implements the AWS IoT Device Shadow rules for
``update``, ``get`` and ``delete`` on classic and named shadows. It never reads the
clock (``now`` is an argument) and never touches storage: the caller loads the
:class:`ShadowRecord`, calls :meth:`ShadowCore.handle`, writes ``Outcome.record``
(compare-and-swap on the record it loaded) and publishes ``Outcome.messages``.

Example::

    core = ShadowCore()
    key = ShadowKey("lock-1")
    out = core.handle(key, Operation.UPDATE, b'{"state":{"desired":{"door":"open"}}}',
                      record=None, now=1700000000.0)
    [m.topic for m in out.messages]
    # ['$aws/things/lock-1/shadow/update/accepted', '.../update/delta', '.../update/documents']
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from pervasive.config import ShadowSettings
from pervasive.shadow.document import (
    JsonObject,
    apply_patch,
    compute_delta,
    delta_metadata,
    request_metadata,
    serialized_size,
)
from pervasive.shadow.protocol import (
    FORBIDDEN,
    PAYLOAD_TOO_LARGE,
    THING_NOT_FOUND,
    UNAUTHORIZED,
    VERSION_CONFLICT,
    Operation,
    Rejected,
    ShadowError,
    ShadowKey,
    UpdateRequest,
    encode,
    error_body,
    parse_client_token,
    parse_update,
    shadow_not_found,
)

__all__ = [
    "AllowAll",
    "OutboundMessage",
    "Outcome",
    "OwnThingPolicy",
    "ShadowCore",
    "ShadowPolicy",
    "ShadowRecord",
]


@dataclass(frozen=True)
class ShadowRecord:
    """What is stored per shadow. A deleted shadow keeps its ``version`` (``exists=False``)."""

    key: ShadowKey
    version: int
    exists: bool
    updated_at: float
    desired: JsonObject = field(default_factory=dict)
    reported: JsonObject = field(default_factory=dict)
    desired_metadata: JsonObject = field(default_factory=dict)
    reported_metadata: JsonObject = field(default_factory=dict)

    def state_body(self) -> JsonObject:
        """``{"desired": ..., "reported": ...}`` without empty sections."""
        body: JsonObject = {}
        if self.desired:
            body["desired"] = copy.deepcopy(self.desired)
        if self.reported:
            body["reported"] = copy.deepcopy(self.reported)
        return body

    def metadata_body(self) -> JsonObject:
        """The metadata sections that go with :meth:`state_body`."""
        body: JsonObject = {}
        if self.desired:
            body["desired"] = copy.deepcopy(self.desired_metadata)
        if self.reported:
            body["reported"] = copy.deepcopy(self.reported_metadata)
        return body

    def delta(self) -> JsonObject:
        """Desired keys that differ from reported (empty when in sync)."""
        return compute_delta(self.desired, self.reported)


@dataclass(frozen=True)
class OutboundMessage:
    """A reply to publish (QoS 1, not retained)."""

    topic: str
    payload: bytes


@dataclass(frozen=True)
class Outcome:
    """The result of one request.

    ``record`` is the record to store (``None``: nothing changed); ``error`` is set
    when the request was rejected (and ``messages`` then holds the ``/rejected`` reply).
    """

    messages: tuple[OutboundMessage, ...]
    record: ShadowRecord | None = None
    error: ShadowError | None = None
    client_token: str | None = None


class ShadowPolicy(Protocol):
    """Who may do what: return ``None`` to allow, or the 401/403 error to send."""

    def check(
        self, principal: str | None, key: ShadowKey, operation: Operation
    ) -> ShadowError | None:
        """Decide whether ``principal`` (a certificate CN; ``None`` if unknown) may act."""
        ...


class AllowAll:
    """The policy when the broker's ACL already limits each device to its own topics."""

    def check(
        self, principal: str | None, key: ShadowKey, operation: Operation
    ) -> ShadowError | None:
        """Allow everything."""
        return None


@dataclass(frozen=True)
class OwnThingPolicy:
    """A device may touch only the shadows of the thing it is named after; admins any.

    Example: ``OwnThingPolicy(admins=frozenset({"shadow-admin"}))``.
    """

    admins: frozenset[str] = frozenset()

    def check(
        self, principal: str | None, key: ShadowKey, operation: Operation
    ) -> ShadowError | None:
        """401 without an identity, 403 for someone else's thing."""
        if principal is None:
            return UNAUTHORIZED
        if principal != key.thing and principal not in self.admins:
            return FORBIDDEN
        return None


class ShadowCore:
    """The shadow rules, with no I/O. One instance serves every thing.

    ``thing_exists`` (a registry lookup) makes unknown things fail with 404
    *Thing not found*; without it any valid thing name has shadows, as in AWS.
    """

    def __init__(
        self,
        limits: ShadowSettings | None = None,
        *,
        policy: ShadowPolicy | None = None,
        thing_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.limits = limits or ShadowSettings()
        self.policy: ShadowPolicy = policy or AllowAll()
        self._thing_exists = thing_exists

    def handle(
        self,
        key: ShadowKey,
        operation: Operation,
        payload: bytes,
        *,
        record: ShadowRecord | None,
        now: float,
        principal: str | None = None,
    ) -> Outcome:
        """Apply one request to the stored ``record`` (``None`` if never stored).

        Example: ``core.handle(key, Operation.GET, b"", record=rec, now=t).messages``.
        """
        update: UpdateRequest | None = None
        if operation is Operation.UPDATE:
            parsed = parse_update(payload, self.limits)
            token = parsed.client_token
            if isinstance(parsed, Rejected):
                return self.reject(key, operation, parsed.error, now=now, client_token=token)
            update = parsed
        else:
            parsed_token = parse_client_token(payload, self.limits)
            if isinstance(parsed_token, Rejected):
                return self.reject(key, operation, parsed_token.error, now=now)
            token = parsed_token
        denied = self.policy.check(principal, key, operation)
        if denied is None and self._thing_exists is not None and not self._thing_exists(key.thing):
            denied = THING_NOT_FOUND
        if denied is not None:
            return self.reject(key, operation, denied, now=now, client_token=token)
        if update is not None:
            return self._update(key, update, record=record, now=now)
        if record is None or not record.exists:
            return self.reject(key, operation, shadow_not_found(key), now=now, client_token=token)
        if operation is Operation.GET:
            return self._get(record, token, now)
        return self._delete(record, token, now)

    def reject(
        self,
        key: ShadowKey,
        operation: Operation,
        error: ShadowError,
        *,
        now: float,
        client_token: str | None = None,
    ) -> Outcome:
        """The ``/<operation>/rejected`` reply for ``error``.

        Example: ``core.reject(key, Operation.UPDATE, TOO_MANY_REQUESTS, now=t)``.
        """
        body = error_body(error, timestamp=int(now), client_token=client_token)
        message = OutboundMessage(key.topic(operation.value, "rejected"), encode(body))
        return Outcome(messages=(message,), error=error)

    def current_version(self, record: ShadowRecord | None, now: float) -> int:
        """The version an update must name: a deleted shadow's counts for 48 hours."""
        if record is None:
            return 0
        if record.exists or now - record.updated_at <= self.limits.version_retention_seconds:
            return record.version
        return 0

    def _update(
        self, key: ShadowKey, request: UpdateRequest, *, record: ShadowRecord | None, now: float
    ) -> Outcome:
        sections, version, token = request.sections, request.version, request.client_token
        current_version = self.current_version(record, now)
        if version is not None and version != current_version:
            return self.reject(key, Operation.UPDATE, VERSION_CONFLICT, now=now, client_token=token)
        timestamp = int(now)
        base = record if record is not None and record.exists else ShadowRecord(key, 0, False, now)
        desired, desired_meta = base.desired, base.desired_metadata
        reported, reported_meta = base.reported, base.reported_metadata
        for name, patch in sections.items():
            if name == "desired":
                desired, desired_meta = _apply(desired, desired_meta, patch, timestamp)
            else:
                reported, reported_meta = _apply(reported, reported_meta, patch, timestamp)
        new = ShadowRecord(
            key, current_version + 1, True, now, desired, reported, desired_meta, reported_meta
        )
        if serialized_size(new.state_body()) > self.limits.max_state_bytes:
            return self.reject(
                key, Operation.UPDATE, PAYLOAD_TOO_LARGE, now=now, client_token=token
            )

        accepted: JsonObject = {
            "state": {name: copy.deepcopy(patch) for name, patch in sections.items()},
            "metadata": {
                name: request_metadata(patch, timestamp) for name, patch in sections.items()
            },
            "version": new.version,
            "timestamp": timestamp,
        }
        messages = [OutboundMessage(key.topic("update", "accepted"), _with_token(accepted, token))]
        delta = new.delta()
        if delta:
            body: JsonObject = {
                "version": new.version,
                "timestamp": timestamp,
                "state": delta,
                "metadata": delta_metadata(delta, new.desired_metadata),
            }
            messages.append(OutboundMessage(key.topic("update", "delta"), _with_token(body, token)))
        documents: JsonObject = {"current": _snapshot(new), "timestamp": timestamp}
        if record is not None and record.exists:
            documents = {"previous": _snapshot(record), **documents}
        messages.append(
            OutboundMessage(key.topic("update", "documents"), _with_token(documents, token))
        )
        return Outcome(messages=tuple(messages), record=new, client_token=token)

    def _get(self, record: ShadowRecord, token: str | None, now: float) -> Outcome:
        state = record.state_body()
        delta = record.delta()
        if delta:
            state["delta"] = delta
        body: JsonObject = {
            "state": state,
            "metadata": record.metadata_body(),
            "version": record.version,
            "timestamp": int(now),
        }
        topic = record.key.topic("get", "accepted")
        return Outcome(messages=(OutboundMessage(topic, _with_token(body, token)),))

    def _delete(self, record: ShadowRecord, token: str | None, now: float) -> Outcome:
        deleted = replace(
            record,
            exists=False,
            updated_at=now,
            desired={},
            reported={},
            desired_metadata={},
            reported_metadata={},
        )
        body: JsonObject = {"version": record.version, "timestamp": int(now)}
        topic = record.key.topic("delete", "accepted")
        return Outcome(messages=(OutboundMessage(topic, _with_token(body, token)),), record=deleted)


def _apply(
    section: JsonObject, metadata: JsonObject, patch: JsonObject | None, timestamp: int
) -> tuple[JsonObject, JsonObject]:
    if patch is None:
        return {}, {}
    return apply_patch(section, metadata, patch, timestamp=timestamp)


def _snapshot(record: ShadowRecord) -> JsonObject:
    return {
        "state": record.state_body(),
        "metadata": record.metadata_body(),
        "version": record.version,
    }


def _with_token(body: JsonObject, token: str | None) -> bytes:
    if token is not None:
        body = {**body, "clientToken": token}
    return encode(body)
