"""Budgets: setting and clearing them, the periods they cover, and the utilisation report (pure, and read
from the ledger on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.db import Database
from core.errors import BadRequest
from core.models import Budget, BudgetScope, LlmCall
from core.settings import Settings
from guardrails.budgets import (
    BudgetStatus,
    Limits,
    Period,
    Spent,
    Utilisation,
    budget_statuses,
    clear_budget,
    day_of,
    month_of,
    set_budget,
    status,
    utilisation,
)

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
TODAY = Period(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC))
THIS_MONTH = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def _budgets(db: Database) -> list[tuple[BudgetScope, str | None, int | None, Decimal | None]]:
    with db.session() as session:
        rows = session.scalars(select(Budget).order_by(Budget.id))
        return [(row.scope, row.campaign_key, row.max_tokens, row.max_usd) for row in rows]


def _call(campaign_key: str | None, tokens: int, usd: str, *, cached: bool = False, at: datetime = NOW) -> LlmCall:
    return LlmCall(
        campaign_key=campaign_key,
        purpose="draft",
        provider="openai",
        model="gpt-4.1-mini",
        prompt_tokens=tokens,
        completion_tokens=0,
        cost=Decimal(usd),
        cached=cached,
        cache_key="0" * 64,
        created_at=at,
    )


def test_utilisation_reports_used_limit_remaining_and_fraction() -> None:
    assert utilisation(300, 1200) == Utilisation(300, 1200, 900, 0.25)
    assert utilisation(Decimal("0.75"), Decimal("0.50")) == Utilisation(
        Decimal("0.75"), Decimal("0.50"), Decimal(0), 1.5
    )
    assert utilisation(0, 0) == Utilisation(0, 0, 0, 1.0)
    assert utilisation(7, None) == Utilisation(7, None, None, None)


def test_status_applies_each_limit_to_what_was_spent() -> None:
    limits = Limits(BudgetScope.CAMPAIGN, "spring-winback", max_tokens=None, max_usd=Decimal("2"), max_calls=200)

    report = status(limits, Spent(tokens=1500, usd=Decimal("0.5"), calls=50))

    assert report == BudgetStatus(
        limits=limits,
        tokens=Utilisation(1500, None, None, None),
        usd=Utilisation(Decimal("0.5"), Decimal("2"), Decimal("1.5"), 0.25),
        calls=Utilisation(50, 200, 150, 0.25),
    )


@pytest.mark.parametrize(
    ("moment", "day", "month"),
    [
        (NOW, TODAY, THIS_MONTH),
        (
            datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            Period(datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
            Period(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ),
        (  # 00:30 on 1 March in Paris is still 28 February in UTC
            datetime.fromisoformat("2027-03-01T00:30:00+01:00"),
            Period(datetime(2027, 2, 28, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)),
            Period(datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)),
        ),
    ],
    ids=["mid-month", "new-year", "utc-not-local"],
)
def test_days_and_months_are_calendar_periods_in_utc(moment: datetime, day: Period, month: Period) -> None:
    assert (day_of(moment), month_of(moment)) == (day, month)


def test_setting_a_limit_keeps_the_other_and_clearing_removes_the_budget(db: Database) -> None:
    with db.session() as session:
        set_budget(session, BudgetScope.CAMPAIGN, "spring-winback", max_usd=Decimal("5"))
        set_budget(session, BudgetScope.CAMPAIGN, "spring-winback", max_tokens=100_000)
        set_budget(session, BudgetScope.DAY, max_usd=Decimal("1.2345678"))
    assert _budgets(db) == [
        (BudgetScope.CAMPAIGN, "spring-winback", 100_000, Decimal("5.000000")),
        (BudgetScope.DAY, None, None, Decimal("1.234568")),
    ]

    with db.session() as session:
        cleared = clear_budget(session, BudgetScope.CAMPAIGN, "spring-winback")
        cleared_again = clear_budget(session, BudgetScope.CAMPAIGN, "spring-winback")

    assert (cleared, cleared_again) == (True, False)
    assert _budgets(db) == [(BudgetScope.DAY, None, None, Decimal("1.234568"))]


@pytest.mark.parametrize(
    ("scope", "key", "limits", "message"),
    [
        (BudgetScope.CAMPAIGN, None, {"max_usd": Decimal(1)}, "a campaign budget needs a campaign key"),
        (BudgetScope.DAY, "x", {"max_usd": Decimal(1)}, "a day budget covers every campaign: give no campaign key"),
        (BudgetScope.MONTH, None, {}, "give a limit: tokens, US dollars or both"),
        (BudgetScope.MONTH, None, {"max_tokens": -1}, "a budget cannot be negative"),
    ],
    ids=["campaign-without-key", "day-with-key", "no-limit", "negative"],
)
def test_a_malformed_budget_is_refused_and_nothing_is_written(
    db: Database, scope: BudgetScope, key: str | None, limits: dict[str, int | Decimal], message: str
) -> None:
    with pytest.raises(BadRequest, match=f"^{message}$"), db.session() as session:
        set_budget(session, scope, key, **limits)  # type: ignore[arg-type]

    assert _budgets(db) == []


def test_the_database_allows_one_budget_per_period(db: Database) -> None:
    with db.session() as session:
        set_budget(session, BudgetScope.DAY, max_usd=Decimal(1))

    with db.session() as session:
        session.add(Budget(scope=BudgetScope.DAY, max_tokens=5))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()

    assert _budgets(db) == [(BudgetScope.DAY, None, None, Decimal("1.000000"))]


def test_budget_statuses_report_the_day_the_month_and_every_campaign_from_the_ledger(db: Database) -> None:
    settings = Settings(
        llm_budget_usd_per_day=Decimal("10"), llm_budget_usd_per_month=None, llm_max_calls_per_campaign=200
    )
    with db.session() as session:
        set_budget(session, BudgetScope.CAMPAIGN, "spring-winback", max_usd=Decimal("2"))
        set_budget(session, BudgetScope.MONTH, max_tokens=10_000)
        session.add_all(
            [
                _call("spring-winback", 1000, "0.5"),
                _call("spring-winback", 0, "0", cached=True),
                _call("cart-recovery", 500, "0.25", at=datetime(2026, 11, 3, tzinfo=UTC)),
                _call(None, 100, "0.05", at=datetime(2026, 10, 31, 23, 59, tzinfo=UTC)),
            ]
        )

    with db.session() as session:
        reports = budget_statuses(session, settings, campaign_keys=["cart-recovery"], now=NOW)

    assert [(r.limits.label, r.tokens, r.usd, r.calls) for r in reports] == [
        (
            "day 2026-11-21",
            Utilisation(1000, None, None, None),
            Utilisation(Decimal("0.500000"), Decimal("10"), Decimal("9.500000"), 0.05),
            Utilisation(1, None, None, None),
        ),
        (
            "month 2026-11",
            Utilisation(1500, 10_000, 8500, 0.15),
            Utilisation(Decimal("0.750000"), None, None, None),
            Utilisation(2, None, None, None),
        ),
        (
            "campaign 'cart-recovery'",
            Utilisation(500, None, None, None),
            Utilisation(Decimal("0.250000"), None, None, None),
            Utilisation(1, 200, 199, 0.005),
        ),
        (
            "campaign 'spring-winback'",
            Utilisation(1000, None, None, None),
            Utilisation(Decimal("0.500000"), Decimal("2.000000"), Decimal("1.500000"), 0.25),
            Utilisation(1, 200, 199, 0.005),
        ),
    ]
    assert (reports[0].limits.period, reports[1].limits.period) == (TODAY, THIS_MONTH)
