"""The warehouse door: the actuator of paper 004 section 4.8, with its state and event log.

:class:`Door` is what the shadow's delta moves: it knows whether it is open, keeps a log
of every movement (and, for an opening, which sale it was for) and hands the movement to
an :class:`Actuator`. The default actuator only records; a real lock driver (a GPIO
relay, a PLC call) implements the one method of the :class:`Actuator` protocol and is
given to the door. Movements are serialised: a door is in one place at a time.

Example::

    door = Door()                                   # simulated; Door(RelayActuator(pin=17))
    await door.move(DoorState.OPEN, sale=("0xOrder", "0xBuyer"))
    door.openings_for("0xOrder")                    # 1
    await door.move(DoorState.CLOSED)
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass
from typing import Protocol

from pervasive.errors import InvalidInput

__all__ = ["Actuator", "Door", "DoorEvent", "DoorState", "SimulatedActuator"]


class DoorState(enum.StrEnum):
    """Where the door is; the value is what the shadow's ``door`` key holds."""

    OPEN = "open"
    CLOSED = "closed"

    @classmethod
    def parse(cls, value: object) -> DoorState:
        """The state a desired value names; :class:`InvalidInput` for anything else.

        Example: ``DoorState.parse("open") is DoorState.OPEN``.
        """
        for state in cls:
            if value == state.value:
                return state
        raise InvalidInput(f"a door is 'open' or 'closed', not {value!r}")


@dataclass(frozen=True)
class DoorEvent:
    """One movement of the door: when, to where, and for which sale (openings only)."""

    at: float
    """Unix time of the movement."""
    state: DoorState
    order: str | None = None
    buyer: str | None = None


class Actuator(Protocol):
    """What moves the door: a real lock driver implements this one method."""

    async def move(self, state: DoorState) -> None:
        """Drive the door to ``state``; return when it is there (raise if it cannot)."""
        ...


class SimulatedActuator:
    """An actuator without hardware: it takes ``travel`` seconds and always arrives.

    Example: ``Door(SimulatedActuator(travel=0.5))`` for a demo that looks real.
    """

    def __init__(self, travel: float = 0.0) -> None:
        self.travel = travel

    async def move(self, state: DoorState) -> None:
        """Wait ``travel`` seconds (the motor running), then arrive."""
        if self.travel > 0:
            await asyncio.sleep(self.travel)


class Door:
    """A door with its state and movement log; starts ``closed`` unless told otherwise."""

    def __init__(
        self, actuator: Actuator | None = None, *, state: DoorState = DoorState.CLOSED
    ) -> None:
        self.actuator: Actuator = actuator or SimulatedActuator()
        self.state = state
        self.events: list[DoorEvent] = []
        """Every movement, oldest first."""
        self._moving = asyncio.Lock()

    async def move(self, state: DoorState, *, sale: tuple[str, str] | None = None) -> DoorState:
        """Move to ``state`` (``sale`` = (order, buyer) it opens for); return the new state.

        Moving to where the door already is does nothing and logs nothing.

        Example: ``await door.move(DoorState.OPEN, sale=(order, buyer))``.
        """
        async with self._moving:
            if state is self.state:
                return self.state
            await self.actuator.move(state)
            self.state = state
            order, buyer = sale if sale is not None and state is DoorState.OPEN else (None, None)
            self.events.append(DoorEvent(time.time(), state, order, buyer))
            return self.state

    @property
    def openings(self) -> int:
        """How many times the door opened."""
        return sum(1 for event in self.events if event.state is DoorState.OPEN)

    def openings_for(self, order: str) -> int:
        """How many times the door opened for sale order ``order`` (at most 1, by design).

        Example: ``assert door.openings_for(order.address) == 1``.
        """
        wanted = order.lower()
        return sum(
            1
            for event in self.events
            if event.state is DoorState.OPEN and (event.order or "").lower() == wanted
        )
