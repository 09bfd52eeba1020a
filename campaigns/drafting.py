"""Drafting a planned campaign: plan → one brief per segment → the agent's variants → a guardrail report on each.

The campaign-level service the CLI, the demo (and later the workers and the UI) share. Every LLM call
is metered and cached (``agents.accounting``) and checked against the spend budgets first
(``guardrails.spend``); retrieved creative is cleared of injected instructions before the agent reads it,
and the guardrails' blocking findings go back to the model in its repair loop (``campaigns.guarding``).
LLM calls scale with segments × variants (plus repairs), never with recipients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from langchain_core.vectorstores import VectorStore
from pydantic import BaseModel, ConfigDict

from agents.accounting import MeteredLlm
from agents.drafting import draft_campaign
from agents.embeddings import embeddings_for
from agents.llm import chat_model
from agents.ports import LlmRequest, LlmResult, StructuredLlm
from agents.retrieval import VectorRetriever
from agents.schemas import Brief, DraftSet
from agents.vectorstore import vector_store
from campaigns.briefs import cart_brief, segment_briefs
from campaigns.guarding import GuardedRetriever, repair_check, review, with_injected
from campaigns.planning import plan_retention
from core.db import Database
from core.errors import NudgeError, ValidationFailed
from core.models import Campaign, CampaignKind, Channel
from core.settings import Settings
from guardrails.context import CheckContext
from guardrails.report import Report
from guardrails.repository import check_context
from guardrails.spend import SpendGuard


class ReviewedDrafts(BaseModel):
    """A brief's drafts with the guardrail report of each, as stored and shown to the approver.

    Attributes
    ----------
    draft_set : DraftSet
    reports : dict of variant to Report
    flagged_creative : dict of external id to the removed instruction texts
        Retrieved creative that held injected instructions (removed before the model read it).
    """

    model_config = ConfigDict(frozen=True)

    draft_set: DraftSet
    reports: dict[str, Report]
    flagged_creative: dict[str, tuple[str, ...]] = {}

    @classmethod
    def load(cls, path: Path) -> ReviewedDrafts:
        """Read a saved file; ``ValidationFailed`` when it is not one."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except (OSError, ValueError) as error:
            raise ValidationFailed(f"{path} is not a saved draft file: {error}") from error

    def save(self, directory: Path) -> Path:
        """Write ``<directory>/<campaign key>-<segment>.json`` (whole or not at all) and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        brief = self.draft_set.brief
        path = directory / f"{brief.campaign_key}-{brief.segment.name}.json"
        partial = path.with_suffix(".json.partial")
        partial.write_text(self.model_dump_json(indent=2))
        partial.replace(path)
        return path


def campaign_briefs(db: Database, campaign: Campaign, *, n_variants: int, tone: str) -> list[Brief]:
    """What a campaign is drafted from: its retention plan's segments, or the abandoned-cart template's brief."""
    if campaign.kind is CampaignKind.TRIGGER:
        with db.session() as session:
            brief = cart_brief(
                session,
                campaign_key=campaign.key,
                channel=campaign.channel,
                n_variants=n_variants,
                tone=tone,
                at=datetime.now(UTC),
            )
        return [brief]
    budget = float(campaign.budget) if campaign.budget is not None else 0.0
    return plan_briefs(db, campaign.key, budget=budget, channel=campaign.channel, n_variants=n_variants, tone=tone)


def plan_briefs(
    db: Database,
    campaign_key: str,
    *,
    budget: float,
    channel: Channel,
    n_variants: int,
    tone: str,
    max_segments: int | None = None,
) -> list[Brief]:
    """The retention plan's briefs, one per targeted segment, largest first (at most ``max_segments``)."""
    with db.session() as session:
        comparison, inputs = plan_retention(session, max_budget=budget)
        briefs = segment_briefs(
            session,
            comparison,
            inputs,
            campaign_key=campaign_key,
            channel=channel,
            n_variants=n_variants,
            tone=tone,
            at=datetime.now(UTC),
        )
    if not briefs:
        raise NudgeError("the plan targets no segment large enough to draft for: raise the budget")
    ranked = sorted(briefs, key=lambda brief: brief.segment.size, reverse=True)
    return ranked[:max_segments]


# Told of every answer the model gives while drafting: the request (its metadata names variant and attempt), the
# result and the seconds it took. An offline model takes minutes on a small machine; the demo shows each call.
DraftProgress = Callable[[LlmRequest, LlmResult, float], None]


def draft_briefs(
    db: Database, settings: Settings, briefs: list[Brief], progress: DraftProgress | None = None
) -> list[ReviewedDrafts]:
    """Draft and review every brief with the configured embeddings, vector store and LLM."""
    store = vector_store(settings, embeddings_for(settings))
    llm = chat_model(settings)
    if progress is not None:
        llm = ObservedLlm(llm, progress)
    return [draft_brief(db, settings, brief, store=store, inner=llm) for brief in briefs]


class ObservedLlm:
    """An LLM that reports each answer it gives (cached answers never reach it: metering sits outside)."""

    def __init__(self, inner: StructuredLlm, progress: DraftProgress) -> None:
        self.inner, self.progress, self.provider = inner, progress, inner.provider

    def complete(self, request: LlmRequest) -> LlmResult:
        started = time.perf_counter()
        result = self.inner.complete(request)
        self.progress(request, result, time.perf_counter() - started)
        return result


def draft_brief(
    db: Database, settings: Settings, brief: Brief, *, store: VectorStore, inner: StructuredLlm
) -> ReviewedDrafts:
    """One brief drafted, guarded and reviewed; the LLM ledger is committed even when the draft fails."""
    failure: NudgeError | None = None
    with db.session() as session:  # commits the ledger rows whatever happens to the draft
        context = check_context(session, settings, now=datetime.now(UTC))
        retriever = GuardedRetriever.around(VectorRetriever(store, session))
        guard = SpendGuard(session, settings)
        llm = MeteredLlm(inner, session, settings, campaign_key=brief.campaign_key, spend_check=guard)
        try:
            drafted = draft_campaign(
                brief, retriever=retriever, llm=llm, extra_checks=[repair_check(context, retriever)]
            )
        except NudgeError as error:
            failure = error
    if failure is not None:
        raise failure
    return reviewed(drafted, with_injected(context, retriever), retriever.flagged)


def reviewed(
    draft_set: DraftSet, context: CheckContext, flagged: dict[str, tuple[str, ...]] | None = None
) -> ReviewedDrafts:
    """``draft_set`` with each draft's guardrail report."""
    return ReviewedDrafts(draft_set=draft_set, reports=review(draft_set, context), flagged_creative=flagged or {})
