"""``nudge campaign``: a retention campaign's lifecycle from the command line.

``create`` → ``plan`` (targets assigned to treatment or holdout) → ``draft`` (the LLM's variants with their
guardrail reports) → ``submit`` → ``approve`` / ``request-changes`` / ``reject`` → ``schedule`` → sent by
the workers when due (or at once with ``send``); ``cancel`` any time before sending; ``status`` and ``list``
to look. Every action names who took it (``--as``, by default the operating-system user) in the campaign's
audit trail.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from campaigns import repository, review, service
from campaigns.drafting import campaign_briefs, draft_briefs
from campaigns.service import CampaignStatus
from core.clock import as_utc, utcnow
from core.errors import Conflict, ValidationFailed
from core.models import Campaign, CampaignKind, CampaignState, Channel
from core.settings import get_settings
from nudge.commands.common import clean_errors, ready_database, unit_of_work
from workers import tasks
from workers.enqueue import enqueue_after_commit

# A service call on one loaded campaign by one actor, run by ``_act`` in a unit of work.
_Action = Callable[[Session, Campaign, str], Campaign]

app = typer.Typer(help="Create, plan, draft, review and schedule retention campaigns.", no_args_is_help=True)

Key = Annotated[str, typer.Argument(help="The campaign's key.")]
Actor = Annotated[str, typer.Option("--as", help="Who takes the action [default: the OS user].")]
Comment = Annotated[str | None, typer.Option(help="Why; kept in the audit trail.")]
RequiredComment = Annotated[str, typer.Option(help="Why; kept in the audit trail (required).")]


def _me() -> str:
    return getpass.getuser()


@app.command()
def create(
    key: Key,
    name: Annotated[str | None, typer.Option(help="A readable name [default: the key].")] = None,
    channel: Annotated[Channel, typer.Option(help="email or sms.")] = Channel.EMAIL,
    budget: Annotated[float, typer.Option(min=0, help="The plan's cap on expected spend, in dollars.")] = 5000.0,
    holdout: Annotated[float, typer.Option(min=0, max=0.99, help="Share of targets held out to measure lift.")] = 0.1,
    kind: Annotated[
        CampaignKind, typer.Option(help="retention (planned, sent once) or trigger (the abandoned-cart template).")
    ] = CampaignKind.RETENTION,
    actor: Actor = "",
) -> None:
    """Create a campaign (state draft): a retention campaign, or the abandoned-cart trigger's template."""
    with unit_of_work() as session:
        service.create_campaign(
            session,
            key=key,
            name=name or key,
            channel=channel,
            budget=Decimal(str(budget)),
            holdout_fraction=holdout,
            actor=actor or _me(),
            now=utcnow(),
            kind=kind,
        )
    typer.echo(f"{key}: draft")


@app.command()
def plan(key: Key, actor: Actor = "") -> None:
    """Plan the campaign under its budget and assign every target to treatment or the holdout."""
    with unit_of_work() as session:
        campaign = service.plan_campaign(
            session, get_settings(), repository.get_campaign(session, key), actor=actor or _me(), now=utcnow()
        )
        if campaign.kind is CampaignKind.TRIGGER:
            typer.echo(f"{key}: planned; {campaign.plan['trigger']['open_carts']:,} carts open now")
            return
        figures = campaign.plan["assignment"]
    typer.echo(
        f"{key}: planned; {figures['assigned']:,} assigned ({figures['holdout']:,} held out, "
        f"{figures['global_holdout']:,} in the global holdout), "
        f"{figures['not_reachable']:,} not reachable on the channel, "
        f"{figures['segment_too_small']:,} in segments too small to draft for"
    )


@app.command()
def draft(
    key: Key,
    variants: Annotated[int, typer.Option(min=1, max=5, help="Variants per segment.")] = 3,
    tone: Annotated[str, typer.Option(help="A few words of tone.")] = "warm, direct",
    actor: Actor = "",
) -> None:
    """Draft every segment's variants with the configured LLM, check them, and store them for review."""
    settings = get_settings()
    with clean_errors():
        db = ready_database(settings)
        try:
            with db.session() as session:
                campaign = repository.get_campaign(session, key)
                _ensure_draftable(campaign)
            drafted = draft_briefs(db, settings, campaign_briefs(db, campaign, n_variants=variants, tone=tone))
            with db.session() as session:
                campaign = repository.get_campaign(session, key)
                service.store_drafts(session, campaign, drafted, actor=actor or _me(), now=utcnow())
                show_status(service.campaign_status(session, campaign))
        finally:
            db.dispose()


def _ensure_draftable(campaign: Campaign) -> None:
    # Drafting spends LLM money: refuse before asking the model, not after.
    if campaign.state not in (CampaignState.PLANNED, CampaignState.CHANGES_REQUESTED):
        raise Conflict(f"cannot draft campaign {campaign.key!r}: it is {campaign.state}; plan it first")


