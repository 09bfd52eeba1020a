"""LLM spend budgets: which limits apply, what has been spent under them, and how much of each is used.

A budget covers a scope: one campaign (for as long as it lives), one calendar day or one calendar month
(both in UTC, and both over every campaign). It limits tokens (prompt + completion), US dollars, or both.
A ``Budget`` row sets a limit; a limit it leaves empty, and a day or month without a row, takes the
settings' default (``NUDGE_LLM_BUDGET_USD_PER_DAY`` and the like); a campaign without a row has no token
or dollar limit. Every campaign is also held to ``NUDGE_LLM_MAX_CALLS_PER_CAMPAIGN`` calls that reach a model.

Spend is never stored twice: it is summed from the ``LlmCall`` ledger that ``agents.accounting.MeteredLlm``
writes (by ``campaign_key``, or by ``created_at`` for a period; both are indexed). Cache hits are in the
ledger at 0 tokens and $0 and do not count as calls.

``utilisation`` and ``status`` are pure, for the CLI, the UI and metrics; ``budget_statuses`` reads the
database and applies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from core.clock import as_utc, utcnow
from core.errors import BadRequest
from core.models import Budget, BudgetScope, LlmCall
from core.settings import Settings

MICRODOLLAR = Decimal("0.000001")  # the ledger's precision
Amount = TypeVar("Amount", int, Decimal)


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar period in UTC: ``starts`` inclusive, ``ends`` exclusive."""

    starts: datetime
    ends: datetime


@dataclass(frozen=True, slots=True)
class Limits:
    """One budget as it applies now: its scope, its period and its effective limits (``None``: no limit).

    ``max_calls`` is set for campaigns only; ``period`` is ``None`` for a campaign (its whole life).
    """

    scope: BudgetScope
    campaign_key: str | None
    max_tokens: int | None
    max_usd: Decimal | None
    max_calls: int | None = None
    period: Period | None = None

    @property
    def label(self) -> str:
        """``campaign 'spring-winback'``, ``day 2026-11-21`` or ``month 2026-11``, for messages."""
        if self.period is None:
            return f"campaign {self.campaign_key!r}"
        stamp = f"{self.period.starts:%Y-%m-%d}" if self.scope is BudgetScope.DAY else f"{self.period.starts:%Y-%m}"
        return f"{self.scope.value} {stamp}"


@dataclass(frozen=True, slots=True)
class Spent:
    """What the ledger holds under one budget: tokens, US dollars, and calls that reached a model."""

    tokens: int
    usd: Decimal
    calls: int


@dataclass(frozen=True, slots=True)
class Utilisation(Generic[Amount]):
    """One limit's use: ``remaining`` never below 0; ``fraction`` = used / limit (1.0 for a limit of 0)."""

    used: Amount
    limit: Amount | None
    remaining: Amount | None
    fraction: float | None


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget's utilisation in tokens, dollars and calls (calls are limited for campaigns only)."""

    limits: Limits
    tokens: Utilisation[int]
    usd: Utilisation[Decimal]
    calls: Utilisation[int]


def utilisation(used: Amount, limit: Amount | None) -> Utilisation[Amount]:
    """How much of ``limit`` is used and left.

    Parameters
    ----------
    used : int or Decimal
        Spent so far.
    limit : int or Decimal, optional
        ``None`` when there is no limit.

    Returns
    -------
    Utilisation
        ``remaining`` and ``fraction`` are ``None`` without a limit; ``remaining`` is 0, not negative, once
        the limit is passed (a call's real usage may exceed its estimate), and ``fraction`` then exceeds 1.
    """
    if limit is None:
        return Utilisation(used, None, None, None)
    remaining = max(limit - used, type(limit)(0))
    fraction = float(used / limit) if limit else 1.0
    return Utilisation(used, limit, remaining, fraction)


def status(limits: Limits, spent: Spent) -> BudgetStatus:
    """A budget's utilisation, from its limits and what was spent under it (pure)."""
    return BudgetStatus(
        limits=limits,
        tokens=utilisation(spent.tokens, limits.max_tokens),
        usd=utilisation(spent.usd, limits.max_usd),
        calls=utilisation(spent.calls, limits.max_calls),
    )


