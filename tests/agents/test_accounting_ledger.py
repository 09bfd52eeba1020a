"""Every LLM call that reaches a model is booked in the cost ledger and counted by model and kind; a cache hit
is neither booked nor billed."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from agents.accounting import MeteredLlm
from core.db import Database
from core.models import CostComponent, CostEntry
from core.settings import Settings
from core.telemetry import LLM_TOKENS
from tests.agents.test_accounting import REQUEST, CountingLlm


def test_a_metered_call_is_booked_once_and_its_tokens_counted(db: Database) -> None:
    prompt_before = LLM_TOKENS.labels("gpt-4.1-mini", "prompt")._value.get()
    completion_before = LLM_TOKENS.labels("gpt-4.1-mini", "completion")._value.get()
    with db.session() as session:
        metered = MeteredLlm(CountingLlm(), session, Settings())
        metered.complete(REQUEST)
        metered.complete(REQUEST)  # the cache answers: no tokens, nothing booked

    with db.session() as session:
        entries = list(session.scalars(select(CostEntry)))
    assert [(e.component, e.campaign_key, e.item, e.quantity, e.amount) for e in entries] == [
        (CostComponent.LLM, "spring-winback", "gpt-4.1-mini", 1500, Decimal("0.001200"))
    ]
    assert LLM_TOKENS.labels("gpt-4.1-mini", "prompt")._value.get() - prompt_before == 1000
    assert LLM_TOKENS.labels("gpt-4.1-mini", "completion")._value.get() - completion_before == 500
