"""Feature drift by the population stability index (PSI), against a profile kept from training.

PSI = Σ (aᵢ − eᵢ) · ln(aᵢ / eᵢ) over bins, with e the training share and a the current share of each
bin. Numeric features are binned at the training deciles (so each training bin holds ~10 %),
categorical ones by category (unseen categories pooled into one bin). Shares are floored at 1e-4 so
an empty bin gives a large, finite PSI. Conventional reading: < 0.1 stable, 0.1–0.25 worth a look
(warn), ≥ 0.25 shifted (alert). A retrain is recommended when any feature alerts or a quarter of the
features warn.

The profile is plain JSON (bin edges and shares), stored with the model version, so drift is
computed without keeping the training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from core.errors import BadRequest

WARN = 0.1
ALERT = 0.25
BINS = 10
FLOOR = 1e-4
OTHER = "__other__"


class DriftStatus(StrEnum):
    STABLE = "stable"
    WARN = "warn"
    ALERT = "alert"


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    feature: str
    psi: float
    status: DriftStatus


@dataclass(frozen=True, slots=True)
class DriftReport:
    features: list[FeatureDrift]
    retrain_recommended: bool
    reason: str


def feature_profile(frame: pd.DataFrame, bins: int = BINS) -> dict[str, Any]:
    """The training distribution of every column: decile edges and shares, or category shares."""
    if frame.empty:
        raise BadRequest("cannot profile an empty feature frame")
    return {str(name): _profile_column(frame[name], bins) for name in frame.columns}


def _profile_column(column: pd.Series[Any], bins: int) -> dict[str, Any]:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])) if values.size else np.array([])
        return {"type": "numeric", "edges": edges.tolist(), "shares": _numeric_shares(column, edges).tolist()}
    shares = column.astype(str).value_counts(normalize=True)
    return {"type": "categorical", "shares": {str(key): float(value) for key, value in shares.items()}}


def _numeric_shares(column: pd.Series[Any], edges: np.ndarray) -> np.ndarray:
    """Shares in each bin between the edges, plus a last bin for missing values."""
    values = column.to_numpy(dtype=float)
    missing = ~np.isfinite(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=edges.size + 1)
    counts = np.append(counts, missing.sum()).astype(float)
    shares: np.ndarray = counts / max(counts.sum(), 1.0)
    return shares


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI between two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def drift(profile: dict[str, Any], current: pd.DataFrame) -> DriftReport:
    """PSI of every profiled feature in ``current``; a feature missing from ``current`` is an error."""
    missing = [name for name in profile if name not in current.columns]
    if missing:
        raise BadRequest(f"the current features lack columns the model was trained on: {', '.join(missing)}")
    if current.empty:
        raise BadRequest("no customers to compare: the current feature frame is empty")
    results = [_feature_drift(name, spec, current[name]) for name, spec in profile.items()]
    results.sort(key=lambda result: result.psi, reverse=True)
    return _report(results)


def _feature_drift(name: str, spec: dict[str, Any], column: pd.Series[Any]) -> FeatureDrift:
    if spec["type"] == "numeric":
        expected = np.asarray(spec["shares"], dtype=float)
        actual = _numeric_shares(column, np.asarray(spec["edges"], dtype=float))
    else:
        known: dict[str, float] = spec["shares"]
        counts = column.astype(str).value_counts(normalize=True)
        expected = np.array([*known.values(), 0.0])
        unseen = float(counts[~counts.index.isin(list(known))].sum())
        actual = np.array([*(float(counts.get(key, 0.0)) for key in known), unseen])
    value = psi(expected, actual)
    return FeatureDrift(name, value, _status(value))


def _status(value: float) -> DriftStatus:
    if value >= ALERT:
        return DriftStatus.ALERT
    return DriftStatus.WARN if value >= WARN else DriftStatus.STABLE


def _report(results: list[FeatureDrift]) -> DriftReport:
    alerts = [result.feature for result in results if result.status is DriftStatus.ALERT]
    warns = [result.feature for result in results if result.status is DriftStatus.WARN]
    if alerts:
        return DriftReport(results, True, f"PSI ≥ {ALERT} on {', '.join(alerts)}: retrain on recent data")
    if results and len(warns) >= len(results) / 4:
        return DriftReport(results, True, f"PSI ≥ {WARN} on {len(warns)} of {len(results)} features: retrain")
    return DriftReport(results, False, "features are stable against training" if not warns else "minor drift only")
