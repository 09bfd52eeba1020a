"""The frequentist tests agree with statsmodels and scipy on fixed inputs, and SRM flags a skewed split only."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from core.errors import BadRequest
from experiments.assignment import assign
from experiments.frequentist import (
    CovariateMoments,
    cuped,
    cuped_theta,
    mean_and_variance,
    relative_rate_lift,
    srm_check,
    two_proportions,
    welch,
)

RATES = [(120, 10_000, 150, 10_000), (3, 400, 11, 380), (560, 21_306, 1_187, 21_307), (0, 50, 4, 60)]


@pytest.mark.parametrize(("x_c", "n_c", "x_t", "n_t"), RATES)
def test_two_proportions_matches_statsmodels_pooled_z_and_newcombe_interval(
    x_c: int, n_c: int, x_t: int, n_t: int
) -> None:
    result = two_proportions(x_c, n_c, x_t, n_t)

    _, p_value = proportions_ztest([x_t, x_c], [n_t, n_c])
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="newcomb", compare="diff")
    assert float(result.estimate) == pytest.approx(x_t / n_t - x_c / n_c, abs=1e-15)
    assert float(result.p_value) == pytest.approx(p_value, rel=1e-9)
    assert (float(result.ci_low), float(result.ci_high)) == pytest.approx((low, high), rel=1e-9)


def test_the_pooled_z_squared_is_the_chi_square_of_the_two_by_two_table() -> None:
    result = two_proportions(120, 10_000, 150, 10_000)

    chi2, p_value, _, _ = stats.chi2_contingency([[150, 9_850], [120, 9_880]], correction=False)
    assert float(result.p_value) == pytest.approx(p_value, rel=1e-9)
    assert float(result.estimate / result.se) ** 2 == pytest.approx(chi2, rel=0.01)  # unpooled se: close, not equal


def test_two_proportions_broadcasts_over_arrays() -> None:
    x_c, n_c, x_t, n_t = (np.array(column) for column in zip(*RATES, strict=True))

    result = two_proportions(x_c, n_c, x_t, n_t)

    singles = [float(two_proportions(*row).p_value) for row in RATES]
    assert result.p_value.tolist() == pytest.approx(singles, rel=1e-12)


def test_two_identical_zero_rates_give_p_one_not_a_division_error() -> None:
    assert float(two_proportions(0, 100, 0, 100).p_value) == 1.0


def test_the_relative_rate_lift_has_the_delta_method_standard_error() -> None:
    result = relative_rate_lift(120, 10_000, 150, 10_000)

    p_c, p_t = 0.012, 0.015
    gradient = np.array([-p_t / p_c**2, 1 / p_c])  # of p_t/p_c − 1, by hand
    covariance = np.diag([p_c * (1 - p_c) / 10_000, p_t * (1 - p_t) / 10_000])
    assert float(result.estimate) == pytest.approx(0.25)
    assert float(result.se) == pytest.approx(np.sqrt(gradient @ covariance @ gradient), rel=1e-12)
    assert float(result.ci_high - result.estimate) == pytest.approx(1.959964 * float(result.se), rel=1e-6)


def _revenue(seed: int, n: int, scale: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.1, rng.lognormal(3.0, 1.0, n) * scale, 0.0)


def _moments(values: np.ndarray) -> tuple[int, float, float]:
    return len(values), float(values.sum()), float((values**2).sum())


def test_welch_matches_scipy_ttest_ind_with_unequal_variances() -> None:
    control, treatment = _revenue(1, 3_000, 1.0), _revenue(2, 2_000, 1.3)
    mean_c, var_c = mean_and_variance(*_moments(control))
    mean_t, var_t = mean_and_variance(*_moments(treatment))

    result = welch(mean_c, var_c, len(control), mean_t, var_t, len(treatment))

    expected = stats.ttest_ind(treatment, control, equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert float(result.p_value) == pytest.approx(expected.pvalue, rel=1e-9)
    assert float(result.estimate / result.se) == pytest.approx(expected.statistic, rel=1e-9)
    assert (float(result.ci_low), float(result.ci_high)) == pytest.approx((interval.low, interval.high), rel=1e-9)


def test_the_relative_welch_lift_uses_the_delta_method_and_welch_degrees_of_freedom() -> None:
    control, treatment = _revenue(3, 3_000, 1.0), _revenue(4, 2_500, 1.2)
    m_c, v_c, m_t, v_t = control.mean(), control.var(ddof=1), treatment.mean(), treatment.var(ddof=1)

    result = welch(m_c, v_c, 3_000, m_t, v_t, 2_500, relative=True)

    se = np.sqrt(v_t / (m_c**2 * 2_500) + v_c * m_t**2 / (m_c**4 * 3_000))
    df = stats.ttest_ind(treatment, control, equal_var=False).df
    assert float(result.estimate) == pytest.approx(m_t / m_c - 1, rel=1e-12)
    assert float(result.se) == pytest.approx(se, rel=1e-12)
    assert float(result.p_value) == pytest.approx(2 * stats.t.sf(abs((m_t / m_c - 1) / se), df), rel=1e-9)


def test_cuped_equals_a_welch_test_on_outcomes_adjusted_with_the_pooled_theta() -> None:
    rng = np.random.default_rng(5)
    pre = rng.gamma(1.0, 50.0, 4_000)
    post = 0.6 * pre + rng.normal(0, 20, 4_000) + np.r_[np.zeros(2_000), np.full(2_000, 3.0)]
    arms = [slice(0, 2_000), slice(2_000, 4_000)]
    moments = [
        CovariateMoments(
            2_000, post[a].sum(), (post[a] ** 2).sum(), pre[a].sum(), (pre[a] ** 2).sum(), (pre[a] * post[a]).sum()
        )
        for a in arms
    ]

    result = cuped(*moments)

    theta = np.cov(post, pre)[0, 1] / pre.var(ddof=1)
    adjusted = post - theta * (pre - pre.mean())
    expected = stats.ttest_ind(adjusted[arms[1]], adjusted[arms[0]], equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert float(cuped_theta(*moments)) == pytest.approx(theta, rel=1e-9)
    assert float(result.p_value) == pytest.approx(expected.pvalue, rel=1e-6)
    assert (float(result.ci_low), float(result.ci_high)) == pytest.approx((interval.low, interval.high), rel=1e-9)
    plain = stats.ttest_ind(post[arms[1]], post[arms[0]], equal_var=False).confidence_interval(0.95)
    assert float(result.ci_high - result.ci_low) < 0.6 * (plain.high - plain.low)  # the point of CUPED


def test_srm_matches_scipy_chisquare_on_the_positive_weight_arms() -> None:
    result = srm_check({"holdout": 980, "v1": 4_600, "v2": 4_420}, {"holdout": 1, "v1": 4.5, "v2": 4.5})

    expected = stats.chisquare([980, 4_600, 4_420], [1_000, 4_500, 4_500])
    assert (result.chi2, result.p_value, result.df) == (
        pytest.approx(expected.statistic),
        pytest.approx(expected.pvalue),
        2,
    )
    assert not result.flagged


def test_srm_drops_a_zero_weight_arm_from_the_total_and_the_degrees_of_freedom() -> None:
    result = srm_check({"a": 5_050, "b": 4_950, "c": 300}, {"a": 1, "b": 1, "c": 0})

    expected = stats.chisquare([5_050, 4_950])
    assert (result.df, result.dropped) == (1, ("c",))
    assert result.expected == {"a": 5_000.0, "b": 5_000.0}
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_srm_does_not_flag_the_hashed_assignment_and_flags_a_deliberately_skewed_split() -> None:
    pairs = assign("srm-salt", list(range(1, 100_001)), [("v1", 1.0), ("v2", 1.0)], 0.1)
    arms, counts = np.unique([arm for _, arm in pairs], return_counts=True)
    fair = dict(zip(arms.tolist(), counts.tolist(), strict=True))
    weights = {"holdout": 0.1, "v1": 0.45, "v2": 0.45}
    skewed = {**fair, "v2": int(fair["v2"] * 0.97)}  # 3 % of one variant lost, e.g. by a filter after assignment

    assert not srm_check(fair, weights).flagged
    assert srm_check(skewed, weights).flagged
    assert srm_check(skewed, weights).p_value < 0.001


def test_srm_refuses_an_observed_arm_without_a_weight() -> None:
    with pytest.raises(BadRequest, match=r"^no configured weight for arms \['v9'\]$"):
        srm_check({"v1": 10, "v9": 3}, {"v1": 1})
