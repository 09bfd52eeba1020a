"""Frequentist tests on per-arm sufficient statistics: rates, means (Welch), CUPED, and the SRM check.

Every function works on numbers an SQL ``GROUP BY arm`` returns (n, Σy, Σy², and for CUPED Σx, Σx², Σxy)
and broadcasts over numpy arrays, so one call can test many arms, metrics or simulated experiments at once.
Formulas follow ``experimentation.md`` §2.1–2.4; each result carries the name of its method.

Conventions: ``_c`` is the control arm, ``_t`` the treatment; effects are treatment minus control; a
proportion's variance is p(1−p) with no n/(n−1) factor; a mean's is the sample variance (n−1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from core.errors import BadRequest

FloatArray = npt.NDArray[np.float64]

SRM_THRESHOLD = 0.001

TWO_PROPORTION = "two-proportion z-test (pooled), Newcombe hybrid-score CI"
RELATIVE_RATE = "relative lift of a rate, delta method (normal)"
WELCH = "Welch t-test"
WELCH_RELATIVE = "relative lift, Welch t-test with delta-method SE"
CUPED = "CUPED (θ pooled across arms), Welch t-test"
CUPED_RELATIVE = "relative lift, CUPED (θ pooled across arms), delta method"
SRM = "sample ratio mismatch, Pearson chi-square (zero-weight arms dropped)"


@dataclass(frozen=True, slots=True)
class Comparison:
    """A treatment against its control: the effect, its standard error, a two-sided CI and p-value.

    Arrays broadcast from the inputs; a scalar input gives 0-d arrays (``float()`` reads them).
    """

    method: str
    estimate: FloatArray
    se: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray


@dataclass(frozen=True, slots=True)
class SrmResult:
    """The sample-ratio-mismatch check on assignment counts."""

    method: str
    chi2: float
    df: int
    p_value: float
    flagged: bool
    threshold: float
    observed: dict[str, int]
    expected: dict[str, float]
    dropped: tuple[str, ...]


def _array(value: npt.ArrayLike) -> FloatArray:
    return np.asarray(value, dtype=np.float64)


def mean_and_variance(n: npt.ArrayLike, total: npt.ArrayLike, total_sq: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The mean Σy/n and sample variance (Σy² − (Σy)²/n)/(n − 1) from sufficient statistics."""
    n_, total_ = _array(n), _array(total)
    mean = total_ / n_
    variance = np.maximum((_array(total_sq) - total_ * mean) / (n_ - 1), 0.0)  # rounding can dip below 0
    return mean, variance


def wilson_interval(successes: npt.ArrayLike, n: npt.ArrayLike, alpha: float = 0.05) -> tuple[FloatArray, FloatArray]:
    """Wilson's score interval for one proportion."""
    x, n_ = _array(successes), _array(n)
    z = stats.norm.ppf(1 - alpha / 2)
    centre = (x + z**2 / 2) / (n_ + z**2)
    half = z / (n_ + z**2) * np.sqrt(x * (n_ - x) / n_ + z**2 / 4)
    return centre - half, centre + half


def two_proportions(
    x_c: npt.ArrayLike, n_c: npt.ArrayLike, x_t: npt.ArrayLike, n_t: npt.ArrayLike, alpha: float = 0.05
) -> Comparison:
    """Difference of two rates p_t − p_c: pooled z-test p-value, Newcombe's hybrid-score interval.

    ``se`` is the unpooled standard error √(p_c q_c/n_c + p_t q_t/n_t) (what the sequential and
    incrementality figures use); the test statistic uses the pooled rate under H0, so z² equals the 2×2
    chi-square without continuity correction.
    """
    xc, nc, xt, nt = _array(x_c), _array(n_c), _array(x_t), _array(n_t)
    p_c, p_t = xc / nc, xt / nt
    difference = p_t - p_c
    pooled = (xc + xt) / (nc + nt)
    se_null = np.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
    z = np.divide(difference, se_null, out=np.zeros_like(difference), where=se_null > 0)
    low_t, high_t = wilson_interval(xt, nt, alpha)
    low_c, high_c = wilson_interval(xc, nc, alpha)
    return Comparison(
        method=TWO_PROPORTION,
        estimate=difference,
        se=np.sqrt(p_c * (1 - p_c) / nc + p_t * (1 - p_t) / nt),
        ci_low=difference - np.sqrt((p_t - low_t) ** 2 + (high_c - p_c) ** 2),
        ci_high=difference + np.sqrt((high_t - p_t) ** 2 + (p_c - low_c) ** 2),
        p_value=2 * stats.norm.sf(np.abs(z)),
    )


