"""Training services: from the database to a saved artifact and a staged registry version.

- **Contractual churn** (``churn_contractual``): features as of ``as_of`` from subscriptions and the
  customer profile; label = the subscription ends within ``horizon_days``. Validated by stratified
  5-fold cross-validation on that snapshot.
- **Non-contractual churn** (``churn_noncontractual``): features from orders, events and carts; label
  = no order within ``horizon_days``. Validated out of time: a model trained as of
  ``as_of − horizon`` is tested on the ``as_of`` snapshot beside a recency-only baseline, so the
  reported metrics come from a period the model never saw. The registered model is then refitted on
  the ``as_of`` snapshot, the newest one whose labels are known.
- **CLV** (``clv``): BG/NBD + Gamma-Gamma on every order before ``as_of``; stored as revenue (margin
  1), because the margin is a business assumption applied once, at planning time.

Each training writes a reliability diagram beside its artifact and keeps the training feature
profile for drift. Services take a ``Session`` and never commit (``ml.jobs`` runs them as jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from core.clock import as_utc
from core.errors import ValidationFailed
from core.models import ModelKind, ModelVersion
from ml import registry, repository
from ml.churn import ChurnConfig, ChurnModel, Metrics, cross_validate_stratified, reliability_table, time_split_validate
from ml.clv import ClvConfig, ClvModel
from ml.drift import feature_profile
from ml.plots import reliability_diagram
from ml.snapshots import ChurnKind, Family, LabelledSnapshot, churn_snapshot

CHURN_KINDS = {
    ModelKind.CHURN_CONTRACTUAL: ChurnKind.CONTRACTUAL,
    ModelKind.CHURN_NONCONTRACTUAL: ChurnKind.NON_CONTRACTUAL,
}
FAMILIES: dict[ModelKind, tuple[Family, ...]] = {
    ModelKind.CHURN_CONTRACTUAL: (Family.SUBSCRIPTIONS, Family.PROFILE),
    ModelKind.CHURN_NONCONTRACTUAL: (Family.ORDERS, Family.EVENTS, Family.CARTS),
}
# Scoring reads these too, to tell which population a customer is in.
POPULATION_FAMILIES = (Family.ORDERS, Family.SUBSCRIPTIONS)
DEFAULT_HORIZON_DAYS = {ModelKind.CHURN_CONTRACTUAL: 30, ModelKind.CHURN_NONCONTRACTUAL: 90}
RELIABILITY_PNG = "reliability.png"


@dataclass(frozen=True, slots=True)
class Trained:
    version: ModelVersion
    plot: Path | None


def in_population(kind: ModelKind, features: pd.DataFrame) -> pd.Series:
    """Who a churn model scores: subscribers active at the as-of date (contractual), or customers with
    an order and no active subscription (non-contractual) — so each customer is scored by one model."""
    active = features["subscription_active"].fillna(0) == 1
    if kind is ModelKind.CHURN_CONTRACTUAL:
        return active
    return (features["orders_count"].fillna(0) > 0) & ~active


def train_churn(
    session: Session,
    kind: ModelKind,
    *,
    as_of: datetime,
    models_path: Path,
    horizon_days: int | None = None,
    config: ChurnConfig | None = None,
    now: datetime | None = None,
) -> Trained:
    """Train, validate, save and register a churn model of ``kind`` as of ``as_of`` (a staging version)."""
    horizon = horizon_days or DEFAULT_HORIZON_DAYS[kind]
    config = config or ChurnConfig(horizon_days=horizon)
    snapshot = churn_snapshot(session, as_of, horizon, CHURN_KINDS[kind], FAMILIES[kind], now=now)
    metrics, reliability = _validate(session, kind, snapshot, config, now)
    model = ChurnModel(config).fit(snapshot.features, snapshot.labels)
    version_number = registry.next_version(session, kind)
    directory = registry.artifact_directory(models_path, kind, version_number)
    model.save(directory)
    plot = reliability_diagram(reliability, directory / RELIABILITY_PNG, f"{kind.value} v{version_number}")
    window = {
        "as_of": as_utc(as_of).isoformat(),
        "horizon_days": horizon,
        "label_window_end": snapshot.window_end.isoformat(),
        "customers": len(snapshot.labels),
        "churners": snapshot.churners,
    }
    profile = feature_profile(snapshot.features[list(model.feature_columns)])
    version = registry.register(
        session, kind, version_number, directory, metrics=metrics, training_window=window, feature_profile=profile
    )
    return Trained(version, plot)


def _validate(
    session: Session, kind: ModelKind, snapshot: LabelledSnapshot, config: ChurnConfig, now: datetime | None
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Headline metrics and the reliability table of predictions the model did not train on."""
    if kind is ModelKind.CHURN_CONTRACTUAL:
        result = cross_validate_stratified(snapshot.features, snapshot.labels, config)
        metrics = _metrics(result.pooled, "stratified 5-fold cross-validation (pooled out-of-fold)")
        metrics |= {f"{name}_fold_std": value for name, value in result.std.items() if name in _HEADLINE}
        return metrics, reliability_table(snapshot.labels.to_numpy(), result.out_of_fold)
    earlier = churn_snapshot(
        session,
        snapshot.as_of - timedelta(days=config.horizon_days),
        config.horizon_days,
        CHURN_KINDS[kind],
        FAMILIES[kind],
        now=now,
    )
    split = time_split_validate(earlier.features, earlier.labels, snapshot.features, snapshot.labels, config)
    metrics = _metrics(
        split.model, f"out of time: trained as of {earlier.as_of:%Y-%m-%d}, tested as of {snapshot.as_of:%Y-%m-%d}"
    )
    metrics |= {f"baseline_{name}": value for name, value in _metrics(split.baseline, "").items() if name in _HEADLINE}
    metrics["beats_recency_baseline"] = split.beats_baseline
    tested = ChurnModel(config).fit(earlier.features, earlier.labels).predict_proba(snapshot.features)
    return metrics, reliability_table(snapshot.labels.to_numpy(), tested)


