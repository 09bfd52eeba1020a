"""``nudge draft``: the retention plan's segments drafted by the configured LLM, grounded on retrieved creative.

One brief per targeted segment, N variants each: LLM calls scale with segments × variants (plus repairs),
never with recipients. Every call is metered (tokens and dollars per campaign and variant) and cached, so
drafting the same brief again costs nothing. Drafts are printed and saved as JSON under
``<data_dir>/drafts/``; the marketer's review comes with the web UI.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from langchain_core.vectorstores import VectorStore

from agents.accounting import MeteredLlm, spend
from agents.drafting import draft_campaign
from agents.embeddings import embeddings_for
from agents.llm import chat_model
from agents.ports import StructuredLlm
from agents.retrieval import VectorRetriever
from agents.schemas import Brief, DraftSet
from agents.vectorstore import vector_store
from campaigns.briefs import segment_briefs
from campaigns.planning import plan_retention
from core.db import Database
from core.errors import NudgeError
from core.models import Channel
from core.settings import Settings, get_settings
from nudge.commands.common import clean_errors, ready_database


def draft(
    budget: Annotated[float, typer.Option(min=0, help="The plan's budget, as for `nudge plan`.")] = 5000.0,
    channel: Annotated[Channel, typer.Option(help="email or sms.")] = Channel.EMAIL,
    variants: Annotated[int, typer.Option(min=1, max=5, help="Variants per segment.")] = 3,
    tone: Annotated[str, typer.Option(help="A few words of tone.")] = "warm, direct",
    campaign: Annotated[str | None, typer.Option(help="Campaign key [default: retention-<date>].")] = None,
) -> None:
    """Draft the retention plan's campaign: one brief per targeted segment, N variants each."""
    settings = get_settings()
    key = campaign or f"retention-{datetime.now(UTC):%Y-%m-%d}"
    with clean_errors():
        db = ready_database(settings)
        try:
            drafted = draft_plan(db, settings, key, budget=budget, channel=channel, n_variants=variants, tone=tone)
            for draft_set in drafted:
                show(draft_set)
                typer.echo(f"  saved: {save(draft_set, settings.data_dir / 'drafts')}")
                with db.session() as session:
                    typer.echo(f"  LLM spend: {spend(session, draft_set.brief.campaign_key)}")
        finally:
            db.dispose()


def draft_plan(
    db: Database, settings: Settings, campaign_key: str, *, budget: float, channel: Channel, n_variants: int, tone: str
) -> list[DraftSet]:
    """Plan, brief and draft every segment; the LLM ledger is committed even when a draft fails."""
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
    retriever_store = vector_store(settings, embeddings_for(settings))
    inner = chat_model(settings)
    return [_draft_one(db, settings, brief, retriever_store, inner) for brief in briefs]


def _draft_one(db: Database, settings: Settings, brief: Brief, store: VectorStore, inner: StructuredLlm) -> DraftSet:
    failure: NudgeError | None = None
    with db.session() as session:  # commits the ledger rows whatever happens to the draft
        retriever = VectorRetriever(store, session)
        llm = MeteredLlm(inner, session, settings, campaign_key=brief.campaign_key)
        try:
            result = draft_campaign(brief, retriever=retriever, llm=llm)
        except NudgeError as error:
            failure = error
    if failure is not None:
        raise failure
    return result


def show(draft_set: DraftSet) -> None:
    brief = draft_set.brief
    typer.echo(
        f"\n{brief.campaign_key}: {brief.segment.size:,} customers, {brief.channel.value}, "
        f"offers {', '.join(offer.code for offer in brief.offers) or 'none'}"
    )
    typer.echo(f"  retrieved creative: {', '.join(draft_set.retrieved_ids)}")
    for item in draft_set.drafts:
        typer.echo(
            f"  [{item.variant} · {item.angle}] attempts {item.attempts}, "
            f"tokens {item.usage.prompt_tokens}+{item.usage.completion_tokens}"
        )
        if item.channel is Channel.EMAIL:
            typer.echo(f"    subject:   {item.subject}")
            typer.echo(f"    preheader: {item.preheader}")
            typer.echo("    " + item.body_text.replace("\n", "\n    "))
        else:
            typer.echo(f"    sms: {item.sms_text}")
        typer.echo(
            f"    offers {', '.join(item.offer_codes) or 'none'}; cites {', '.join(item.creative_ids) or 'none'}"
        )


def save(draft_set: DraftSet, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{draft_set.brief.campaign_key}.json"
    path.write_text(json.dumps(draft_set.model_dump(mode="json"), indent=2))
    return path
