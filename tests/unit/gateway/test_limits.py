"""Per-device token buckets, driven by a hand-held clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.errors import InvalidInput
from pervasive.gateway.limits import RateLimiter, TokenBucket


def test_a_new_identity_gets_its_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=10.0, burst=5)
    assert limiter.grant("door-1", 3, now=0.0) == 3
    assert limiter.grant("door-1", 3, now=0.0) == 2  # the burst is spent: a batch is cut
    assert limiter.grant("door-1", 1, now=0.05) == 0
    assert limiter.retry_after("door-1") == 1
    assert limiter.grant("door-1", 1, now=0.1) == 1  # 10/s: one token per 0.1 s
    assert limiter.grant("door-1", 100, now=100.0) == 5  # never more than the burst


def test_identities_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate=1.0, burst=1)
    assert limiter.grant("door-1", 1, now=0.0) == 1
    assert limiter.grant("door-2", 1, now=0.0) == 1
    assert limiter.grant("door-1", 1, now=0.0) == 0
    assert limiter.retry_after("never-seen") == 0


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(InvalidInput):
        RateLimiter(rate=0.0, burst=1)
    with pytest.raises(InvalidInput):
        RateLimiter(rate=1.0, burst=0)


@given(
    st.floats(0.5, 1000.0),
    st.integers(1, 50),
    st.lists(st.tuples(st.floats(0.0, 2.0), st.integers(0, 30)), max_size=40),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[tuple[float, int]]
) -> None:
    bucket = TokenBucket(rate, burst, burst, 0.0)
    now, granted = 0.0, 0
    for pause, wanted in steps:
        now += pause
        got = bucket.take(wanted, now)
        assert 0 <= got <= wanted
        granted += got
        assert granted <= burst + rate * now + 1e-6
        assert 0.0 <= bucket.tokens <= burst


@given(
    st.floats(min_value=0.1, max_value=1000.0),
    st.integers(min_value=1, max_value=50),
    st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=2.0), st.integers(min_value=0, max_value=60)),
        max_size=40,
    ),
)
def test_the_limiter_grants_what_its_bucket_would(
    rate: float, burst: int, steps: list[tuple[float, int]]
) -> None:
    """RateLimiter.grant (inlined for the gateway's hot path) is TokenBucket.take."""
    limiter = RateLimiter(rate, burst)
    bucket = TokenBucket(float(rate), float(burst), float(burst), 0.0)
    now = 0.0
    for pause, wanted in steps:
        now += pause
        assert limiter.grant("door-1", wanted, now) == bucket.take(wanted, now)
