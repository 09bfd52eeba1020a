"""The churn model: a calibrated probability that a customer churns within the horizon, and its validation.

The decision engine multiplies this probability by money, so it has to mean what it says: classes
are never re-weighted (``class_weight="balanced"`` inflates p about 1.5× in the band that gets
targeted), and Brier score, log loss and a reliability table are reported beside ROC-AUC. An
unweighted logistic regression is calibrated by construction; ``calibration="sigmoid"`` or
``"isotonic"`` wraps any family in ``CalibratedClassifierCV`` for models that are not.

The model is a scikit-learn ``Pipeline``: categorical columns one-hot encoded, numeric columns
median-imputed (with missing-value indicators), optionally put on a signed log scale, and
standardised, then the estimator. It remembers its input columns and their kinds, refuses a frame
that lacks one, and is saved in the one artifact format (``ml.artifacts``), which refuses an
artifact made with another configuration or code version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from core.errors import BadRequest, Conflict, ValidationFailed
from ml import artifacts
from ml.artifacts import Manifest

KIND = "churn"
FAMILIES = ("logistic", "hist_gradient_boosting")
CALIBRATIONS = ("none", "sigmoid", "isotonic")
NUMERIC_TRANSFORMS = ("log", "standard")
# Defaults per family; a configuration may override any of these keys and no other.
HYPERPARAMETERS: dict[str, dict[str, float | int | None]] = {
    "logistic": {"C": 1.0, "max_iter": 5000},
    "hist_gradient_boosting": {
        "learning_rate": 0.05,
        "max_iter": 200,
        "max_depth": 2,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 20,
        "l2_regularization": 0.0,
    },
}
ColumnKind = Literal["numeric", "categorical"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ChurnConfig:
    """How a churn model is built; its hash is stored with the artifact and checked on load.

    Parameters
    ----------
    family
        ``"logistic"`` (default: on Telco and CDNOW it matches or beats gradient boosting and is
        calibrated as fitted) or ``"hist_gradient_boosting"``.
    hyperparameters
        Overrides of the family's defaults (``HYPERPARAMETERS``); unknown keys are refused.
        Treat as read-only: the configuration's hash is computed from it.
    calibration
        ``"none"``, ``"sigmoid"`` (Platt) or ``"isotonic"``, fitted by ``CalibratedClassifierCV``
        over ``calibration_folds`` stratified folds.
    numeric_transform
        ``"log"`` puts numeric columns on a signed log scale before standardising (tenure, money and
        counts are skewed; a linear model then fits their diminishing effect); ``"standard"`` only
        standardises.
    seed
        Seeds the estimator and every fold split.
    horizon_days
        The label window the model was trained for (churn within this many days of the as-of date).
    """

    family: str = "logistic"
    hyperparameters: dict[str, float | int | None] = field(default_factory=dict)
    calibration: str = "none"
    calibration_folds: int = 5
    numeric_transform: str = "log"
    seed: int = 42
    horizon_days: int = 30

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise BadRequest(f"invalid churn configuration: {'; '.join(problems)}", details=problems)

    def effective_hyperparameters(self) -> dict[str, float | int | None]:
        """The family's defaults with this configuration's overrides applied."""
        return HYPERPARAMETERS[self.family] | dict(self.hyperparameters)


def _config_problems(config: ChurnConfig) -> list[str]:
    problems = []
    for name, value, allowed in (
        ("family", config.family, FAMILIES),
        ("calibration", config.calibration, CALIBRATIONS),
        ("numeric_transform", config.numeric_transform, NUMERIC_TRANSFORMS),
    ):
        if value not in allowed:
            problems.append(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    if config.family in HYPERPARAMETERS:
        unknown = sorted(set(config.hyperparameters) - set(HYPERPARAMETERS[config.family]))
        if unknown:
            problems.append(f"unknown {config.family} hyperparameters: {', '.join(unknown)}")
    if config.calibration_folds < 2:
        problems.append("calibration_folds must be at least 2")
    if config.horizon_days <= 0:
        problems.append("horizon_days must be positive")
    return problems


class ChurnModel:
    """A calibrated churn classifier over a feature frame (``ml.features``).

    Parameters
    ----------
    config
        How to build it; ``ChurnConfig()`` by default.

    Examples
    --------
    >>> model = ChurnModel(ChurnConfig(horizon_days=30)).fit(features, labels)  # doctest: +SKIP
    >>> p = model.predict_proba(features)  # doctest: +SKIP
    """

    def __init__(self, config: ChurnConfig | None = None) -> None:
        self.config = config or ChurnConfig()
        self._pipeline: ClassifierMixin | None = None
        self._columns: dict[str, ColumnKind] = {}
        self._dtypes: dict[str, str] = {}
        self.base_rate: float | None = None
        self.training_rows = 0

    @property
    def feature_columns(self) -> dict[str, ColumnKind]:
        """The columns ``predict_proba`` needs, in training order, each ``"numeric"`` or ``"categorical"``."""
        return dict(self._columns)

    @property
    def feature_dtypes(self) -> dict[str, str]:
        """The dtypes the columns had in training (kinds are what is enforced)."""
        return dict(self._dtypes)

    def fit(self, X: pd.DataFrame, y: pd.Series | npt.ArrayLike) -> ChurnModel:  # noqa: N803 (scikit-learn's names)
        """Fit on features ``X`` and churn labels ``y`` (1 = churned).

        Parameters
        ----------
        X
            One row per customer; numeric and string/categorical columns only.
        y
            0/1 labels; if a Series, its index must equal ``X``'s. Both classes must be present.

        Returns
        -------
        ChurnModel
            ``self``, fitted.

        Raises
        ------
        ValidationFailed
            For an empty frame, a column of another kind, infinite values, labels that are not 0/1,
            of another length or index, or of one class only.
        """
        columns = _column_kinds(X)
        labels = _labels(y, X)
        _check_finite(X, columns)
        pipeline = _pipeline(self.config, columns)
        pipeline.fit(_prepared(X, columns), labels)
        self._pipeline, self._columns = pipeline, columns
        self._dtypes = {name: str(X[name].dtype) for name in columns}
        self.base_rate, self.training_rows = float(labels.mean()), len(labels)
        return self

    def predict_proba(self, X: pd.DataFrame) -> FloatArray:  # noqa: N803
        """The probability of churn within ``config.horizon_days`` for each row of ``X``.

        Parameters
        ----------
        X
            Must hold every column in ``feature_columns`` with the same kind; other columns are
            ignored. Categories not seen in training are encoded as all-zero.

        Returns
        -------
        numpy.ndarray
            1-D float64 array of p(churn), in ``X``'s row order.

        Raises
        ------
        ValidationFailed
            Naming every missing or mistyped column, or a column with infinite values.
        Conflict
            If the model has not been fitted.
        """
        pipeline = self._fitted()
        _require_columns(X, self._columns)
        _check_finite(X, self._columns)
        if len(X) == 0:
            return np.empty(0, dtype=np.float64)
        probabilities = pipeline.predict_proba(_prepared(X, self._columns))
        return np.asarray(probabilities[:, 1], dtype=np.float64)

    def save(self, directory: Path) -> Manifest:
        """Write the fitted model to ``directory`` with a manifest (config hash, code version, checksum)."""
        payload = {
            "config": asdict(self.config),
            "pipeline": self._fitted(),
            "columns": self._columns,
            "dtypes": self._dtypes,
            "base_rate": self.base_rate,
            "training_rows": self.training_rows,
        }
        metadata = {"feature_columns": self._columns, "base_rate": self.base_rate, "training_rows": self.training_rows}
        return artifacts.save(directory, KIND, self.config, payload, metadata)

    @classmethod
    def load(cls, directory: Path, config: ChurnConfig | None = None) -> ChurnModel:
        """Read a model saved by ``save``.

        Parameters
        ----------
        directory
            Where it was saved.
        config
            The configuration the caller expects; the artifact is refused if it was built with
            another. Without it, the stored configuration is used.

        Raises
        ------
        Conflict
            If the artifact is not a churn model, was made by another code version or with another
            configuration, or its payload does not match its checksum.
        NotFound
            If there is no artifact in ``directory``.
        """
        expected = artifacts.config_hash(config) if config is not None else None
        payload, manifest = artifacts.load(directory, KIND, expected)
        stored = ChurnConfig(**payload["config"])
        if artifacts.config_hash(stored) != manifest.config_hash:
            raise Conflict(
                f"refusing the model artifact in {directory}: its stored configuration does not match its hash"
            )
        model = cls(stored)
        model._pipeline, model._columns, model._dtypes = payload["pipeline"], payload["columns"], payload["dtypes"]
        model.base_rate, model.training_rows = payload["base_rate"], payload["training_rows"]
        return model

    def _fitted(self) -> ClassifierMixin:
        if self._pipeline is None:
            raise Conflict("the churn model is not fitted: call fit first")
        return self._pipeline


# --- the pipeline ---------------------------------------------------------------------------------


def signed_log(values: npt.ArrayLike) -> FloatArray:
    """``sign(x)·log(1 + |x|)``: a log scale that keeps zero and negative values (trends) in order."""
    array = np.asarray(values, dtype=np.float64)
    return np.asarray(np.sign(array) * np.log1p(np.abs(array)), dtype=np.float64)


def _pipeline(config: ChurnConfig, columns: Mapping[str, ColumnKind]) -> ClassifierMixin:
    numeric = [name for name, kind in columns.items() if kind == "numeric"]
    categorical = [name for name, kind in columns.items() if kind == "categorical"]
    numeric_steps: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True))
    ]
    if config.numeric_transform == "log":
        numeric_steps.append(("log", FunctionTransformer(signed_log, feature_names_out="one-to-one")))
    numeric_steps.append(("scale", StandardScaler()))
    prepare = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
            ("numeric", Pipeline(numeric_steps), numeric),
        ]
    )
    pipeline = Pipeline([("prepare", prepare), ("model", _estimator(config))])
    if config.calibration == "none":
        return pipeline
    folds = StratifiedKFold(config.calibration_folds, shuffle=True, random_state=config.seed)
    return CalibratedClassifierCV(pipeline, method=config.calibration, cv=folds)


def _estimator(config: ChurnConfig) -> ClassifierMixin:
    parameters = config.effective_hyperparameters()
    if config.family == "logistic":
        # No class_weight: re-weighting the classes is what miscalibrates p.
        return LogisticRegression(**parameters, random_state=config.seed)
    return HistGradientBoostingClassifier(**parameters, random_state=config.seed)


# --- input checks ---------------------------------------------------------------------------------


def _column_kinds(frame: pd.DataFrame) -> dict[str, ColumnKind]:
    if not isinstance(frame, pd.DataFrame):
        raise ValidationFailed(f"features must be a pandas DataFrame, not {type(frame).__name__}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        rows, columns = frame.shape
        raise ValidationFailed(f"features are empty ({rows} rows × {columns} columns): nothing to learn from")
    kinds: dict[str, ColumnKind] = {}
    problems = []
    for name in frame.columns:
        kind = _kind(frame[name])
        if kind is None:
            problems.append(f"column {name!r} has dtype {frame[name].dtype}: features are numbers or text/categories")
        else:
            kinds[str(name)] = kind
    if problems:
        raise ValidationFailed(f"features are not usable: {'; '.join(problems)}", details=problems)
    return kinds


def _kind(column: pd.Series) -> ColumnKind | None:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return "numeric"
    if isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(column):
        return "categorical"
    return None


def _require_columns(frame: pd.DataFrame, columns: Mapping[str, ColumnKind]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValidationFailed(f"features must be a pandas DataFrame, not {type(frame).__name__}")
    problems = []
    for name, kind in columns.items():
        if name not in frame.columns:
            problems.append(f"missing column {name!r} ({kind})")
        elif _kind(frame[name]) != kind:
            problems.append(f"column {name!r} must be {kind}, found dtype {frame[name].dtype}")
    if problems:
        raise ValidationFailed(f"cannot score these features: {'; '.join(problems)}", details=problems)


def _check_finite(frame: pd.DataFrame, columns: Mapping[str, ColumnKind]) -> None:
    numeric = [name for name, kind in columns.items() if kind == "numeric"]
    infinite = [name for name in numeric if np.isinf(frame[name].to_numpy(dtype=np.float64, na_value=np.nan)).any()]
    if infinite:
        raise ValidationFailed(f"infinite values in column(s) {', '.join(map(repr, infinite))}", details=infinite)


def _labels(y: pd.Series | npt.ArrayLike, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    if isinstance(y, pd.Series) and not y.index.equals(frame.index):
        raise ValidationFailed("labels and features are not on the same index: align them by customer_id first")
    values = pd.Series(np.asarray(y)).to_numpy()
    if len(values) != len(frame):
        raise ValidationFailed(f"{len(values)} labels for {len(frame)} rows of features")
    if not np.isin(values, (0, 1)).all():
        raise ValidationFailed("churn labels must be 0 or 1 (1 = churned), with no missing values")
    labels = values.astype(np.int64)
    if labels.min() == labels.max():
        raise ValidationFailed(
            f"all {len(labels):,} labels are {labels[0]}: churn labels need both churners and non-churners"
        )
    return labels


def _prepared(frame: pd.DataFrame, columns: Mapping[str, ColumnKind]) -> pd.DataFrame:
    """The model's columns in training order; numbers as float, categories as text (NaN → "none")."""
    frame = frame.loc[:, list(columns)]
    converted = {name: (_number if kind == "numeric" else _text)(frame[name]) for name, kind in columns.items()}
    return pd.DataFrame(converted, index=frame.index)


