"""``nudge budgets``: how much of each LLM spend budget is used, and setting or clearing a budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Annotated, Any

import typer

from core.clock import utcnow
from core.errors import BadRequest
from core.models import BudgetScope
from core.settings import get_settings
from guardrails.budgets import (
    MICRODOLLAR,
    BudgetStatus,
    Utilisation,
    budget_status,
    budget_statuses,
    clear_budget,
    set_budget,
)
from nudge.commands.common import unit_of_work

app = typer.Typer(
    help="LLM spend budgets per campaign, UTC day and UTC month: utilisation (the default), set, clear.",
    invoke_without_command=True,
)

Campaign = Annotated[str | None, typer.Option(help="A campaign's budget, by campaign key.")]
Day = Annotated[bool, typer.Option("--day", help="The budget of every UTC day (all campaigns).")]
Month = Annotated[bool, typer.Option("--month", help="The budget of every UTC month (all campaigns).")]


@app.callback()
def show(
    ctx: typer.Context,
    campaign: Annotated[list[str] | None, typer.Option(help="Also report this campaign (repeatable).")] = None,
) -> None:
    """Today's, this month's and every campaign budget: used, limit, left."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    with unit_of_work(settings) as session:
        statuses = budget_statuses(session, settings, campaign_keys=campaign or (), now=utcnow())
    typer.echo("\n".join(describe(statuses)))


@app.command("set")
def set_(
    campaign: Campaign = None,
    day: Day = False,
    month: Month = False,
    usd: Annotated[float | None, typer.Option(min=0, help="At most this many US dollars.")] = None,
    tokens: Annotated[int | None, typer.Option(min=0, help="At most this many prompt + completion tokens.")] = None,
) -> None:
    """Set a budget's limits; a limit not given keeps its value (for a day or month: the settings' default)."""
    settings = get_settings()
    with unit_of_work(settings) as session:
        scope = _scope(campaign, day, month)
        set_budget(session, scope, campaign, max_tokens=tokens, max_usd=None if usd is None else Decimal(str(usd)))
        lines = describe([budget_status(session, settings, scope, campaign, now=utcnow())])
    typer.echo("\n".join(lines))


@app.command()
def clear(campaign: Campaign = None, day: Day = False, month: Month = False) -> None:
    """Remove a budget: a campaign is then limited by calls only, a day or month by the settings' defaults."""
    settings = get_settings()
    with unit_of_work(settings) as session:
        scope = _scope(campaign, day, month)
        cleared = clear_budget(session, scope, campaign)
        after = budget_status(session, settings, scope, campaign, now=utcnow())
    said = "cleared" if cleared else "no budget was set for"
    typer.echo("\n".join([f"{said} {after.limits.label}", *describe([after])]))


def _scope(campaign: str | None, day: bool, month: bool) -> BudgetScope:
    given = {BudgetScope.CAMPAIGN: campaign is not None, BudgetScope.DAY: day, BudgetScope.MONTH: month}
    chosen = [scope for scope, named in given.items() if named]
    if len(chosen) != 1:
        raise BadRequest("choose one budget: --campaign KEY, --day or --month")
    return chosen[0]


def describe(statuses: Sequence[BudgetStatus]) -> list[str]:
    """A table: one line per budget, its tokens, dollars and calls each as ``used of limit (percent, left)``."""
    rows = [("budget", "tokens", "USD", "calls")]
    rows += [(s.limits.label, _use(s.tokens, _count), _use(s.usd, _dollars), _use(s.calls, _count)) for s in statuses]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[3]]) for row in rows]


def _use(use: Utilisation[Any], show: Callable[[Any], str]) -> str:
    if use.limit is None or use.remaining is None or use.fraction is None:
        return show(use.used)
    return f"{show(use.used)} of {show(use.limit)} ({use.fraction:.1%}, {show(use.remaining)} left)"


def _count(number: int) -> str:
    return f"{number:,}"


def _dollars(amount: Decimal) -> str:
    """Cents at least, and the ledger's millionths where they matter: $10.00, $0.0012."""
    text = f"{amount.quantize(MICRODOLLAR):f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"${int(whole):,}.{fraction.ljust(2, '0')}"
