"""Thompson-sampling allocation for subject lines and copy on recurring sends (``experimentation.md`` §2.12).

Beta-Bernoulli on the reward (clicks or conversions, not opens: Apple Mail Privacy Protection inflates
opens): each arm's weight is P(it is the best) under the Beta posteriors, estimated from seeded posterior
draws, then floored so no arm starves: w = floor + (1 − k·floor)·P(best). Compute weights once per batch
and keep them with the batch, so an analysis can re-weight by period. Bandits bias effect estimates: use a
fixed split when the goal is to measure, this when the goal is to earn.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from core.errors import BadRequest
from experiments.frequentist import FloatArray

METHOD = "Beta-Bernoulli Thompson sampling, Beta(1, 1) prior, floor {floor:g} per arm"


def thompson_weights(
    successes: npt.ArrayLike, trials: npt.ArrayLike, *, floor: float = 0.01, draws: int = 10_000, seed: int = 0
) -> FloatArray:
    """Allocation weights (summing to 1) for the next batch, one per arm, reproducible for a given ``seed``.

    Raises
    ------
    core.errors.BadRequest
        Mismatched or invalid counts, fewer than two arms, or a floor that the arms cannot all get.
    """
    wins = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if wins.ndim != 1 or wins.shape != n.shape or wins.size < 2:
        raise BadRequest("successes and trials must be two equal-length lists for at least two arms")
    if np.any(wins < 0) or np.any(wins > n):
        raise BadRequest("successes must be between 0 and trials for every arm")
    if not 0 <= floor * wins.size <= 1:
        raise BadRequest(f"a floor of {floor} for {wins.size} arms is more than the whole allocation")
    rng = np.random.default_rng(seed)
    samples = rng.beta(1 + wins, 1 + n - wins, size=(draws, wins.size))
    best = np.bincount(samples.argmax(axis=1), minlength=wins.size) / draws
    return np.asarray(floor + (1 - floor * wins.size) * best, dtype=np.float64)