_HEADLINE = ("roc_auc", "pr_auc", "brier", "log_loss")


def _metrics(result: Metrics, method: str) -> dict[str, Any]:
    found: dict[str, Any] = {name: getattr(result, name) for name in (*_HEADLINE, "mean_predicted", "base_rate")}
    if method:
        found["validation"] = method
    return found


def train_clv(session: Session, *, as_of: datetime, models_path: Path, config: ClvConfig | None = None) -> Trained:
    """Fit BG/NBD + Gamma-Gamma on the orders before ``as_of`` and register it (a staging version)."""
    config = config or ClvConfig()
    if config.margin != 1.0:
        raise ValidationFailed(
            "the registered CLV model stores revenue (margin 1); the margin is applied when planning"
        )
    orders = clv_orders(session, as_of)
    model = ClvModel(config).fit(orders, _last_full_day(as_of))
    version_number = registry.next_version(session, ModelKind.CLV)
    directory = registry.artifact_directory(models_path, ModelKind.CLV, version_number)
    model.save(directory)
    metrics, window = _clv_summary(model, as_of)
    version = registry.register(
        session, ModelKind.CLV, version_number, directory, metrics=metrics, training_window=window
    )
    return Trained(version, None)


def _clv_summary(model: ClvModel, as_of: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    bg, gg, report = model.beta_geo, model.gamma_gamma, model.report
    if bg is None or gg is None or report is None:
        raise ValidationFailed("the CLV model is not fitted")
    metrics = {
        "beta_geo_log_likelihood": report.beta_geo_log_likelihood,
        "gamma_gamma_log_likelihood": report.gamma_gamma_log_likelihood,
        "frequency_monetary_correlation": report.frequency_monetary_correlation,
        **{name: float(getattr(bg, name)) for name in ("r", "alpha", "a", "b")},
        **{name: float(getattr(gg, name)) for name in ("p", "q", "v")},
    }
    window = {
        "as_of": as_utc(as_of).isoformat(),
        "horizon_days": model.config.horizon_days,
        "customers": report.customers,
        "repeat_customers": report.repeat_customers,
    }
    return metrics, window


def clv_orders(session: Session, as_of: datetime, customer_ids: list[int] | None = None) -> pd.DataFrame:
    """Orders before ``as_of`` in the shape the CLV model reads (the repository already reads amounts as floats)."""
    return repository.orders_before(session, as_of, customer_ids)[["customer_id", "ordered_at", "amount"]]


def _last_full_day(as_of: datetime) -> datetime:
    """The CLV model reads whole days up to and including its end; features read strictly before ``as_of``."""
    return as_utc(as_of) - timedelta(days=1)