def _number(column: pd.Series) -> pd.Series:
    return column.astype("float64")


def _text(column: pd.Series) -> pd.Series:
    return column.astype("object").fillna("none").astype("str")


# --- validation -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metrics:
    """How good probabilities ``p`` are against outcomes ``y``."""

    roc_auc: float
    pr_auc: float  # average precision
    brier: float
    log_loss: float
    mean_predicted: float
    base_rate: float
    count: int


def evaluate(y: npt.ArrayLike, p: npt.ArrayLike) -> Metrics:
    """ROC-AUC, PR-AUC (average precision), Brier score and log loss of ``p`` for outcomes ``y``."""
    outcomes, probabilities = np.asarray(y, dtype=np.int64), np.asarray(p, dtype=np.float64)
    if len(outcomes) != len(probabilities) or len(np.unique(outcomes)) < 2:
        raise ValidationFailed("metrics need as many probabilities as outcomes, and both classes among the outcomes")
    return Metrics(
        roc_auc=float(roc_auc_score(outcomes, probabilities)),
        pr_auc=float(average_precision_score(outcomes, probabilities)),
        brier=float(brier_score_loss(outcomes, probabilities)),
        log_loss=float(log_loss(outcomes, np.clip(probabilities, 1e-15, 1 - 1e-15), labels=[0, 1])),
        mean_predicted=float(probabilities.mean()),
        base_rate=float(outcomes.mean()),
        count=len(outcomes),
    )


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Stratified k-fold results: per-fold metrics, their mean and std, and out-of-fold p."""

    folds: tuple[Metrics, ...]
    mean: dict[str, float]
    std: dict[str, float]
    pooled: Metrics  # over all out-of-fold predictions together
    out_of_fold: FloatArray


def cross_validate_stratified(
    X: pd.DataFrame,  # noqa: N803
    y: pd.Series | npt.ArrayLike,
    config: ChurnConfig,
    folds: int = 5,
) -> CrossValidation:
    """Out-of-fold churn probabilities and metrics over ``folds`` stratified folds (seeded by ``config.seed``).

    Returns
    -------
    CrossValidation
        ``out_of_fold[i]`` is the probability for row ``i`` from the model that did not see it.

    Raises
    ------
    ValidationFailed
        If either class has fewer members than ``folds``, or for any input ``fit`` refuses.
    """
    labels = _labels(y, X)
    smallest = int(min(labels.sum(), len(labels) - labels.sum()))
    if folds < 2 or smallest < folds:
        raise ValidationFailed(
            f"{folds}-fold cross-validation needs at least {folds} customers of each class; the rarer has {smallest}"
        )
    out_of_fold = np.zeros(len(labels), dtype=np.float64)
    results = []
    splitter = StratifiedKFold(folds, shuffle=True, random_state=config.seed)
    for train, test in splitter.split(np.zeros(len(labels)), labels):
        model = ChurnModel(config).fit(X.iloc[train], labels[train])
        out_of_fold[test] = model.predict_proba(X.iloc[test])
        results.append(evaluate(labels[test], out_of_fold[test]))
    return _summarised(tuple(results), evaluate(labels, out_of_fold), out_of_fold)


def _summarised(folds: tuple[Metrics, ...], pooled: Metrics, out_of_fold: FloatArray) -> CrossValidation:
    names = ("roc_auc", "pr_auc", "brier", "log_loss", "mean_predicted", "base_rate")
    values = {name: np.array([getattr(fold, name) for fold in folds]) for name in names}
    mean = {name: float(column.mean()) for name, column in values.items()}
    std = {name: float(column.std()) for name, column in values.items()}
    return CrossValidation(folds, mean, std, pooled, out_of_fold)


@dataclass(frozen=True, slots=True)
class TimeSplit:
    """A model trained as of one date and tested as of a later one, beside a recency-only baseline."""

    model: Metrics
    baseline: Metrics
    train_rows: int
    test_rows: int

    @property
    def beats_baseline(self) -> bool:
        """Higher ROC-AUC and lower Brier score than the baseline on the same test set."""
        return self.model.roc_auc > self.baseline.roc_auc and self.model.brier < self.baseline.brier


def time_split_validate(
    train_X: pd.DataFrame,  # noqa: N803
    train_y: pd.Series | npt.ArrayLike,
    test_X: pd.DataFrame,  # noqa: N803
    test_y: pd.Series | npt.ArrayLike,
    config: ChurnConfig,
    baseline_column: str = "orders_recency_days",
) -> TimeSplit:
    """Train on the earlier snapshot, test on the later one, and compare with a recency-only model.

    The snapshots must not overlap: the training labels' window has to end at or before the test
    as-of date, or the training labels see the test period (``ml.snapshots.churn_snapshot`` builds
    both). The baseline is a logistic regression on ``log(1 + recency)`` alone, fitted on the same
    training rows, so its probabilities are as calibrated as the model's and Brier is comparable.
    """
    for frame, name in ((train_X, "training"), (test_X, "test")):
        if baseline_column not in frame.columns:
            raise ValidationFailed(f"the {name} features have no {baseline_column!r} column for the baseline")
    model = ChurnModel(config).fit(train_X, train_y)
    baseline = ChurnModel(ChurnConfig(seed=config.seed, horizon_days=config.horizon_days))
    baseline.fit(train_X[[baseline_column]], train_y)
    outcomes = _labels(test_y, test_X)
    return TimeSplit(
        model=evaluate(outcomes, model.predict_proba(test_X)),
        baseline=evaluate(outcomes, baseline.predict_proba(test_X[[baseline_column]])),
        train_rows=len(train_X),
        test_rows=len(test_X),
    )


def reliability_table(
    y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10, strategy: Literal["quantile", "uniform"] = "quantile"
) -> pd.DataFrame:
    """Predicted against observed churn by bin of p.

    Parameters
    ----------
    y, p
        Outcomes (0/1) and predicted probabilities.
    bins
        Number of bins; quantile bins that would repeat an edge (many equal p) are merged.
    strategy
        ``"quantile"`` (equal counts) or ``"uniform"`` (equal widths on [0, 1]; empty bins dropped).

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``bin``, ``lower``, ``upper`` (range of p in it), ``mean_predicted``,
        ``observed_rate``, ``count``. Calibrated p has ``mean_predicted ≈ observed_rate``.
    """
    outcomes, probabilities = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if len(outcomes) != len(probabilities) or len(outcomes) == 0 or bins < 1:
        raise ValidationFailed("a reliability table needs as many outcomes as probabilities (one at least), bins ≥ 1")
    if strategy == "quantile":
        bin_of = pd.qcut(probabilities, bins, labels=False, duplicates="drop")
    elif strategy == "uniform":
        bin_of = np.clip(np.floor(probabilities * bins), 0, bins - 1).astype(np.int64)
    else:
        raise ValidationFailed(f"strategy must be 'quantile' or 'uniform', not {strategy!r}")
    frame = pd.DataFrame({"bin": bin_of, "p": probabilities, "y": outcomes})
    table = frame.groupby("bin").agg(
        lower=("p", "min"),
        upper=("p", "max"),
        mean_predicted=("p", "mean"),
        observed_rate=("y", "mean"),
        count=("y", "size"),
    )
    return table.reset_index()
