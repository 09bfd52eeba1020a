"""``nudge report campaign``: a campaign's experiment report — arms and SRM, every metric against the control
with its interval, p-value and method, the decision, incrementality against the holdout and the ROI — and,
with ``--plots DIR``, the lift and cumulative-conversion plots as PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from campaigns.report import (
    METRICS,
    CampaignReport,
    arm_sizes,
    build_report,
    find_campaign,
    format_effect,
    format_value,
)
from core.clock import utcnow
from core.settings import get_settings
from experiments.analysis import ExperimentAnalysis, Options, Scale, Status
from experiments.multiple import Correction
from experiments.plots import cumulative_conversions_plot, lift_plot
from nudge.commands.common import unit_of_work

app = typer.Typer(
    help="Reports on what campaigns earned, with the statistics behind every number.", no_args_is_help=True
)


@app.command("campaign")
def campaign(
    key_or_id: Annotated[str, typer.Argument(metavar="KEY_OR_ID", help="The campaign's key or numeric id.")],
    plots: Annotated[
        Path | None, typer.Option(help="Write lift.png and cumulative_conversions.png into this directory.")
    ] = None,
    correction: Annotated[Correction, typer.Option(help="Multiple-testing correction of success metrics.")] = (
        Correction.HOLM
    ),
    target_lift: Annotated[
        float, typer.Option(min=0.001, help="Relative lift the 'sample still needed' is sized for.")
    ] = 0.10,
) -> None:
    """Print the campaign's experiment report."""
    settings = get_settings()
    with unit_of_work(settings) as session:
        found = find_campaign(session, key_or_id)
        options = Options(correction=correction, target_lift=target_lift)
        report = build_report(session, found, settings, utcnow(), options)
    typer.echo("\n".join(render(report)))
    if plots is not None:
        for path in write_plots(report, plots):
            typer.echo(f"wrote {path}")


def write_plots(report: CampaignReport, directory: Path) -> list[Path]:
    """The report's plots as PNG files in ``directory``; the lift plot only when there is an analysis."""
    written = [
        cumulative_conversions_plot(
            report.daily_conversions, arm_sizes(report), directory / "cumulative_conversions.png"
        )
    ]
    if report.analysis is not None:
        written.insert(0, lift_plot(report.analysis, directory / "lift.png"))
    return written


def render(report: CampaignReport) -> list[str]:
    """The report as lines of text."""
    lines = [
        f"campaign {report.campaign_key} — {report.campaign_name} ({report.state}), "
        f"as of {report.generated_at:%Y-%m-%d %H:%M} UTC",
        f"outcomes: orders within {report.attribution_days:g} days after each customer's assignment "
        f"(intention to treat: everyone assigned, zeros included); CUPED covariate: revenue in the "
        f"{report.pre_period_days:g} days before",
        "",
        *_arms(report),
    ]
    if report.analysis is not None:
        lines += ["", *_srm(report.analysis), "", *_effects(report.analysis), "", *_bayesian(report.analysis)]
        lines += ["", *_decision(report.analysis)]
    lines += ["", *_incrementality(report)]
    lines += [f"note: {note}" for note in report.notes]
    return lines


def _arms(report: CampaignReport) -> list[str]:
    shares = {a.arm: a.expected_share for a in report.analysis.arms} if report.analysis else {}
    header = f"{'arm':<16}{'n':>10}{'expected':>10}" + "".join(f"{METRICS[name].label[:14]:>16}" for name in METRICS)
    lines = ["arms (per assigned customer)", header]
    for arm in report.arms:
        share = shares.get(arm.arm)
        cells = "".join(
            f"{format_value(METRICS[name], arm.metrics[name].total / arm.n):>16}" for name in METRICS if arm.n
        )
        lines.append(f"{arm.arm:<16}{arm.n:>10,}{'' if share is None else f'{share:.1%}':>10}{cells}")
    return lines


