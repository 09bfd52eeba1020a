"""Training and scoring jobs on slices of the real samples: every run recorded, scores written once per
(version, as-of) however often a chunk runs, and bad states refused with a clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db import Database
from core.errors import BadRequest, NotFound, TooManyRequests, ValidationFailed
from core.models import ModelKind, ModelStage, Prediction, RunStatus, TrainingRun
from core.settings import Settings
from ml import jobs, registry
from ml.monitoring import feature_drift
from tests.support.samples import load_slices

TRAIN_AS_OF = datetime(2026, 9, 1, tzinfo=UTC)
SCORE_AS_OF = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, ml_max_training_jobs_per_day=3)


@pytest.fixture
def telco(db: Database, tmp_path: Path) -> Database:
    load_slices(db, tmp_path, telco=400)
    return db


def _count(db: Database, model: type[Prediction] | type[TrainingRun]) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_training_registers_a_staging_version_and_records_a_succeeded_run(telco: Database, settings: Settings) -> None:
    trained = jobs.run_training(telco, settings, ModelKind.CHURN_CONTRACTUAL, as_of=TRAIN_AS_OF)

    assert (trained.version.version, trained.version.stage) == (1, ModelStage.STAGING)
    assert trained.version.training_window["customers"] == 400
    assert 0.5 < trained.version.metrics["roc_auc"] <= 1.0
    assert trained.plot is not None
    assert trained.plot.stat().st_size > 0
    with telco.session() as session:
        run = session.scalars(select(TrainingRun)).one()
        assert (run.status, run.model_version_id, run.error) == (RunStatus.SUCCEEDED, trained.version.id, None)


def test_a_failed_training_is_recorded_and_counts_against_the_limit(telco: Database, settings: Settings) -> None:
    too_early = datetime(2000, 1, 1, tzinfo=UTC)  # no Telco subscription had started

    for _ in range(3):
        with pytest.raises(ValidationFailed):
            jobs.run_training(telco, settings, ModelKind.CHURN_CONTRACTUAL, as_of=too_early)
    with pytest.raises(TooManyRequests, match="3 training runs started in the last 24 hours"):
        jobs.run_training(telco, settings, ModelKind.CHURN_CONTRACTUAL, as_of=TRAIN_AS_OF)

    with telco.session() as session:
        runs = session.scalars(select(TrainingRun)).all()
        assert [run.status for run in runs] == [RunStatus.FAILED] * 3
        assert all(run.error for run in runs)
        assert registry.list_versions(session) == []


def test_scoring_without_a_production_model_says_what_to_do(telco: Database) -> None:
    with pytest.raises(NotFound, match="no churn_contractual model in production"):
        jobs.run_scoring(telco, ModelKind.CHURN_CONTRACTUAL, as_of=SCORE_AS_OF)


def test_scoring_writes_one_score_per_active_subscriber_and_rescoring_replaces_them(
    telco: Database, settings: Settings
) -> None:
    trained = jobs.run_training(telco, settings, ModelKind.CHURN_CONTRACTUAL, as_of=TRAIN_AS_OF)
    with telco.session() as session:
        registry.promote(session, ModelKind.CHURN_CONTRACTUAL, trained.version.version)
    progress: list[tuple[int, int]] = []

    first = jobs.run_scoring(
        telco, ModelKind.CHURN_CONTRACTUAL, as_of=SCORE_AS_OF, chunk_size=150, progress=lambda *p: progress.append(p)
    )
    again = jobs.run_scoring(telco, ModelKind.CHURN_CONTRACTUAL, as_of=SCORE_AS_OF, chunk_size=150)

    active = 400 - trained.version.training_window["churners"]  # churners ended in September
    assert first.customers == again.customers == active
    assert _count(telco, Prediction) == active
    assert progress == [(1, 3), (2, 3), (3, 3)]
    with telco.session() as session:
        values = session.scalars(select(Prediction.value)).all()
    assert all(0.0 <= value <= 1.0 for value in values)


def test_a_backfill_beyond_the_limit_is_refused_before_scoring(telco: Database, settings: Settings) -> None:
    with pytest.raises(BadRequest, match="spans 400 days, more than the limit of 365"):
        jobs.run_backfill(
            telco,
            settings,
            ModelKind.CHURN_CONTRACTUAL,
            first=datetime(2025, 8, 27, tzinfo=UTC),
            last=SCORE_AS_OF,
        )
    assert _count(telco, Prediction) == 0


def test_drift_of_the_training_population_itself_is_nil(telco: Database, settings: Settings) -> None:
    trained = jobs.run_training(telco, settings, ModelKind.CHURN_CONTRACTUAL, as_of=TRAIN_AS_OF)
    with telco.session() as session:
        registry.promote(session, ModelKind.CHURN_CONTRACTUAL, trained.version.version)
        report = feature_drift(session, ModelKind.CHURN_CONTRACTUAL, TRAIN_AS_OF)

    assert max(result.psi for result in report.features) < 1e-9
    assert not report.retrain_recommended


def test_clv_trains_and_scores_buyers(db: Database, tmp_path: Path, settings: Settings) -> None:
    load_slices(db, tmp_path, cdnow=3000)
    as_of = datetime(1998, 7, 1, tzinfo=UTC)

    trained = jobs.run_training(db, settings, ModelKind.CLV, as_of=as_of)
    with db.session() as session:
        registry.promote(session, ModelKind.CLV, trained.version.version)
    scored = jobs.run_scoring(db, ModelKind.CLV, as_of=as_of)

    with db.session() as session:
        customers = session.scalar(select(func.count(func.distinct(Prediction.customer_id))))
        smallest = session.scalar(select(func.min(Prediction.value)))
    assert scored.customers == customers == trained.version.training_window["customers"]
    assert smallest is not None
    assert smallest >= 0.0
