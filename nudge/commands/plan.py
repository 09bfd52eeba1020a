"""``nudge plan``: who gets a retention offer, in production mode (under the budget) beside the
unconstrained optimum, with the profit curve as a PNG and the action plan as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from campaigns.planning import PlanInputs, RetentionAssumptions, plan_retention
from core.settings import get_settings
from ml.decision import OfferOption, PlanComparison
from ml.plots import profit_curve
from nudge.commands.common import unit_of_work


def plan(
    budget: Annotated[float, typer.Option(min=0, help="Production cap on expected spend, in dollars.")],
    max_customers: Annotated[int | None, typer.Option(min=0, help="Production cap on customers contacted.")] = None,
    unconstrained: Annotated[bool, typer.Option(help="Write the unconstrained optimum's action plan instead.")] = False,
    margin: Annotated[float, typer.Option(min=0, max=1, help="Gross margin on revenue, for CLV.")] = 0.30,
    offer_cost: Annotated[float, typer.Option(min=0, help="Cost of the retention offer per redemption, in $.")] = 10.0,
    success_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of would-be churners the offer keeps (measure it with holdouts).")
    ] = 0.10,
    output: Annotated[Path | None, typer.Option(help="Action plan CSV [default: <data_dir>/plans/plan.csv].")] = None,
) -> None:
    """Plan a retention campaign from the production models' newest scores."""
    assumptions = RetentionAssumptions(
        margin=margin,
        offer=OfferOption("SAVE10", unit_cost=offer_cost, success_rate=success_rate, stayer_redemption=0.5),
    )
    with unit_of_work() as session:
        comparison, inputs = plan_retention(
            session, max_budget=budget, max_customers=max_customers, assumptions=assumptions
        )
    print_plan(comparison, inputs)
    directory = get_settings().data_dir / "plans"
    chosen = comparison.unconstrained if unconstrained else comparison.production
    csv = output or directory / "plan.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    chosen.actions.to_csv(csv, index=False)
    png = write_profit_curve(comparison, directory / "profit_curve.png")
    typer.echo(f"action plan ({chosen.mode}, {chosen.n:,} customers): {csv}")
    typer.echo(f"profit curve: {png}")


def print_plan(comparison: PlanComparison, inputs: PlanInputs) -> None:
    funnel = comparison.funnel
    scored = ", ".join(f"{kind} as of {moment:%Y-%m-%d}" for kind, moment in inputs.scored_as_of.items())
    typer.echo(f"Scored customers: {funnel.customers:,} ({scored}); without a CLV score: {inputs.missing_clv:,}")
    typer.echo(
        f"  no reachable channel {funnel.no_channel:,}, p below band {funnel.below_band:,}, above band "
        f"{funnel.above_band:,}, EV ≤ 0 {funnel.ev_not_positive:,} → eligible {funnel.eligible:,}"
    )
    production, best = comparison.production, comparison.unconstrained
    typer.echo(f"{'':<24}{'production':>16}{'unconstrained':>16}")
    rows = [
        ("customers", f"{production.n:,}", f"{best.n:,}"),
        ("expected cost", f"${production.total_cost:,.2f}", f"${best.total_cost:,.2f}"),
        ("expected profit", f"${production.expected_profit:,.2f}", f"${best.expected_profit:,.2f}"),
        ("ROI", f"{production.roi:.2f}", f"{best.roi:.2f}"),
        ("lowest p targeted", _p(production.min_p), _p(best.min_p)),
    ]
    for label, left, right in rows:
        typer.echo(f"  {label:<22}{left:>16}{right:>16}")
    if production.stopped_by:
        typer.echo(f"  production stopped by: {production.stopped_by} (ranking {production.ranking})")


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def write_profit_curve(comparison: PlanComparison, path: Path) -> Path:
    curve, production = comparison.curve, comparison.production
    return profit_curve(
        path, curve.profit, curve.n_star, production_n=production.n, production_profit=production.expected_profit
    )
