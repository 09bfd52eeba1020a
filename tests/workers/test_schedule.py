"""The beat schedule: the retention run on the configured cron (UTC), validated; per-minute backstops."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from celery.schedules import crontab

from core.errors import ValidationFailed
from core.settings import Settings
from workers.schedule import beat_schedule, parse_cron


def test_the_default_retention_cron_is_the_first_of_each_month_at_nine_utc() -> None:
    schedule = beat_schedule(Settings())

    retention = schedule["retention"]["schedule"]
    assert schedule["retention"]["task"] == "nudge.campaigns.run_retention"
    assert retention == crontab(minute="0", hour="9", day_of_month="1", month_of_year="*", day_of_week="*")
    assert (retention.minute, retention.hour, retention.day_of_month) == ({0}, {9}, {1})


def test_the_backstops_run_every_minute() -> None:
    schedule = beat_schedule(Settings())

    every_minute = {name: entry for name, entry in schedule.items() if entry["schedule"] == 60.0}
    assert {name: (entry["task"], entry["schedule"]) for name, entry in every_minute.items()} == {
        "start-due-campaigns": ("nudge.campaigns.start_due", 60.0),
        "reconcile-sends": ("nudge.campaigns.reconcile", 60.0),
        "abandoned-cart-scan": ("nudge.triggers.scan", 60.0),
        "provider-events": ("nudge.events.process", 60.0),
    }


def test_the_upkeep_runs_daily_at_night_utc() -> None:
    schedule = beat_schedule(Settings())

    daily = {name: schedule[name] for name in ("partitions-and-retention", "infrastructure-cost", "model-drift")}
    assert {name: entry["task"] for name, entry in daily.items()} == {
        "partitions-and-retention": "nudge.maintenance.partitions",
        "infrastructure-cost": "nudge.maintenance.infrastructure",
        "model-drift": "nudge.maintenance.drift",
    }
    assert all(len(entry["schedule"].hour) == 1 and len(entry["schedule"].minute) == 1 for entry in daily.values())


def test_a_cron_with_ranges_steps_and_weekdays_is_read_field_by_field() -> None:
    cron = parse_cron("*/15 8-17 * 1,7 mon-fri")

    assert (cron.minute, cron.hour, cron.month_of_year, cron.day_of_week) == (
        {0, 15, 30, 45},
        set(range(8, 18)),
        {1, 7},
        {1, 2, 3, 4, 5},
    )


def test_the_next_retention_run_is_computed_in_utc() -> None:
    cron = parse_cron("0 9 1 * *")
    cron.nowfun = lambda: datetime(2026, 3, 15, 12, 0, tzinfo=UTC)

    due, seconds = cron.is_due(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))

    assert due is False
    assert (
        seconds == (datetime(2026, 4, 1, 9, 0, tzinfo=UTC) - datetime(2026, 3, 15, 12, 0, tzinfo=UTC)).total_seconds()
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "0 9 1 *",
            "NUDGE_RETENTION_SCHEDULE must be a 5-field cron expression (minute hour day month weekday), got '0 9 1 *'",
        ),
        ("0 9 1 * * 2026", "must be a 5-field cron expression"),
        ("", "must be a 5-field cron expression"),
        ("61 9 1 * *", "NUDGE_RETENTION_SCHEDULE '61 9 1 * *' is not a valid cron: Invalid end range: 61 > 59."),
        ("0 9 1 * funday", "is not a valid cron: Invalid weekday literal 'funday'."),
    ],
)
def test_an_invalid_retention_cron_fails_clearly(expression: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=re.escape(message)):
        beat_schedule(Settings(retention_schedule=expression))
