"""Quiet-hours arithmetic in local time, exactly and as properties over every IANA zone and its daylight-saving
changes, and rolling frequency caps.

The properties: for any instant, zone and window, the next allowed instant is inside the window, is not before
the instant, and nothing allowed lies between (a scan every few minutes, plus the second just before it); an
instant inside the window is itself allowed. Instants are drawn both anywhere in 1970–2040 and within a day and
a half of the zone's own offset changes, where the arithmetic can go wrong.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.models import Channel, ConsentBasis, ConsentPurpose, ConsentStatus
from guardrails.jurisdictions import US_CONTINENTAL_ZONES
from guardrails.sendtime import ConsentRecord, Recipient, SendPolicy, Verdict, check_send
from guardrails.windows import FrequencyCap, LocalWindow, is_inside, next_inside

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
US_ZONES = tuple(ZoneInfo(name) for name in US_CONTINENTAL_ZONES)
ZONE_NAMES = sorted(available_timezones())
SCAN_STEP = timedelta(minutes=5)
# Derandomised so CI sees the same cases every run; the DST-targeted strategy is what finds the hard ones.
PROPERTY = settings(max_examples=400, deadline=None, database=None, derandomize=True)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- exact cases -----------------------------------------------------------------------------------


def test_a_window_must_start_before_it_ends() -> None:
    with pytest.raises(ValueError, match="start before it ends"):
        LocalWindow(time(21), time(8))
    with pytest.raises(ValueError, match="start before it ends"):
        LocalWindow(time(8), time(8))


def test_windows_and_caps_describe_themselves_for_the_reason_text() -> None:
    assert str(LocalWindow(time(8), time(20, 30))) == "08:00–20:30"
    assert [str(FrequencyCap(1, timedelta(hours=24))), str(FrequencyCap(4, timedelta(days=7)))] == [
        "1 per 24 h",
        "4 per 7 days",
    ]


def test_an_instant_inside_the_window_is_its_own_next_allowed_instant() -> None:
    ten_am = utc(2026, 6, 10, 14, 0)

    assert next_inside(ten_am, [NEW_YORK], LocalWindow(time(8), time(21))) == ten_am


def test_the_clock_going_back_can_reopen_a_window_the_same_night() -> None:
    # 25 October 2026: at 01:00 UTC London goes from 02:00 BST back to 01:00 GMT, inside 00:00–01:30 again.
    quarter_to_two_bst = utc(2026, 10, 25, 0, 45)

    assert next_inside(quarter_to_two_bst, [LONDON], LocalWindow(time(0), time(1, 30))) == utc(2026, 10, 25, 1, 0)


def test_the_us_continental_intersection_of_eight_to_nine_is_eleven_to_nine_eastern() -> None:
    window = LocalWindow(time(8), time(21))

    assert next_inside(utc(2026, 1, 15, 13, 0), US_ZONES, window) == utc(2026, 1, 15, 16, 0)  # 11:00 EST
    assert is_inside(utc(2026, 1, 16, 1, 59), US_ZONES, window)  # 20:59 EST
    assert not is_inside(utc(2026, 1, 16, 2, 0), US_ZONES, window)  # 21:00 EST


def test_zones_that_share_no_allowed_hour_have_no_next_instant() -> None:
    one_hour = LocalWindow(time(8), time(9))

    assert next_inside(utc(2026, 6, 10), [NEW_YORK, ZoneInfo("Asia/Tokyo")], one_hour) is None


def test_a_naive_instant_or_no_zone_is_refused() -> None:
    window = LocalWindow(time(8), time(21))

    with pytest.raises(ValueError, match="timezone-aware"):
        next_inside(datetime(2026, 6, 10), [NEW_YORK], window)
    with pytest.raises(ValueError, match="at least one time zone"):
        is_inside(utc(2026, 6, 10), [], window)


def test_a_cap_counts_sends_inside_its_rolling_window_only() -> None:
    cap = FrequencyCap(2, timedelta(hours=24))
    now = utc(2026, 6, 10, 12, 0)
    sends = [now - timedelta(hours=24), now - timedelta(hours=5), now - timedelta(hours=1)]

    assert cap.sends_in_window(sends, now) == 2
    assert cap.next_free(sends, now) == now + timedelta(hours=19)
    assert cap.next_free(sends[:2], now) == now


def test_a_send_stamped_after_now_counts_as_inside_the_window() -> None:
    cap = FrequencyCap(1, timedelta(hours=24))
    now = utc(2026, 6, 10, 12, 0)

    assert cap.next_free([now + timedelta(minutes=1)], now) == now + timedelta(hours=24, minutes=1)


def test_a_cap_needs_a_positive_limit_and_window() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FrequencyCap(0, timedelta(hours=24))
    with pytest.raises(ValueError, match="positive window"):
        FrequencyCap(1, timedelta(0))


# --- properties ------------------------------------------------------------------------------------


@cache
def offset_changes(zone_name: str, year: int) -> tuple[datetime, ...]:
    """Every instant in ``year`` at which ``zone_name`` changes its UTC offset, to the second."""
    zone, start = ZoneInfo(zone_name), utc(year, 1, 1)
    changes: list[datetime] = []
    previous = start.astimezone(zone).utcoffset()
    for hours in range(6, 366 * 24 + 1, 6):
        moment = start + timedelta(hours=hours)
        offset = moment.astimezone(zone).utcoffset()
        if offset != previous:
            changes.append(_first_second_with(zone, offset, moment - timedelta(hours=6), moment))
            previous = offset
    return tuple(changes)


def _first_second_with(zone: ZoneInfo, offset: timedelta | None, low: datetime, high: datetime) -> datetime:
    lo, hi = int(low.timestamp()), int(high.timestamp())
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
            hi = middle
        else:
            lo = middle
    return datetime.fromtimestamp(hi, UTC)


@st.composite
def zone_and_instant(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone and an instant: anywhere in 1970–2040, or within 36 hours of one of the zone's offset changes."""
    name = draw(st.sampled_from(ZONE_NAMES))
    if draw(st.booleans()):
        return ZoneInfo(name), draw(st.datetimes(datetime(1970, 1, 2), datetime(2040, 12, 30), timezones=st.just(UTC)))
    changes = offset_changes(name, draw(st.integers(1970, 2040)))
    base = draw(st.sampled_from(changes)) if changes else utc(2000, 3, 26, 1, 0)
    return ZoneInfo(name), base + timedelta(seconds=draw(st.integers(-36 * 3600, 36 * 3600)))


