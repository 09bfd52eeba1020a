"""Incremental totals against the holdout and ROI from them, with intervals."""

from __future__ import annotations

import math

import pytest

from core.errors import BadRequest
from experiments.incrementality import incremental_total, roi


def test_incremental_revenue_is_the_mean_difference_times_the_treated_with_its_standard_error() -> None:
    result = incremental_total("revenue", 2.5, 400.0, 90_000, 2.0, 380.0, 10_000)

    se = 90_000 * math.sqrt(400.0 / 90_000 + 380.0 / 10_000)
    assert (result.estimate, result.se) == (pytest.approx(45_000.0), pytest.approx(se))
    assert (result.ci_low, result.ci_high) == pytest.approx((45_000 - 1.959964 * se, 45_000 + 1.959964 * se), rel=1e-6)


def test_roi_maps_the_revenue_interval_through_margin_and_costs() -> None:
    revenue = incremental_total("revenue", 2.5, 400.0, 90_000, 2.0, 380.0, 10_000)

    result = roi(revenue, 0.3, {"email": 90.0, "llm": 10.0, "offer": 900.0})

    assert result.total_cost == 1_000.0
    assert result.roi == pytest.approx((45_000 * 0.3 - 1_000) / 1_000)
    assert result.ci_low == pytest.approx((revenue.ci_low * 0.3 - 1_000) / 1_000)
    assert result.ci_high == pytest.approx((revenue.ci_high * 0.3 - 1_000) / 1_000)
    assert result.incremental_profit == pytest.approx(12_500.0)


def test_roi_is_undefined_without_costs() -> None:
    revenue = incremental_total("revenue", 1.0, 1.0, 10, 1.0, 1.0, 10)

    assert roi(revenue, 0.3, {}).roi is None


def test_a_margin_outside_zero_one_is_refused() -> None:
    revenue = incremental_total("revenue", 1.0, 1.0, 10, 1.0, 1.0, 10)

    with pytest.raises(BadRequest, match=r"^the margin must be in \[0, 1\], not 1.5$"):
        roi(revenue, 1.5, {"email": 1.0})
