"""``MeteredLlm`` and ``spend`` on SQLite and PostgreSQL: the ledger's exact tokens and dollars, the cache
that makes a repeated request free, what misses it, and the per-campaign summary."""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from agents.accounting import MeteredLlm, SpendSummary, cache_key, spend
from agents.ports import LlmRequest, LlmResult, LlmUsage
from core.db import Database
from core.errors import ServiceUnavailable
from core.models import LlmCacheEntry, LlmCall
from core.settings import Settings

ANSWER = '{"subject": "We kept your seat warm"}'
REQUEST = LlmRequest(
    system="You write retention copy.",
    user="Brief: lapsed subscribers, 20% off.",
    json_schema={"type": "object", "properties": {"subject": {"type": "string"}}},
    schema_name="draft_output",
    examples=(("Brief: cart left behind.", '{"subject": "Still thinking?"}'),),
    max_tokens=300,
    temperature=0.7,
    metadata={"campaign_key": "spring-winback", "variant": "A", "purpose": "draft"},
)


class CountingLlm:
    """Answers every request with the same text and usage, counting the calls."""

    def __init__(
        self,
        text: str = ANSWER,
        *,
        provider: str = "openai",
        model: str = "gpt-4.1-mini",
        prompt_tokens: int = 1000,
        completion_tokens: int = 500,
    ) -> None:
        self.provider = provider
        self.model = model
        self.text = text
        self.usage = LlmUsage(model, prompt_tokens, completion_tokens)
        self.requests: list[LlmRequest] = []

    def complete(self, request: LlmRequest) -> LlmResult:
        self.requests.append(request)
        return LlmResult(text=self.text, usage=self.usage)


class Clock:
    """A timer that advances 0.25 s each time it is read twice (start, stop)."""

    def __init__(self) -> None:
        self.readings = iter([10.0, 10.25, 20.0, 20.25, 30.0, 30.25, 40.0, 40.25])

    def __call__(self) -> float:
        return next(self.readings)


@pytest.fixture
def settings() -> Settings:
    return Settings()


def _complete(db: Database, settings: Settings, inner: CountingLlm, *requests: LlmRequest) -> list[LlmResult]:
    with db.session() as session:
        metered = MeteredLlm(inner, session, settings, timer=Clock())
        return [metered.complete(request) for request in requests]


def _calls(db: Database) -> list[LlmCall]:
    with db.session() as session:
        return list(session.scalars(select(LlmCall).order_by(LlmCall.id)))


def _cache_entries(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(LlmCacheEntry.id))) or 0


def test_a_miss_asks_the_model_and_records_its_tokens_and_cost(db: Database, settings: Settings) -> None:
    inner = CountingLlm()

    [result] = _complete(db, settings, inner, REQUEST)

    assert result == LlmResult(text=ANSWER, usage=LlmUsage("gpt-4.1-mini", 1000, 500), cached=False)
    [call] = _calls(db)
    assert (call.campaign_key, call.variant, call.purpose) == ("spring-winback", "A", "draft")
    assert (call.provider, call.model, call.prompt_tokens, call.completion_tokens) == (
        "openai",
        "gpt-4.1-mini",
        1000,
        500,
    )
    assert call.cost == Decimal("0.0012")  # 1,000 × $0.40/M + 500 × $1.60/M
    assert call.cached is False
    assert call.cache_key == cache_key("openai", "gpt-4.1-mini", REQUEST)
    assert call.latency_ms == 250


def test_a_repeated_request_is_answered_from_the_cache_for_no_tokens_and_no_dollars(
    db: Database, settings: Settings
) -> None:
    inner = CountingLlm()

    first, second = _complete(db, settings, inner, REQUEST, REQUEST)

    assert len(inner.requests) == 1
    assert second == LlmResult(text=ANSWER, usage=LlmUsage("gpt-4.1-mini", 0, 0), cached=True)
    assert first.cached is False
    _, hit = _calls(db)
    assert (hit.model, hit.prompt_tokens, hit.completion_tokens, hit.cost, hit.cached) == (
        "gpt-4.1-mini",
        0,
        0,
        Decimal("0"),
        True,
    )
    assert _cache_entries(db) == 1


def test_the_cache_outlives_the_session_that_filled_it(db: Database, settings: Settings) -> None:
    inner = CountingLlm()

    _complete(db, settings, inner, REQUEST)
    [later] = _complete(db, settings, inner, REQUEST)

    assert later.cached is True
    assert len(inner.requests) == 1


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(REQUEST, temperature=0.2),
        dataclasses.replace(REQUEST, max_tokens=301),
        dataclasses.replace(REQUEST, json_schema={"type": "object", "properties": {"body": {"type": "string"}}}),
        dataclasses.replace(REQUEST, schema_name="sms_output"),
        dataclasses.replace(REQUEST, system="You write win-back copy."),
        dataclasses.replace(REQUEST, examples=()),
        dataclasses.replace(REQUEST, user="Brief: lapsed subscribers, 25% off."),
    ],
    ids=["temperature", "max_tokens", "schema", "schema_name", "system", "examples", "user"],
)
def test_anything_that_shapes_the_answer_misses_the_cache(
    db: Database, settings: Settings, changed: LlmRequest
) -> None:
    inner = CountingLlm()

    results = _complete(db, settings, inner, REQUEST, changed)

    assert [result.cached for result in results] == [False, False]
    assert len(inner.requests) == 2
    assert _cache_entries(db) == 2


