"""A hard limit on real-time (triggered) sends per second, as a token bucket.

The interface is ``SendRateLimiter``: ``try_acquire(sends)`` either admits the sends now (and counts them)
or says how long to wait before asking again (and counts nothing). A caller that must wait sleeps, or
re-schedules itself (a Celery retry with that countdown): a rate limit delays a triggered send, never drops it.

``TokenBucket`` is the in-process implementation: thread-safe, for the processes of one machine each
holding its own limit. A Redis-backed limiter with the same interface (the bucket's level and time in one
hash, refilled and taken from by one Lua script, so every worker shares one limit) comes with the Workers issue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from core.errors import BadRequest
from core.settings import Settings


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether sends may go now; if not, ``retry_after`` seconds until they could."""

    allowed: bool
    retry_after: float = 0.0


class SendRateLimiter(Protocol):
    def try_acquire(self, sends: int = 1) -> Admission:
        """Admit ``sends`` now and count them, or count nothing and say how long to wait."""
        ...


class TokenBucket:
    """A bucket of ``capacity`` send tokens refilled at ``rate`` per second; each send takes one.

    Parameters
    ----------
    rate : float
        Sends per second in the long run.
    capacity : float
        The largest burst; the bucket starts full.
    clock : callable, optional
        Monotonic seconds; tests pin it.
    """

    def __init__(self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity < 1:
            raise BadRequest(f"a send rate limit needs rate > 0 and capacity ≥ 1, not {rate} and {capacity}")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate!r}, capacity={self.capacity!r})"

    def try_acquire(self, sends: int = 1) -> Admission:
        """Take ``sends`` tokens if the bucket holds them.

        Parameters
        ----------
        sends : int
            How many sends to admit together; between 1 and ``capacity``.

        Returns
        -------
        Admission
            ``allowed`` with the tokens taken, or ``retry_after`` = the seconds until enough have refilled.

        Raises
        ------
        core.errors.BadRequest
            ``sends`` is below 1 or above ``capacity``, so it could never be admitted.
        """
        if not 1 <= sends <= self.capacity:
            raise BadRequest(f"cannot admit {sends} sends at once: between 1 and {self.capacity}")
        with self._lock:
            self._refill()
            if self._tokens >= sends:
                self._tokens -= sends
                return Admission(allowed=True)
            return Admission(allowed=False, retry_after=(sends - self._tokens) / self.rate)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now


def send_rate_limiter(settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> SendRateLimiter:
    """The configured limit on triggered sends: ``NUDGE_TRIGGERED_SEND_MAX_PER_SECOND``, bursts of one second's worth.

    Parameters
    ----------
    settings : Settings
        The rate.
    clock : callable, optional
        Monotonic seconds; tests pin it.

    Returns
    -------
    SendRateLimiter
        An in-process ``TokenBucket`` (a shared, Redis-backed one comes with the Workers issue).
    """
    rate = settings.triggered_send_max_per_second
    return TokenBucket(rate, max(1.0, rate), clock=clock)
