"""The request limits of the shadow service (sans-I/O): rate per thing, requests in flight.

The limits themselves are the ``[shadow]`` settings (:class:`pervasive.config.ShadowSettings`).
Their defaults follow the AWS IoT Device Shadow quotas: 8 KB of ``desired`` + ``reported``
(metadata not counted), 6 levels of nesting inside a section, a 64-byte client
token, 128 KB MQTT payloads, 20 requests per second per thing, 10 requests in
flight, and a deleted shadow's version kept for 48 hours.

AWS counts requests in flight per connection; a subscriber is not told which
connection published a request (MQTT 3.1.1), so :class:`InFlightLimit` counts them
per shadow. A device may touch only its own thing's shadows, so for a device's
requests the two are the same; an application sharing a shadow shares its 10.

Example::

    limiter = ThingRateLimiter(ShadowSettings(requests_per_second=2, burst=2))
    [limiter.allow("lock-1", now=0.0) for _ in range(3)]   # [True, True, False]
    in_flight = InFlightLimit(2)
    [in_flight.take("lock-1") for _ in range(3)]            # [True, True, False]
    in_flight.done("lock-1"); in_flight.take("lock-1")      # True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

from pervasive.config import ShadowSettings

__all__ = ["InFlightLimit", "ThingRateLimiter"]


class InFlightLimit:
    """At most ``limit`` requests per key taken and not yet answered (429 beyond)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._taken: Counter[Hashable] = Counter()

    def take(self, key: Hashable) -> bool:
        """Count one more request of ``key`` in flight; ``False`` (nothing counted) means 429.

        Example: ``if not in_flight.take(shadow_key): refuse(...)``.
        """
        if self._taken[key] >= self.limit:
            return False
        self._taken[key] += 1
        return True

    def done(self, key: Hashable) -> None:
        """``key``'s oldest request taken is answered (memory stays bounded by busy keys).

        Example: ``in_flight.done(shadow_key)`` once its answer is out.
        """
        self._taken[key] -= 1
        if self._taken[key] <= 0:
            del self._taken[key]

    def count(self, key: Hashable) -> int:
        """Requests of ``key`` in flight now.

        Example: ``in_flight.count(shadow_key)``.
        """
        return self._taken.get(key, 0)


class ThingRateLimiter:
    """Token bucket per thing; time is passed in, never read.

    Idle buckets (full again) are forgotten once more than ``max_tracked`` things
    are tracked, so memory stays bounded by the number of busy things.
    """

    def __init__(self, limits: ShadowSettings | None = None, *, max_tracked: int = 10_000) -> None:
        self._limits = limits or ShadowSettings()
        self._max_tracked = max_tracked
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, thing: str, *, now: float) -> bool:
        """Take one token from ``thing``'s bucket at time ``now``; ``False`` means 429.

        Example: ``limiter.allow("lock-1", now=clock())``.
        """
        rate, burst = self._limits.requests_per_second, float(self._limits.burst)
        tokens, last = self._buckets.get(thing, (burst, now))
        tokens = min(burst, tokens + max(0.0, now - last) * rate)
        allowed = tokens >= 1.0
        self._buckets[thing] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self._max_tracked:
            self._forget_idle(now)
        return allowed

    def _forget_idle(self, now: float) -> None:
        rate, burst = self._limits.requests_per_second, float(self._limits.burst)
        idle = [t for t, (tok, last) in self._buckets.items() if tok + (now - last) * rate >= burst]
        for thing in idle:
            del self._buckets[thing]
