"""Bayesian read-outs: chance to win and expected loss.

- **Rates: beta-binomial.** Each arm's rate has the posterior Beta(a₀ + conversions, b₀ + non-conversions)
  (uniform prior Beta(1, 1) by default). P(p_t > p_c) is Evan Miller's closed form, exact for integer
  parameters (``experimentation.md`` §2.5); expected loss E[max(p_c − p_t, 0)] follows from it by
  size-biasing: E[X·1{X>Y}] = E[X]·P(X' > Y) with X' ~ Beta(a + 1, b).
- **Revenue: Gaussian on the lift** (GrowthBook's method, §2.6): the relative-lift estimate and its
  delta-method SE are treated as normal; with a flat prior the posterior is N(estimate, se²), with a normal
  prior N(0, σ₀²) it is shrunk towards 0. Chance to win is P(Δ > 0); expected loss is E[max(−Δ, 0)].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from core.errors import BadRequest
from experiments.frequentist import FloatArray

BETA_BINOMIAL = "Bayesian beta-binomial, Beta({a:g}, {b:g}) prior, closed form"
GAUSSIAN = "Bayesian Gaussian on the relative lift, flat prior"
GAUSSIAN_PRIOR = "Bayesian Gaussian on the relative lift, N(0, {sd:g}²) prior"


@dataclass(frozen=True, slots=True)
class BayesResult:
    """P(treatment better than control), the expected loss of shipping it, and a credible interval.

    For rates the loss and interval are absolute (rate points); for the Gaussian method they are on the
    scale of the estimate given (the relative lift in the report).
    """

    method: str
    chance_to_win: float
    expected_loss: float
    ci_low: float
    ci_high: float


def probability_greater(a_x: int, b_x: float, a_y: float, b_y: float) -> float:
    """P(X > Y) for X ~ Beta(a_x, b_x), Y ~ Beta(a_y, b_y), integer ``a_x`` (Evan Miller's closed form).

    Σ_{i<a_x} B(a_y + i, b_y + b_x) / ((b_x + i)·B(1 + i, b_x)·B(a_y, b_y)), summed in log space.
    """
    i = np.arange(a_x, dtype=np.float64)
    terms = special.betaln(a_y + i, b_y + b_x) - np.log(b_x + i) - special.betaln(1 + i, b_x) - special.betaln(a_y, b_y)
    return float(np.clip(np.exp(special.logsumexp(terms)), 0.0, 1.0))


def beta_binomial(
    x_c: int, n_c: int, x_t: int, n_t: int, prior: tuple[int, int] = (1, 1), alpha: float = 0.05
) -> BayesResult:
    """Chance that the treatment's rate beats the control's, and the expected loss (in rate points) of
    shipping the treatment, under independent Beta posteriors; the credible interval is for p_t − p_c
    (normal approximation to the difference of the posteriors).

    Raises
    ------
    core.errors.BadRequest
        A prior that is not two positive integers, or counts outside 0 ≤ x ≤ n.
    """
    a0, b0 = prior
    if not (float(a0).is_integer() and float(b0).is_integer() and a0 > 0 and b0 > 0):
        raise BadRequest(f"the beta prior must be two positive integers (the closed form needs them), not {prior}")
    if not (0 <= x_c <= n_c and 0 <= x_t <= n_t):
        raise BadRequest(f"conversions must be between 0 and n: {x_c}/{n_c}, {x_t}/{n_t}")
    a_c, b_c = int(a0 + x_c), int(b0 + n_c - x_c)
    a_t, b_t = int(a0 + x_t), int(b0 + n_t - x_t)
    win = probability_greater(a_t, b_t, a_c, b_c)
    mean_c, mean_t = a_c / (a_c + b_c), a_t / (a_t + b_t)
    loss = mean_c * probability_greater(a_c + 1, b_c, a_t, b_t) - mean_t * probability_greater(a_c, b_c, a_t + 1, b_t)
    spread = np.sqrt(_beta_variance(a_c, b_c) + _beta_variance(a_t, b_t))
    z = float(stats.norm.ppf(1 - alpha / 2))
    return BayesResult(
        method=BETA_BINOMIAL.format(a=a0, b=b0),
        chance_to_win=win,
        expected_loss=max(float(loss), 0.0),
        ci_low=float(mean_t - mean_c - z * spread),
        ci_high=float(mean_t - mean_c + z * spread),
    )


def _beta_variance(a: float, b: float) -> float:
    return a * b / ((a + b) ** 2 * (a + b + 1))


def gaussian_lift(
    estimate: npt.ArrayLike, se: npt.ArrayLike, prior_sd: float | None = None, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Posterior chance to win, expected loss and credible interval of a normal lift estimate.

    Returns
    -------
    (chance_to_win, expected_loss, ci_low, ci_high) as arrays broadcast from the inputs.
    """
    mean = np.asarray(estimate, dtype=np.float64)
    variance = np.asarray(se, dtype=np.float64) ** 2
    if prior_sd is not None:
        posterior_variance = 1 / (1 / prior_sd**2 + 1 / variance)
        mean, variance = posterior_variance * mean / variance, posterior_variance
    sd = np.sqrt(variance)
    ratio = mean / sd
    # E[max(−Δ, 0)] for Δ ~ N(μ, σ²) is σφ(μ/σ) − μΦ(−μ/σ).
    loss = sd * stats.norm.pdf(ratio) - mean * stats.norm.cdf(-ratio)
    z = stats.norm.ppf(1 - alpha / 2)
    return stats.norm.cdf(ratio), loss, mean - z * sd, mean + z * sd


def gaussian(estimate: float, se: float, prior_sd: float | None = None, alpha: float = 0.05) -> BayesResult:
    """``gaussian_lift`` for one estimate, as a ``BayesResult``."""
    win, loss, low, high = gaussian_lift(estimate, se, prior_sd, alpha)
    method = GAUSSIAN if prior_sd is None else GAUSSIAN_PRIOR.format(sd=prior_sd)
    return BayesResult(method, float(win), float(loss), float(low), float(high))
