"""Hard limits on ML jobs, enforced in code with a clear error before any work starts.

- **Training jobs per period**: at most ``max_per_day`` training runs of any kind may start in any
  trailing 24 hours. Every attempt is recorded as a ``TrainingRun`` (failed ones too), so retrying a
  failing job in a loop still hits the limit.
- **Backfill window**: one scoring backfill (re-scoring a range of past as-of dates) may span at most
  ``max_days`` days, which bounds the rows and the time a single command can produce.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.errors import BadRequest, TooManyRequests
from core.models import ModelKind, RunStatus, TrainingRun

TRAINING_PERIOD = timedelta(hours=24)


def start_training_run(
    session: Session, kind: ModelKind, *, max_per_day: int, now: datetime | None = None
) -> TrainingRun:
    """Record a new training run, or refuse with ``TooManyRequests`` if the limit for the period is reached."""
    now = now or utcnow()
    since = now - TRAINING_PERIOD
    started = session.scalar(select(func.count()).select_from(TrainingRun).where(TrainingRun.started_at > since)) or 0
    if started >= max_per_day:
        raise TooManyRequests(
            f"training limit reached: {started} training runs started in the last 24 hours "
            f"(NUDGE_ML_MAX_TRAINING_JOBS_PER_DAY={max_per_day}); try again later or raise the limit"
        )
    run = TrainingRun(kind=kind, status=RunStatus.RUNNING, started_at=now)
    session.add(run)
    session.flush()
    return run


def finish_training_run(run: TrainingRun, *, model_version_id: int | None = None, error: str | None = None) -> None:
    run.status = RunStatus.FAILED if error else RunStatus.SUCCEEDED
    run.finished_at = utcnow()
    run.model_version_id = model_version_id
    run.error = error


def check_backfill(first_as_of: datetime, last_as_of: datetime, *, max_days: int) -> None:
    """Refuse a backfill whose as-of dates span more than ``max_days`` days, or run backwards."""
    if last_as_of < first_as_of:
        raise BadRequest(f"the backfill ends ({last_as_of:%Y-%m-%d}) before it starts ({first_as_of:%Y-%m-%d})")
    span = (last_as_of - first_as_of).days
    if span > max_days:
        raise BadRequest(
            f"the backfill spans {span} days, more than the limit of {max_days} "
            f"(NUDGE_ML_MAX_BACKFILL_DAYS); split it into smaller ranges"
        )
