"""``nudge demo``: from nothing to a database holding the real sample data, then what Nudge does with it.

A plain sequence of steps, each printing what it does, so later features add theirs in order:
load the samples → train churn and CLV models → promote and score → plan a retention campaign →
import the sample brand → the plan as a campaign (holdout assigned), drafted with the offline model with a
guardrail report per draft, approved by the demo's sample marketer, sent to the local outbox → the
abandoned-cart template drafted and approved once, sample cart events through the intake, the due carts
reminded and the ordered ones cancelled.

The two samples live in different eras (Telco's snapshot is 2026-10-01, CDNOW ends 1998-06-30), so
each model is trained and scored as of its own sample's dates, not as of today.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.brand import import_brand
from agents.embeddings import embeddings_for
from agents.vectorstore import vector_store
from audience.commerce import ORDER_COMPLETED
from audience.samples import CDNOW_END, TELCO_SNAPSHOT, Sample, is_loaded
from audience.schemas import Track
from audience.summary import AudienceSummary, summarize
from campaigns import outcomes, repository, review, service, triggers
from campaigns.drafting import ReviewedDrafts, campaign_briefs, draft_briefs, plan_briefs
from campaigns.planning import plan_retention
from core import migrate
from core.clock import utcnow
from core.db import Database
from core.errors import Conflict, NudgeError
from core.models import (
    Campaign,
    CampaignKind,
    CampaignState,
    Cart,
    Channel,
    Consent,
    ConsentStatus,
    Customer,
    Message,
    ModelKind,
    ModelStage,
    OutboxMessage,
    Role,
    TriggerCheck,
    User,
)
from core.settings import Settings, get_settings
from ml import jobs, registry
from nudge.commands.campaign import show_status
from nudge.commands.common import clean_errors, database
from nudge.commands.creative import SAMPLE_BRAND, describe_brand_import, store_name
from nudge.commands.draft import show as show_drafts
from nudge.commands.imports import load_with_progress
from nudge.commands.plan import print_plan, write_profit_curve
from nudge.commands.serve import serve as serve_ui
from web import accounts
from workers import tasks
from workers.enqueue import enqueue_after_commit


def demo(
    serve: bool = typer.Option(False, "--serve", help="Then serve the web UI (until Ctrl-C) instead of exiting."),
) -> None:
    """Load the real samples and run the loop on them: models, plan, drafts, guardrails, approval, sends, triggers."""
    db = database()
    try:
        with clean_errors():
            upgrade_schema(db)
            for sample in Sample:
                load_sample_once(db, sample)
            show_summary(db)
            settings = get_settings()
            for step in SAMPLE_MODELS:
                train_and_score(db, settings, step)
            show_plan(db)
            import_sample_brand(db, settings)
            run_sample_campaign(db, settings)
            run_sample_triggers(db, settings)
            show_demo_login(db, get_settings())
    finally:
        db.dispose()
    if serve:
        serve_ui(host=None, port=None, reload=False, workers=1)


def upgrade_schema(db: Database) -> None:
    typer.echo(f"Database: {db.engine.url.render_as_string(hide_password=True)}")
    migrate.upgrade(db.engine)
    typer.echo("  schema up to date")


def load_sample_once(db: Database, sample: Sample) -> None:
    with db.session() as session:
        loaded = is_loaded(session, sample)
    if loaded:
        typer.echo(f"The {sample.label} sample is already loaded: skipping it")
        return
    load_with_progress(db, sample)


def show_summary(db: Database) -> None:
    with db.session() as session:
        summary = summarize(session)
    typer.echo("In the database:")
    for label, text in summary_lines(summary):
        typer.echo(f"  {label:<15} {text}")


def summary_lines(summary: AudienceSummary) -> list[tuple[str, str]]:
    span = (
        f" ({summary.first_order:%Y-%m-%d} to {summary.last_order:%Y-%m-%d})"
        if summary.first_order and summary.last_order
        else ""
    )
    subscriptions = summary.active_subscriptions + summary.ended_subscriptions
    lines = [
        ("customers", f"{summary.customers:,} ({summary.generated_contacts:,} with generated contact details)"),
        (
            "subscriptions",
            f"{subscriptions:,} ({summary.active_subscriptions:,} active, {summary.ended_subscriptions:,} ended;"
            f" monthly recurring {_money(summary.monthly_recurring)})",
        ),
        ("orders", f"{summary.orders:,}{span}"),
        ("revenue", _money(summary.revenue)),
    ]
    for channel, label in ((Channel.EMAIL, "e-mail consent"), (Channel.SMS, "SMS consent")):
        counts = summary.consents.get(channel, {})
        granted, withdrawn = counts.get(ConsentStatus.GRANTED, 0), counts.get(ConsentStatus.WITHDRAWN, 0)
        lines.append((label, f"{granted:,} customers granted, {withdrawn:,} withdrawn"))
    return lines


def _money(totals: dict[str, Decimal]) -> str:
    return ", ".join(f"{currency} {amount:,.2f}" for currency, amount in totals.items()) or "none"


@dataclass(frozen=True, slots=True)
class ModelStep:
    kind: ModelKind
    trained_as_of: datetime  # its labels (or CLV history) must be complete by then
    scored_as_of: datetime  # the end of its sample's data


SAMPLE_MODELS = (
    ModelStep(ModelKind.CHURN_CONTRACTUAL, datetime(2026, 9, 1, tzinfo=UTC), TELCO_SNAPSHOT),
    ModelStep(ModelKind.CHURN_NONCONTRACTUAL, datetime(1998, 4, 1, tzinfo=UTC), CDNOW_END),
    ModelStep(ModelKind.CLV, CDNOW_END, CDNOW_END),
)
DEMO_BUDGET = 5_000.0
DEMO_CAMPAIGN = "demo-retention"
DEMO_TRIGGER = "demo-abandoned-cart"
SAMPLE_CARTS = SAMPLE_BRAND.parent / "carts.json"
DEMO_VARIANTS = 2
DEMO_TONE = "warm, direct"
DEMO_HOLDOUT = 0.1
DEMO_SYSTEM = "system:demo"
# The demo approves as a made-up marketer, and says so wherever the name appears (audit log, status).
DEMO_APPROVER = "sam.rivera (sample marketer, demo)"


def train_and_score(db: Database, settings: Settings, step: ModelStep) -> None:
    """Train and promote the model unless one is in production already, then score its population."""
    with db.session() as session:
        versions = registry.list_versions(session, step.kind)
    current = next((version for version in versions if version.stage is ModelStage.PRODUCTION), None)
    if current is not None:
        typer.echo(f"{step.kind.value}: v{current.version} already in production; not retraining")
    else:
        trained = jobs.run_training(db, settings, step.kind, as_of=step.trained_as_of)
        with db.session() as session:
            registry.promote(session, step.kind, trained.version.version)
        typer.echo(
            f"{step.kind.value}: trained v{trained.version.version} as of {step.trained_as_of:%Y-%m-%d} "
            f"and promoted it; {headline(trained.version.metrics)}"
        )
    scored = jobs.run_scoring(db, step.kind, as_of=step.scored_as_of)
    typer.echo(f"  scored {scored.customers:,} customers as of {scored.as_of:%Y-%m-%d}")


def headline(metrics: dict[str, Any]) -> str:
    if "roc_auc" in metrics:
        return f"ROC-AUC {metrics['roc_auc']:.3f}, Brier {metrics['brier']:.3f} ({metrics['validation']})"
    return f"BG/NBD r {metrics['r']:.3f} α {metrics['alpha']:.3f} a {metrics['a']:.3f} b {metrics['b']:.3f}"


def show_plan(db: Database) -> None:
    typer.echo(f"Retention plan under a ${DEMO_BUDGET:,.0f} budget (assumptions: `nudge plan --help`):")
    with db.session() as session:
        comparison, inputs = plan_retention(session, max_budget=DEMO_BUDGET)
    print_plan(comparison, inputs)
    png = write_profit_curve(comparison, get_settings().data_dir / "plans" / "profit_curve.png")
    typer.echo(f"  profit curve: {png}")


def import_sample_brand(db: Database, settings: Settings) -> None:
    typer.echo("The sample brand's offers, guidelines and creative (unchanged items are not embedded again):")
    with db.session() as session:
        store = vector_store(settings, embeddings_for(settings))
        summary = import_brand(session, SAMPLE_BRAND, store=store)
    indexed = sum(part.indexed for part in summary.creative)
    for line in describe_brand_import(summary, indexed, store_name(settings)):
        typer.echo(f"  {line}")


def run_sample_campaign(db: Database, settings: Settings) -> None:
    """The plan as a campaign: planned with its holdout, drafted, approved by the sample marketer, sent."""
    now = utcnow()
    with db.session() as session:
        if not repository.campaign_exists(session, DEMO_CAMPAIGN):
            typer.echo(
                f"Campaign {DEMO_CAMPAIGN}: the plan above, {DEMO_HOLDOUT:.0%} of its targets held out to measure lift"
            )
            campaign = service.create_campaign(
                session,
                key=DEMO_CAMPAIGN,
                name="Demo retention",
                channel=Channel.EMAIL,
                budget=Decimal(str(DEMO_BUDGET)),
                holdout_fraction=DEMO_HOLDOUT,
                actor=DEMO_SYSTEM,
                now=now,
            )
            service.plan_campaign(session, settings, campaign, actor=DEMO_SYSTEM, now=now)
        state = repository.get_campaign(session, DEMO_CAMPAIGN).state
    if state is CampaignState.PLANNED:
        drafted = draft_sample_campaign(db, settings)
        if drafted:
            approve_and_send(db, drafted, now)
    else:
        typer.echo(f"Campaign {DEMO_CAMPAIGN} already exists ({state}): not drafting or sending it again")
    with db.session() as session:
        show_status(service.campaign_status(session, repository.get_campaign(session, DEMO_CAMPAIGN)))


def draft_sample_campaign(db: Database, settings: Settings) -> list[ReviewedDrafts]:
    typer.echo(
        f"Drafting {DEMO_VARIANTS} e-mail variants for the plan's segment with the {settings.llm.value} model "
        "(the offline model takes a few minutes on 2 CPUs):"
    )
    briefs = plan_briefs(
        db, DEMO_CAMPAIGN, budget=DEMO_BUDGET, channel=Channel.EMAIL, n_variants=DEMO_VARIANTS, tone=DEMO_TONE
    )
    try:
        drafted = draft_briefs(db, settings, briefs)
    except NudgeError as error:  # a tour goes on: say what failed and why, then show the rest
        typer.echo(f"  no draft passed its checks: {error.message}")
        return []
    for drafts in drafted:
        show_drafts(drafts)
        typer.echo(f"  saved: {drafts.save(settings.data_dir / 'drafts')} (`nudge check` re-checks it)")
    return drafted


def approve_and_send(db: Database, drafted: list[ReviewedDrafts], now: datetime) -> None:
    """Store the drafts, submit them, approve as the demo's sample marketer, and send now to the outbox."""
    with db.session() as session:
        campaign = repository.get_campaign(session, DEMO_CAMPAIGN)
        service.store_drafts(session, campaign, drafted, actor=DEMO_SYSTEM, now=now)
        service.submit(session, campaign, actor=DEMO_SYSTEM, now=now)
    typer.echo(f"Approval: {DEMO_APPROVER} reviews the drafts and their guardrail reports (the demo does this for you)")
    with db.session() as session:
        campaign = repository.get_campaign(session, DEMO_CAMPAIGN)
        if not approve_as_sample_marketer(session, campaign, now):
            return
        sending = utcnow()
        service.schedule(session, campaign, sending, actor=DEMO_APPROVER, now=sending)
        service.start(session, campaign, actor=DEMO_APPROVER, now=sending)
        enqueue_after_commit(session, tasks.start_sending, campaign.id)  # runs once the approval is committed
    typer.echo("Sending to the local outbox (send-time checks per recipient; `nudge outbox` lists the messages):")


