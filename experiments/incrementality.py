"""Incrementality against the holdout and the campaign's ROI (``experimentation.md`` §2.10).

Incremental total = (ȳ_T − ȳ_C)·N_T with SE N_T·√(s_T²/n_T + s_C²/n_C): what the treated customers did beyond
what they would have done unmessaged, with a normal CI. A large estimate can come with an interval that
spans zero: both are reported, always.

ROI = (incremental revenue × margin − all costs) / all costs. It is a monotone function of the incremental
revenue, so its interval is the revenue interval mapped through the same formula.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats

from core.errors import BadRequest

INCREMENTAL = "incremental total vs holdout: (mean treated − mean holdout) × treated n, normal CI"
INCREMENTAL_CUPED = "incremental total vs holdout, CUPED-adjusted means (θ pooled), normal CI"
ROI_METHOD = "ROI = (incremental revenue × margin − costs) / costs; interval from the revenue interval"


@dataclass(frozen=True, slots=True)
class Incremental:
    """An incremental total (conversions or revenue) with its standard error and two-sided interval."""

    metric: str
    method: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    treated: int


@dataclass(frozen=True, slots=True)
class Roi:
    """The campaign's return: ``None`` figures when nothing was spent (ROI is undefined)."""

    method: str
    margin: float
    costs: dict[str, float]
    total_cost: float
    incremental_profit: float
    roi: float | None
    ci_low: float | None
    ci_high: float | None


def incremental_total(
    metric: str,
    mean_t: float,
    var_t: float,
    n_t: int,
    mean_c: float,
    var_c: float,
    n_c: int,
    alpha: float = 0.05,
) -> Incremental:
    """(ȳ_T − ȳ_C)·n_T with SE n_T·√(var_T/n_T + var_C/n_C); for a rate pass p(1 − p) as the variance."""
    if n_t < 1 or n_c < 1:
        raise BadRequest(f"incrementality needs customers in both arms, not {n_t} treated and {n_c} held out")
    return scaled_difference(metric, mean_t - mean_c, math.sqrt(var_t / n_t + var_c / n_c), n_t, alpha)


def scaled_difference(
    metric: str, difference: float, se: float, n_t: int, alpha: float = 0.05, method: str = INCREMENTAL
) -> Incremental:
    """A per-customer difference (and its SE) from any method, times the ``n_t`` treated customers."""
    estimate, total_se = difference * n_t, se * n_t
    z = float(stats.norm.ppf(1 - alpha / 2))
    return Incremental(metric, method, estimate, total_se, estimate - z * total_se, estimate + z * total_se, n_t)


def roi(incremental_revenue: Incremental, margin: float, costs: Mapping[str, float]) -> Roi:
    """The campaign's ROI from its incremental revenue, the margin on revenue, and its costs by component.

    Raises
    ------
    core.errors.BadRequest
        A margin outside [0, 1] or a negative cost.
    """
    if not 0 <= margin <= 1:
        raise BadRequest(f"the margin must be in [0, 1], not {margin}")
    if any(not math.isfinite(cost) or cost < 0 for cost in costs.values()):
        raise BadRequest(f"costs must be finite and non-negative: {dict(costs)}")
    total = math.fsum(costs.values())
    profit = incremental_revenue.estimate * margin - total
    if total == 0:
        return Roi(ROI_METHOD, margin, dict(costs), 0.0, profit, None, None, None)

    def of(revenue: float) -> float:
        return (revenue * margin - total) / total

    return Roi(
        ROI_METHOD,
        margin,
        dict(costs),
        total,
        profit,
        of(incremental_revenue.estimate),
        of(incremental_revenue.ci_low),
        of(incremental_revenue.ci_high),
    )
