"""PSI: zero for the same distribution, the textbook value for a known shift, and a retrain call on alerts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.errors import BadRequest
from ml.drift import DriftStatus, drift, feature_profile, psi


def test_psi_matches_the_formula_on_known_shares() -> None:
    expected, actual = np.array([0.5, 0.5]), np.array([0.25, 0.75])

    assert psi(expected, actual) == pytest.approx(-0.25 * math.log(0.5) + 0.25 * math.log(1.5))
    assert psi(expected, expected) == 0.0


def test_the_training_data_itself_shows_no_drift() -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"recency": rng.exponential(30, 5000), "plan": rng.choice(["a", "b", "c"], 5000)})

    report = drift(feature_profile(frame), frame)

    assert all(result.psi < 1e-9 for result in report.features)
    assert not report.retrain_recommended


def test_a_shifted_feature_alerts_and_recommends_retraining() -> None:
    rng = np.random.default_rng(7)
    training = pd.DataFrame({"recency": rng.exponential(30, 5000), "monetary": rng.normal(50, 5, 5000)})
    now = training.assign(recency=training["recency"] * 3)

    report = drift(feature_profile(training), now)

    assert report.features[0].feature == "recency"
    assert report.features[0].status is DriftStatus.ALERT
    assert report.features[1].status is DriftStatus.STABLE
    assert report.retrain_recommended
    assert "recency" in report.reason


def test_unseen_categories_and_missing_values_count_as_drift() -> None:
    training = pd.DataFrame({"plan": ["a", "b"] * 500, "charge": [10.0, 20.0] * 500})
    now = pd.DataFrame({"plan": ["c"] * 1000, "charge": [np.nan] * 1000})

    report = drift(feature_profile(training), now)

    assert {result.status for result in report.features} == {DriftStatus.ALERT}


def test_a_missing_feature_is_a_clear_error() -> None:
    profile = feature_profile(pd.DataFrame({"recency": [1.0, 2.0]}))

    with pytest.raises(BadRequest, match="lack columns the model was trained on: recency"):
        drift(profile, pd.DataFrame({"other": [1.0]}))
