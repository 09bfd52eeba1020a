"""The spend check made before an LLM call: refuse it if its estimate does not fit every budget that applies.

Design. ``agents`` and ``guardrails`` are sibling layers and may not import each other, so the check is a
function of plain values: the campaign key, the estimated tokens and the estimated US dollars.
``agents.accounting.MeteredLlm`` estimates a request (it has the request and the price table) and, on a
cache miss only, calls the ``spend_check`` it was given; a command or a task (which may import both)
passes a ``SpendGuard`` as that check. A cache hit costs nothing and is never refused. The real usage is
settled by the ledger row ``MeteredLlm`` writes after the call, and the next check reads it.

A call is refused (``core.errors.BudgetExceeded``, 402) when, for the campaign, the UTC day or the UTC month,
``used + estimate > limit`` in tokens or in dollars, or when its campaign has already made
``NUDGE_LLM_MAX_CALLS_PER_CAMPAIGN`` calls that reached a model.

The check reads the ledger and reserves nothing: callers running at the same moment each see the spend
before the others' calls, so together they may pass a limit by what they have in flight. The ledger rows
of the calls made in the caller's own transaction are counted (they are flushed as they are written).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core.clock import utcnow
from core.errors import BudgetExceeded
from core.models import BudgetScope
from core.settings import Settings
from guardrails.budgets import Limits, Spent, applicable_limits, spent_under

logger = logging.getLogger(__name__)


def check_spend(
    session: Session,
    settings: Settings,
    campaign_key: str | None,
    tokens: int,
    usd: Decimal,
    *,
    now: datetime | None = None,
) -> None:
    """Refuse a call whose estimate does not fit a budget, or that one call too many for its campaign.

    Parameters
    ----------
    session : Session
        Read only: the budgets and the ledger.
    settings : Settings
        Default day and month limits and the calls limit per campaign.
    campaign_key : str, optional
        Who pays; ``None``: only the day and month budgets apply.
    tokens : int
        Estimated prompt + completion tokens.
    usd : Decimal
        Estimated US dollars.
    now : datetime, optional
        Picks the day and month; the current time by default.

    Raises
    ------
    core.errors.BudgetExceeded
        ``details`` lists every budget the call would break, each with its limit, use and the estimate.
    """
    now = now or utcnow()
    problems = [
        problem
        for limits in applicable_limits(session, settings, campaign_key, now=now)
        for problem in refusals(limits, spent_under(session, limits), tokens, usd)
    ]
    if problems:
        logger.warning("LLM call refused: %s", "; ".join(str(problem["message"]) for problem in problems))
        raise BudgetExceeded(str(problems[0]["message"]), details=problems)


def refusals(limits: Limits, spent: Spent, tokens: int, usd: Decimal) -> list[dict[str, Any]]:
    """Why a call estimated at ``tokens`` and ``usd`` does not fit one budget (empty if it does); pure.

    Parameters
    ----------
    limits : Limits
        The budget.
    spent : Spent
        What its ledger holds.
    tokens, usd : int, Decimal
        The call's estimate.

    Returns
    -------
    list of dict
        One per limit broken: ``scope``, ``campaign_key``, ``limit`` (``tokens``, ``usd`` or ``calls``),
        ``max``, ``used``, ``estimate`` and a ``message``.
    """
    checks: list[tuple[str, int | Decimal | None, int | Decimal, int | Decimal]] = [
        ("calls", limits.max_calls, spent.calls, 1),
        ("tokens", limits.max_tokens, spent.tokens, tokens),
        ("usd", limits.max_usd, spent.usd, usd),
    ]
    return [
        _refusal(limits, name, maximum, used, estimate)
        for name, maximum, used, estimate in checks
        if maximum is not None and used + estimate > maximum
    ]


def _refusal(
    limits: Limits, name: str, maximum: int | Decimal, used: int | Decimal, estimate: int | Decimal
) -> dict[str, Any]:
    return {
        "scope": limits.scope.value,
        "campaign_key": limits.campaign_key,
        "limit": name,
        "max": str(maximum),
        "used": str(used),
        "estimate": str(estimate),
        "message": _message(limits, name, maximum, used, estimate),
    }


def _message(limits: Limits, name: str, maximum: int | Decimal, used: int | Decimal, estimate: int | Decimal) -> str:
    if name == "calls":
        return (
            f"LLM call limit reached for {limits.label}: {used} of {maximum} calls made "
            f"(NUDGE_LLM_MAX_CALLS_PER_CAMPAIGN); raise the limit or draft under a new campaign key"
        )
    unit = "tokens" if name == "tokens" else "USD"
    return (
        f"LLM budget exceeded for {limits.label}: this call may use {estimate} {unit}, and {used} of {maximum} "
        f"{unit} are used; raise it with `nudge budgets set {_scope_option(limits)} --{name} …`"
    )


def _scope_option(limits: Limits) -> str:
    if limits.scope is BudgetScope.CAMPAIGN:
        return f"--campaign {limits.campaign_key}"
    return f"--{limits.scope.value}"


class SpendGuard:
    """The ``spend_check`` for ``MeteredLlm``: ``check_spend`` on the caller's session, at the clock's time.

    Parameters
    ----------
    session : Session
        The session ``MeteredLlm`` writes its ledger to, so calls made earlier in it are counted.
    settings : Settings
        Defaults and the calls limit.
    clock : callable, optional
        The current time (UTC); tests pin it.
    """

    def __init__(self, session: Session, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._settings = settings
        self._clock = clock

    def __call__(self, campaign_key: str | None, tokens: int, usd: Decimal) -> None:
        """Refuse (``BudgetExceeded``) a call for ``campaign_key`` estimated at ``tokens`` and ``usd``."""
        check_spend(self._session, self._settings, campaign_key, tokens, usd, now=self._clock())