def _srm(analysis: ExperimentAnalysis) -> list[str]:
    srm = analysis.srm
    if srm is None:
        return ["sample ratio: not checked (no configured split)"]
    verdict = "MISMATCH — do not trust the results" if srm.flagged else "ok"
    dropped = f"; dropped (weight 0): {', '.join(srm.dropped)}" if srm.dropped else ""
    return [
        f"sample ratio: chi² {srm.chi2:.2f}, df {srm.df}, p {srm.p_value:.4g} → {verdict} "
        f"(flag below p < {srm.threshold:g}){dropped}  [{srm.method}]"
    ]


def _effects(analysis: ExperimentAnalysis) -> list[str]:
    lines = [f"effects against {analysis.control} (α = {analysis.alpha:g}, two-sided)"]
    for result in analysis.results:
        metric = METRICS[result.metric]
        adjusted = (
            f", adjusted p {result.p_adjusted:.4g} ({result.correction})" if result.p_adjusted is not None else ""
        )
        mark = "*" if result.primary else " "
        lines.append(
            f" {mark} {result.arm:<10} {metric.label:<22} {format_effect(metric, result)} "
            f"p {result.p_value:.4g}{adjusted}  [{result.method}]"
        )
    lines.append("   (* the result the decision reads)")
    return lines


def _bayesian(analysis: ExperimentAnalysis) -> list[str]:
    lines = ["Bayesian read-out (chance to win; expected loss of shipping it)"]
    for belief in analysis.bayesian:
        metric = METRICS[belief.metric]
        loss = (
            f"{belief.expected_loss:.2%}" if belief.scale is Scale.RELATIVE else f"{100 * belief.expected_loss:.4f} pp"
        )
        lines.append(
            f"   {belief.arm:<10} {metric.label:<22} {belief.chance_to_win:.1%} to win, loss {loss}  [{belief.method}]"
        )
    return lines


def _decision(analysis: ExperimentAnalysis) -> list[str]:
    decision = analysis.decision
    headline = {
        Status.WINNER: f"decision: {decision.winner} wins",
        Status.NO_WINNER_YET: "decision: no winner yet",
        Status.SAMPLE_RATIO_MISMATCH: "decision: none — the sample ratio mismatch must be explained first",
    }[decision.status]
    lines = [headline, f"   rule: a variant {decision.rule}"]
    for verdict in decision.verdicts:
        better = ", ".join(verdict.better) or "nothing"
        worse = ", ".join(verdict.worse) or "nothing"
        lines.append(f"   {verdict.arm}: significantly better on {better}; significantly worse on {worse}")
    for needed in decision.sample_needed:
        lines.append(
            f"   {needed.arm}: to detect a {needed.target_lift:.0%} lift in {needed.metric}: "
            f"{needed.n_treatment:,} treated and {needed.n_control:,} control "
            f"({needed.more_treatment:,} and {needed.more_control:,} more); "
            f"detectable now: {needed.detectable_now:.1%}  [{needed.method}]"
        )
    return lines


def _incrementality(report: CampaignReport) -> list[str]:
    if not report.incrementality:
        return ["incrementality: not measured (no holdout)"]
    lines = [f"incrementality against {report.control} (all variants together)"]
    for item in report.incrementality:
        unit = "conversions" if item.metric == "conversion" else "revenue"
        lines.append(
            f"   {unit:<12} {item.estimate:+,.2f} [{item.ci_low:+,.2f}, {item.ci_high:+,.2f}] "
            f"over {item.treated:,} treated  [{item.method}]"
        )
    roi = report.roi
    if roi is not None:
        costs = ", ".join(f"{name} ${amount:,.2f}" for name, amount in sorted(roi.costs.items()) if amount)
        lines.append(f"   costs: ${roi.total_cost:,.2f} ({costs or 'none booked'}) from the {report.cost_source}")
        figure = (
            "undefined (no costs)" if roi.roi is None else f"{roi.roi:+.1%} [{roi.ci_low:+.1%}, {roi.ci_high:+.1%}]"
        )
        lines.append(
            f"   ROI: {figure}; incremental profit ${roi.incremental_profit:,.2f} at a {roi.margin:.0%} margin  "
            f"[{roi.method}]"
        )
    return lines