def test_another_model_misses_the_cache(db: Database, settings: Settings) -> None:
    _complete(db, settings, CountingLlm(model="gpt-4.1-mini"), REQUEST)

    [result] = _complete(db, settings, CountingLlm(model="gpt-4.1"), REQUEST)

    assert result.cached is False


def test_who_pays_does_not_split_the_cache(db: Database, settings: Settings) -> None:
    other_variant = dataclasses.replace(REQUEST, metadata={"campaign_key": "spring-winback", "variant": "B"})
    inner = CountingLlm()

    _, result = _complete(db, settings, inner, REQUEST, other_variant)

    assert result.cached is True
    assert [(call.variant, call.purpose) for call in _calls(db)] == [("A", "draft"), ("B", "unspecified")]


def test_the_campaign_given_to_the_wrapper_pays_when_the_request_names_none(db: Database, settings: Settings) -> None:
    with db.session() as session:
        MeteredLlm(CountingLlm(), session, settings, campaign_key="cart-recovery").complete(
            dataclasses.replace(REQUEST, metadata={})
        )

    [call] = _calls(db)
    assert call.campaign_key == "cart-recovery"


def test_a_model_without_a_price_costs_zero_with_a_warning(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    inner = CountingLlm(provider="openai_compatible", model="llama-3.1-8b")

    _complete(db, settings, inner, REQUEST)

    [call] = _calls(db)
    assert (call.prompt_tokens, call.cost) == (1000, Decimal("0"))
    assert "no price for model 'llama-3.1-8b'" in caplog.text


def test_the_local_model_costs_nothing_per_token(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    inner = CountingLlm(provider="local", model="gemma-3-270m-q4_k_m")

    _complete(db, settings, inner, REQUEST)

    [call] = _calls(db)
    assert (call.provider, call.prompt_tokens, call.completion_tokens, call.cost) == ("local", 1000, 500, Decimal(0))
    assert "no price" not in caplog.text


def test_an_answer_that_is_not_json_is_recorded_but_never_replayed(db: Database, settings: Settings) -> None:
    inner = CountingLlm('{"subject": "We kept your')

    results = _complete(db, settings, inner, REQUEST, REQUEST)

    assert [result.cached for result in results] == [False, False]
    assert len(inner.requests) == 2
    assert [call.cost for call in _calls(db)] == [Decimal("0.0012"), Decimal("0.0012")]
    assert _cache_entries(db) == 0


def test_a_failed_call_records_nothing(db: Database, settings: Settings) -> None:
    class Failing(CountingLlm):
        def complete(self, request: LlmRequest) -> LlmResult:
            raise ServiceUnavailable("openai model 'gpt-4.1-mini' failed after 2 retries (HTTP 503): overloaded")

    with pytest.raises(ServiceUnavailable), db.session() as session:
        MeteredLlm(Failing(), session, settings).complete(REQUEST)

    assert _calls(db) == []
    assert _cache_entries(db) == 0


def test_spend_sums_a_campaigns_calls_tokens_and_dollars(db: Database, settings: Settings) -> None:
    second_brief = dataclasses.replace(REQUEST, user="Brief: annual plan ending, free month.")
    other_campaign = dataclasses.replace(REQUEST, user="Other", metadata={"campaign_key": "cart-recovery"})
    _complete(db, settings, CountingLlm(), REQUEST, REQUEST)  # a miss, then a hit
    _complete(db, settings, CountingLlm(model="gpt-4.1", prompt_tokens=2000, completion_tokens=250), second_brief)
    _complete(db, settings, CountingLlm(), other_campaign)

    with db.session() as session:
        summary = spend(session, "spring-winback")

    # 0.0012 + 0 + (2,000 × $2.00/M + 250 × $8.00/M = 0.006)
    assert summary == SpendSummary("spring-winback", 3, 1, 3000, 750, Decimal("0.007200"))


def test_spend_of_a_campaign_without_calls_is_zero(db: Database) -> None:
    with db.session() as session:
        assert spend(session, "nothing-yet") == SpendSummary("nothing-yet", 0, 0, 0, 0, Decimal("0"))


def test_two_workers_missing_the_same_request_both_record_their_call_and_one_answer_is_kept(
    db: Database, settings: Settings
) -> None:
    class Racing(CountingLlm):
        """While it thinks, another worker asks the same thing and stores its answer first."""

        def complete(self, request: LlmRequest) -> LlmResult:
            with db.session() as other:
                MeteredLlm(CountingLlm(), other, settings).complete(request)
            return super().complete(request)

    [result] = _complete(db, settings, Racing(), REQUEST)

    assert result.cached is False
    assert [call.cached for call in _calls(db)] == [False, False]
    assert _cache_entries(db) == 1


def test_metered_llm_shows_no_settings_in_its_repr(db: Database, settings: Settings) -> None:
    with db.session() as session:
        metered = MeteredLlm(CountingLlm(), session, settings, campaign_key="spring-winback")

    assert repr(metered) == "MeteredLlm(provider='openai', model='gpt-4.1-mini', campaign_key='spring-winback')"


def test_a_cache_hit_for_an_unpriced_model_does_not_warn_again(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    inner = CountingLlm(provider="openai_compatible", model="llama-3.1-8b")

    _complete(db, settings, inner, REQUEST, REQUEST)

    assert caplog.text.count("no price") == 1
