"""Multiple-testing corrections across variants and metrics (``experimentation.md`` §2.8), vectorised."""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt

from core.errors import BadRequest
from experiments.frequentist import FloatArray


class Correction(StrEnum):
    HOLM = "holm"
    BENJAMINI_HOCHBERG = "benjamini-hochberg"
    NONE = "none"


CORRECTION_NAMES = {
    Correction.HOLM: "Holm–Bonferroni (family-wise error)",
    Correction.BENJAMINI_HOCHBERG: "Benjamini–Hochberg (false discovery rate)",
    Correction.NONE: "no correction",
}


def _p_values(p_values: npt.ArrayLike) -> FloatArray:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise BadRequest("p-values must be a flat sequence of numbers in [0, 1]")
    return p


def holm(p_values: npt.ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values: p_(i) ↦ max_{j≤i} min(1, (m − j + 1)·p_(j)), in input order."""
    p = _p_values(p_values)
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def benjamini_hochberg(p_values: npt.ArrayLike) -> FloatArray:
    """Benjamini–Hochberg adjusted p-values: p_(i) ↦ min_{j≥i} min(1, m·p_(j)/j), in input order."""
    p = _p_values(p_values)
    order = np.argsort(p, kind="stable")
    m = p.size
    scaled = m * p[order] / np.arange(1, m + 1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return adjusted


def adjust(p_values: npt.ArrayLike, correction: Correction) -> FloatArray:
    """The p-values adjusted by ``correction``."""
    if correction is Correction.HOLM:
        return holm(p_values)
    if correction is Correction.BENJAMINI_HOCHBERG:
        return benjamini_hochberg(p_values)
    return _p_values(p_values).copy()