def approve_as_sample_marketer(session: Session, campaign: Campaign, now: datetime) -> bool:
    """Approve as the demo's sample marketer (a campaign large enough to need two approvers would wait)."""
    try:
        moved = review.approve(
            session,
            campaign,
            review.escalation(get_settings()),
            actor=DEMO_APPROVER,
            comment="approved in the demo",
            now=now,
        )
    except Conflict as error:
        typer.echo(f"  not approved: {error.message}")
        return False
    if not moved:
        typer.echo("  first approval recorded: this campaign needs a second approver (`nudge campaign approve`)")
    return moved


# --- abandoned carts ---------------------------------------------------------------------------------------------


def run_sample_triggers(db: Database, settings: Settings) -> None:
    """The abandoned-cart template, then sample cart events through the intake and the trigger's scan."""
    if ensure_cart_template(db, settings):
        fire_sample_carts(db, settings)


def ensure_cart_template(db: Database, settings: Settings) -> bool:
    """Create, draft and approve the abandoned-cart campaign once; whether it is approved."""
    now = utcnow()
    with db.session() as session:
        if not repository.campaign_exists(session, DEMO_TRIGGER):
            campaign = service.create_campaign(
                session,
                key=DEMO_TRIGGER,
                name="Demo abandoned cart",
                channel=Channel.EMAIL,
                budget=None,
                holdout_fraction=0.0,
                actor=DEMO_SYSTEM,
                now=now,
                kind=CampaignKind.TRIGGER,
            )
            service.plan_campaign(session, settings, campaign, actor=DEMO_SYSTEM, now=now)
        campaign = repository.get_campaign(session, DEMO_TRIGGER)
    if campaign.state is CampaignState.APPROVED:
        typer.echo(f"Abandoned-cart template {DEMO_TRIGGER}: approved already")
        return True
    if campaign.state is not CampaignState.PLANNED:
        typer.echo(f"Abandoned-cart template {DEMO_TRIGGER} is {campaign.state}: no cart reminders in this run")
        return False
    typer.echo(
        f"Abandoned-cart template {DEMO_TRIGGER}: drafted once with the {settings.llm.value} model, approved once, "
        "then sent per cart (the brand's layout lists each cart's items):"
    )
    try:
        drafted = draft_briefs(db, settings, campaign_briefs(db, campaign, n_variants=1, tone=DEMO_TONE))
    except NudgeError as error:
        typer.echo(f"  no draft passed its checks: {error.message}")
        return False
    for drafts in drafted:
        show_drafts(drafts)
    with db.session() as session:
        campaign = repository.get_campaign(session, DEMO_TRIGGER)
        service.store_drafts(session, campaign, drafted, actor=DEMO_SYSTEM, now=now)
        service.submit(session, campaign, actor=DEMO_SYSTEM, now=now)
        return approve_as_sample_marketer(session, campaign, now)