def relative_rate_lift(
    x_c: npt.ArrayLike, n_c: npt.ArrayLike, x_t: npt.ArrayLike, n_t: npt.ArrayLike, alpha: float = 0.05
) -> Comparison:
    """Relative lift of a rate (p_t − p_c)/p_c with the delta-method SE and normal quantiles."""
    nc, nt = _array(n_c), _array(n_t)
    p_c, p_t = _array(x_c) / nc, _array(x_t) / nt
    return _relative(p_c, p_c * (1 - p_c), nc, p_t, p_t * (1 - p_t), nt, np.inf, alpha, RELATIVE_RATE)


def welch_df(var_c: FloatArray, n_c: FloatArray, var_t: FloatArray, n_t: FloatArray) -> FloatArray:
    """Welch–Satterthwaite degrees of freedom from the per-arm variances.

    With no variance in either arm (nobody has bought yet) the formula is 0/0; the statistic is then 0 and the
    pooled n_c + n_t − 2 stands in, so the test says "no evidence" (p = 1) rather than NaN."""
    a, b = var_c / n_c, var_t / n_t
    denominator = a**2 / (n_c - 1) + b**2 / (n_t - 1)
    defined = denominator > 0
    satterthwaite = (a + b) ** 2 / np.where(defined, denominator, 1.0)
    return np.asarray(np.where(defined, satterthwaite, n_c + n_t - 2), dtype=np.float64)


def welch(
    mean_c: npt.ArrayLike,
    var_c: npt.ArrayLike,
    n_c: npt.ArrayLike,
    mean_t: npt.ArrayLike,
    var_t: npt.ArrayLike,
    n_t: npt.ArrayLike,
    alpha: float = 0.05,
    *,
    relative: bool = False,
    method: str | None = None,
) -> Comparison:
    """Welch's t-test on the difference of means, or on the relative lift (μ_t − μ_c)/|μ_c| (delta method).

    The degrees of freedom are Welch's on the per-arm variances in both cases; the CI uses t quantiles.
    """
    mc, vc, nc, mt, vt, nt = (_array(value) for value in (mean_c, var_c, n_c, mean_t, var_t, n_t))
    df = welch_df(vc, nc, vt, nt)
    if relative:
        return _relative(mc, vc, nc, mt, vt, nt, df, alpha, method or WELCH_RELATIVE)
    return _t_comparison(mt - mc, np.sqrt(vc / nc + vt / nt), df, alpha, method or WELCH)


def _relative(
    m_c: FloatArray,
    v_c: FloatArray,
    n_c: FloatArray,
    m_t: FloatArray,
    v_t: FloatArray,
    n_t: FloatArray,
    df: FloatArray | float,
    alpha: float,
    method: str,
) -> Comparison:
    # Delta method for (μ_t − μ_c)/|μ_c|: var_t/(μ_c² n_t) + var_c μ_t²/(μ_c⁴ n_c)  (§2.2). Undefined (NaN) while
    # the control's mean is 0: no relative lift exists yet, and the decision reads absolute effects only.
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = (m_t - m_c) / np.abs(m_c)
        se = np.sqrt(v_t / (m_c**2 * n_t) + v_c * m_t**2 / (m_c**4 * n_c))
    return _t_comparison(lift, se, df, alpha, method)


def _t_comparison(
    estimate: FloatArray, se: FloatArray, df: FloatArray | float, alpha: float, method: str
) -> Comparison:
    t = np.divide(estimate, se, out=np.zeros_like(estimate), where=se > 0)
    quantile = stats.t.ppf(1 - alpha / 2, df)
    return Comparison(
        method=method,
        estimate=estimate,
        se=se,
        ci_low=estimate - quantile * se,
        ci_high=estimate + quantile * se,
        p_value=np.asarray(2 * stats.t.sf(np.abs(t), df), dtype=np.float64),
    )


@dataclass(frozen=True, slots=True)
class CovariateMoments:
    """Sufficient statistics of an outcome y and its pre-period covariate x in one arm."""

    n: npt.ArrayLike
    y_sum: npt.ArrayLike
    y_sum_sq: npt.ArrayLike
    x_sum: npt.ArrayLike
    x_sum_sq: npt.ArrayLike
    xy_sum: npt.ArrayLike


