"""Hard limits refuse work before it starts, with an error naming the limit and the setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.db import Database
from core.errors import BadRequest, TooManyRequests
from core.models import ModelKind, RunStatus, TrainingRun
from ml.limits import check_backfill, finish_training_run, start_training_run

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_training_runs_beyond_the_daily_limit_are_refused_and_not_recorded(db: Database) -> None:
    with db.session() as session:
        first = start_training_run(session, ModelKind.CHURN_CONTRACTUAL, max_per_day=2, now=NOW - timedelta(hours=23))
        finish_training_run(first, error="boom")
        start_training_run(session, ModelKind.CLV, max_per_day=2, now=NOW)

        with pytest.raises(TooManyRequests, match=r"2 training runs started in the last 24 hours.*=2"):
            start_training_run(session, ModelKind.CHURN_CONTRACTUAL, max_per_day=2, now=NOW)

        assert session.scalar(select(func.count()).select_from(TrainingRun)) == 2
        assert first.status is RunStatus.FAILED


def test_runs_older_than_a_day_do_not_count(db: Database) -> None:
    with db.session() as session:
        start_training_run(session, ModelKind.CHURN_CONTRACTUAL, max_per_day=1, now=NOW - timedelta(hours=25))

        run = start_training_run(session, ModelKind.CHURN_CONTRACTUAL, max_per_day=1, now=NOW)

        assert run.status is RunStatus.RUNNING


def test_a_backfill_longer_than_the_limit_is_refused() -> None:
    check_backfill(NOW - timedelta(days=30), NOW, max_days=30)
    with pytest.raises(BadRequest, match="spans 31 days, more than the limit of 30"):
        check_backfill(NOW - timedelta(days=31), NOW, max_days=30)
    with pytest.raises(BadRequest, match=r"ends .* before it starts"):
        check_backfill(NOW, NOW - timedelta(days=1), max_days=30)
