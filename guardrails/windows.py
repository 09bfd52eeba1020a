"""Sending windows: local-time quiet hours and rolling frequency caps, the time arithmetic of the send-time checks.

Everything here is pure and works on timezone-aware datetimes; results are in UTC. Local wall-clock time comes from
``zoneinfo``. To find the next allowed instant the clock is followed from one UTC-offset change to the next: between
two changes the wall clock runs evenly, so where it next shows the window's start is plain arithmetic. That is why a
start that does not exist on a spring-forward day gives the instant of the change (the first moment the wall clock
is past the start), and a start that happens twice on a fall-back day gives the first occurrence still ahead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

# Offset changes (per zone) or rounds over the zones before giving up; real zones need one to three.
_MAX_STEPS = 64


@dataclass(frozen=True, slots=True)
class LocalWindow:
    """Local wall-clock hours in which sending is allowed: ``start`` inclusive, ``end`` exclusive, within one day."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("a sending window is in local wall-clock time: give naive times")
        if self.start >= self.end:
            raise ValueError(f"a sending window must start before it ends, within one day: {self}")

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    def contains(self, wall: time) -> bool:
        return self.start <= wall < self.end

    def overlaps(self, other: LocalWindow) -> bool:
        return max(self.start, other.start) < min(self.end, other.end)

    def narrowed(self, other: LocalWindow) -> LocalWindow:
        """The hours inside both windows (raises ``ValueError`` if they do not overlap)."""
        return LocalWindow(max(self.start, other.start), min(self.end, other.end))


def is_inside(instant: datetime, zones: Sequence[tzinfo], window: LocalWindow) -> bool:
    """True when the local time at ``instant`` is inside ``window`` in every one of ``zones``.

    Parameters
    ----------
    instant
        A timezone-aware moment.
    zones
        The recipient's zone, or every zone the recipient may be in (at least one).
    window
        The allowed local hours.
    """
    _require(instant, zones)
    return all(window.contains(instant.astimezone(zone).time()) for zone in zones)


def next_inside(instant: datetime, zones: Sequence[tzinfo], window: LocalWindow) -> datetime | None:
    """The earliest instant at or after ``instant`` that is inside ``window`` in every one of ``zones``, in UTC.

    ``instant`` itself when it is inside already. ``None`` only when the zones share no allowed hour (their
    offsets differ by more than the window is long), so the caller can refuse instead of waiting forever.
    """
    _require(instant, zones)
    candidate = instant.astimezone(UTC)
    for _ in range(_MAX_STEPS):
        # Each zone's next allowed instant is a lower bound for all of them together; repeat until they agree.
        per_zone = [_next_inside_zone(candidate, zone, window) for zone in zones]
        if any(found is None for found in per_zone):
            return None
        later = max(found for found in per_zone if found is not None)
        if later == candidate:
            return candidate
        candidate = later
    return None


def _require(instant: datetime, zones: Sequence[tzinfo]) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"a send-time check needs a timezone-aware instant, not {instant!r}")
    if not zones:
        raise ValueError("at least one time zone is needed")


def _next_inside_zone(instant: datetime, zone: tzinfo, window: LocalWindow) -> datetime | None:
    candidate = instant
    for _ in range(_MAX_STEPS):
        local = candidate.astimezone(zone)
        if window.contains(local.time()):
            return candidate
        offset = local.utcoffset()
        assert offset is not None  # an aware datetime converted to a zone always has one
        # Were the offset to hold, the wall clock would next show the window's start at this instant.
        day = local.date() if local.time() < window.start else local.date() + timedelta(days=1)
        start = datetime.combine(day, window.start, tzinfo=UTC) - offset
        change = _offset_change(candidate, start, zone, offset)
        if change is None:
            return start
        candidate = change  # the wall clock jumps here: look again from the jump
    return None


def _offset_change(after: datetime, until: datetime, zone: tzinfo, offset: timedelta) -> datetime | None:
    """The first instant in (``after``, ``until``] whose UTC offset in ``zone`` is not ``offset``, or ``None``.

    Assumes at most one change in between: the span is at most a day, and no zone since 1970 changes its offset
    twice within a day. The tz database puts every change on a whole second, so the search runs on seconds.
    """
    if until.astimezone(zone).utcoffset() == offset:
        return None
    low, high = math.floor(after.timestamp()), math.ceil(until.timestamp())
    while high - low > 1:  # offset at ``low`` is ``offset``, at ``high`` it is not
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most ``limit`` sends in any rolling ``window``; a send made exactly ``window`` ago has left it."""

    limit: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= timedelta(0):
            raise ValueError(f"a frequency cap needs a limit of at least 1 and a positive window: {self!r}")

    def __str__(self) -> str:
        hours = self.window / timedelta(hours=1)
        span = f"{hours / 24:g} days" if hours >= 48 and hours % 24 == 0 else f"{hours:g} h"
        return f"{self.limit} per {span}"

    def sends_in_window(self, sends: Sequence[datetime], at: datetime) -> int:
        cutoff = at - self.window
        return sum(1 for sent in sends if sent > cutoff)

    def next_free(self, sends: Sequence[datetime], at: datetime) -> datetime:
        """``at`` if one more send fits under the cap, else the instant enough sends have left the window.

        Sends later than ``at`` (clock skew between workers) count as inside the window.
        """
        cutoff = at - self.window
        inside = sorted((sent for sent in sends if sent > cutoff), reverse=True)
        if len(inside) < self.limit:
            return at
        # Once the limit-th most recent send leaves the window, only limit - 1 remain in it.
        return (inside[self.limit - 1] + self.window).astimezone(UTC)
