"""The device side of a shadow: re-synchronise on every (re)connect, apply each delta once.

Paper 004 section 4.8: the device subscribes to the delta, triggers its actuator and
reports its new state. AWS only publishes ``/update/delta`` to devices that are
online, so a desired change made while a device was offline is missed by clients
that only listen (aws-iot-device-sdk-js#100). :class:`ShadowClient` therefore, on
every connect: subscribes to its reply topics, publishes ``get``, passes the
current desired-vs-reported delta to the callback, and reports the result.

:class:`DeltaTracker` (sans-I/O) makes delivery exactly-once per desired change:
a delta seen both on ``/update/delta`` and in the ``get`` reply, a stale message
(lower version) or a delta repeated because the device could not reach the
desired value is not handed to the callback again.

Example::

    async def actuate(delta):            # {"door": "open"}
        await motor.move(delta["door"])
        return {"door": delta["door"]}   # what to report (None: report the delta itself)

    client = ShadowClient("lock-1", actuate)
    await client.serve(connection)       # call again with each new connection
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pervasive.messaging.port import MqttConnection, MqttMessage
from pervasive.shadow.document import JsonObject, apply_patch, compute_delta, json_equal
from pervasive.shadow.protocol import ShadowKey, encode

__all__ = ["DeltaHandler", "DeltaTracker", "ShadowClient"]

_log = logging.getLogger(__name__)

DeltaHandler = Callable[[JsonObject], Awaitable[JsonObject | None]]
"""Receives the new part of the delta; returns the state to report (``None``: the delta)."""


class DeltaTracker:
    """Which part of a delta the device has not been given yet (no I/O).

    Example::

        tracker = DeltaTracker()
        tracker.fresh(3, {"door": "open"})   # {"door": "open"}
        tracker.handled({"door": "open"})
        tracker.fresh(3, {"door": "open"})   # {} (already given)
    """

    def __init__(self) -> None:
        self.version = -1
        """The highest shadow version seen; older messages are ignored."""
        self._handled: JsonObject = {}

    def fresh(self, version: int, delta: JsonObject) -> JsonObject:
        """The part of ``delta`` (the complete delta at ``version``) not handed over yet."""
        if version < self.version:
            return {}
        self.version = version
        self._handled = _restrict(self._handled, delta)
        return _subtract(delta, self._handled)

    def handled(self, delta: JsonObject) -> None:
        """Record that the callback took ``delta`` (call after it returned)."""
        self._handled, _ = apply_patch(self._handled, {}, delta, timestamp=0)


def _restrict(handled: JsonObject, delta: JsonObject) -> JsonObject:
    """Forget handled values whose path is no longer in the delta (the device caught up)."""
    kept: JsonObject = {}
    for key, value in handled.items():
        if key not in delta:
            continue
        current = delta[key]
        if isinstance(value, dict) and isinstance(current, dict):
            nested = _restrict(value, current)
            if nested:
                kept[key] = nested
        else:
            kept[key] = value
    return kept


def _subtract(delta: JsonObject, handled: JsonObject) -> JsonObject:
    result: JsonObject = {}
    for key, value in delta.items():
        seen = handled.get(key)
        if isinstance(value, dict) and isinstance(seen, dict):
            nested = _subtract(value, seen)
            if nested:
                result[key] = nested
        elif key not in handled or not json_equal(value, seen):
            result[key] = value
    return result


class ShadowClient:
    """One device's view of one shadow (classic when ``shadow`` is ``None``)."""

    def __init__(self, thing: str, on_delta: DeltaHandler, *, shadow: str | None = None) -> None:
        self.key = ShadowKey(thing, shadow)
        self._on_delta = on_delta
        self._tracker = DeltaTracker()
        self.errors: list[dict[str, Any]] = []
        """Error documents received on ``/rejected`` (other than 404 on ``get``)."""

    @property
    def version(self) -> int:
        """The highest shadow version this client has seen (-1 before the first)."""
        return self._tracker.version

    def topics(self) -> tuple[str, ...]:
        """The reply topics the client subscribes to."""
        return tuple(
            self.key.topic(*parts)
            for parts in (
                ("get", "accepted"),
                ("get", "rejected"),
                ("update", "accepted"),
                ("update", "rejected"),
                ("update", "delta"),
            )
        )

    async def synchronize(self, connection: MqttConnection) -> None:
        """Subscribe, then ask for the shadow; call after every (re)connect.

        Example: ``await client.synchronize(connection)``.
        """
        for topic in self.topics():
            await connection.subscribe(topic, qos=1)
        body: JsonObject = {"clientToken": uuid.uuid4().hex}
        await connection.publish(self.key.topic("get"), encode(body), qos=1)

    async def serve(self, connection: MqttConnection) -> None:
        """Synchronize, then handle replies until the connection's stream ends.

        Example: ``await client.serve(await connect(...))`` in the device's reconnect loop.
        """
        await self.synchronize(connection)
        async for message in connection.messages():
            await self.handle(connection, message)

    async def report(self, connection: MqttConnection, reported: JsonObject) -> None:
        """Publish ``reported`` to the shadow (``null`` values delete keys).

        Example: ``await client.report(connection, {"door": "closed"})``.
        """
        body: JsonObject = {"state": {"reported": reported}, "clientToken": uuid.uuid4().hex}
        await connection.publish(self.key.topic("update"), encode(body), qos=1)

    async def handle(self, connection: MqttConnection, message: MqttMessage) -> None:
        """Act on one message of this shadow's reply topics (others are ignored).

        Example: ``await client.handle(connection, message)``.
        """
        if not message.topic.startswith(self.key.prefix + "/"):
            return
        suffix = message.topic[len(self.key.prefix) + 1 :]
        try:
            body = json.loads(message.payload)
        except ValueError:
            _log.warning("ignored a malformed message on %s", message.topic)
            return
        if not isinstance(body, dict):
            return
        version = body.get("version")
        state = body.get("state")
        if not isinstance(version, int) or not isinstance(state, dict):
            version, state = None, {}
        if suffix == "get/accepted" and version is not None:
            delta = state.get("delta")
            if not isinstance(delta, dict):
                desired, reported = state.get("desired"), state.get("reported")
                delta = compute_delta(
                    desired if isinstance(desired, dict) else {},
                    reported if isinstance(reported, dict) else {},
                )
            await self._deliver(connection, version, delta)
        elif suffix == "update/delta" and version is not None:
            await self._deliver(connection, version, state)
        elif suffix == "update/accepted" and version is not None:
            self._tracker.version = max(self._tracker.version, version)
        elif suffix.endswith("/rejected") and not (
            suffix == "get/rejected" and body.get("code") == 404
        ):
            _log.warning("shadow %s rejected a request: %s", self.key.prefix, body.get("message"))
            self.errors.append(body)

    async def _deliver(self, connection: MqttConnection, version: int, delta: JsonObject) -> None:
        fresh = self._tracker.fresh(version, delta)
        if not fresh:
            return
        result = await self._on_delta(copy.deepcopy(fresh))
        self._tracker.handled(fresh)
        reported = fresh if result is None else result
        if reported:
            await self.report(connection, reported)
