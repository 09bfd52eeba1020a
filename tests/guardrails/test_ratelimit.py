"""The limit on triggered sends per second: a token bucket that admits a burst up to its capacity, then one
send per 1/rate seconds, and says how long to wait instead of admitting more (on a fake clock)."""

from __future__ import annotations

import pytest

from core.errors import BadRequest
from core.settings import Settings
from guardrails.ratelimit import Admission, SendRateLimiter, TokenBucket, send_rate_limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_admits_a_burst_up_to_its_capacity_then_asks_to_wait() -> None:
    bucket = TokenBucket(rate=4, capacity=4, clock=FakeClock())

    admitted = [bucket.try_acquire() for _ in range(4)]
    refused = bucket.try_acquire()

    assert admitted == [Admission(allowed=True)] * 4
    assert refused == Admission(allowed=False, retry_after=0.25)


def test_the_bucket_refills_at_the_rate_and_never_beyond_its_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, capacity=4, clock=clock)
    for _ in range(4):
        bucket.try_acquire()

    clock.now += 0.5  # two sends' worth
    after_half_a_second = [bucket.try_acquire() for _ in range(3)]
    clock.now += 60  # refills to 4, not 240
    after_a_minute = [bucket.try_acquire().allowed for _ in range(5)]

    assert after_half_a_second == [Admission(True), Admission(True), Admission(False, 0.25)]
    assert after_a_minute == [True, True, True, True, False]


def test_a_refused_attempt_takes_nothing_from_the_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, capacity=2, clock=clock)
    bucket.try_acquire(2)

    refusals = [bucket.try_acquire() for _ in range(3)]
    clock.now += 0.5

    assert refusals == [Admission(False, 0.5)] * 3
    assert bucket.try_acquire() == Admission(True)


def test_several_sends_are_admitted_together_or_not_at_all() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=10, clock=clock)
    bucket.try_acquire(8)

    assert bucket.try_acquire(3) == Admission(False, 0.1)
    assert bucket.try_acquire(2) == Admission(True)


@pytest.mark.parametrize("sends", [0, 11])
def test_a_batch_that_could_never_be_admitted_is_an_error(sends: int) -> None:
    bucket = TokenBucket(rate=10, capacity=10, clock=FakeClock())

    with pytest.raises(BadRequest, match="between 1 and 10"):
        bucket.try_acquire(sends)


def test_the_configured_limiter_allows_one_seconds_worth_at_once() -> None:
    clock = FakeClock()
    limiter: SendRateLimiter = send_rate_limiter(Settings(triggered_send_max_per_second=5), clock=clock)

    assert [limiter.try_acquire().allowed for _ in range(6)] == [True] * 5 + [False]
    assert repr(limiter) == "TokenBucket(rate=5.0, capacity=5.0)"


def test_a_rate_below_one_per_second_still_admits_a_single_send() -> None:
    clock = FakeClock()
    limiter = send_rate_limiter(Settings(triggered_send_max_per_second=0.5), clock=clock)

    assert [limiter.try_acquire() for _ in range(2)] == [Admission(True), Admission(False, 2.0)]