def cuped_theta(control: CovariateMoments, treatment: CovariateMoments) -> FloatArray:
    """θ = cov(y, x)/var(x) on both arms pooled (§2.3); 0 when the covariate does not vary."""
    n = _array(control.n) + _array(treatment.n)
    x = _array(control.x_sum) + _array(treatment.x_sum)
    y = _array(control.y_sum) + _array(treatment.y_sum)
    covariance = _array(control.xy_sum) + _array(treatment.xy_sum) - x * y / n
    variance = _array(control.x_sum_sq) + _array(treatment.x_sum_sq) - x * x / n
    return np.divide(covariance, variance, out=np.zeros_like(covariance), where=variance > 0)


def cuped(
    control: CovariateMoments, treatment: CovariateMoments, alpha: float = 0.05, *, relative: bool = False
) -> Comparison:
    """Welch's test on the CUPED-adjusted outcome y − θ(x − x̄), with x̄ and θ from both arms pooled.

    Per arm the adjusted mean is ȳ − θ(x̄_arm − x̄) and the adjusted variance var(y) + θ² var(x) − 2θ cov(x, y):
    exactly what a Welch test on the per-customer adjusted outcomes gives.
    """
    theta = cuped_theta(control, treatment)
    n = _array(control.n) + _array(treatment.n)
    x_mean = (_array(control.x_sum) + _array(treatment.x_sum)) / n
    m_c, v_c = _adjusted(control, theta, x_mean)
    m_t, v_t = _adjusted(treatment, theta, x_mean)
    method = CUPED_RELATIVE if relative else CUPED
    return welch(m_c, v_c, control.n, m_t, v_t, treatment.n, alpha, relative=relative, method=method)


def _adjusted(arm: CovariateMoments, theta: FloatArray, x_mean: FloatArray) -> tuple[FloatArray, FloatArray]:
    n = _array(arm.n)
    y_mean, y_var = mean_and_variance(n, arm.y_sum, arm.y_sum_sq)
    arm_x_mean, x_var = mean_and_variance(n, arm.x_sum, arm.x_sum_sq)
    covariance = (_array(arm.xy_sum) - _array(arm.x_sum) * y_mean) / (n - 1)
    variance = np.maximum(y_var + theta**2 * x_var - 2 * theta * covariance, 0.0)
    return y_mean - theta * (arm_x_mean - x_mean), variance


def srm_check(observed: Mapping[str, int], weights: Mapping[str, float], threshold: float = SRM_THRESHOLD) -> SrmResult:
    """Pearson's chi-square of the observed assignment counts against the configured split (§2.4).

    An arm with weight 0 is dropped entirely — from the total N and from the degrees of freedom
    (df = arms with a positive weight − 1), as GrowthBook's experiment-level check does. Fewer than two
    arms with a positive weight leave nothing to test (p = 1).

    Raises
    ------
    core.errors.BadRequest
        An observed arm without a weight, a negative or non-finite weight, or a negative count.
    """
    unknown = sorted(set(observed) - set(weights))
    if unknown:
        raise BadRequest(f"no configured weight for arms {unknown}")
    if any(not np.isfinite(weight) or weight < 0 for weight in weights.values()):
        raise BadRequest(f"weights must be finite and non-negative: {dict(weights)}")
    if any(count < 0 for count in observed.values()):
        raise BadRequest(f"counts must not be negative: {dict(observed)}")
    kept = sorted(arm for arm, weight in weights.items() if weight > 0)
    dropped = tuple(sorted(arm for arm, weight in weights.items() if weight <= 0))
    counts = np.array([observed.get(arm, 0) for arm in kept], dtype=np.float64)
    shares = np.array([weights[arm] for arm in kept], dtype=np.float64)
    expected = counts.sum() * shares / shares.sum() if kept else counts
    df = len(kept) - 1
    if df < 1 or counts.sum() == 0:
        chi2, p_value = 0.0, 1.0
    else:
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        p_value = float(stats.chi2.sf(chi2, df))
    return SrmResult(
        method=SRM,
        chi2=chi2,
        df=max(df, 0),
        p_value=p_value,
        flagged=p_value < threshold,
        threshold=threshold,
        observed={arm: int(observed.get(arm, 0)) for arm in kept},
        expected={arm: float(value) for arm, value in zip(kept, expected, strict=True)},
        dropped=dropped,
    )
