"""The beat schedule: what runs on the clock.

- ``nudge.campaigns.run_retention`` on ``NUDGE_RETENTION_SCHEDULE`` (a 5-field cron, UTC);
- ``nudge.campaigns.start_due`` every minute: scheduled campaigns whose time has come start sending;
- ``nudge.campaigns.reconcile`` every minute: messages a dead worker left in flight are settled, and sent
  again when the provider never had them (``campaigns.reconcile``);
- ``nudge.triggers.scan`` every minute: the backstop for carts whose own check was never enqueued or lost;
- ``nudge.events.process`` every minute: the backstop for webhook events whose task was not sent (the
  broker was down when the request committed) or failed for good;
- daily upkeep (``workers.maintenance``): partitions and retention at 02:15, the infrastructure cost estimate at
  00:05, model drift at 03:30 (UTC).
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from core.errors import ValidationFailed
from core.settings import Settings
from workers.app import (
    BOOK_INFRASTRUCTURE,
    MAINTAIN_PARTITIONS,
    MEASURE_DRIFT,
    PROCESS_EVENTS,
    RECONCILE_SENDS,
    RUN_RETENTION,
    SCAN_CARTS,
    START_DUE,
)

EVERY_MINUTE = 60.0
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def parse_cron(expression: str) -> crontab:
    """A Celery ``crontab`` from a standard 5-field cron expression (minute hour day month weekday).

    Raises
    ------
    ValidationFailed
        The expression does not have 5 fields, or a field is out of range or malformed.
    """
    fields = expression.split()
    if len(fields) != len(CRON_FIELDS):
        raise ValidationFailed(
            f"NUDGE_RETENTION_SCHEDULE must be a 5-field cron expression (minute hour day month weekday), "
            f"got {expression!r}"
        )
    try:
        return crontab(**dict(zip(CRON_FIELDS, fields, strict=True)))
    except ValueError as error:
        raise ValidationFailed(f"NUDGE_RETENTION_SCHEDULE {expression!r} is not a valid cron: {error}") from error


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The beat schedule for ``settings``; an invalid retention cron fails here, when beat starts."""
    return {
        "retention": {"task": RUN_RETENTION, "schedule": parse_cron(settings.retention_schedule)},
        "start-due-campaigns": {"task": START_DUE, "schedule": EVERY_MINUTE},
        "reconcile-sends": {"task": RECONCILE_SENDS, "schedule": EVERY_MINUTE},
        "abandoned-cart-scan": {"task": SCAN_CARTS, "schedule": EVERY_MINUTE},
        "provider-events": {"task": PROCESS_EVENTS, "schedule": EVERY_MINUTE},
        "partitions-and-retention": {"task": MAINTAIN_PARTITIONS, "schedule": crontab(minute=15, hour=2)},
        "infrastructure-cost": {"task": BOOK_INFRASTRUCTURE, "schedule": crontab(minute=5, hour=0)},
        "model-drift": {"task": MEASURE_DRIFT, "schedule": crontab(minute=30, hour=3)},
    }
