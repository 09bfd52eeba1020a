"""Always-valid inference: Howard et al.'s normal-mixture confidence sequence, so a marketer can look at a running
experiment as often as they like without inflating false positives.

The effect estimate after t units (both arms together) is treated as normal with standard error ``se``. With
the mixture martingale M_t = √(ρ/(t+ρ))·exp(z² t / (2(t+ρ))), z = estimate/se, Ville's inequality gives
P(∃t: M_t ≥ 1/α) ≤ α under H0. Hence

- the **confidence sequence** estimate ± se·√((t+ρ)/t · log((t+ρ)/(ρα²))), valid at every look at once;
- the **always-valid p-value** min(1, 1/M_t): below α exactly when the sequence excludes 0.

ρ tunes where the boundary is tightest: ρ = N/(−2 log α + log(1 − 2 log α)) makes it tightest at t = N; N =
10,000 units as Eppo's default (Howard, Ramdas, McAuliffe & Sekhon 2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", eq. (14); Eppo's docs; ``experimentation.md`` §2.7). The normal
approximation makes it asymptotically valid, like the fixed-horizon tests it replaces.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from experiments.frequentist import Comparison, FloatArray

TUNING_N = 10_000
METHOD = "always-valid confidence sequence (Howard et al. normal mixture, tuned at N = {n:,})"


def mixture_rho(alpha: float = 0.05, tuning_n: float = TUNING_N) -> float:
    """The mixture variance ρ that makes the boundary tightest at ``tuning_n`` units."""
    log_alpha = float(np.log(alpha))
    return float(tuning_n / (-2 * log_alpha + np.log(1 - 2 * log_alpha)))


def half_width(se: npt.ArrayLike, t: npt.ArrayLike, alpha: float = 0.05, tuning_n: float = TUNING_N) -> FloatArray:
    """Half-width of the (1 − α) confidence sequence after ``t`` units, for an estimate with standard error ``se``."""
    rho = mixture_rho(alpha, tuning_n)
    t_ = np.asarray(t, dtype=np.float64)
    return np.asarray(se, dtype=np.float64) * np.sqrt((t_ + rho) / t_ * np.log((t_ + rho) / (rho * alpha**2)))


def always_valid_p(z: npt.ArrayLike, t: npt.ArrayLike, alpha: float = 0.05, tuning_n: float = TUNING_N) -> FloatArray:
    """min(1, 1/M_t) for the statistic ``z`` after ``t`` units (ρ tuned for ``alpha``)."""
    rho = mixture_rho(alpha, tuning_n)
    t_ = np.asarray(t, dtype=np.float64)
    z_ = np.asarray(z, dtype=np.float64)
    log_inverse = 0.5 * np.log((t_ + rho) / rho) - z_**2 * t_ / (2 * (t_ + rho))
    return np.asarray(np.minimum(1.0, np.exp(log_inverse)), dtype=np.float64)


def confidence_sequence(
    estimate: npt.ArrayLike, se: npt.ArrayLike, t: npt.ArrayLike, alpha: float = 0.05, tuning_n: float = TUNING_N
) -> Comparison:
    """The estimate with its always-valid interval and p-value after ``t`` units."""
    estimate_ = np.asarray(estimate, dtype=np.float64)
    se_ = np.asarray(se, dtype=np.float64)
    width = half_width(se_, t, alpha, tuning_n)
    z = np.divide(estimate_, se_, out=np.zeros_like(estimate_), where=se_ > 0)
    return Comparison(
        method=METHOD.format(n=tuning_n),
        estimate=estimate_,
        se=se_,
        ci_low=estimate_ - width,
        ci_high=estimate_ + width,
        p_value=always_valid_p(z, t, alpha, tuning_n),
    )
