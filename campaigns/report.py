"""A campaign's experiment report: its arms and the SRM check, every metric against the control, the decision,
incrementality against the holdout and the ROI — one data structure the CLI, the web UI and an HTML report
render as they are.

The outcomes are aggregated in SQL (``experiments.outcomes``) and analysed from per-arm sufficient statistics
(``experiments.analysis``): the cost does not grow with the number of customers beyond the database's scan.

- **Control**: the campaign's holdout; without one (a pure A/B test), the global holdout; without either,
  the first variant by name, and there is no incrementality to report.
- **Expected split** (for the SRM check): per segment, the global holdout's share, then the campaign's
  holdout and variants by their bucket ranges (``experiments.assignment.arm_ranges``) — the exact shares
  the hashing produces. The global share is read from the current settings.
- **Costs** come from the cost ledger (``core.ledger.campaign_costs``) under the campaign's key: drafting's LLM
  calls, the messages sent and the offers redeemed.
- **ROI** uses the CUPED-adjusted incremental revenue (the more precise estimate; both are reported).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import repository
from campaigns.service import TREATMENT
from core import ledger
from core.errors import Conflict, NotFound
from core.models import Campaign, CampaignKind
from core.settings import Settings
from experiments import frequentist
from experiments.analysis import (
    ArmStats,
    ExperimentAnalysis,
    Metric,
    MetricKind,
    Options,
    Result,
    Scale,
    analyze,
    pooled,
)
from experiments.assignment import BUCKETS, GLOBAL_HOLDOUT, HOLDOUT, arm_ranges, global_holdout_buckets
from experiments.incrementality import INCREMENTAL_CUPED, Incremental, Roi, incremental_total, roi, scaled_difference
from experiments.outcomes import (
    CAMPAIGN_METRICS,
    CONVERSION,
    REVENUE,
    Windows,
    arm_counts_by_segment,
    arm_statistics,
    daily_conversions,
)

UNTREATED = (HOLDOUT, GLOBAL_HOLDOUT)
COST_SOURCE = "cost ledger (core.ledger.campaign_costs)"


@dataclass(frozen=True, slots=True)
class CampaignReport:
    """Everything the report shows; ``analysis`` is None when there is nothing to compare (one arm only)."""

    campaign_key: str
    campaign_name: str
    state: str
    generated_at: datetime
    attribution_days: float
    pre_period_days: float
    arms: tuple[ArmStats, ...]
    control: str | None
    analysis: ExperimentAnalysis | None
    incrementality: tuple[Incremental, ...]
    roi: Roi | None
    cost_source: str
    daily_conversions: dict[str, list[int]]
    notes: tuple[str, ...] = field(default=())


def find_campaign(session: Session, key_or_id: str) -> Campaign:
    """The campaign with this key, or else with this numeric id.

    Raises
    ------
    core.errors.NotFound
        Neither matches.
    """
    if repository.campaign_exists(session, key_or_id):
        return repository.get_campaign(session, key_or_id)
    if key_or_id.isdigit() and (found := session.scalar(select(Campaign).where(Campaign.id == int(key_or_id)))):
        return found
    raise NotFound(f"no campaign with key or id {key_or_id!r}")


def build_report(
    session: Session, campaign: Campaign, settings: Settings, now: datetime, options: Options | None = None
) -> CampaignReport:
    """The campaign's report as of ``now``.

    Raises
    ------
    core.errors.Conflict
        The campaign has no assignments yet (plan it first).
    """
    windows = Windows(timedelta(days=settings.attribution_window_days), timedelta(days=settings.pre_period_days))
    arms = arm_statistics(session, campaign.id, windows)
    if not arms and campaign.kind is CampaignKind.TRIGGER:
        raise Conflict(
            f"campaign {campaign.key!r} is a trigger: each cart gets the approved template, with no holdout or "
            "variants to compare (its sends and cancellations are on the triggers page and in `nudge outbox`)"
        )
    if not arms:
        raise Conflict(f"campaign {campaign.key!r} has no assignments yet: plan it first")
    notes: list[str] = []
    control, treatments = _control_and_treatments(arms, notes)
    analysis = None
    if control is not None and treatments:
        weights = expected_split(session, campaign, settings)
        analysis = analyze(
            arms,
            CAMPAIGN_METRICS,
            control=control,
            treatments=treatments,
            weights=weights,
            options=options,
            diagnostics=control not in UNTREATED,  # the untreated never get a message to open
        )
    increments = _incrementality(arms, control, treatments, options or Options())
    costs = campaign_costs(session, campaign)
    campaign_roi = roi(increments[-1], settings.roi_margin, costs) if increments else None
    if increments and not sum(costs.values()):
        notes.append("no costs are booked for this campaign in the ledger: ROI is undefined")
    return CampaignReport(
        campaign_key=campaign.key,
        campaign_name=campaign.name,
        state=campaign.state.value,
        generated_at=now,
        attribution_days=settings.attribution_window_days,
        pre_period_days=settings.pre_period_days,
        arms=tuple(arms),
        control=control,
        analysis=analysis,
        incrementality=increments,
        roi=campaign_roi,
        cost_source=COST_SOURCE,
        daily_conversions=daily_conversions(session, campaign.id, windows),
        notes=tuple(notes),
    )


def _control_and_treatments(arms: list[ArmStats], notes: list[str]) -> tuple[str | None, tuple[str, ...]]:
    sizes = {arm.arm: arm.n for arm in arms}
    treatments = tuple(sorted(arm for arm in sizes if arm not in UNTREATED and sizes[arm] >= 2))
    for candidate in UNTREATED:
        if sizes.get(candidate, 0) >= 2:
            return candidate, treatments
    if len(treatments) >= 2:
        notes.append("no holdout: the variants are compared with the first one, and incrementality is not measured")
        return treatments[0], treatments[1:]
    notes.append("fewer than two arms with at least 2 customers: nothing to compare yet")
    return None, treatments


def expected_split(session: Session, campaign: Campaign, settings: Settings) -> dict[str, float]:
    """The customers each arm should have, from each segment's size and configured split."""
    global_share = global_holdout_buckets(settings.global_holdout_fraction) / BUCKETS
    segments: dict[str, int] = defaultdict(int)
    for (segment, _), count in arm_counts_by_segment(session, campaign.id).items():
        segments[segment] += count
    variants: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for variant in repository.variants(session, campaign.id):
        variants[variant.segment].append((variant.variant, variant.weight))
    expected: dict[str, float] = defaultdict(float)
    for segment, size in segments.items():
        expected[GLOBAL_HOLDOUT] += size * global_share
        for arm_range in arm_ranges(variants.get(segment) or [(TREATMENT, 1.0)], campaign.holdout_fraction):
            expected[arm_range.arm] += size * (1 - global_share) * (arm_range.stop - arm_range.start) / BUCKETS
    return dict(expected)