# Window edges near midnight and the small hours, where clocks change, turn up more often than chance would give.
_EDGE = st.one_of(st.integers(0, 1439), st.sampled_from([0, 1, 30, 59, 60, 90, 120, 150, 180, 210, 240, 1380, 1439]))


@st.composite
def windows(draw: st.DrawFn) -> LocalWindow:
    start, end = sorted(draw(st.lists(_EDGE, min_size=2, max_size=2, unique=True)))
    return LocalWindow(_clock(start), _clock(end))


def _clock(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def assert_earliest_allowed(now: datetime, zones: list[ZoneInfo], window: LocalWindow) -> None:
    until = next_inside(now, zones, window)

    assert until is not None
    assert until >= now
    assert is_inside(until, zones, window)
    moment = now
    while moment < until:  # nothing allowed before it, on a coarse scan …
        assert not is_inside(moment, zones, window), moment
        moment += SCAN_STEP
    before = until - timedelta(seconds=1)  # … nor the second just before it
    assert before < now or not is_inside(before, zones, window)


@PROPERTY
@given(zone_and_instant(), windows())
def test_the_next_allowed_instant_in_a_zone_is_inside_the_window_and_none_comes_earlier(
    zoned: tuple[ZoneInfo, datetime], window: LocalWindow
) -> None:
    zone, now = zoned
    assert_earliest_allowed(now, [zone], window)


@PROPERTY
@given(zone_and_instant(), windows())
def test_an_instant_inside_the_window_is_allowed_at_once(zoned: tuple[ZoneInfo, datetime], window: LocalWindow) -> None:
    zone, now = zoned
    inside = window.contains(now.astimezone(zone).time())

    assert is_inside(now, [zone], window) is inside
    assert (next_inside(now, [zone], window) == now) is inside


@PROPERTY
@given(st.datetimes(datetime(1970, 1, 2), datetime(2040, 12, 30), timezones=st.just(UTC)))
def test_without_a_zone_the_next_allowed_instant_is_inside_the_window_in_every_continental_us_zone(
    now: datetime,
) -> None:
    assert_earliest_allowed(now, list(US_ZONES), LocalWindow(time(8), time(21)))


@st.composite
def us_instants_near_changes(draw: st.DrawFn) -> datetime:
    changing = [name for name in US_CONTINENTAL_ZONES if name != "America/Phoenix"]  # Arizona keeps no DST
    changes = offset_changes(draw(st.sampled_from(changing)), draw(st.integers(1990, 2040)))
    return draw(st.sampled_from(changes)) + timedelta(seconds=draw(st.integers(-36 * 3600, 36 * 3600)))


@PROPERTY
@given(us_instants_near_changes(), st.sampled_from([LocalWindow(time(8), time(21)), LocalWindow(time(8), time(20))]))
def test_the_continental_us_intersection_holds_across_daylight_saving_changes(
    now: datetime, window: LocalWindow
) -> None:
    assert_earliest_allowed(now, list(US_ZONES), window)


TEXTER = Recipient(
    customer_id=1,
    channel=Channel.SMS,
    address="+447700900001",
    country="GB",
    region=None,
    time_zone=None,
    consent=ConsentRecord(
        ConsentStatus.GRANTED, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS_WRITTEN, datetime(1970, 1, 1, tzinfo=UTC)
    ),
)


@PROPERTY
@given(zone_and_instant(), windows().filter(lambda window: window.overlaps(LocalWindow(time(8), time(20)))))
def test_check_send_defers_a_text_to_an_instant_it_then_allows(
    zoned: tuple[ZoneInfo, datetime], window: LocalWindow
) -> None:
    zone, now = zoned
    recipient = replace(TEXTER, time_zone=zone.key)
    policy = SendPolicy(sms_window=window)

    decision = check_send(recipient, now, policy)

    if window.contains(now.astimezone(zone).time()):
        assert decision.verdict is Verdict.ALLOWED
    else:
        assert decision.verdict is Verdict.DEFERRED
        assert decision.until is not None
        assert decision.until > now
        assert check_send(recipient, decision.until, policy).verdict is Verdict.ALLOWED
