"""The always-valid confidence sequence reproduces the reference half-width, agrees with its own p-value, and
keeps the false-positive rate under α however often one peeks, where a fixed-horizon test peeked at does not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments.frequentist import two_proportions
from experiments.sequential import always_valid_p, confidence_sequence, half_width, mixture_rho

EXPERIMENTS, LOOKS, PER_LOOK, RATE = 4_000, 20, 500, 0.05


def test_the_half_width_is_the_reference_example_for_se_001_after_20000_units() -> None:
    assert float(half_width(0.01, 20_000)) == pytest.approx(0.03061, abs=5e-6)
    assert 0.01 * stats.norm.ppf(0.975) == pytest.approx(0.01960, abs=5e-6)  # the fixed-horizon width it replaces


def test_rho_is_tuned_for_ten_thousand_units_at_alpha_5_percent() -> None:
    log_alpha = np.log(0.05)
    assert mixture_rho() == pytest.approx(10_000 / (-2 * log_alpha + np.log(1 - 2 * log_alpha)))


def test_the_always_valid_p_value_is_below_alpha_exactly_when_the_sequence_excludes_zero() -> None:
    z = np.linspace(0, 8, 2_001)
    t = np.full_like(z, 20_000)

    result = confidence_sequence(z * 0.01, np.full_like(z, 0.01), t)

    excludes_zero = result.ci_low > 0
    assert np.array_equal(result.p_value < 0.05, excludes_zero)
    assert excludes_zero.any()
    assert not excludes_zero.all()
    assert np.allclose(always_valid_p(z, t), result.p_value)


def test_the_sequence_is_wider_than_the_fixed_interval_and_narrows_as_data_accrue() -> None:
    widths = half_width(1.0, np.array([100, 1_000, 10_000, 100_000]))

    assert np.all(widths > stats.norm.ppf(0.975))
    assert np.all(np.diff(widths / np.sqrt([100, 1_000, 10_000, 100_000])) < 0)  # se ∝ 1/√t shrinks the interval


def _peeked_aa_tests() -> tuple[np.ndarray, np.ndarray]:
    """p-values at 20 looks of 4,000 A/A experiments on a 5 % conversion rate, as (fixed-horizon, always-valid)."""
    rng = np.random.default_rng(20261121)
    conversions = rng.binomial(PER_LOOK, RATE, size=(2, EXPERIMENTS, LOOKS)).cumsum(axis=2)
    n = PER_LOOK * np.arange(1, LOOKS + 1)
    fixed = two_proportions(conversions[0], n, conversions[1], n)
    valid = confidence_sequence(fixed.estimate, fixed.se, 2 * n)
    return fixed.p_value, valid.p_value


def test_aa_false_positives_stay_near_alpha_at_one_look_and_under_it_with_peeking_when_always_valid() -> None:
    fixed, valid = _peeked_aa_tests()
    tolerance = 4 * np.sqrt(0.05 * 0.95 / EXPERIMENTS)

    at_the_end = (fixed[:, -1] < 0.05).mean()
    peeking_fixed = (fixed < 0.05).any(axis=1).mean()
    peeking_valid = (valid < 0.05).any(axis=1).mean()

    assert abs(at_the_end - 0.05) < tolerance
    assert peeking_fixed > 0.15  # looking 20 times at a fixed-horizon test inflates false positives
    assert peeking_valid < 0.05 + tolerance