def day_of(moment: datetime) -> Period:
    """The UTC calendar day holding ``moment``."""
    starts = as_utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    return Period(starts, starts + timedelta(days=1))  # UTC has no daylight-saving days of 23 or 25 hours


def month_of(moment: datetime) -> Period:
    """The UTC calendar month holding ``moment``."""
    starts = as_utc(moment).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year, month = (starts.year + 1, 1) if starts.month == 12 else (starts.year, starts.month + 1)
    return Period(starts, starts.replace(year=year, month=month))


def applicable_limits(session: Session, settings: Settings, campaign_key: str | None, *, now: datetime) -> list[Limits]:
    """The budgets a call for ``campaign_key`` at ``now`` must fit: the campaign's (if any), the day's, the month's.

    Parameters
    ----------
    session : Session
        Read only.
    settings : Settings
        The default day and month limits and the calls limit per campaign.
    campaign_key : str, optional
        ``None`` for a call attributed to no campaign: only the day and month apply.
    now : datetime
        Picks the day and month.

    Returns
    -------
    list of Limits
        Campaign first, then day, then month.
    """
    rows = {(row.scope, row.campaign_key): row for row in session.scalars(_budget_rows(campaign_key))}
    periods = [
        _period_limits(rows.get((BudgetScope.DAY, None)), BudgetScope.DAY, day_of(now), settings),
        _period_limits(rows.get((BudgetScope.MONTH, None)), BudgetScope.MONTH, month_of(now), settings),
    ]
    if campaign_key is None:
        return periods
    return [campaign_limits(rows.get((BudgetScope.CAMPAIGN, campaign_key)), campaign_key, settings), *periods]


def campaign_limits(row: Budget | None, campaign_key: str, settings: Settings) -> Limits:
    """A campaign's limits: its row's, and the calls limit every campaign has."""
    return Limits(
        scope=BudgetScope.CAMPAIGN,
        campaign_key=campaign_key,
        max_tokens=row.max_tokens if row else None,
        max_usd=row.max_usd if row else None,
        max_calls=settings.llm_max_calls_per_campaign,
    )


def _period_limits(row: Budget | None, scope: BudgetScope, period: Period, settings: Settings) -> Limits:
    per_day = scope is BudgetScope.DAY
    default_tokens = settings.llm_budget_tokens_per_day if per_day else settings.llm_budget_tokens_per_month
    default_usd = settings.llm_budget_usd_per_day if per_day else settings.llm_budget_usd_per_month
    return Limits(
        scope=scope,
        campaign_key=None,
        max_tokens=row.max_tokens if row and row.max_tokens is not None else default_tokens,
        max_usd=row.max_usd if row and row.max_usd is not None else default_usd,
        period=period,
    )


def _budget_rows(campaign_key: str | None) -> Select[Budget]:
    periods = Budget.campaign_key.is_(None)
    if campaign_key is None:
        return select(Budget).where(periods)
    return select(Budget).where(or_(periods, Budget.campaign_key == campaign_key))


def spent_under(session: Session, limits: Limits) -> Spent:
    """The ledger's tokens, dollars and model calls under one budget (uses an index either way)."""
    row = session.execute(
        select(
            func.coalesce(func.sum(LlmCall.prompt_tokens + LlmCall.completion_tokens), 0),
            func.coalesce(func.sum(LlmCall.cost), 0),
            func.coalesce(func.sum(case((LlmCall.cached, 0), else_=1)), 0),
        ).where(_ledger_filter(limits))
    ).one()
    tokens, usd, calls = row
    return Spent(tokens=int(tokens), usd=Decimal(usd).quantize(MICRODOLLAR), calls=int(calls))


def _ledger_filter(limits: Limits) -> ColumnElement[bool]:
    if limits.period is None:
        return LlmCall.campaign_key == limits.campaign_key
    return and_(LlmCall.created_at >= limits.period.starts, LlmCall.created_at < limits.period.ends)


