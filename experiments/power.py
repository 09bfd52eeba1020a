"""Planning: sample size and minimum detectable effect, for equal splits and for holdouts.

Two-sided tests at level α with power 1 − β (``experimentation.md`` §2.9). ``ratio`` is n_treatment / n_control:
a 10 % holdout with 90 % treated is ``ratio = 9``. Unequal allocation replaces 2/n by 1/n_c + 1/n_t in the
variance, so a small holdout dominates what can be detected.

- Rates, ``pooled`` (the default, as G*Power and statsmodels' ``samplesize_proportions_2indep_onetail``):
  n_c = [z_{α/2}·√(p̄q̄(1 + 1/k)) + z_β·√(p_c q_c + p_t q_t/k)]² / δ², p̄ = (p_c + k p_t)/(1 + k).
- Rates, ``unpooled``: n_c = (z_{α/2} + z_β)²·(p_c q_c + p_t q_t/k) / δ².
- Means (normal approximation): n_c = (z_{α/2} + z_β)²·σ²·(1 + 1/k) / δ².

Sizes are returned unrounded; plan with ``math.ceil``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from scipy import optimize, stats

from core.errors import BadRequest


class RateFormula(StrEnum):
    POOLED = "pooled"
    UNPOOLED = "unpooled"


RATE_METHOD = "two-proportion z-test sample size ({formula} variance under H0)"
MEAN_METHOD = "difference of means, normal approximation"


@dataclass(frozen=True, slots=True)
class SampleSize:
    """Customers needed in each arm (unrounded) to detect the effect, and how they were computed."""

    method: str
    n_control: float
    n_treatment: float

    @property
    def total(self) -> int:
        return math.ceil(self.n_control) + math.ceil(self.n_treatment)


def _z(alpha: float, power: float) -> tuple[float, float]:
    if not (0 < alpha < 1 and 0 < power < 1):
        raise BadRequest(f"alpha and power must be in (0, 1), not {alpha} and {power}")
    return float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(power))


def _check_ratio(ratio: float) -> None:
    if not (math.isfinite(ratio) and ratio > 0):
        raise BadRequest(f"the allocation ratio n_treatment/n_control must be positive, not {ratio}")


def sample_size_rates(
    p_control: float,
    p_treatment: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    formula: RateFormula = RateFormula.POOLED,
) -> SampleSize:
    """Customers per arm to detect a change of rate from ``p_control`` to ``p_treatment``.

    Raises
    ------
    core.errors.BadRequest
        Rates outside (0, 1), equal rates, or a bad α, power or ratio.
    """
    if not (0 < p_control < 1 and 0 < p_treatment < 1) or p_control == p_treatment:
        raise BadRequest(f"rates must be in (0, 1) and differ, not {p_control} and {p_treatment}")
    _check_ratio(ratio)
    z_alpha, z_beta = _z(alpha, power)
    k = ratio
    spread = p_control * (1 - p_control) + p_treatment * (1 - p_treatment) / k
    if formula is RateFormula.POOLED:
        pooled = (p_control + k * p_treatment) / (1 + k)
        root = z_alpha * math.sqrt(pooled * (1 - pooled) * (1 + 1 / k)) + z_beta * math.sqrt(spread)
        n_control = root**2 / (p_treatment - p_control) ** 2
    else:
        n_control = (z_alpha + z_beta) ** 2 * spread / (p_treatment - p_control) ** 2
    return SampleSize(RATE_METHOD.format(formula=formula.value), n_control, k * n_control)


def sample_size_means(
    sd: float, difference: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> SampleSize:
    """Customers per arm to detect ``difference`` in a mean whose per-customer SD is ``sd``."""
    if not (sd > 0 and difference != 0 and math.isfinite(sd) and math.isfinite(difference)):
        raise BadRequest(f"sd must be positive and the difference non-zero, not {sd} and {difference}")
    _check_ratio(ratio)
    z_alpha, z_beta = _z(alpha, power)
    n_control = (z_alpha + z_beta) ** 2 * sd**2 * (1 + 1 / ratio) / difference**2
    return SampleSize(MEAN_METHOD, n_control, ratio * n_control)


def mde_rate(p_control: float, n_control: float, n_treatment: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest absolute rise of a rate from ``p_control`` detectable with these arm sizes.

    Solves δ = (z_{α/2} + z_β)·√(p_c q_c/n_c + p_t q_t/n_t) for δ with p_t = p_c + δ (unpooled variance).
    Returns ``inf`` when not even p_t → 1 is detectable.
    """
    if not (0 < p_control < 1 and n_control > 0 and n_treatment > 0):
        raise BadRequest(f"need a rate in (0, 1) and positive arm sizes, not {p_control}, {n_control}, {n_treatment}")
    z_alpha, z_beta = _z(alpha, power)

    def gap(delta: float) -> float:
        p_t = p_control + delta
        spread = p_control * (1 - p_control) / n_control + p_t * (1 - p_t) / n_treatment
        return delta - (z_alpha + z_beta) * math.sqrt(spread)

    ceiling = 1 - p_control
    if gap(ceiling) < 0:
        return math.inf
    return float(optimize.brentq(gap, 0.0, ceiling, xtol=1e-12))


def mde_mean(
    sd_control: float,
    sd_treatment: float,
    n_control: float,
    n_treatment: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The smallest absolute difference in a mean detectable with these arm sizes and SDs."""
    if not (n_control > 0 and n_treatment > 0):
        raise BadRequest(f"arm sizes must be positive, not {n_control} and {n_treatment}")
    z_alpha, z_beta = _z(alpha, power)
    return (z_alpha + z_beta) * math.sqrt(sd_control**2 / n_control + sd_treatment**2 / n_treatment)
