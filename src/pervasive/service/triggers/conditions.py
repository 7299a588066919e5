"""Device context and the conditions evaluated over it (paper 001, autonomous execution).

"In the case of IoT, ... the functions in a smart contract are often triggered and
executed based on the particular contextual situation of the devices": a
:class:`Context` keeps the latest :class:`Observation` of each device attribute
(newest by the reading's own time, so late or reordered readings never move it
backwards) and a :class:`Condition` says whether it holds over that context.
:class:`CoLocated` is the asset-tracking condition: every subject reported the same
location cell, with readings at most ``window`` seconds apart.

No I/O and no clock: times come from the signed readings.

Example::

    context = Context()
    context.update(Observation("container-1", "cell", "c-12", 100))
    context.update(Observation("retailer-1", "cell", "c-12", 130))
    CoLocated(("container-1", "retailer-1"), window=60).holds(context)   # True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from pervasive.errors import InvalidInput

__all__ = ["CoLocated", "Condition", "Context", "Observation", "Scalar"]

Scalar = str | int | bool


@dataclass(frozen=True)
class Observation:
    """Device ``device`` reported ``attribute = value`` at ``time`` (seconds, from the reading)."""

    device: str
    attribute: str
    value: Scalar
    time: int


class Context:
    """The latest observation of every (device, attribute)."""

    def __init__(self, observations: Mapping[tuple[str, str], Observation] | None = None) -> None:
        self._latest: dict[tuple[str, str], Observation] = dict(observations or {})

    def update(self, observation: Observation) -> bool:
        """Keep ``observation`` if it is newer than what is known; True when it was kept.

        Example: ``context.update(Observation("a", "cell", "c-1", 5))``.
        """
        slot = (observation.device, observation.attribute)
        current = self._latest.get(slot)
        if current is not None and current.time > observation.time:
            return False
        self._latest[slot] = observation
        return True

    def get(self, device: str, attribute: str) -> Observation | None:
        """The latest observation of ``device.attribute``, if any."""
        return self._latest.get((device, attribute))

    def __iter__(self) -> Iterator[Observation]:
        return iter(list(self._latest.values()))


class Condition(Protocol):
    """A predicate over the context."""

    @property
    def subjects(self) -> tuple[str, ...]:
        """The devices whose observations can change the outcome."""
        ...

    def holds(self, context: Context) -> bool:
        """Whether the condition holds now."""
        ...

    def describe(self) -> str:
        """One line for logs and the CLI."""
        ...


@dataclass(frozen=True)
class CoLocated:
    """All ``devices`` report the same ``attribute`` value within ``window`` seconds.

    Example: ``CoLocated(("container-1", "retailer-1"), attribute="cell", window=300)``.
    """

    devices: tuple[str, ...]
    attribute: str = "cell"
    window: int = 300

    def __post_init__(self) -> None:
        if len(self.devices) < 2 or len(set(self.devices)) != len(self.devices):
            raise InvalidInput("co-location needs at least two distinct devices")
        if self.window < 0:
            raise InvalidInput(f"the time window must be non-negative, got {self.window}")

    @property
    def subjects(self) -> tuple[str, ...]:
        """The devices that must share a place."""
        return self.devices

    def holds(self, context: Context) -> bool:
        """True when every device has a reading, all with one value, within the window."""
        seen = [context.get(device, self.attribute) for device in self.devices]
        present = [o for o in seen if o is not None]
        if len(present) != len(seen):
            return False
        if len({o.value for o in present}) != 1:
            return False
        times = [o.time for o in present]
        return max(times) - min(times) <= self.window

    def describe(self) -> str:
        """``container-1, retailer-1 share cell within 300 s``."""
        return f"{', '.join(self.devices)} share {self.attribute} within {self.window} s"
