"""Thompson sampling weights are reproducible for a seed, favour the better arm, and never go below the floor."""

from __future__ import annotations

import pytest

from core.errors import BadRequest
from experiments.bandit import thompson_weights


def test_weights_are_reproducible_for_a_seed_and_sum_to_one() -> None:
    first = thompson_weights([30, 45, 20], [1_000, 1_000, 1_000], seed=4)

    assert thompson_weights([30, 45, 20], [1_000, 1_000, 1_000], seed=4).tolist() == first.tolist()
    assert first.sum() == pytest.approx(1.0)
    assert first.argmax() == 1


def test_a_clearly_worse_arm_keeps_its_floor() -> None:
    weights = thompson_weights([5, 200], [1_000, 1_000], floor=0.05)

    assert weights.tolist() == pytest.approx([0.05, 0.95])


def test_equal_evidence_splits_evenly_within_monte_carlo_error() -> None:
    weights = thompson_weights([0, 0, 0, 0], [0, 0, 0, 0], floor=0.0, draws=200_000)

    assert weights.tolist() == pytest.approx([0.25] * 4, abs=0.01)


def test_a_floor_the_arms_cannot_all_get_is_refused() -> None:
    with pytest.raises(BadRequest, match=r"^a floor of 0\.4 for 3 arms is more than the whole allocation$"):
        thompson_weights([1, 2, 3], [10, 10, 10], floor=0.4)
