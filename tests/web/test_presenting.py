"""The campaign page's profit curve: the plan's whole curve near the decisions, both modes in a legend."""

from __future__ import annotations

import re

import numpy as np

from ml.decision import curve_points
from web.presenting import Marker, profit_curve_svg

PROFIT = np.concatenate([[0.0], np.cumsum(np.linspace(10.0, -10.0, 9_000))])  # peaks at N = 4,500


def test_the_curve_is_drawn_up_to_three_times_the_larger_mode_and_each_mode_has_its_legend_line() -> None:
    markers = [Marker("production", 600, float(PROFIT[600])), Marker("unconstrained", 700, float(PROFIT[700]))]

    svg = profit_curve_svg(curve_points(PROFIT), markers)

    assert "customers targeted (0 – 2,100)" in svg
    assert "production: 600 customers, $" in svg
    assert "unconstrained: 700 customers, $" in svg
    legend_rows = [float(y) for y in re.findall(r'<text x="\d+" y="([\d.]+)">(?:production|unconstrained):', svg)]
    assert legend_rows[1] - legend_rows[0] >= 12  # one line each: the labels never overlap


def test_without_markers_the_whole_curve_is_drawn_and_a_single_point_draws_nothing() -> None:
    assert "customers targeted (0 – 9,000)" in profit_curve_svg(curve_points(PROFIT), [])
    assert profit_curve_svg([(0, 0.0)], []) == ""
