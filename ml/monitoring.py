"""Monitoring production models: feature drift of the population a churn model scores now, against the
profile kept from its training snapshot."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from core.errors import BadRequest
from core.models import ModelKind
from ml import registry, training
from ml.drift import DriftReport, drift
from ml.snapshots import feature_snapshot


def feature_drift(session: Session, kind: ModelKind, as_of: datetime) -> DriftReport:
    """PSI of every training feature between the production model's training snapshot and ``as_of``."""
    if kind not in training.FAMILIES:
        raise BadRequest(f"drift is measured on churn models' features; {kind.value} has none")
    version = registry.production(session, kind)
    if not version.feature_profile:
        raise BadRequest(f"{kind.value} v{version.version} was registered without a feature profile: retrain it")
    families = {*training.FAMILIES[kind], *training.POPULATION_FAMILIES}
    frame = feature_snapshot(session, as_of, families=families)
    population = frame[training.in_population(kind, frame)]
    return drift(version.feature_profile, population)
