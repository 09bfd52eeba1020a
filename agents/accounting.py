"""What LLM calls cost: a metering, caching wrapper around any ``StructuredLlm``, and the spend summary.

``MeteredLlm`` writes one ``LlmCall`` row per completion (and books the calls that reached a model in the cost
ledger, ``core.ledger``), priced from ``settings.token_prices``
(USD per million tokens: ``input·p_in/1e6 + output·p_out/1e6``), and keeps every answer in
``LlmCacheEntry`` under a hash of everything that shapes it: provider, model, temperature, max_tokens,
schema name and schema, system text, examples and user text. Asking the same thing again returns the
stored text with ``cached=True`` and a ledger row of 0 tokens and $0.

The cache applies at every temperature. A draft at temperature 0.7 is one sample of many the model
could have written, and the one we already paid for is as good as a new one: asking again for the
same brief costs nothing (the Campaign agents issue asks for this). A caller that wants a different
sample changes the request (the drafting agent's repair prompt does) or a parameter. Only answers
that parse as JSON are stored, so a truncated or malformed answer is never replayed.

Unknown models are priced at $0 with a warning (the price table is configuration, not code); the
local model is free per token. Amounts are rounded to the ledger's precision, a millionth of a dollar.

Spend is checked before a call and settled after it. Given a ``spend_check`` (the guardrails' budget hook,
passed in by whoever wires the two, since agents may not import guardrails), ``MeteredLlm`` calls it on a
cache miss, before the model is asked, with the campaign and the request's estimated tokens and dollars
(``estimate_usage``: prompt ≈ characters / 4, completion = ``max_tokens``); the hook raises to refuse, and then
nothing is asked and nothing is recorded. A cache hit costs nothing and is never checked. What the call
really used is what the ledger row records afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from agents.ports import LlmRequest, LlmResult, LlmUsage, StructuredLlm
from core import ledger
from core.bulk import insert_for
from core.models import LlmCacheEntry, LlmCall
from core.settings import LlmProvider, Settings

logger = logging.getLogger(__name__)

MICRODOLLAR = Decimal("0.000001")  # the ledger's cost column is NUMERIC(14, 6)
PER_MILLION = Decimal(1_000_000)
DEFAULT_PURPOSE = "unspecified"
CHARS_PER_TOKEN = 4  # a rough average for English prose and JSON, good enough to bound a budget check

# Called on a cache miss with (campaign key, estimated tokens, estimated US dollars); raises to refuse the call.
SpendCheck = Callable[[str | None, int, Decimal], None]


@dataclass(frozen=True, slots=True)
class SpendSummary:
    """What a campaign's LLM calls cost so far.

    Attributes
    ----------
    campaign_key : str
        The campaign the calls were attributed to.
    calls : int
        Every completion asked for, cache hits included.
    cached_calls : int
        How many of them the cache answered (no tokens spent).
    prompt_tokens, completion_tokens : int
        Tokens billed, summed over the calls that reached a model.
    cost : Decimal
        US dollars, summed from the ledger.
    """

    campaign_key: str
    calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal


class MeteredLlm:
    """A ``StructuredLlm`` that answers from the cache when it can and records every call in the ledger.

    Parameters
    ----------
    inner : StructuredLlm
        The model asked on a cache miss. Its ``model`` attribute, when it has one (every provider from
        ``agents.llm.chat_model`` does), is part of the cache key, so changing models misses.
    session : Session
        Where the ledger rows and cache entries are written; the caller commits.
    settings : Settings
        For the price table.
    campaign_key : str, optional
        Charged for calls whose ``request.metadata`` names no ``campaign_key``.
    timer : callable, optional
        Seconds as a float, for latency; tests pin it.
    spend_check : SpendCheck, optional
        Asked before every cache miss reaches the model; raising (``core.errors.BudgetExceeded``) refuses it.
    """

    def __init__(
        self,
        inner: StructuredLlm,
        session: Session,
        settings: Settings,
        *,
        campaign_key: str | None = None,
        timer: Callable[[], float] = time.perf_counter,
        spend_check: SpendCheck | None = None,
    ) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = str(getattr(inner, "model", ""))
        self._session = session
        self._settings = settings
        self._campaign_key = campaign_key
        self._timer = timer
        self._spend_check = spend_check

    def __repr__(self) -> str:
        return f"MeteredLlm(provider={self.provider!r}, model={self.model!r}, campaign_key={self._campaign_key!r})"

    def complete(self, request: LlmRequest) -> LlmResult:
        """Answer ``request`` from the cache or the inner model, and record the call.

        Parameters
        ----------
        request : LlmRequest
            ``metadata`` may carry ``campaign_key``, ``variant`` and ``purpose`` for the ledger.

        Returns
        -------
        LlmResult
            ``cached=True`` with zero usage on a hit; the inner model's result otherwise.

        Raises
        ------
        core.errors.ServiceUnavailable, core.errors.BadRequest
            Whatever the inner model raises; nothing is recorded for a failed call.
        core.errors.BudgetExceeded
            From ``spend_check``, on a miss: the model is not asked and nothing is recorded.
        """
        key = cache_key(self.provider, self.model, request)
        started = self._timer()
        entry = self._session.scalar(select(LlmCacheEntry).where(LlmCacheEntry.key == key))
        if entry is not None:
            result = LlmResult(text=str(entry.response["text"]), usage=LlmUsage(entry.model, 0, 0), cached=True)
        else:
            self._check_spend(request)
            result = self.inner.complete(request)
            self._store(key, result)
        self._record(request, key, result, latency_ms=round((self._timer() - started) * 1000))
        return result

    def _check_spend(self, request: LlmRequest) -> None:
        if self._spend_check is None:
            return
        estimate = estimate_usage(request, self.model)
        tokens = estimate.prompt_tokens + estimate.completion_tokens
        self._spend_check(self._campaign_of(request), tokens, self.estimated_cost(estimate))

    def _campaign_of(self, request: LlmRequest) -> str | None:
        return request.metadata.get("campaign_key", self._campaign_key)

    def _store(self, key: str, result: LlmResult) -> None:
        if not _is_json(result.text):
            return
        # Two workers missing the same key at once: the second insert is a no-op, not an error.
        statement = insert_for(self._session)(LlmCacheEntry).values(
            key=key,
            model=result.usage.model,
            response={"text": result.text},
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
        )
        self._session.execute(statement.on_conflict_do_nothing(index_elements=["key"]))

    def _record(self, request: LlmRequest, key: str, result: LlmResult, *, latency_ms: int) -> None:
        usage = result.usage
        call = LlmCall(
            campaign_key=self._campaign_of(request),
            variant=request.metadata.get("variant"),
            purpose=request.metadata.get("purpose", DEFAULT_PURPOSE),
            provider=self.provider,
            model=usage.model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=self.cost(usage),
            cached=result.cached,
            cache_key=key,
            latency_ms=latency_ms,
        )
        self._session.add(call)
        self._session.flush()
        ledger.record_llm_call(self._session, call)  # the cost ledger books it once, by the call's id

    def cost(self, usage: LlmUsage) -> Decimal:
        """US dollars for ``usage`` at the configured prices; $0 for the local model or an unknown one."""
        if self.provider == LlmProvider.LOCAL.value or usage.prompt_tokens == usage.completion_tokens == 0:
            return Decimal("0")
        return token_cost(usage, self._settings)

    def estimated_cost(self, usage: LlmUsage) -> Decimal:
        """Like ``cost``, but an unpriced model is $0 without a warning: the call that follows warns once."""
        if usage.model not in self._settings.token_prices:
            return Decimal("0")
        return self.cost(usage)


def estimate_usage(request: LlmRequest, model: str) -> LlmUsage:
    """What ``request`` may use at most, roughly, before it is sent: the bound a budget is checked against.

    Parameters
    ----------
    request : LlmRequest
        Its system text, examples, user text and JSON schema make the prompt; ``max_tokens`` bounds the answer.
    model : str
        The model it is priced as (the primary; a fallback is expected to be cheaper).

    Returns
    -------
    LlmUsage
        Prompt tokens ≈ characters / ``CHARS_PER_TOKEN`` (rounded up; no tokenizer, which would need its
        encoding files offline), completion tokens = ``max_tokens``.
    """
    texts = [request.system, request.user, json.dumps(request.json_schema, ensure_ascii=False)]
    texts += [part for example in request.examples for part in example]
    characters = sum(len(text) for text in texts)
    return LlmUsage(model, math.ceil(characters / CHARS_PER_TOKEN), request.max_tokens)


def token_cost(usage: LlmUsage, settings: Settings) -> Decimal:
    """``input·p_in/1e6 + output·p_out/1e6`` in US dollars, rounded to a millionth.

    Parameters
    ----------
    usage : LlmUsage
        The model that answered and its token counts.
    settings : Settings
        ``token_prices``: USD per million tokens by model name.

    Returns
    -------
    Decimal
        The cost; ``0`` with a logged warning when the model has no price.
    """
    price = settings.token_prices.get(usage.model)
    if price is None:
        logger.warning("no price for model %r in NUDGE_TOKEN_PRICES: its calls are recorded at $0", usage.model)
        return Decimal("0")
    dollars = (
        usage.prompt_tokens * Decimal(str(price.input)) + usage.completion_tokens * Decimal(str(price.output))
    ) / PER_MILLION
    return dollars.quantize(MICRODOLLAR, rounding=ROUND_HALF_EVEN)


def cache_key(provider: str, model: str, request: LlmRequest) -> str:
    """sha256 (hex) of everything that shapes the answer; ``metadata`` (who pays) is left out."""
    shaping: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "schema_name": request.schema_name,
        "schema": request.json_schema,
        "system": request.system,
        "examples": [list(example) for example in request.examples],
        "user": request.user,
        "prose_slots": request.prose_slots,
    }
    canonical = json.dumps(shaping, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def spend(session: Session, campaign_key: str) -> SpendSummary:
    """The LLM spend recorded for ``campaign_key``: calls, cache hits, tokens and dollars.

    Parameters
    ----------
    session : Session
        Read only.
    campaign_key : str
        The campaign, as ``MeteredLlm`` recorded it.

    Returns
    -------
    SpendSummary
        Zeros when nothing was recorded.
    """
    row = session.execute(
        select(
            func.count(LlmCall.id),
            func.coalesce(func.sum(case((LlmCall.cached, 1), else_=0)), 0),
            func.coalesce(func.sum(LlmCall.prompt_tokens), 0),
            func.coalesce(func.sum(LlmCall.completion_tokens), 0),
            func.coalesce(func.sum(LlmCall.cost), 0),
        ).where(LlmCall.campaign_key == campaign_key)
    ).one()
    calls, cached, prompt_tokens, completion_tokens, cost = row
    return SpendSummary(
        campaign_key=campaign_key,
        calls=int(calls),
        cached_calls=int(cached),
        prompt_tokens=int(prompt_tokens),
        completion_tokens=int(completion_tokens),
        cost=Decimal(cost).quantize(MICRODOLLAR),
    )


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
