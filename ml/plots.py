"""PNG plots of model and plan diagnostics (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.plots import new_figure, save_png
from ml.decision import curve_points

# A profit curve over a million customers is drawn from this many points at most; sorted by EV it is
# concave, so thinning it evenly loses nothing visible.
MAX_CURVE_POINTS = 4000


def profit_curve(
    path: Path,
    profit: npt.ArrayLike,
    optimum_n: int,
    production_n: int | None = None,
    production_profit: float | None = None,
) -> Path:
    """Expected profit against the number of customers targeted, highest EV first, with N* and production marked.

    ``profit[N]`` is the total EV of the N best candidates (``ml.decision.ProfitCurve.profit``, starting
    at 0). The production plan is drawn as a line at its N and a point at its profit: the point sits on
    or below the curve, since the curve is the best any N customers can do.
    """
    values = np.asarray(profit, dtype=np.float64)
    shown = curve_points(values, MAX_CURVE_POINTS, keep=optimum_n)  # the ends and the optimum always kept
    figure = new_figure()
    axes = figure.add_subplot()
    axes.plot(*zip(*shown, strict=True), color="tab:blue", label="unconstrained profit curve")
    axes.axvline(optimum_n, color="tab:green", linestyle="--", label=f"N* = {optimum_n:,} ({values[optimum_n]:,.0f})")
    if production_n is not None:
        label = f"production N = {production_n:,}"
        if production_profit is not None:
            axes.plot([production_n], [production_profit], "o", color="tab:orange")
            label += f" ({production_profit:,.0f})"
        axes.axvline(production_n, color="tab:orange", linestyle=":", label=label)
    axes.set_xlabel("customers targeted, highest EV first (N)")
    axes.set_ylabel("expected profit")
    axes.legend(loc="best")
    return save_png(figure, path)


def reliability_diagram(table: pd.DataFrame, path: Path, title: str = "Churn probability calibration") -> Path:
    """Predicted against observed churn per bin (``ml.churn.reliability_table``), counts beneath.

    Points on the diagonal are calibrated: customers given p = 0.3 churn 30 % of the time. Point
    area follows the bin's count, so a stray point from a tiny bin does not look like a failure.
    """
    figure = new_figure(6.0, 6.0)
    curve, counts = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    curve.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    sizes = 20 + 180 * table["count"] / max(float(table["count"].max()), 1.0)
    curve.plot(table["mean_predicted"], table["observed_rate"], color="tab:blue", linewidth=1)
    curve.scatter(table["mean_predicted"], table["observed_rate"], s=sizes, color="tab:blue", label="bins")
    curve.set_xlim(0, 1)
    curve.set_ylim(0, 1)
    curve.set_ylabel("observed churn rate")
    curve.set_title(title)
    curve.legend(loc="upper left")
    widths = (table["upper"] - table["lower"]).clip(lower=0.01)
    counts.bar(table["lower"], table["count"], width=widths, align="edge", color="tab:blue", alpha=0.6)
    counts.set_xlabel("mean predicted churn probability")
    counts.set_ylabel("customers")
    return save_png(figure, path)
