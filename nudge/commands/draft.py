"""``nudge draft``: the retention plan's segments drafted by the configured LLM, grounded on retrieved creative.

One brief per targeted segment, N variants each: LLM calls scale with segments × variants (plus repairs),
never with recipients. Every call is metered (tokens and dollars per campaign and variant) and cached, so
drafting the same brief again costs nothing. A call that the campaign's, today's or this month's LLM budget
cannot cover, or one past the calls limit per campaign, is refused before the model is asked (see
``nudge budgets``). Drafts are printed and saved as JSON under ``<data_dir>/drafts/``; the marketer's review
comes with the web UI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from agents.accounting import spend
from campaigns.drafting import ReviewedDrafts, draft_briefs, plan_briefs
from core.models import Channel
from core.settings import get_settings
from nudge.commands.check import report_lines
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
            briefs = plan_briefs(db, key, budget=budget, channel=channel, n_variants=variants, tone=tone)
            for drafts in draft_briefs(db, settings, briefs):
                show(drafts)
                typer.echo(f"  saved: {drafts.save(settings.data_dir / 'drafts')}")
                with db.session() as session:
                    typer.echo(f"  LLM spend: {spend(session, drafts.draft_set.brief.campaign_key)}")
        finally:
            db.dispose()


def show(drafts: ReviewedDrafts) -> None:
    """Print each variant's copy, what it drew on, what it cost and its guardrail report."""
    draft_set = drafts.draft_set
    brief = draft_set.brief
    typer.echo(
        f"\n{brief.campaign_key} / {brief.segment.name}: {brief.segment.size:,} customers, {brief.channel.value}, "
        f"offers {', '.join(offer.code for offer in brief.offers) or 'none'}"
    )
    typer.echo(f"  retrieved creative: {', '.join(draft_set.retrieved_ids)}")
    for external_id, removed in drafts.flagged_creative.items():
        typer.echo(f"  ! {external_id} held injected instructions, removed before drafting: {'; '.join(removed)}")
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
        for line in report_lines(drafts.reports[item.variant]):
            typer.echo(f"    {line}")
    for failed in draft_set.failed:
        typer.echo(f"  [{failed.variant} · {failed.angle}] no passing draft after {failed.attempts} attempts:")
        for problem in failed.problems:
            typer.echo(f"    - {problem}")
