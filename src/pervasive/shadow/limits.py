"""The limits of the shadow service and the per-thing rate limiter (sans-I/O).

Defaults follow the AWS IoT Device Shadow quotas: 8 KB of ``desired`` + ``reported``
(metadata not counted), 6 levels of nesting inside a section, a 64-byte client
token, 128 KB MQTT payloads, 20 requests per second per thing, and a deleted
shadow's version kept for 48 hours.

Example::

    limiter = ThingRateLimiter(ShadowLimits(requests_per_second=2, burst=2))
    [limiter.allow("lock-1", now=0.0) for _ in range(3)]   # [True, True, False]
"""

from __future__ import annotations

from dataclasses import dataclass

from pervasive.errors import ConfigError

__all__ = ["ShadowLimits", "ThingRateLimiter"]


@dataclass(frozen=True)
class ShadowLimits:
    """Every bound the shadow service enforces."""

    max_state_bytes: int = 8192
    """Compact JSON size of the stored ``desired`` + ``reported`` sections (413 beyond)."""

    max_depth: int = 6
    """Levels of objects/arrays in a ``desired`` or ``reported`` section, itself included."""

    max_client_token_bytes: int = 64
    """UTF-8 bytes of a ``clientToken`` (400 *Invalid clientToken* beyond)."""

    max_payload_bytes: int = 128 * 1024
    """Raw MQTT payload of a request; larger ones are refused before parsing (413)."""

    max_thing_name_bytes: int = 128
    """Thing names: ``[a-zA-Z0-9:_-]``, 1 to this many bytes."""

    max_shadow_name_bytes: int = 64
    """Named-shadow names: ``[a-zA-Z0-9:_-]``, 1 to this many bytes."""

    requests_per_second: float = 20.0
    """Sustained requests per thing (all shadows and operations together); 429 beyond."""

    burst: int = 20
    """Requests a thing may send at once before the rate applies."""

    version_retention_seconds: float = 48 * 3600
    """A shadow recreated within this time after deletion continues the old version."""

    def __post_init__(self) -> None:
        if self.requests_per_second <= 0 or self.burst < 1:
            raise ConfigError("shadow rate limit needs requests_per_second > 0 and burst >= 1")
        if self.max_depth < 1 or self.max_state_bytes < 2:
            raise ConfigError("shadow limits need max_depth >= 1 and max_state_bytes >= 2")


class ThingRateLimiter:
    """Token bucket per thing; time is passed in, never read.

    Idle buckets (full again) are forgotten once more than ``max_tracked`` things
    are tracked, so memory stays bounded by the number of busy things.
    """

    def __init__(self, limits: ShadowLimits | None = None, *, max_tracked: int = 10_000) -> None:
        self._limits = limits or ShadowLimits()
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
