"""The per-thing rate limiter of the shadow service (sans-I/O).

The limits themselves are the ``[shadow]`` settings (:class:`pervasive.config.ShadowSettings`).
Their defaults follow the AWS IoT Device Shadow quotas: 8 KB of ``desired`` + ``reported``
(metadata not counted), 6 levels of nesting inside a section, a 64-byte client
token, 128 KB MQTT payloads, 20 requests per second per thing, and a deleted
shadow's version kept for 48 hours.

Example::

    limiter = ThingRateLimiter(ShadowSettings(requests_per_second=2, burst=2))
    [limiter.allow("lock-1", now=0.0) for _ in range(3)]   # [True, True, False]
"""

from __future__ import annotations

from pervasive.config import ShadowSettings

__all__ = ["ThingRateLimiter"]


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
