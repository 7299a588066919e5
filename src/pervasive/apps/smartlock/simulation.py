"""A month of bicycle rentals: the lock messages of the case study, with their ground truth.

Each lock (one per bicycle) records exactly ``rentals`` rentals in the month, so its
month is exactly ``2 * rentals`` messages (an unlock and a lock each): the window
size ``z = sl = 2 * rentals`` makes ``w_s(t)`` one month of lock ``s`` (DIVERSITY
windows count messages, not seconds). Rentals of one bicycle never overlap; they
start between 06:00 and 23:00 UTC and last 4 to 150 minutes (log-normal around 22
minutes, as city bike-share trips do); tokens are drawn from a pool of riders.
Everything is derived from ``seed``, so every run (and every node) sees the same month.

Example::

    month = simulate_month(2026, 3, locks=4, rentals=40, tokens=25, seed=7)
    month.total_seconds                 # ground truth for T_m
    for lock, q, values in month.messages(): ...
"""

from __future__ import annotations

import calendar
import collections
import datetime
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from pervasive.errors import InvalidInput

__all__ = ["Rental", "RentalMonth", "simulate_month"]

_DAY = 86_400


@dataclass(frozen=True)
class Rental:
    """One rental: bicycle ``b`` opened with token ``k`` at ``start``, closed at ``end``."""

    bicycle: int
    token: str
    start: int
    end: int

    @property
    def seconds(self) -> int:
        """``t(k, t1, t2) = t2 - t1``."""
        return self.end - self.start


@dataclass(frozen=True)
class RentalMonth:
    """The simulated month: rentals per lock, in time order."""

    year: int
    month: int
    locks: tuple[tuple[Rental, ...], ...]

    @property
    def rentals_per_lock(self) -> int:
        """Rentals of each lock (the same for all)."""
        return len(self.locks[0])

    @property
    def window_size(self) -> int:
        """``z = sl``: one month of one lock's messages."""
        return 2 * self.rentals_per_lock

    @property
    def total_seconds(self) -> int:
        """``T_m``, computed from the rentals themselves (the ground truth)."""
        return sum(r.seconds for lock in self.locks for r in lock)

    def daily_seconds(self) -> dict[int, int]:
        """Rental seconds per day of the month (rentals split at midnight UTC)."""
        out: collections.Counter[int] = collections.Counter()
        for lock in self.locks:
            for rental in lock:
                cursor = rental.start
                while cursor < rental.end:
                    stop = min(rental.end, (cursor // _DAY + 1) * _DAY)
                    day = datetime.datetime.fromtimestamp(cursor, datetime.UTC).day
                    out[day] += stop - cursor
                    cursor = stop
        return dict(sorted(out.items()))

    def messages(self) -> Iterator[tuple[int, int, tuple[int, str, bool, int]]]:
        """``(lock index, q, (bicycle, token, unlocked, time))`` in global time order."""
        events = []
        for index, lock in enumerate(self.locks):
            for n, rental in enumerate(lock):
                events.append(
                    (rental.start, index, 2 * n, (rental.bicycle, rental.token, True, rental.start))
                )
                events.append(
                    (
                        rental.end,
                        index,
                        2 * n + 1,
                        (rental.bicycle, rental.token, False, rental.end),
                    )
                )
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        for _, index, q, values in events:
            yield index, q, values


def _durations(rng: random.Random, count: int) -> list[int]:
    return [int(min(150, max(4, rng.lognormvariate(math.log(22), 0.6))) * 60) for _ in range(count)]


def simulate_month(
    year: int, month: int, *, locks: int, rentals: int, tokens: int, seed: int = 0
) -> RentalMonth:
    """Simulate ``rentals`` rentals on each of ``locks`` bicycles during ``year``-``month``.

    Raises :class:`InvalidInput` when the rentals cannot fit the month.

    Example: ``simulate_month(2026, 3, locks=2, rentals=10, tokens=5).window_size == 20``.
    """
    if locks < 1 or rentals < 1 or tokens < 1:
        raise InvalidInput("give at least one lock, one rental and one token")
    days = calendar.monthrange(year, month)[1]
    if rentals > days * 4:
        raise InvalidInput(f"at most {days * 4} rentals per bicycle fit in the month (4 a day)")
    rng = random.Random(f"{seed}-{year}-{month}")  # noqa: S311 - a reproducible simulation
    first = int(datetime.datetime(year, month, 1, tzinfo=datetime.UTC).timestamp())
    riders = [f"token-{rng.getrandbits(32):08x}" for _ in range(tokens)]
    out = []
    for bicycle in range(locks):
        # spread the rentals evenly over shuffled days (at most 4 a day), then lay each
        # day's rentals end to end with gaps: they end before 21:00 UTC
        order = list(range(days))
        rng.shuffle(order)
        per_day = collections.Counter(order[i % days] for i in range(rentals))
        lock: list[Rental] = []
        for day in sorted(per_day):
            cursor = first + day * _DAY + 6 * 3600 + rng.randrange(3600)
            for duration in _durations(rng, per_day[day]):
                start = cursor + rng.randrange(60, 3600)
                end = start + duration
                lock.append(Rental(1000 + bicycle, rng.choice(riders), start, end))
                cursor = end
        out.append(tuple(lock))
    return RentalMonth(year, month, tuple(out))