def _incrementality(
    arms: list[ArmStats], control: str | None, treatments: tuple[str, ...], options: Options
) -> tuple[Incremental, ...]:
    """Incremental conversions and revenue of every treated customer together against the untreated control."""
    if control not in UNTREATED or not treatments:
        return ()
    by_name = {arm.arm: arm for arm in arms}
    treated = pooled("treated", [by_name[arm] for arm in treatments])
    held = by_name[control]
    alpha = options.alpha
    results = []
    for metric in (m for m in CAMPAIGN_METRICS if m.name in (CONVERSION, REVENUE)):
        t, c = treated.metrics[metric.name], held.metrics[metric.name]
        if metric.kind is MetricKind.RATE:
            p_t, p_c = t.total / treated.n, c.total / held.n
            results.append(
                incremental_total(metric.name, p_t, p_t * (1 - p_t), treated.n, p_c, p_c * (1 - p_c), held.n, alpha)
            )
            continue
        mean_t, var_t = frequentist.mean_and_variance(treated.n, t.total, t.total_sq)
        mean_c, var_c = frequentist.mean_and_variance(held.n, c.total, c.total_sq)
        results.append(
            incremental_total(
                metric.name, float(mean_t), float(var_t), treated.n, float(mean_c), float(var_c), held.n, alpha
            )
        )
        results.append(_cuped_incremental(treated, held, alpha))
    return tuple(results)


def _cuped_incremental(treated: ArmStats, held: ArmStats, alpha: float) -> Incremental:
    t, c = treated.metrics[REVENUE], held.metrics[REVENUE]
    moments = [
        frequentist.CovariateMoments(arm.n, m.total, m.total_sq, m.pre_total, m.pre_total_sq, m.cross)
        for arm, m in ((held, c), (treated, t))
    ]
    adjusted = frequentist.cuped(moments[0], moments[1], alpha)
    return scaled_difference(
        REVENUE, float(adjusted.estimate), float(adjusted.se), treated.n, alpha, method=INCREMENTAL_CUPED
    )


def campaign_costs(session: Session, campaign: Campaign) -> dict[str, float]:
    """The campaign's costs by component (USD) from the ledger: drafting, sends and offers redeemed."""
    components = ledger.campaign_costs(session, campaign.key).components
    return {component.value: float(amount) for component, amount in components.items()}


def arm_sizes(report: CampaignReport) -> Mapping[str, int]:
    return {arm.arm: arm.n for arm in report.arms}


# --- how the numbers read (the CLI and the web page) ------------------------------------------------------------

METRICS: Mapping[str, Metric] = {metric.name: metric for metric in CAMPAIGN_METRICS}


def format_value(metric: Metric, value: float) -> str:
    """A per-customer value: a rate as a percentage, an amount with two decimals."""
    return f"{value:.2%}" if metric.kind is MetricKind.RATE else f"{value:,.2f}"


def format_effect(metric: Metric, result: Result) -> str:
    """An effect with its interval: relative in percent, a rate difference in percentage points, else absolute."""
    if result.scale is Scale.RELATIVE:
        return f"{result.estimate:+.1%} [{result.ci_low:+.1%}, {result.ci_high:+.1%}]"
    if metric.kind is MetricKind.RATE:
        points = [100 * value for value in (result.estimate, result.ci_low, result.ci_high)]
        return f"{points[0]:+.3f} pp [{points[1]:+.3f}, {points[2]:+.3f}]"
    return f"{result.estimate:+,.3f} [{result.ci_low:+,.3f}, {result.ci_high:+,.3f}]"