def fire_sample_carts(db: Database, settings: Settings) -> None:
    """Sample shoppers' cart events through the intake, then the trigger's scan: reminders, cancellations.

    The events go in as a shop sends them, in time order: the carts first, then the orders placed since."""
    carts = json.loads(SAMPLE_CARTS.read_text())["carts"]
    now = utcnow()
    with db.session() as session:
        shoppers = sample_shoppers(session, len(carts), now)
    calls = sorted(
        (call for cart, shopper in zip(carts, shoppers, strict=False) for call in cart_events(cart, shopper, now)),
        key=lambda call: call.event == ORDER_COMPLETED,
    )
    typer.echo(f"Sample cart events (synthetic, data/samples/carts.json) for {len(shoppers)} customers:")
    for event, batch in itertools.groupby(calls, key=lambda call: call.event):
        with db.session() as session:
            result, _ = outcomes.ingest_events(session, settings, list(batch), source_id=None, now=now)
        typer.echo(f"  {event}: {result.stored} stored, {result.duplicates} seen before")
    with db.session() as session:
        triggers.scan(session, settings, utcnow())
    typer.echo(f"What became of each cart ({settings.cart_trigger_window_minutes}-minute window):")
    with db.session() as session:
        show_cart_outcomes(session, shoppers)


def sample_shoppers(session: Session, count: int, now: datetime) -> list[str]:
    """External ids of customers with an e-mail and e-mail consent whom no other campaign e-mailed in the last day
    (a frequency cap would hold their reminder), lowest ids first: the same shoppers on every run."""
    recent = select(Message.customer_id).where(
        Message.sent_at > now - timedelta(days=1), Message.campaign_key != DEMO_TRIGGER
    )
    query = (
        select(Customer.external_id)
        .join(Consent, Consent.customer_id == Customer.id)
        .where(
            Customer.email.is_not(None),
            Consent.channel == Channel.EMAIL,
            Consent.status == ConsentStatus.GRANTED,
            Customer.id.not_in(recent),
        )
        .order_by(Customer.id)
        .distinct()
        .limit(count)
    )
    return [external_id for external_id in session.scalars(query) if external_id]


