"""Plots of an experiment (matplotlib, headless): each arm's lift with its intervals, and cumulative conversions
per arm over the attribution window — as PNG files (``nudge report``) or PNG bytes (the web UI)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from core.plots import new_figure, save_png
from experiments.analysis import ExperimentAnalysis, Role, Scale
from experiments.sequential import METHOD as SEQUENTIAL


def lift_plot(analysis: ExperimentAnalysis, path: Path) -> Path:
    """``lift_figure`` as a PNG file."""
    return save_png(lift_figure(analysis), path)


def cumulative_conversions_plot(daily: Mapping[str, Sequence[int]], arm_sizes: Mapping[str, int], path: Path) -> Path:
    """``cumulative_conversions_figure`` as a PNG file."""
    return save_png(cumulative_conversions_figure(daily, arm_sizes), path)


def lift_figure(analysis: ExperimentAnalysis) -> Figure:
    """One panel per success and guardrail metric: every treatment's effect against the control, with its
    fixed-horizon interval (thick) and its always-valid interval (thin)."""
    metrics = [m for m in analysis.metrics if m.role is not Role.DIAGNOSTIC]
    figure = new_figure(7.0, 1.2 + 1.1 * len(metrics) * max(1, len(analysis.treatments)) / 2)
    panels = figure.subplots(len(metrics), 1, squeeze=False)[:, 0]
    sequential_prefix = SEQUENTIAL.split("(")[0]
    for axes, metric in zip(panels, metrics, strict=True):
        rows = range(len(analysis.treatments))
        for row, arm in zip(rows, analysis.treatments, strict=True):
            primary = analysis.primary(metric.name, arm)
            always = next(
                r
                for r in analysis.results
                if r.metric == metric.name and r.arm == arm and r.method.startswith(sequential_prefix)
            )
            axes.plot([always.ci_low, always.ci_high], [row, row], color="tab:gray", linewidth=1)
            axes.plot([primary.ci_low, primary.ci_high], [row, row], color="tab:blue", linewidth=4)
            axes.plot([primary.estimate], [row], "o", color="black")
        axes.axvline(0.0, color="tab:red", linestyle=":")
        axes.set_yticks(list(rows), list(analysis.treatments))
        axes.set_title(f"{metric.label}: {Scale.ABSOLUTE.value} effect vs {analysis.control}", fontsize=9)
    panels[-1].set_xlabel("effect (thick: fixed-horizon CI; thin: always-valid CI)")
    return figure


def cumulative_conversions_figure(daily: Mapping[str, Sequence[int]], arm_sizes: Mapping[str, int]) -> Figure:
    """Cumulative share of each arm's customers who converted, by day since their assignment."""
    figure = new_figure()
    axes = figure.add_subplot()
    for arm in sorted(daily):
        share = np.cumsum(np.asarray(daily[arm], dtype=np.float64)) / max(arm_sizes.get(arm, 0), 1)
        axes.step(
            np.arange(1, len(share) + 1), share * 100, where="post", label=f"{arm} (n = {arm_sizes.get(arm, 0):,})"
        )
    axes.set_xlabel("days since assignment")
    axes.set_ylabel("converted (% of arm, cumulative)")
    axes.legend(loc="upper left", fontsize=8)
    return figure