def budget_statuses(
    session: Session, settings: Settings, *, campaign_keys: Sequence[str] = (), now: datetime | None = None
) -> list[BudgetStatus]:
    """Utilisation of today's and this month's budgets and of every campaign budget (plus ``campaign_keys``).

    Parameters
    ----------
    session : Session
        Read only.
    settings : Settings
        Defaults and the calls limit.
    campaign_keys : sequence of str
        Campaigns to report even without a budget row (their calls limit still applies).
    now : datetime, optional
        Picks the day and month; the current time by default.

    Returns
    -------
    list of BudgetStatus
        Day, month, then campaigns by key.
    """
    now = now or utcnow()
    limits = applicable_limits(session, settings, None, now=now)
    rows = _campaign_rows(session)
    for key in sorted({*rows, *campaign_keys}):
        limits.append(campaign_limits(rows.get(key), key, settings))
    return [status(each, spent_under(session, each)) for each in limits]


def budget_status(
    session: Session,
    settings: Settings,
    scope: BudgetScope,
    campaign_key: str | None = None,
    *,
    now: datetime | None = None,
) -> BudgetStatus:
    """Utilisation of one budget: a campaign's, or the day's or month's holding ``now`` (default: the current time)."""
    _check_scope(scope, campaign_key)
    if campaign_key is not None:
        limits = campaign_limits(find_budget(session, scope, campaign_key), campaign_key, settings)
    else:
        periods = applicable_limits(session, settings, None, now=now or utcnow())
        [limits] = [each for each in periods if each.scope is scope]
    return status(limits, spent_under(session, limits))


def _campaign_rows(session: Session) -> dict[str, Budget]:
    rows = session.scalars(select(Budget).where(Budget.scope == BudgetScope.CAMPAIGN))
    return {row.campaign_key: row for row in rows if row.campaign_key is not None}


def set_budget(
    session: Session,
    scope: BudgetScope,
    campaign_key: str | None = None,
    *,
    max_tokens: int | None = None,
    max_usd: Decimal | None = None,
) -> Budget:
    """Create or change a budget; a limit not given keeps its current value (or default).

    Parameters
    ----------
    session : Session
        Flushed, not committed.
    scope : BudgetScope
        Campaign (``campaign_key`` required), day or month (``campaign_key`` not allowed).
    campaign_key : str, optional
        The campaign, as the ledger records it.
    max_tokens, max_usd : optional
        The new limits; at least one, neither negative. Dollars are rounded to a millionth.

    Returns
    -------
    Budget
        The row as stored.

    Raises
    ------
    core.errors.BadRequest
        A campaign key missing or misplaced, no limit given, or a negative one.
    """
    _check_scope(scope, campaign_key)
    if max_tokens is None and max_usd is None:
        raise BadRequest("give a limit: tokens, US dollars or both")
    if (max_tokens is not None and max_tokens < 0) or (max_usd is not None and max_usd < 0):
        raise BadRequest("a budget cannot be negative")
    budget = find_budget(session, scope, campaign_key)
    if budget is None:
        budget = Budget(scope=scope, campaign_key=campaign_key)
        session.add(budget)
    if max_tokens is not None:
        budget.max_tokens = max_tokens
    if max_usd is not None:
        budget.max_usd = max_usd.quantize(MICRODOLLAR)
    session.flush()
    return budget


def clear_budget(session: Session, scope: BudgetScope, campaign_key: str | None = None) -> bool:
    """Remove a budget (a day or month falls back to the settings' defaults); ``False`` if there was none."""
    _check_scope(scope, campaign_key)
    budget = find_budget(session, scope, campaign_key)
    if budget is None:
        return False
    session.delete(budget)
    session.flush()
    return True


def find_budget(session: Session, scope: BudgetScope, campaign_key: str | None) -> Budget | None:
    """The row for a scope (and campaign), if one was set."""
    key = Budget.campaign_key.is_(None) if campaign_key is None else Budget.campaign_key == campaign_key
    return session.scalar(select(Budget).where(Budget.scope == scope, key))


def _check_scope(scope: BudgetScope, campaign_key: str | None) -> None:
    if scope is BudgetScope.CAMPAIGN and not campaign_key:
        raise BadRequest("a campaign budget needs a campaign key")
    if scope is not BudgetScope.CAMPAIGN and campaign_key is not None:
        raise BadRequest(f"a {scope.value} budget covers every campaign: give no campaign key")
