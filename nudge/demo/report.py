"""The demo's one-page HTML report: what the run did, with its plots, in one self-contained file.

Every figure on the page is read from this run's database and files (the plan stored with the campaign, the
production model's reliability diagram, the experiment report, the cost ledger); the plots are embedded as
PNG, so the file can be opened anywhere or attached to an e-mail. The simulated section says so in its title.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2
from matplotlib.figure import Figure

from campaigns.report import METRICS, CampaignReport, format_effect, format_value
from campaigns.service import CampaignStatus
from core.plots import new_figure, png_bytes
from experiments.analysis import ExperimentAnalysis, MetricKind, Result, Scale
from experiments.plots import lift_figure
from nudge.demo.simulation import Posted, Simulated, TruthCheck

TEMPLATE = Path(__file__).with_name("report.html.j2")


@dataclass(frozen=True, slots=True)
class Plot:
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


@dataclass(frozen=True, slots=True)
class ModelLine:
    kind: str
    version: int
    headline: str


@dataclass(frozen=True, slots=True)
class VariantLine:
    variant: str
    subject: str
    offers: str
    verdict: str
    citations: str
    approved_by: str


@dataclass(frozen=True, slots=True)
class DemoReport:
    """Everything the page shows, gathered by ``nudge demo`` from the run."""

    generated_at: datetime
    database: str
    models: Sequence[ModelLine]
    plan: Mapping[str, Mapping[str, float | int | str | None]]
    status: CampaignStatus
    variants: Sequence[VariantLine]
    campaign: CampaignReport
    simulated: Simulated | None
    posted: Posted | None
    checks: Sequence[TruthCheck]
    hillstrom: ExperimentAnalysis
    carts: Sequence[tuple[str, str | None, int]]
    costs_today: Mapping[str, float]
    budgets: Sequence[str]
    plots: Sequence[Plot]
    ui_url: str


def write_report(report: DemoReport, path: Path) -> Path:
    """Render the page to ``path`` (its directory is created)."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True)
    environment.filters["money"] = lambda value: f"${value:,.2f}"
    template = environment.from_string(TEMPLATE.read_text(encoding="utf-8"))
    html = template.render(
        r=report,
        plan_rows=plan_rows(report.plan),
        arm_rows=arm_rows(report.campaign),
        effect_rows=effect_rows(report.campaign.analysis),
        hillstrom_rows=hillstrom_rows(report.hillstrom),
        check_rows=[check_row(check) for check in report.checks],
        recovered=sum(check.inside for check in report.checks),
        total_cost=sum(report.costs_today.values()),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


# --- rows: each table as strings, formatted once here ---------------------------------------------------------


PLAN_ROWS = (
    ("n", "customers", "{:,.0f}"),
    ("total_cost", "expected cost", "${:,.2f}"),
    ("expected_profit", "expected profit", "${:,.2f}"),
    ("roi", "ROI", "{:.2f}"),
    ("min_p", "lowest churn probability targeted", "{:.3f}"),
)


def plan_rows(plan: Mapping[str, Mapping[str, float | int | str | None]]) -> list[tuple[str, str, str]]:
    modes = ("production", "unconstrained")
    if not all(mode in plan for mode in modes):
        return []

    def cell(mode: str, key: str, pattern: str) -> str:
        value = plan[mode].get(key)
        return "—" if value is None or isinstance(value, str) else pattern.format(value)

    return [(label, cell(modes[0], key, pattern), cell(modes[1], key, pattern)) for key, label, pattern in PLAN_ROWS]


def arm_rows(report: CampaignReport) -> list[list[str]]:
    shown = ("conversion", "revenue", "open", "click", "unsubscribe")
    return [
        [arm.arm, f"{arm.n:,}", *(format_value(METRICS[name], arm.metrics[name].total / arm.n) for name in shown)]
        for arm in report.arms
        if arm.n
    ]


def effect_rows(analysis: ExperimentAnalysis | None) -> list[list[str]]:
    """The primary results (the ones the decision reads), absolute scale."""
    if analysis is None:
        return []
    return [_effect_row(result) for result in analysis.results if result.primary and result.scale is Scale.ABSOLUTE]


def hillstrom_rows(analysis: ExperimentAnalysis) -> list[list[str]]:
    labels = {metric.name: metric for metric in analysis.metrics}
    rows = []
    for result in analysis.results:
        if result.primary and result.scale is Scale.ABSOLUTE:
            metric = labels[result.metric]
            means = {arm.arm: arm.means[result.metric] for arm in analysis.arms}
            rate = metric.kind is MetricKind.RATE
            arm, control = means[result.arm], means[result.control]
            value = f"{arm:.2%} vs {control:.2%}" if rate else f"${arm:.2f} vs ${control:.2f}"
            rows.append([result.arm, metric.label, value, *_interval(result, rate)])
    return rows


def _effect_row(result: Result) -> list[str]:
    metric = METRICS[result.metric]
    adjusted = "—" if result.p_adjusted is None else f"{result.p_adjusted:.3g}"
    return [result.arm, metric.label, format_effect(metric, result), f"{result.p_value:.3g}", adjusted, result.method]


def _interval(result: Result, rate: bool) -> list[str]:
    scale = 100.0 if rate else 1.0
    unit = " pp" if rate else ""
    low, high, estimate = (scale * v for v in (result.ci_low, result.ci_high, result.estimate))
    return [f"{estimate:+.2f}{unit} [{low:+.2f}, {high:+.2f}]", f"{result.p_value:.2g}", result.method]


def check_row(check: TruthCheck) -> list[str]:
    show = check.unit.show
    interval = f"[{show(check.ci_low)}, {show(check.ci_high)}]"
    return [check.what, check.arm, show(check.truth), show(check.estimate), interval, "yes" if check.inside else "NO"]


# --- the one plot only the report draws ------------------------------------------------------------------------


def cost_figure(costs: Mapping[str, float]) -> Figure:
    """Today's costs by component (the ledger's components), largest first, dollars on the bars."""
    items = sorted(((name, amount) for name, amount in costs.items() if amount > 0), key=lambda item: item[1])
    figure = new_figure(7.0, 0.6 + 0.45 * max(len(items), 1))
    axes = figure.add_subplot()
    names, amounts = [name for name, _ in items], [amount for _, amount in items]
    bars = axes.barh(names, amounts, color="tab:blue")
    axes.bar_label(bars, labels=[f"${amount:,.2f}" for amount in amounts], padding=3, fontsize=8)
    axes.set_xlabel("USD booked in the cost ledger today")
    axes.margins(x=0.25)
    return figure


def experiment_plot(analysis: ExperimentAnalysis) -> Plot:
    return Plot(
        "Lift with intervals (simulated outcomes)",
        "Each variant against the campaign holdout: the estimate (dot), its 95 % fixed-horizon interval (thick) "
        "and its always-valid interval (thin).",
        png_bytes(lift_figure(analysis)),
    )


def costs_plot(costs: Mapping[str, float]) -> Plot:
    return Plot(
        "Cost breakdown",
        "Everything the run booked in the cost ledger today, by component.",
        png_bytes(cost_figure(costs)),
    )


def file_plot(title: str, caption: str, path: Path) -> Plot | None:
    """A PNG the run wrote (the profit curve, a model's reliability diagram), if it is there."""
    return Plot(title, caption, path.read_bytes()) if path.is_file() else None
