"""Per-device rate limits: a token bucket per identity.

Paper 004 section 5.5.2 puts the proxy in front of the node "as a line of defense ...
against attacks such as DDoS". Each identity may make ``rate`` calls per second on
average and ``burst`` at once; every call counts, the calls of a batch one by one, and
refused calls too (they cost the gateway work all the same). Sans I/O: the clock is
passed in, so tests drive time by hand.

Example::

    limiter = RateLimiter(rate=200.0, burst=400)
    granted = limiter.grant("lock-7", 3, now=time.monotonic())   # 3: all three may go
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pervasive.errors import InvalidInput

__all__ = ["RateLimiter", "TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; a call takes one."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, wanted: int, now: float) -> int:
        """Take up to ``wanted`` whole tokens at time ``now``; return how many were taken.

        Example: ``TokenBucket(10, 5, 5, 0.0).take(7, now=0.0) == 5``.
        """
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted

    def wait(self) -> float:
        """Seconds until the next whole token (0 when one is there).

        Example: ``bucket.wait()`` after an empty ``take`` says when to retry.
        """
        missing = 1.0 - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate


class RateLimiter:
    """One :class:`TokenBucket` per identity, created full on its first call.

    Example: ``RateLimiter(200.0, 400).grant("lock-7", 1, now=loop.time())``.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if not rate > 0 or burst < 1:
            raise InvalidInput(f"a rate limit needs rate > 0 and burst >= 1, not {rate}/{burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._buckets: dict[str, TokenBucket] = {}

    def grant(self, identity: str, wanted: int, now: float) -> int:
        """How many of ``wanted`` calls ``identity`` may make at ``now`` (the first ones)."""
        bucket = self._buckets.get(identity)
        if bucket is None:
            bucket = self._buckets[identity] = TokenBucket(self.rate, self.burst, self.burst, now)
        # TokenBucket.take, inlined: this runs for every request the gateway serves
        tokens = bucket.tokens
        elapsed = now - bucket.updated
        if elapsed > 0:
            tokens += elapsed * bucket.rate
            tokens = min(tokens, bucket.burst)
            bucket.updated = now
        granted = wanted if tokens >= wanted else int(tokens)
        bucket.tokens = tokens - granted
        return granted

    def retry_after(self, identity: str) -> int:
        """Whole seconds ``identity`` should wait before its next call (``Retry-After``)."""
        bucket = self._buckets.get(identity)
        return 0 if bucket is None else math.ceil(bucket.wait())
