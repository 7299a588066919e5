"""The device simulator: N devices reporting signed location readings, with random disconnects.

Used by ``pervasive device simulate``, the demos and the load benchmarks. Two halves:

- :func:`schedule` (sans-I/O, deterministic for a seed): every device's readings at
  ``rate`` per second with jitter, a random walk over ``cells`` location cells, and
  offline spells that start with probability ``disconnect_rate`` per device-second
  and last ``offline_seconds``;
- :class:`Simulator`: one :class:`~pervasive.devices.sdk.Device` per simulated
  device, each replaying its own events in real time. Readings made while offline go
  to the outbox and leave after the reconnect, so nothing is lost.

Example::

    plan = SimulationPlan(devices=10, rate=5, duration=30, disconnect_rate=0.01)
    simulator = Simulator(plan, provision=lambda device_id: folders[device_id],
                          host="127.0.0.1", port=broker.port)
    report = await simulator.run()       # SimulationReport(published=1500, ...)
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from pervasive.devices.declarations import SensorSpec
from pervasive.devices.identity import DeviceFolder
from pervasive.devices.sdk import Device
from pervasive.errors import InvalidInput

__all__ = [
    "LOCATION_SENSOR",
    "EventKind",
    "ScheduledEvent",
    "SimulationPlan",
    "SimulationReport",
    "Simulator",
    "schedule",
]

LOCATION_SENSOR = SensorSpec("location", "location", (("cell", "string"), ("time", "uint64")))
"""What simulated devices report: the location cell and the reading's time."""


class EventKind(enum.Enum):
    """What happens to a simulated device at a moment."""

    READING = "reading"
    DISCONNECT = "disconnect"
    RECONNECT = "reconnect"


@dataclass(frozen=True)
class SimulationPlan:
    """How many devices, how often they report, how often they drop off."""

    devices: int = 10
    rate: float = 1.0
    """Readings per second per device."""
    duration: float = 10.0
    """Seconds of simulated activity."""
    disconnect_rate: float = 0.0
    """Probability per device and second of going offline."""
    offline_seconds: float = 1.0
    """How long an offline spell lasts."""
    cells: int = 4
    """Location cells the devices wander between."""
    seed: int = 0
    prefix: str = "sim"
    """Device ids are ``<prefix>-<index>``."""

    def __post_init__(self) -> None:
        if self.devices < 1 or self.rate <= 0 or self.duration <= 0 or self.cells < 1:
            raise InvalidInput(
                "a simulation needs devices >= 1, rate > 0, duration > 0, cells >= 1"
            )
        if not 0 <= self.disconnect_rate <= 1 or self.offline_seconds < 0:
            raise InvalidInput("disconnect_rate is a probability; offline_seconds >= 0")

    def device_ids(self) -> list[str]:
        """The ids of the simulated devices."""
        return [f"{self.prefix}-{index}" for index in range(self.devices)]


@dataclass(frozen=True)
class ScheduledEvent:
    """At ``at`` seconds from the start, ``device`` does ``kind`` (reporting ``cell``)."""

    at: float
    device: str
    kind: EventKind
    cell: str = ""


def schedule(plan: SimulationPlan) -> list[ScheduledEvent]:
    """Every event of the simulation, in time order; the same plan gives the same list.

    Example: ``[e for e in schedule(plan) if e.kind is EventKind.DISCONNECT]``.
    """
    rng = random.Random(plan.seed)  # noqa: S311 - a simulation, not cryptography
    events: list[ScheduledEvent] = []
    period = 1.0 / plan.rate
    for device in plan.device_ids():
        cell = rng.randrange(plan.cells)
        at = rng.uniform(0, period)
        offline_until = -1.0
        next_check = 1.0
        while at < plan.duration:
            while next_check <= at:
                if next_check > offline_until and rng.random() < plan.disconnect_rate:
                    offline_until = next_check + plan.offline_seconds
                    events.append(ScheduledEvent(next_check, device, EventKind.DISCONNECT))
                    events.append(ScheduledEvent(offline_until, device, EventKind.RECONNECT))
                next_check += 1.0
            if rng.random() < 0.1:
                cell = (cell + rng.choice((-1, 1))) % plan.cells
            events.append(ScheduledEvent(at, device, EventKind.READING, f"cell-{cell}"))
            at += period * rng.uniform(0.8, 1.2)
    order = {EventKind.RECONNECT: 0, EventKind.READING: 1, EventKind.DISCONNECT: 2}
    events.sort(key=lambda e: (e.at, e.device, order[e.kind]))
    return events


@dataclass(frozen=True)
class SimulationReport:
    """What a run did."""

    devices: int
    published: int
    disconnects: int
    seconds: float
    pending: int
    """Readings still in outboxes at the end (0 after a successful final flush)."""

    @property
    def rate(self) -> float:
        """Readings per second over the run."""
        return self.published / self.seconds if self.seconds > 0 else 0.0


class Simulator:
    """Run a :class:`SimulationPlan` against a broker, one SDK device per simulated device."""

    def __init__(
        self,
        plan: SimulationPlan,
        *,
        provision: Callable[[str], DeviceFolder],
        host: str,
        port: int,
        clock: Callable[[], float] = time.time,
        flush_timeout: float = 30.0,
    ) -> None:
        self.plan = plan
        self._provision = provision
        self._host, self._port = host, port
        self._clock = clock
        self._flush_timeout = flush_timeout
        self.devices: dict[str, Device] = {}

    async def run(self) -> SimulationReport:
        """Connect every device, replay the schedule in real time, flush, disconnect.

        Example: ``report = await Simulator(plan, provision=..., host=h, port=p).run()``.
        """
        by_device: dict[str, list[ScheduledEvent]] = {}
        for event in schedule(self.plan):
            by_device.setdefault(event.device, []).append(event)
        for device_id in self.plan.device_ids():
            self.devices[device_id] = Device(
                device_id,
                self._provision(device_id),
                host=self._host,
                port=self._port,
                sensors=[LOCATION_SENSOR],
            )
        try:
            await asyncio.gather(*(d.connect() for d in self.devices.values()))
            start = time.monotonic()
            results = await asyncio.gather(
                *(self._play(self.devices[d], by_device.get(d, []), start) for d in self.devices)
            )
            await asyncio.gather(*(d.flush(self._flush_timeout) for d in self.devices.values()))
            seconds = time.monotonic() - start
            pending = sum(d.pending for d in self.devices.values())
        finally:
            await asyncio.gather(*(d.close() for d in self.devices.values()))
        return SimulationReport(
            devices=len(self.devices),
            published=sum(r[0] for r in results),
            disconnects=sum(r[1] for r in results),
            seconds=seconds,
            pending=pending,
        )

    async def _play(
        self, device: Device, events: list[ScheduledEvent], start: float
    ) -> tuple[int, int]:
        published = disconnects = 0
        for event in events:
            delay = start + event.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if event.kind is EventKind.READING:
                await device.publish("location", {"cell": event.cell, "time": int(self._clock())})
                published += 1
            elif event.kind is EventKind.DISCONNECT:
                await device.disconnect()
                disconnects += 1
            else:
                await device.connect()
        if not device.connected:
            await device.connect()
        return published, disconnects
