"""``nudge budgets`` on an embedded SQLite file: the utilisation table, setting and clearing a budget, and
the errors that write nothing; and ``nudge draft``'s LLM refused before it is asked when the budget is spent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core import migrate
from core.db import Database
from core.models import Budget, BudgetScope, LlmCall
from core.settings import get_settings
from nudge.cli import app

runner = CliRunner()
NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)


@pytest.fixture
def ledger(cli_db: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The command's database, migrated, with three calls this month; the command's clock reads NOW."""
    migrate.upgrade(cli_db.engine)
    monkeypatch.setattr("nudge.commands.budgets.utcnow", lambda: NOW)
    with cli_db.session() as session:
        session.add_all(
            [
                _call("spring-winback", 1000, 500, "0.0012", at=NOW),
                _call("spring-winback", 0, 0, "0", at=NOW, cached=True),
                _call("cart-recovery", 2000, 250, "0.006", at=datetime(2026, 11, 2, tzinfo=UTC)),
            ]
        )
    return cli_db


def _call(key: str, prompt: int, completion: int, usd: str, *, at: datetime, cached: bool = False) -> LlmCall:
    return LlmCall(
        campaign_key=key,
        purpose="draft",
        provider="openai",
        model="gpt-4.1-mini",
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=Decimal(usd),
        cached=cached,
        cache_key="0" * 64,
        created_at=at,
    )


def _budgets(db: Database) -> list[tuple[BudgetScope, str | None, int | None, Decimal | None]]:
    with db.session() as session:
        rows = session.scalars(select(Budget).order_by(Budget.id))
        return [(row.scope, row.campaign_key, row.max_tokens, row.max_usd) for row in rows]


def test_budgets_shows_the_day_the_month_and_asked_for_campaigns_against_the_defaults(ledger: Database) -> None:
    result = runner.invoke(app, ["budgets", "--campaign", "spring-winback"])

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "budget                     tokens  USD                                       calls\n"
        "day 2026-11-21             1,500   $0.0012 of $10.00 (0.0%, $9.9988 left)    1\n"
        "month 2026-11              3,750   $0.0072 of $100.00 (0.0%, $99.9928 left)  2\n"
        "campaign 'spring-winback'  1,500   $0.0012                                   1 of 200 (0.5%, 199 left)\n"
    )


def test_set_creates_a_campaign_budget_and_shows_its_utilisation(ledger: Database) -> None:
    result = runner.invoke(app, ["budgets", "set", "--campaign", "spring-winback", "--usd", "5", "--tokens", "100000"])

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "budget                     tokens                                USD                                    "
        "calls\n"
        "campaign 'spring-winback'  1,500 of 100,000 (1.5%, 98,500 left)  $0.0012 of $5.00 (0.0%, $4.9988 left)  "
        "1 of 200 (0.5%, 199 left)\n"
    )
    assert _budgets(ledger) == [(BudgetScope.CAMPAIGN, "spring-winback", 100_000, Decimal("5"))]


def test_set_changes_only_the_limits_given_and_the_table_lists_every_campaign_budget(ledger: Database) -> None:
    runner.invoke(app, ["budgets", "set", "--month", "--usd", "0.01"])
    runner.invoke(app, ["budgets", "set", "--month", "--tokens", "5000"])
    runner.invoke(app, ["budgets", "set", "--campaign", "cart-recovery", "--tokens", "2250"])

    result = runner.invoke(app, ["budgets"])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2:] == [
        "month 2026-11             3,750 of 5,000 (75.0%, 1,250 left)  $0.0072 of $0.01 (72.0%, $0.0028 left)  2",
        "campaign 'cart-recovery'  2,250 of 2,250 (100.0%, 0 left)     $0.006                                  "
        "1 of 200 (0.5%, 199 left)",
    ]
    assert _budgets(ledger) == [
        (BudgetScope.MONTH, None, 5000, Decimal("0.01")),
        (BudgetScope.CAMPAIGN, "cart-recovery", 2250, None),
    ]


def test_an_empty_setting_means_no_default_limit(ledger: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_LLM_BUDGET_USD_PER_DAY", "")
    get_settings.cache_clear()

    result = runner.invoke(app, ["budgets"])

    assert result.stdout.splitlines()[1].split() == ["day", "2026-11-21", "1,500", "$0.0012", "1"]


def test_clear_removes_a_budget_and_says_what_applies_now(ledger: Database) -> None:
    runner.invoke(app, ["budgets", "set", "--day", "--usd", "1"])

    cleared = runner.invoke(app, ["budgets", "clear", "--day"])
    again = runner.invoke(app, ["budgets", "clear", "--day"])

    assert cleared.stdout.splitlines()[::2] == [
        "cleared day 2026-11-21",
        "day 2026-11-21  1,500   $0.0012 of $10.00 (0.0%, $9.9988 left)  1",  # the default again
    ]
    assert again.stdout.splitlines()[0] == "no budget was set for day 2026-11-21"
    assert _budgets(ledger) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--day", "--month", "--usd", "1"], "choose one budget: --campaign KEY, --day or --month"),
        (["--usd", "1"], "choose one budget: --campaign KEY, --day or --month"),
        (["--campaign", "spring-winback"], "give a limit: tokens, US dollars or both"),
    ],
    ids=["two-scopes", "no-scope", "no-limit"],
)
def test_a_malformed_set_is_an_error_and_writes_nothing(ledger: Database, arguments: list[str], message: str) -> None:
    result = runner.invoke(app, ["budgets", "set", *arguments])

    assert result.exit_code == 1
    assert result.stderr == f"error: {message}\n"
    assert _budgets(ledger) == []


def test_a_negative_limit_is_refused_by_the_command_line(ledger: Database) -> None:
    result = runner.invoke(app, ["budgets", "set", "--day", "--usd", "-1"])

    assert result.exit_code == 2
    assert _budgets(ledger) == []