def cart_events(cart: dict[str, Any], shopper: str, now: datetime) -> list[Track]:
    """One cart as Segment e-commerce calls: each item added, and the order if the cart has one."""
    cart_id = f"demo-cart-{shopper}"
    added = now - timedelta(minutes=cart["added_minutes_ago"])
    calls = [
        _track(f"{cart_id}-add-{n}", shopper, "Product Added", added, {**item, "cart_id": cart_id})
        for n, item in enumerate(cart["items"])
    ]
    if cart["ordered_minutes_ago"] is not None:
        total = sum(item["price"] * item["quantity"] for item in cart["items"])
        order = {
            "order_id": f"demo-order-{shopper}",
            "cart_id": cart_id,
            "total": round(total, 2),
            "products": cart["items"],
        }
        ordered = now - timedelta(minutes=cart["ordered_minutes_ago"])
        calls.append(_track(f"{cart_id}-order", shopper, "Order Completed", ordered, order))
    return calls


def _track(message_id: str, shopper: str, event: str, at: datetime, properties: dict[str, Any]) -> Track:
    call = {"messageId": message_id, "userId": shopper, "event": event, "timestamp": at.isoformat()}
    return Track.model_validate({**call, "properties": properties})


def show_cart_outcomes(session: Session, shoppers: list[str]) -> None:
    """What became of each sample cart, and one reminder as it went out."""
    query = (
        select(TriggerCheck.status, TriggerCheck.reason, func.count())
        .join(Cart, Cart.id == TriggerCheck.cart_id)
        .where(Cart.external_id.in_([f"demo-cart-{shopper}" for shopper in shoppers]))
        .group_by(TriggerCheck.status, TriggerCheck.reason)
    )
    for status, reason, count in session.execute(query):
        typer.echo(f"  {count:>3} {status}" + (f" ({reason})" if reason else ""))
    reminder = session.scalars(
        select(OutboxMessage)
        .join(Message, Message.id == OutboxMessage.message_id)
        .where(Message.campaign_key == DEMO_TRIGGER)
        .order_by(OutboxMessage.id)
        .limit(1)
    ).first()
    if reminder is not None:
        typer.echo(f"  one reminder, as it went to the outbox — subject: {reminder.subject}")
        for line in (reminder.body_text or "").splitlines()[:12]:
            typer.echo(f"    {line}")


# --- the web UI ----------------------------------------------------------------------------------------------------


DEMO_USER = "demo"


def show_demo_login(db: Database, settings: Settings) -> None:
    """A demo admin login for the web UI, with a new random password each run (only its hash is stored)."""
    password = secrets.token_urlsafe(12)
    with db.session() as session:
        existing = session.scalar(select(User).where(User.username == DEMO_USER))
        if existing is None:
            accounts.create_user(session, DEMO_USER, password, Role.ADMIN, now=utcnow())
        else:
            accounts.set_password(session, existing, password)
    url = f"http://{settings.api_host}:{settings.api_port}"
    typer.echo(
        f"\nThe web UI: `make serve` (or `nudge demo --serve`), then open {url}/ and sign in as "
        f"{DEMO_USER} / {password}\n"
        "  (a demo login on this machine's embedded database; the password changes each time the demo runs)"
    )
