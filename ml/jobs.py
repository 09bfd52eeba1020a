"""ML jobs: the units the CLI runs today and Celery workers will run later. A job owns its transactions.

- ``run_training``: records a ``TrainingRun`` first, in its own transaction, so the hard limit on
  training jobs counts failed attempts too; trains and registers in a second; marks the run
  succeeded or failed in a third.
- ``run_scoring``: scores every customer with a production model, one transaction per chunk of
  customer ids (a chunk is the unit a worker will take), reporting progress after each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from core.clock import as_utc
from core.db import Database
from core.errors import NudgeError
from core.models import ModelKind, ModelVersion, TrainingRun
from core.settings import Settings
from ml import registry, scoring, training
from ml.churn import ChurnModel
from ml.clv import ClvModel
from ml.limits import check_backfill, finish_training_run, start_training_run
from ml.snapshots import feature_snapshot
from ml.training import FAMILIES, Trained

Progress = Callable[[int, int], None]  # (chunks done, chunks in all)


def run_training(
    db: Database,
    settings: Settings,
    kind: ModelKind,
    *,
    as_of: datetime,
    horizon_days: int | None = None,
    now: datetime | None = None,
) -> Trained:
    """Train a model of ``kind`` as of ``as_of`` under the training limit; the run is recorded either way."""
    with db.session() as session:
        run_id = start_training_run(session, kind, max_per_day=settings.ml_max_training_jobs_per_day).id
    try:
        with db.session() as session:
            trained = _train(session, settings.models_path, kind, as_of, horizon_days, now)
            version_id = trained.version.id
    except NudgeError as error:
        _finish(db, run_id, error=error.message)
        raise
    except Exception as error:
        _finish(db, run_id, error=f"{type(error).__name__}: {error}")
        raise
    _finish(db, run_id, version_id=version_id)
    return trained


def _train(
    session: Session, models_path: Path, kind: ModelKind, as_of: datetime, horizon: int | None, now: datetime | None
) -> Trained:
    if kind is ModelKind.CLV:
        return training.train_clv(session, as_of=as_of, models_path=models_path)
    return training.train_churn(session, kind, as_of=as_of, models_path=models_path, horizon_days=horizon, now=now)


def _finish(db: Database, run_id: int, *, version_id: int | None = None, error: str | None = None) -> None:
    with db.session() as session:
        run = session.get_one(TrainingRun, run_id)
        finish_training_run(run, model_version_id=version_id, error=error)


@dataclass(frozen=True, slots=True)
class Scored:
    kind: ModelKind
    version: int
    as_of: datetime
    customers: int


def run_scoring(
    db: Database,
    kind: ModelKind,
    *,
    as_of: datetime,
    chunk_size: int = scoring.CHUNK_SIZE,
    progress: Progress | None = None,
) -> Scored:
    """Score every customer in the production ``kind`` model's population as of ``as_of``, chunk by chunk."""
    with db.session() as session:
        version = registry.production(session, kind)
        registry.verify_artifact(version)
        scorer = chunk_scorer(version)
        ranges = list(scoring.id_ranges(session, chunk_size))
    written = 0
    for done, ids in enumerate(ranges, start=1):
        with db.session() as session:
            written += scoring.score_chunk(session, version, as_utc(as_of), ids, scorer)
        if progress:
            progress(done, len(ranges))
    return Scored(kind, version.version, as_utc(as_of), written)


def run_backfill(
    db: Database,
    settings: Settings,
    kind: ModelKind,
    *,
    first: datetime,
    last: datetime,
    step_days: int = 7,
    progress: Progress | None = None,
) -> list[Scored]:
    """Score every ``step_days`` from ``first`` to ``last`` (inclusive), within the backfill limit."""
    check_backfill(first, last, max_days=settings.ml_max_backfill_days)
    moments = [first + timedelta(days=days) for days in range(0, (last - first).days + 1, step_days)]
    return [run_scoring(db, kind, as_of=moment, progress=progress) for moment in moments]


def chunk_scorer(version: ModelVersion) -> scoring.ChunkScorer:
    """How a production version scores one chunk: its population's customers and their scores."""
    directory = Path(version.artifact_path)
    if version.kind is ModelKind.CLV:
        clv_model = ClvModel.load(directory)

        def score_clv(session: Session, as_of: datetime, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            predicted = clv_model.predict(training.clv_orders(session, as_of, ids.tolist()), as_of - timedelta(days=1))
            return predicted["customer_id"].to_numpy(np.int64), predicted["clv"].to_numpy(np.float64)

        return score_clv
    churn_model = ChurnModel.load(directory)
    families = (*FAMILIES[version.kind], *training.POPULATION_FAMILIES)

    def score_churn(session: Session, as_of: datetime, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frame = feature_snapshot(session, as_of, ids.tolist(), set(families))
        population = frame[training.in_population(version.kind, frame)]
        return population.index.to_numpy(np.int64), churn_model.predict_proba(population)

    return score_churn