@app.command()
def submit(key: Key, actor: Actor = "") -> None:
    """Send the drafted campaign for review."""
    _act(key, lambda session, campaign, who: service.submit(session, campaign, actor=who, now=utcnow()), actor)


@app.command()
def approve(key: Key, actor: Actor = "", comment: Comment = None) -> None:
    """Approve the campaign (every variant must pass its guardrails; a large one needs two approvers)."""
    rules = review.escalation(get_settings())
    with unit_of_work() as session:
        campaign = repository.get_campaign(session, key)
        moved = review.approve(session, campaign, rules, actor=actor or _me(), comment=comment, now=utcnow())
        reasons = (
            ""
            if moved
            else f" (first approval recorded; a second approver is needed: {'; '.join(rules.reasons(campaign))})"
        )
        typer.echo(f"{key}: {campaign.state}{reasons}")


@app.command()
def reject(key: Key, comment: RequiredComment, actor: Actor = "") -> None:
    """Reject the campaign for good."""
    _act(
        key,
        lambda session, campaign, who: service.reject(session, campaign, actor=who, comment=comment, now=utcnow()),
        actor,
    )


@app.command("request-changes")
def request_changes(key: Key, comment: RequiredComment, actor: Actor = "") -> None:
    """Send the campaign back for edits or a redraft."""
    _act(
        key,
        lambda session, campaign, who: service.request_changes(
            session, campaign, actor=who, comment=comment, now=utcnow()
        ),
        actor,
    )


@app.command()
def schedule(
    key: Key,
    at: Annotated[str, typer.Option(help="When to send, ISO 8601 (UTC unless it has an offset).")],
    actor: Actor = "",
) -> None:
    """Schedule the approved campaign."""
    moment = _parse_time(at)
    _act(
        key, lambda session, campaign, who: service.schedule(session, campaign, moment, actor=who, now=utcnow()), actor
    )


def _parse_time(text: str) -> datetime:
    with clean_errors():
        try:
            return as_utc(datetime.fromisoformat(text))
        except ValueError as error:
            raise ValidationFailed(f"--at {text!r} is not an ISO 8601 time, such as 2026-11-30T09:00") from error


@app.command()
def send(key: Key, actor: Actor = "") -> None:
    """Start sending a scheduled campaign now: the workers send it in batches."""
    with unit_of_work() as session:
        campaign = service.start(session, repository.get_campaign(session, key), actor=actor or _me(), now=utcnow())
        enqueue_after_commit(session, tasks.start_sending, campaign.id)  # the task must see the committed state
    typer.echo(f"{key}: sending")


@app.command()
def cancel(key: Key, actor: Actor = "", comment: Comment = None) -> None:
    """Cancel the campaign (any state before sending)."""
    _act(
        key,
        lambda session, campaign, who: service.cancel(session, campaign, actor=who, comment=comment, now=utcnow()),
        actor,
    )


@app.command()
def status(key: Key) -> None:
    """The campaign's state, arms, variants, messages and audit trail."""
    with unit_of_work() as session:
        show_status(service.campaign_status(session, repository.get_campaign(session, key)))


@app.command("list")
def list_campaigns() -> None:
    """Every campaign, newest first."""
    with unit_of_work() as session:
        for campaign in repository.list_campaigns(session):
            typer.echo(
                f"{campaign.key:<32} {campaign.kind:<10} {campaign.state:<18} {campaign.channel:<6} {campaign.name}"
            )


def _act(key: str, action: _Action, actor: str) -> None:
    with unit_of_work() as session:
        campaign = action(session, repository.get_campaign(session, key), actor or _me())
        typer.echo(f"{key}: {campaign.state}")


def show_status(status: CampaignStatus) -> None:
    """Print a campaign's state, arms, variants, messages and audit trail."""
    typer.echo(f"{status.key} ({status.name}): {status.state}, {status.kind}, {status.channel}")
    if status.scheduled_at:
        typer.echo(f"  scheduled at {status.scheduled_at.isoformat()}")
    typer.echo(f"  arms: {_counts(status.arms)}")
    for variant in status.variants:
        verdict = "BLOCKED" if variant.blocked else "passes"
        approval = f", approved by {variant.approved_by}" if variant.approved_by else ""
        typer.echo(f"  {variant.segment}/{variant.variant}: guardrails {verdict}{approval}")
    typer.echo(f"  messages: {_counts(status.messages)}")
    for line in status.audit:
        move = f" {line.from_state or '—'} → {line.to_state}" if line.to_state else ""
        why = f": {line.comment}" if line.comment else ""
        typer.echo(f"  {line.at:%Y-%m-%d %H:%M} {line.actor} {line.action}{move}{why}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "none"
