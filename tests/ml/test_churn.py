"""The churn model: calibrated probabilities, validated input columns, the artifact round trip and its
refusals, and the validation helpers (cross-validation, time split, reliability table)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import BadRequest, Conflict, ValidationFailed
from ml import artifacts
from ml.churn import (
    ChurnConfig,
    ChurnModel,
    cross_validate_stratified,
    evaluate,
    reliability_table,
    time_split_validate,
)
from ml.plots import reliability_diagram

PLAN_EFFECT = {"monthly": 0.8, "yearly": -0.6, "none": 0.0}


def synthetic(rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Customers whose true churn probability is logistic in log-recency, charge and plan."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60.0, rows)
    charge = rng.normal(50.0, 10.0, rows)
    plan = rng.choice(list(PLAN_EFFECT), rows)
    logit = -2.5 + 0.5 * np.log1p(recency) + 0.04 * (charge - 50.0) + pd.Series(plan).map(PLAN_EFFECT).to_numpy()
    churned = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    index = pd.Index(np.arange(rows) + 1, name="customer_id")
    features = pd.DataFrame({"orders_recency_days": recency, "charge": charge, "plan": plan}, index=index)
    return features.astype({"plan": "str"}), pd.Series(churned.astype(np.int64), index=index, name="churned")


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return synthetic(4000, seed=1)


@pytest.fixture(scope="module")
def model(data: tuple[pd.DataFrame, pd.Series]) -> ChurnModel:
    return ChurnModel(ChurnConfig()).fit(*data)


def test_out_of_fold_probabilities_are_calibrated(data: tuple[pd.DataFrame, pd.Series]) -> None:
    features, labels = data

    result = cross_validate_stratified(features, labels, ChurnConfig(), folds=5)
    table = reliability_table(labels, result.out_of_fold, bins=5)

    assert len(result.folds) == 5
    assert result.out_of_fold.shape == (4000,)
    assert abs(result.pooled.mean_predicted - result.pooled.base_rate) < 0.005
    assert (table["mean_predicted"] - table["observed_rate"]).abs().max() < 0.05
    assert table["count"].tolist() == [800] * 5


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_calibrated_gradient_boosting_matches_the_base_rate(
    data: tuple[pd.DataFrame, pd.Series], calibration: str
) -> None:
    features, labels = data
    config = ChurnConfig(family="hist_gradient_boosting", calibration=calibration, calibration_folds=3)

    result = cross_validate_stratified(features, labels, config, folds=3)

    assert abs(result.pooled.mean_predicted - result.pooled.base_rate) < 0.01
    assert result.mean["roc_auc"] > 0.7


def test_cross_validation_is_seeded(data: tuple[pd.DataFrame, pd.Series]) -> None:
    features, labels = data

    first = cross_validate_stratified(features, labels, ChurnConfig(seed=7), folds=3)
    second = cross_validate_stratified(features, labels, ChurnConfig(seed=7), folds=3)

    np.testing.assert_array_equal(first.out_of_fold, second.out_of_fold)
    assert first.mean == second.mean
    assert set(first.std) == {"roc_auc", "pr_auc", "brier", "log_loss", "mean_predicted", "base_rate"}


def test_predictions_ignore_extra_columns_and_column_order(
    model: ChurnModel, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, _ = data
    shuffled = features[["plan", "charge", "orders_recency_days"]].assign(unused=1.0)

    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(features))
    assert model.feature_columns == {"orders_recency_days": "numeric", "charge": "numeric", "plan": "categorical"}
    assert model.feature_dtypes == {"orders_recency_days": "float64", "charge": "float64", "plan": "str"}


def test_unseen_categories_and_missing_values_still_score(
    model: ChurnModel, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, _ = data
    plans = pd.Series(["lifetime", None], index=features.index[:2], dtype="str")
    odd = features.head(2).assign(plan=plans, charge=[np.nan, 40.0])

    p = model.predict_proba(odd)

    assert p.shape == (2,)
    assert np.all((p > 0) & (p < 1))


def test_scoring_a_frame_missing_or_mistyping_a_column_names_it(
    model: ChurnModel, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, _ = data
    broken = features.drop(columns=["charge"]).assign(plan=1.5)

    with pytest.raises(ValidationFailed) as refused:
        model.predict_proba(broken)

    assert refused.value.details == [
        "missing column 'charge' (numeric)",
        "column 'plan' must be categorical, found dtype float64",
    ]


def test_save_and_load_round_trip(model: ChurnModel, data: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    features, _ = data

    manifest = model.save(tmp_path / "churn")
    loaded = ChurnModel.load(tmp_path / "churn", ChurnConfig())

    assert (manifest.kind, manifest.config_hash) == ("churn", artifacts.config_hash(ChurnConfig()))
    assert manifest.metadata["feature_columns"] == model.feature_columns
    assert loaded.config == model.config
    assert (loaded.base_rate, loaded.training_rows) == (model.base_rate, 4000)
    np.testing.assert_array_equal(loaded.predict_proba(features), model.predict_proba(features))
    np.testing.assert_array_equal(
        ChurnModel.load(tmp_path / "churn").predict_proba(features), model.predict_proba(features)
    )


def test_loading_with_another_configuration_is_refused(model: ChurnModel, tmp_path: Path) -> None:
    model.save(tmp_path / "churn")

    with pytest.raises(Conflict, match="its configuration differs from the one expected"):
        ChurnModel.load(tmp_path / "churn", ChurnConfig(hyperparameters={"C": 0.5}))


def test_loading_an_artifact_from_another_code_version_is_refused(model: ChurnModel, tmp_path: Path) -> None:
    model.save(tmp_path / "churn")
    manifest_path = tmp_path / "churn" / artifacts.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(manifest | {"code_version": "ml-0"}))

    with pytest.raises(Conflict, match="made by code version ml-0"):
        ChurnModel.load(tmp_path / "churn")


def test_loading_another_kind_of_model_is_refused(tmp_path: Path) -> None:
    artifacts.save(tmp_path / "clv", "clv", {"a": 1}, {"weights": []})

    with pytest.raises(Conflict, match="it is a 'clv' model, not 'churn'"):
        ChurnModel.load(tmp_path / "clv")


def test_an_unfitted_model_neither_scores_nor_saves(data: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    unfitted = ChurnModel()

    with pytest.raises(Conflict, match="not fitted"):
        unfitted.predict_proba(data[0])
    with pytest.raises(Conflict, match="not fitted"):
        unfitted.save(tmp_path / "churn")
    assert not (tmp_path / "churn").exists()


def test_labels_of_one_class_are_refused(data: tuple[pd.DataFrame, pd.Series]) -> None:
    features, labels = data

    with pytest.raises(
        ValidationFailed, match="all 4,000 labels are 0: churn labels need both churners and non-churners"
    ):
        ChurnModel().fit(features, labels * 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, y: (x.iloc[:0], y.iloc[:0]), r"features are empty \(0 rows × 3 columns\)"),
        (lambda x, y: (x.assign(seen=pd.Timestamp("2024-01-01")), y), "column 'seen' has dtype datetime64"),
        (lambda x, y: (x.assign(charge=np.inf), y), "infinite values in column\\(s\\) 'charge'"),
        (lambda x, y: (x, y.astype("float64").where(y.index != 1)), "must be 0 or 1"),
        (lambda x, y: (x, y.iloc[::-1]), "not on the same index"),
        (lambda x, y: (x, y.to_numpy()[:10]), "10 labels for 4000 rows"),
    ],
)
def test_bad_training_input_is_refused(data: tuple[pd.DataFrame, pd.Series], change: object, message: str) -> None:
    features, labels = change(*data)  # type: ignore[operator]

    with pytest.raises(ValidationFailed, match=message):
        ChurnModel().fit(features, labels)


def test_invalid_configurations_are_refused() -> None:
    with pytest.raises(BadRequest) as refused:
        ChurnConfig(family="forest", calibration="magic", hyperparameters={"C": 1.0})

    assert refused.value.details == [
        "family must be one of logistic, hist_gradient_boosting, not 'forest'",
        "calibration must be one of none, sigmoid, isotonic, not 'magic'",
    ]
    with pytest.raises(BadRequest, match="unknown logistic hyperparameters: class_weight"):
        ChurnConfig(hyperparameters={"class_weight": 1})


def test_cross_validation_needs_enough_of_each_class(data: tuple[pd.DataFrame, pd.Series]) -> None:
    features, labels = data
    few = labels.where(labels.index > 3, 1).where(labels.index <= 3, 0)

    with pytest.raises(ValidationFailed, match="needs at least 5 customers of each class; the rarer has 3"):
        cross_validate_stratified(features, few, ChurnConfig(), folds=5)


def test_time_split_compares_with_recency_alone_on_the_same_test_set() -> None:
    train_features, train_labels = synthetic(3000, seed=2)
    test_features, test_labels = synthetic(3000, seed=3)

    result = time_split_validate(train_features, train_labels, test_features, test_labels, ChurnConfig(horizon_days=90))

    assert (result.train_rows, result.test_rows) == (3000, 3000)
    assert result.model.count == result.baseline.count == 3000
    assert result.beats_baseline
    with pytest.raises(ValidationFailed, match="no 'recency' column for the baseline"):
        time_split_validate(train_features, train_labels, test_features, test_labels, ChurnConfig(), "recency")


def test_metrics_and_reliability_table_on_a_hand_example() -> None:
    y, p = [0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]

    metrics = evaluate(y, p)
    quantile = reliability_table(y, p, bins=2)
    uniform = reliability_table(y, p, bins=10, strategy="uniform")

    assert (metrics.roc_auc, metrics.pr_auc, metrics.mean_predicted, metrics.base_rate) == (1.0, 1.0, 0.475, 0.5)
    assert metrics.brier == pytest.approx((0.01 + 0.04 + 0.09 + 0.01) / 4)
    assert quantile.to_dict("list") == {
        "bin": [0, 1],
        "lower": [0.1, 0.7],
        "upper": [0.2, 0.9],
        "mean_predicted": [pytest.approx(0.15), pytest.approx(0.8)],
        "observed_rate": [0.0, 1.0],
        "count": [2, 2],
    }
    assert uniform["bin"].tolist() == [1, 2, 7, 9]


def test_reliability_diagram_writes_a_png(tmp_path: Path) -> None:
    table = reliability_table([0, 0, 1, 1, 0, 1], [0.1, 0.2, 0.7, 0.9, 0.4, 0.5], bins=3)

    path = reliability_diagram(table, tmp_path / "plots" / "reliability.png")

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
