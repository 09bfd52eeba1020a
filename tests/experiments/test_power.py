"""Sample sizes and MDEs: the reference's worked example, statsmodels for equal and unequal splits, and the MDE
as the inverse of the sample size."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.proportion import samplesize_proportions_2indep_onetail

from core.errors import BadRequest
from experiments.power import RateFormula, mde_mean, mde_rate, sample_size_means, sample_size_rates


def test_the_reference_example_two_percent_to_two_point_two_percent() -> None:
    unpooled = sample_size_rates(0.02, 0.022, formula=RateFormula.UNPOOLED)
    pooled = sample_size_rates(0.02, 0.022)

    # experimentation.md §2.9: unpooled 80,679; pooled-H0 80,681 per arm (the formulas' values, rounded).
    assert (math.ceil(unpooled.n_control), round(pooled.n_control)) == (80_679, 80_681)
    assert pooled.n_treatment == pooled.n_control


@pytest.mark.parametrize("ratio", [1.0, 9.0, 19.0, 0.5])
def test_pooled_sizes_match_statsmodels_for_unequal_allocations(ratio: float) -> None:
    size = sample_size_rates(0.05, 0.055, ratio=ratio)

    # statsmodels sizes sample 1 (here the treatment, p1 = p2 + diff) with nobs2 = ratio' · nobs1.
    n_treatment = samplesize_proportions_2indep_onetail(0.005, 0.05, 0.8, ratio=1 / ratio)
    assert size.n_treatment == pytest.approx(n_treatment, rel=1e-9)
    assert size.n_control == pytest.approx(n_treatment / ratio, rel=1e-9)


def test_a_small_holdout_needs_more_customers_in_all_than_an_even_split() -> None:
    even = sample_size_rates(0.05, 0.055)
    holdout = sample_size_rates(0.05, 0.055, ratio=9.0)

    assert holdout.total > 2.5 * even.total
    assert holdout.n_control < even.n_control


@pytest.mark.parametrize("ratio", [1.0, 4.0])
def test_mean_sizes_are_close_to_statsmodels_t_test_power(ratio: float) -> None:
    size = sample_size_means(sd=40.0, difference=2.0, ratio=ratio)

    expected = TTestIndPower().solve_power(effect_size=2.0 / 40.0, alpha=0.05, power=0.8, ratio=1 / ratio)
    assert size.n_treatment == pytest.approx(expected, rel=2e-3)  # normal approximation versus t


def test_the_rate_mde_is_the_effect_the_sample_size_formula_needs_those_arms_for() -> None:
    mde = mde_rate(0.03, 5_000, 45_000)

    size = sample_size_rates(0.03, 0.03 + mde, ratio=9.0, formula=RateFormula.UNPOOLED)
    assert size.n_control == pytest.approx(5_000, rel=1e-6)


def test_the_mean_mde_inverts_the_mean_sample_size() -> None:
    mde = mde_mean(40.0, 40.0, 2_000, 18_000)

    assert sample_size_means(40.0, mde, ratio=9.0).n_control == pytest.approx(2_000, rel=1e-9)


def test_equal_rates_are_refused() -> None:
    with pytest.raises(BadRequest, match="rates must be in"):
        sample_size_rates(0.02, 0.02)
