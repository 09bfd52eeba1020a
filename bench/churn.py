"""Benchmark: the churn model on the real samples, loaded into a fresh SQLite file.

- Telco (contractual; as of 2026-09-01, churn within 30 days: 7,032 customers, all 1,869 churners):
  snapshot time, fit time on every labelled customer, stratified 5-fold CV (mean ± std over folds);
- CDNOW (non-contractual; no order within H days): train as of one date, test as of a later one
  whose window does not overlap, against a logistic regression on log-recency alone;
- scoring throughput: ``predict_proba`` over 1,000,000 rows resampled from the Telco feature frame,
  best of 3.

``--plots DIR`` also writes reliability diagrams. Not a test: it prints figures (``make bench``).

    .venv/bin/python bench/churn.py [--plots var/bench]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audience.samples import Sample, load_sample  # noqa: E402
from core import migrate  # noqa: E402
from core.db import Database  # noqa: E402
from ml.churn import (  # noqa: E402
    ChurnConfig,
    ChurnModel,
    CrossValidation,
    Metrics,
    cross_validate_stratified,
    reliability_table,
    time_split_validate,
)
from ml.plots import reliability_diagram  # noqa: E402
from ml.snapshots import ChurnKind, Family, LabelledSnapshot, churn_snapshot  # noqa: E402

Result = TypeVar("Result")
TELCO_AS_OF = datetime(2026, 9, 1, tzinfo=UTC)
TELCO_HORIZON = 30
# (train as-of, test as-of, horizon days): each training window ends before its test as-of.
CDNOW_SPLITS = (
    (datetime(1997, 10, 1, tzinfo=UTC), datetime(1998, 1, 1, tzinfo=UTC), 90),
    (datetime(1997, 7, 1, tzinfo=UTC), datetime(1998, 1, 1, tzinfo=UTC), 181),  # 1998-01-01 + 181 d = end of data
)
SCORED_ROWS = 1_000_000


def timed(work: Callable[..., Result], *args: Any) -> tuple[Result, float]:
    started = time.perf_counter()
    result = work(*args)
    return result, time.perf_counter() - started


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--plots", type=Path, help="write reliability diagrams here")
    plots: Path | None = arguments.parse_args().plots
    with tempfile.TemporaryDirectory(prefix="nudge-bench-") as directory:
        database = Database.from_url(f"sqlite:///{directory}/nudge.db")
        migrate.upgrade(database.engine)
        with database.session() as session:
            load_sample(session, Sample.TELCO)
            load_sample(session, Sample.CDNOW)
        print(f"Telco: contractual churn within {TELCO_HORIZON} days, logistic regression (signed-log numerics)")
        telco = bench_telco(database, TELCO_AS_OF, plots)
        print("CDNOW: non-contractual churn (no order in the window), order features only")
        for split in CDNOW_SPLITS:
            bench_cdnow(database, *split)
        bench_scoring(telco)
        database.dispose()


def bench_telco(database: Database, as_of: datetime, plots: Path | None) -> LabelledSnapshot:
    with database.session() as session:
        families = (Family.SUBSCRIPTIONS, Family.PROFILE)
        snapshot, seconds = timed(churn_snapshot, session, as_of, TELCO_HORIZON, ChurnKind.CONTRACTUAL, families)
    config = ChurnConfig(horizon_days=TELCO_HORIZON)
    _, fit_seconds = timed(ChurnModel(config).fit, snapshot.features, snapshot.labels)
    result, cv_seconds = timed(cross_validate_stratified, snapshot.features, snapshot.labels, config)
    print(f"  as of {as_of.isoformat()}: {len(snapshot.labels):,} customers, {snapshot.churners:,} churners")
    print(f"    snapshot {seconds:.2f} s, fit {fit_seconds:.2f} s, 5-fold CV {cv_seconds:.2f} s")
    print_cv(result)
    if plots is not None:
        table = reliability_table(snapshot.labels, result.out_of_fold)
        name = f"telco-reliability-{as_of.strftime('%H%M%S')}.png"
        print(f"    reliability diagram: {reliability_diagram(table, plots / name, 'Telco, out of fold')}")
    return snapshot


def print_cv(result: CrossValidation) -> None:
    for name in ("roc_auc", "pr_auc", "brier", "log_loss"):
        print(f"    {name:<9} {result.mean[name]:.4f} ± {result.std[name]:.4f}")
    pooled = result.pooled
    print(f"    mean p    {pooled.mean_predicted:.4f} (base rate {pooled.base_rate:.4f})")


def bench_cdnow(database: Database, train_as_of: datetime, test_as_of: datetime, horizon: int) -> None:
    kind, families = ChurnKind.NON_CONTRACTUAL, (Family.ORDERS,)
    with database.session() as session:
        train, train_seconds = timed(churn_snapshot, session, train_as_of, horizon, kind, families)
        test = churn_snapshot(session, test_as_of, horizon, kind, families)
    config = ChurnConfig(horizon_days=horizon)
    _, fit_seconds = timed(ChurnModel(config).fit, train.features, train.labels)
    result = time_split_validate(train.features, train.labels, test.features, test.labels, config)
    print(
        f"  H = {horizon} d: train as of {train_as_of.date()} ({len(train.labels):,} customers, "
        f"{train.labels.mean():.1%} churn), test as of {test_as_of.date()} ({test.labels.mean():.1%} churn)"
    )
    print(f"    snapshot {train_seconds:.2f} s, fit {fit_seconds:.2f} s")
    print_split("model", result.model)
    print_split("recency", result.baseline)
    print(f"    beats the recency-only baseline on ROC-AUC and Brier: {result.beats_baseline}")


def print_split(name: str, metrics: Metrics) -> None:
    print(
        f"    {name:<8} ROC-AUC {metrics.roc_auc:.4f}  PR-AUC {metrics.pr_auc:.4f}  Brier {metrics.brier:.4f}  "
        f"log loss {metrics.log_loss:.4f}  mean p {metrics.mean_predicted:.4f} (base {metrics.base_rate:.4f})"
    )


def bench_scoring(snapshot: LabelledSnapshot) -> None:
    model = ChurnModel(ChurnConfig(horizon_days=TELCO_HORIZON)).fit(snapshot.features, snapshot.labels)
    rows = np.random.default_rng(0).integers(0, len(snapshot.features), SCORED_ROWS)
    frame = snapshot.features.iloc[rows].reset_index(drop=True)
    best = min(timed(model.predict_proba, frame)[1] for _ in range(3))
    print(f"Scoring: {SCORED_ROWS:,} Telco rows in {best:.2f} s = {SCORED_ROWS / best:,.0f} customers/s (best of 3)")


if __name__ == "__main__":
    main()
