"""Holm and Benjamini–Hochberg give statsmodels' adjusted p-values, in the input order, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from core.errors import BadRequest
from experiments.multiple import Correction, adjust, benjamini_hochberg, holm

P_VALUES = [
    [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9],
    [0.0001],
    [0.5, 0.5, 0.5],
    list(np.random.default_rng(3).uniform(0, 0.1, 40)),
]


@pytest.mark.parametrize("p_values", P_VALUES)
def test_holm_matches_statsmodels(p_values: list[float]) -> None:
    assert holm(p_values).tolist() == pytest.approx(multipletests(p_values, method="holm")[1].tolist(), rel=1e-12)


@pytest.mark.parametrize("p_values", P_VALUES)
def test_benjamini_hochberg_matches_statsmodels(p_values: list[float]) -> None:
    expected = multipletests(p_values, method="fdr_bh")[1].tolist()

    assert benjamini_hochberg(p_values).tolist() == pytest.approx(expected, rel=1e-12)


def test_adjust_picks_the_correction_and_none_leaves_p_values_alone() -> None:
    p = [0.01, 0.02, 0.03]

    assert adjust(p, Correction.HOLM).tolist() == pytest.approx([0.03, 0.04, 0.04])
    assert adjust(p, Correction.BENJAMINI_HOCHBERG).tolist() == pytest.approx([0.03, 0.03, 0.03])
    assert adjust(p, Correction.NONE).tolist() == p


def test_p_values_outside_zero_one_are_refused() -> None:
    with pytest.raises(BadRequest, match="p-values must be a flat sequence of numbers in"):
        holm([0.1, 1.2])
