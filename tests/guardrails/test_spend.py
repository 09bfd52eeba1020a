"""The spend check before an LLM call, on SQLite and PostgreSQL: a call that fits every budget is made and
settled from its real usage; one whose estimate does not fit the campaign, the UTC day or the UTC month, or
one call too many for its campaign, is refused before the model is asked and leaves nothing in the ledger;
cache hits are never refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from agents.accounting import MeteredLlm, estimate_usage
from agents.ports import LlmRequest, LlmResult, LlmUsage
from core.db import Database
from core.errors import BudgetExceeded
from core.models import BudgetScope, LlmCacheEntry, LlmCall
from core.settings import Settings
from guardrails.budgets import set_budget
from guardrails.spend import SpendGuard, check_spend
from tests.agents.test_accounting import ANSWER, REQUEST, CountingLlm

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)
# REQUEST's estimate: 179 characters / 4 → 45 prompt tokens, plus max_tokens 300; at gpt-4.1-mini's
# $0.40 and $1.60 per million: 45 × 0.40/1e6 + 300 × 1.60/1e6.
ESTIMATE_TOKENS = 345
ESTIMATE_USD = Decimal("0.000498")
# What CountingLlm reports for every call: 1,000 + 500 tokens, $0.0012.
CALL_TOKENS = 1500
CALL_USD = Decimal("0.0012")
OTHER = dataclasses.replace(REQUEST, user="Brief: annual plan ending, free month.")


@pytest.fixture
def settings() -> Settings:
    """No default day or month limit, so each test sets only the budget it is about."""
    return Settings(llm_budget_usd_per_day=None, llm_budget_usd_per_month=None)


def _complete(db: Database, settings: Settings, inner: CountingLlm, *requests: LlmRequest) -> list[LlmResult]:
    with db.session() as session:
        metered = MeteredLlm(inner, session, settings, spend_check=SpendGuard(session, settings, clock=lambda: NOW))
        return [metered.complete(request) for request in requests]


def _set(
    db: Database,
    scope: BudgetScope,
    key: str | None = None,
    *,
    max_tokens: int | None = None,
    max_usd: Decimal | None = None,
) -> None:
    with db.session() as session:
        set_budget(session, scope, key, max_tokens=max_tokens, max_usd=max_usd)


def _ledger(db: Database, *, campaign_key: str | None, tokens: int, usd: str, at: datetime = NOW) -> None:
    """A call already in the ledger, as MeteredLlm would have recorded it."""
    with db.session() as session:
        session.add(
            LlmCall(
                campaign_key=campaign_key,
                purpose="draft",
                provider="openai",
                model="gpt-4.1-mini",
                prompt_tokens=tokens,
                completion_tokens=0,
                cost=Decimal(usd),
                cached=False,
                cache_key="0" * 64,
                created_at=at,
            )
        )


def _ledger_rows(db: Database) -> list[tuple[str | None, int, Decimal, bool]]:
    with db.session() as session:
        calls = session.scalars(select(LlmCall).order_by(LlmCall.id))
        return [(c.campaign_key, c.prompt_tokens + c.completion_tokens, c.cost, c.cached) for c in calls]


def _cache_entries(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(LlmCacheEntry.id))) or 0


def test_the_estimate_is_characters_over_four_rounded_up_plus_max_tokens() -> None:
    assert estimate_usage(REQUEST, "gpt-4.1-mini") == LlmUsage("gpt-4.1-mini", 45, 300)
    assert estimate_usage(dataclasses.replace(REQUEST, user=REQUEST.user + "!"), "m") == LlmUsage("m", 45, 300)
    assert estimate_usage(dataclasses.replace(REQUEST, user=REQUEST.user + "!!"), "m") == LlmUsage("m", 46, 300)


def test_a_call_under_every_budget_is_made_and_settled_from_its_real_usage(db: Database, settings: Settings) -> None:
    _set(db, BudgetScope.CAMPAIGN, "spring-winback", max_tokens=ESTIMATE_TOKENS, max_usd=ESTIMATE_USD)
    _set(db, BudgetScope.DAY, max_tokens=ESTIMATE_TOKENS, max_usd=ESTIMATE_USD)
    _set(db, BudgetScope.MONTH, max_tokens=ESTIMATE_TOKENS, max_usd=ESTIMATE_USD)
    inner = CountingLlm()

    [result] = _complete(db, settings, inner, REQUEST)

    assert result == LlmResult(text=ANSWER, usage=LlmUsage("gpt-4.1-mini", 1000, 500))
    assert len(inner.requests) == 1
    # Settled at what the model reported, not at the estimate.
    assert _ledger_rows(db) == [("spring-winback", CALL_TOKENS, CALL_USD, False)]


@pytest.mark.parametrize("scope", [BudgetScope.CAMPAIGN, BudgetScope.DAY, BudgetScope.MONTH])
@pytest.mark.parametrize(
    ("limits", "limit", "maximum", "used", "estimate"),
    [
        ({"max_usd": CALL_USD + ESTIMATE_USD - Decimal("0.000001")}, "usd", "0.001697", "0.001200", "0.000498"),
        ({"max_tokens": CALL_TOKENS + ESTIMATE_TOKENS - 1}, "tokens", "1844", "1500", "345"),
    ],
    ids=["usd", "tokens"],
)
def test_a_call_whose_estimate_exceeds_what_is_left_is_refused_before_the_model_is_asked(
    db: Database,
    settings: Settings,
    scope: BudgetScope,
    limits: dict[str, int | Decimal],
    limit: str,
    maximum: str,
    used: str,
    estimate: str,
) -> None:
    key = "spring-winback" if scope is BudgetScope.CAMPAIGN else None
    _ledger(db, campaign_key="spring-winback", tokens=CALL_TOKENS, usd=str(CALL_USD))
    _set(db, scope, key, **limits)
    inner = CountingLlm()

    with pytest.raises(BudgetExceeded) as refused:
        _complete(db, settings, inner, REQUEST)

    assert refused.value.status_code == 402
    label = {"campaign": "campaign 'spring-winback'", "day": "day 2026-11-21", "month": "month 2026-11"}[scope]
    unit = {"usd": "USD", "tokens": "tokens"}[limit]
    option = "--campaign spring-winback" if key else f"--{scope.value}"
    assert refused.value.message == (
        f"LLM budget exceeded for {label}: this call may use {estimate} {unit}, and {used} of {maximum} {unit} "
        f"are used; raise it with `nudge budgets set {option} --{limit} …`"
    )
    assert [
        (d["scope"], d["campaign_key"], d["limit"], d["max"], d["used"], d["estimate"]) for d in refused.value.details
    ] == [(scope.value, key, limit, maximum, used, estimate)]
    assert inner.requests == []
    assert _ledger_rows(db) == [("spring-winback", CALL_TOKENS, CALL_USD, False)]
    assert _cache_entries(db) == 0


def test_an_estimate_that_fits_exactly_is_allowed(db: Database, settings: Settings) -> None:
    _ledger(db, campaign_key="spring-winback", tokens=CALL_TOKENS, usd=str(CALL_USD))
    _set(db, BudgetScope.CAMPAIGN, "spring-winback", max_tokens=CALL_TOKENS + ESTIMATE_TOKENS)
    _set(db, BudgetScope.DAY, max_usd=CALL_USD + ESTIMATE_USD)

    [result] = _complete(db, settings, CountingLlm(), REQUEST)

    assert result.cached is False


def test_every_broken_budget_is_listed_and_the_first_is_the_message(db: Database, settings: Settings) -> None:
    _set(db, BudgetScope.CAMPAIGN, "spring-winback", max_usd=Decimal("0"))
    _set(db, BudgetScope.MONTH, max_tokens=100)

    with pytest.raises(BudgetExceeded) as refused:
        _complete(db, settings, CountingLlm(), REQUEST)

    assert [(d["scope"], d["limit"]) for d in refused.value.details] == [("campaign", "usd"), ("month", "tokens")]
    assert refused.value.message.startswith("LLM budget exceeded for campaign 'spring-winback': ")


def test_a_cache_hit_is_answered_even_when_every_budget_is_spent(db: Database, settings: Settings) -> None:
    inner = CountingLlm()
    _complete(db, settings, inner, REQUEST)
    _set(db, BudgetScope.CAMPAIGN, "spring-winback", max_tokens=0, max_usd=Decimal("0"))
    _set(db, BudgetScope.DAY, max_tokens=0, max_usd=Decimal("0"))
    _set(db, BudgetScope.MONTH, max_tokens=0, max_usd=Decimal("0"))

    [again] = _complete(db, settings, inner, REQUEST)

    assert again == LlmResult(text=ANSWER, usage=LlmUsage("gpt-4.1-mini", 0, 0), cached=True)
    assert len(inner.requests) == 1
    assert _ledger_rows(db) == [
        ("spring-winback", CALL_TOKENS, CALL_USD, False),
        ("spring-winback", 0, Decimal("0"), True),
    ]


def test_the_call_after_the_campaigns_last_allowed_call_is_refused(db: Database) -> None:
    settings = Settings(llm_max_calls_per_campaign=2, llm_budget_usd_per_day=None, llm_budget_usd_per_month=None)
    third = dataclasses.replace(REQUEST, user="Brief: cart left behind, free shipping.")
    inner = CountingLlm()
    _complete(db, settings, inner, REQUEST, OTHER)

    with pytest.raises(BudgetExceeded) as refused:
        _complete(db, settings, inner, third)
    [hit] = _complete(db, settings, inner, REQUEST)  # a cache hit is not a call to a model

    assert refused.value.message == (
        "LLM call limit reached for campaign 'spring-winback': 2 of 2 calls made "
        "(NUDGE_LLM_MAX_CALLS_PER_CAMPAIGN); raise the limit or draft under a new campaign key"
    )
    assert len(inner.requests) == 2
    assert hit.cached is True
    assert [row[3] for row in _ledger_rows(db)] == [False, False, True]


def test_the_calls_limit_counts_each_campaign_on_its_own(db: Database) -> None:
    settings = Settings(llm_max_calls_per_campaign=1, llm_budget_usd_per_day=None, llm_budget_usd_per_month=None)
    other_campaign = dataclasses.replace(OTHER, metadata={"campaign_key": "cart-recovery"})
    _complete(db, settings, CountingLlm(), REQUEST)

    [result] = _complete(db, settings, CountingLlm(), other_campaign)

    assert result.cached is False


def test_spend_before_today_or_this_month_does_not_count_against_the_day_or_month(
    db: Database, settings: Settings
) -> None:
    _ledger(db, campaign_key="a", tokens=1_000_000, usd="5", at=datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC))
    _ledger(db, campaign_key="b", tokens=1_000_000, usd="5", at=datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))
    _ledger(db, campaign_key="c", tokens=10, usd="0.01", at=datetime(2026, 11, 21, 0, 0, tzinfo=UTC))
    _ledger(db, campaign_key="d", tokens=20, usd="0.02", at=datetime(2026, 11, 1, 0, 0, tzinfo=UTC))
    _set(db, BudgetScope.DAY, max_tokens=10 + ESTIMATE_TOKENS, max_usd=Decimal("0.01") + ESTIMATE_USD)
    # Yesterday counts against the month, October does not.
    _set(db, BudgetScope.MONTH, max_tokens=1_000_030 + ESTIMATE_TOKENS, max_usd=Decimal("5.03") + ESTIMATE_USD)

    [result] = _complete(db, settings, CountingLlm(), REQUEST)

    assert result.cached is False


def test_the_default_day_limit_applies_without_a_budget_row(db: Database) -> None:
    settings = Settings(llm_budget_usd_per_day=Decimal("0.0005"), llm_budget_usd_per_month=None)
    _ledger(db, campaign_key=None, tokens=1, usd="0.000003")

    with pytest.raises(BudgetExceeded) as refused:
        _complete(db, settings, CountingLlm(), REQUEST)

    assert [(d["scope"], d["max"], d["used"]) for d in refused.value.details] == [("day", "0.0005", "0.000003")]


def test_a_budget_row_overrides_the_default_only_for_the_limits_it_sets(db: Database) -> None:
    settings = Settings(llm_budget_usd_per_month=Decimal("0.0001"), llm_budget_tokens_per_month=100_000)
    _set(db, BudgetScope.MONTH, max_usd=Decimal("1"))
    _ledger(db, campaign_key=None, tokens=100_000, usd="0")

    with pytest.raises(BudgetExceeded) as refused:
        _complete(db, settings, CountingLlm(), REQUEST)

    assert [(d["scope"], d["limit"], d["max"]) for d in refused.value.details] == [("month", "tokens", "100000")]


def test_a_call_for_no_campaign_is_held_to_the_day_and_month_only(db: Database, settings: Settings) -> None:
    _set(db, BudgetScope.DAY, max_tokens=ESTIMATE_TOKENS - 1)

    with db.session() as session, pytest.raises(BudgetExceeded) as refused:
        check_spend(session, settings, None, ESTIMATE_TOKENS, ESTIMATE_USD, now=NOW)

    assert [d["scope"] for d in refused.value.details] == ["day"]


def test_the_local_model_is_free_but_held_to_token_budgets(db: Database, settings: Settings) -> None:
    local = CountingLlm(provider="local", model="gemma-3-270m-q4_k_m")
    _set(db, BudgetScope.CAMPAIGN, "spring-winback", max_usd=Decimal("0"))
    _complete(db, settings, local, REQUEST)
    _set(db, BudgetScope.CAMPAIGN, "spring-winback", max_tokens=CALL_TOKENS + ESTIMATE_TOKENS - 1)

    with pytest.raises(BudgetExceeded) as refused:
        _complete(db, settings, local, OTHER)

    assert [(d["limit"], d["estimate"]) for d in refused.value.details] == [("tokens", "346")]  # 46 + 300, $0
    assert len(local.requests) == 1


def test_calls_made_earlier_in_the_same_session_count_before_it_commits(db: Database, settings: Settings) -> None:
    _set(db, BudgetScope.CAMPAIGN, "spring-winback", max_usd=CALL_USD + ESTIMATE_USD - Decimal("0.000001"))
    inner = CountingLlm()

    with pytest.raises(BudgetExceeded):
        _complete(db, settings, inner, REQUEST, OTHER)

    assert len(inner.requests) == 1
