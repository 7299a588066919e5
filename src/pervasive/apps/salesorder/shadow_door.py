"""The door driven through its device shadow, exactly as paper 004 section 4.8 says.

"IoT devices will send publish requests to change their new states to a desired open
state [...]. If there is a change between the current state and previous state stored
in shadow, AWS-IoT will publish a response associated with delta event which will be
again subscribed by the IoT device. Once response is received, the actuator will be
triggered. Then the IoT device again publishes its latest state as 'Reported'."

:meth:`ShadowDoor.open` does that: it publishes ``desired.door = "open"`` on
``$aws/things/<thing>/shadow/update``; the shadow service answers with ``update/delta``;
the :class:`~pervasive.shadow.ShadowClient`'s delta handler moves the :class:`Door` and
reports ``{"door": "open", "release": {order, buyer, tx, block}}``; ``open`` returns
when the service accepted that report. After ``hold`` seconds the same round trip closes
the door. One door cycle runs at a time: a second ``open`` waits for the first to close.

On start the device tells the shadow where the door really is and that it should stay
closed (``desired.door = "closed"``): after a restart only the release journal decides
whether the door opens (see ``warehouse.py``), never an ``open`` left in the shadow.

Example::

    door = ShadowDoor("warehouse-7", Door(), hold=5.0)
    await door.start(mqtt_client)
    await door.open(ReleaseNote(order, buyer, tx_hash, block))   # reported open
    await door.wait_closed()
    await door.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass

from pervasive.apps.salesorder.door import Door, DoorState
from pervasive.errors import InvalidInput, PervasiveError, UserError
from pervasive.messaging import MqttClient, MqttMessage
from pervasive.shadow import ShadowClient
from pervasive.shadow.document import JsonObject
from pervasive.shadow.protocol import encode

__all__ = ["DoorFault", "ReleaseNote", "ShadowDoor"]

_log = logging.getLogger(__name__)

_CLOSE_RETRIES = (0.5, 1.0, 2.0)
"""Seconds to wait after each failed attempt to close (the next open closes it otherwise)."""


class DoorFault(UserError):
    """The door did not confirm a movement through its shadow (broker, service or motor)."""


@dataclass(frozen=True)
class ReleaseNote:
    """The sale a door opening is for; reported beside the door for the dashboard."""

    order: str
    buyer: str
    tx_hash: str | None = None
    block: int | None = None

    def reported(self) -> JsonObject:
        """The ``release`` object of the reported state."""
        return {"order": self.order, "buyer": self.buyer, "tx": self.tx_hash, "block": self.block}


class ShadowDoor:
    """A :class:`Door` that moves only through its shadow's delta (section 4.8)."""

    def __init__(
        self,
        thing: str,
        door: Door,
        *,
        hold: float = 5.0,
        timeout: float = 10.0,
        resync_poll: float = 0.2,
    ) -> None:
        self.thing = thing
        self.door = door
        self.hold = hold
        """Seconds the door stays open before the device closes it again."""
        self.timeout = timeout
        """Seconds to wait for the shadow to confirm a movement before :class:`DoorFault`."""
        self._resync_poll = resync_poll
        self._shadow = ShadowClient(thing, self._on_delta)
        self._client: MqttClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._cycle = asyncio.Semaphore(1)
        self._closer: asyncio.Task[None] | None = None
        self._close_now = asyncio.Event()
        self._note: ReleaseNote | None = None
        self._waiting: dict[DoorState, tuple[str | None, asyncio.Future[None]]] = {}
        self._tokens: set[str] = set()
        self._faulted = False

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self, client: MqttClient) -> None:
        """Reset the shadow to the real door, synchronise, and follow the shadow's replies.

        Example: ``await door.start(client)`` once the client is connected.
        """
        self._client = client
        actual = self.door.state.value
        await self._publish({"desired": {"door": "closed"}, "reported": {"door": actual}})
        await self._shadow.synchronize(client)
        self._tasks = [
            asyncio.create_task(self._read(client), name=f"door-{self.thing}-read"),
            asyncio.create_task(self._resync(client), name=f"door-{self.thing}-resync"),
        ]

    async def stop(self) -> None:
        """Close the door now if it is open (a stopping device leaves no open door), then stop.

        Example: ``await door.stop()``.
        """
        if self._closer is not None and not self._closer.done():
            self._close_now.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._closer
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the cycle ----------------------------------------------------------------------
    async def open(self, note: ReleaseNote) -> None:
        """Open the door for ``note`` through the shadow; return once ``open`` is reported.

        Waits for a running cycle to end first. The door closes by itself after ``hold``
        seconds. Raises :class:`DoorFault` when the shadow does not confirm in time.

        Example: ``await door.open(ReleaseNote(order, buyer, tx_hash, block))``.
        """
        await self._cycle.acquire()
        try:
            if self.door.state is DoorState.OPEN:  # an earlier closing failed: close first,
                await self._move(DoorState.CLOSED, None)  # or the shadow sees no change
            self._note = note
            await self._move(DoorState.OPEN, note.tx_hash)
        except BaseException:
            self._note = None
            self._cycle.release()
            raise
        self._close_now.clear()
        self._closer = asyncio.create_task(
            self._close_after_hold(), name=f"door-{self.thing}-close"
        )

    async def wait_closed(self) -> None:
        """Wait until no cycle runs (the door closed, or failed to open).

        Example: ``await door.wait_closed()``.
        """
        async with self._cycle:
            return

    async def _close_after_hold(self) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._close_now.wait(), self.hold)
            for attempt, pause in enumerate(_CLOSE_RETRIES):
                try:
                    await self._move(DoorState.CLOSED, None)
                    return
                except (PervasiveError, OSError) as exc:  # 429, a lost broker, a motor
                    _log.warning("door %s did not confirm closing (attempt %d): %s",
                                 self.thing, attempt + 1, exc)  # fmt: skip
                    await asyncio.sleep(pause)
        finally:
            self._note = None
            self._cycle.release()

    async def _move(self, state: DoorState, tx_hash: str | None) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[state] = (tx_hash, waiter)
        try:
            await self._publish({"desired": {"door": state.value}})
            async with asyncio.timeout(self.timeout):
                await waiter
        except TimeoutError:
            raise DoorFault(
                f"the door did not report {state.value!r} through its shadow within "
                f"{self.timeout:g} s: check the broker and the shadow service"
            ) from None
        finally:
            self._waiting.pop(state, None)

    async def _publish(self, state: JsonObject) -> None:
        if self._client is None:
            raise DoorFault(f"door {self.thing} is not connected to the broker: start it first")
        token = uuid.uuid4().hex
        self._tokens.add(token)
        body: JsonObject = {"state": state, "clientToken": token}
        await self._client.publish(self._shadow.key.topic("update"), encode(body), qos=1)

    # -- what the broker delivers -------------------------------------------------------
    async def _read(self, client: MqttClient) -> None:
        async for message in client.messages():
            try:
                await self._shadow.handle(client, message)
            except DoorFault as jammed:  # the motor failed in the delta handler
                # not reported as handled: the next delta (a rescan) drives the motor again
                self._faulted = True
                self._fail_all(str(jammed))
                fault: JsonObject = {"door": self.door.state.value, "fault": str(jammed)}
                await self._report_quietly(client, fault)
            except (PervasiveError, OSError) as exc:  # the report could not be published
                _log.warning("door %s could not answer its shadow: %s", self.thing, exc)
            self._observe(message)

    async def _report_quietly(self, client: MqttClient, reported: JsonObject) -> None:
        try:
            await self._shadow.report(client, reported)
        except (PervasiveError, OSError) as exc:
            _log.warning("door %s could not report %s: %s", self.thing, reported, exc)

    async def _resync(self, client: MqttClient) -> None:
        seen = client.reconnects
        while True:
            await asyncio.sleep(self._resync_poll)
            if client.reconnects != seen and client.connected:
                seen = client.reconnects
                await self._shadow.synchronize(client)

    def _observe(self, message: MqttMessage) -> None:
        """Resolve a waiting movement when the service accepts its report (or rejects ours)."""
        accepted = message.topic == self._shadow.key.topic("update", "accepted")
        rejected = message.topic == self._shadow.key.topic("update", "rejected")
        if not (accepted or rejected) or not self._waiting:
            return
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if rejected:
            token = body.get("clientToken")
            if token in self._tokens:
                self._tokens.discard(token)
                self._fail_all(f"the shadow refused the door's request: {body.get('message')}")
            return
        self._tokens.discard(str(body.get("clientToken")))
        state = body.get("state")
        reported = state.get("reported") if isinstance(state, dict) else None
        if not isinstance(reported, dict) or "door" not in reported:
            return
        for target, (tx_hash, waiter) in list(self._waiting.items()):
            if reported["door"] != target.value or waiter.done():
                continue
            release = reported.get("release")
            if tx_hash is not None and not (
                isinstance(release, dict) and release.get("tx") == tx_hash
            ):
                continue
            waiter.set_result(None)

    def _fail_all(self, reason: str) -> None:
        for _, waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(DoorFault(reason))

    async def _on_delta(self, delta: JsonObject) -> JsonObject | None:
        """The actuator step of section 4.8: move the door, report where it is."""
        if "door" not in delta:
            return {}
        try:
            target = DoorState.parse(delta["door"])
        except InvalidInput as exc:
            _log.warning("door %s ignores desired door %r: %s", self.thing, delta["door"], exc)
            return {"door": self.door.state.value}
        note = self._note
        sale = (note.order, note.buyer) if note is not None else None
        try:
            state = await self.door.move(target, sale=sale)
        except (OSError, PervasiveError) as exc:
            raise DoorFault(f"the door's motor failed: {exc}") from exc
        reported: JsonObject = {"door": state.value}
        if self._faulted:
            reported["fault"] = None  # null deletes the last fault from the reported state
            self._faulted = False
        if state is DoorState.OPEN and note is not None:
            reported["release"] = note.reported()
        return reported
