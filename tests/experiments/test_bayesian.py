"""Chance to win and expected loss: the beta-binomial closed form against numerical integration and seeded Monte
Carlo; the Gaussian lift against its normal formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from core.errors import BadRequest
from experiments.bayesian import beta_binomial, gaussian, gaussian_lift, probability_greater

DRAWS = 2_000_000


@pytest.mark.parametrize(("a_x", "b_x", "a_y", "b_y"), [(13, 88, 9, 92), (151, 9_851, 121, 9_881), (1, 1, 1, 1)])
def test_the_closed_form_matches_numerical_integration(a_x: int, b_x: int, a_y: int, b_y: int) -> None:
    integrand = lambda x: stats.beta.pdf(x, a_x, b_x) * stats.beta.cdf(x, a_y, b_y)  # noqa: E731
    expected, _ = integrate.quad(integrand, 0, 1, epsabs=1e-13, points=[a_x / (a_x + b_x)], limit=200)

    assert probability_greater(a_x, b_x, a_y, b_y) == pytest.approx(expected, abs=1e-9)


def test_beta_binomial_chance_to_win_and_expected_loss_match_monte_carlo() -> None:
    result = beta_binomial(120, 10_000, 150, 10_000)

    rng = np.random.default_rng(7)
    control = rng.beta(121, 9_881, DRAWS)
    treatment = rng.beta(151, 9_851, DRAWS)
    win = (treatment > control).mean()
    loss = np.maximum(control - treatment, 0).mean()
    assert result.chance_to_win == pytest.approx(win, abs=4 * np.sqrt(win * (1 - win) / DRAWS))
    assert result.expected_loss == pytest.approx(loss, rel=0.02)
    assert result.method == "Bayesian beta-binomial, Beta(1, 1) prior, closed form"


def test_a_worse_treatment_has_a_low_chance_to_win_and_a_loss_near_the_gap() -> None:
    result = beta_binomial(300, 10_000, 200, 10_000)

    assert result.chance_to_win < 1e-4
    assert result.expected_loss == pytest.approx(0.01, rel=0.01)


def test_non_integer_priors_are_refused_because_the_closed_form_needs_integers() -> None:
    with pytest.raises(BadRequest, match="two positive integers"):
        beta_binomial(1, 10, 2, 10, prior=(0.5, 0.5))  # type: ignore[arg-type]


def test_the_flat_prior_gaussian_is_the_normal_probability_of_a_positive_lift() -> None:
    result = gaussian(0.04, 0.02)

    rng = np.random.default_rng(11)
    lift = rng.normal(0.04, 0.02, DRAWS)
    assert result.chance_to_win == pytest.approx(stats.norm.cdf(2.0), rel=1e-12)
    assert result.expected_loss == pytest.approx(np.maximum(-lift, 0).mean(), rel=0.02)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.04 - 1.959964 * 0.02, 0.04 + 1.959964 * 0.02), rel=1e-6)


def test_a_normal_prior_shrinks_the_lift_towards_zero() -> None:
    win, _, low, high = gaussian_lift(0.04, 0.02, prior_sd=0.3)

    variance = 1 / (1 / 0.3**2 + 1 / 0.02**2)
    mean = variance * 0.04 / 0.02**2
    assert float(win) == pytest.approx(stats.norm.cdf(mean / np.sqrt(variance)), rel=1e-12)
    assert float((low + high) / 2) == pytest.approx(mean)
    assert mean < 0.04
