"""``nudge demo``: from nothing to a database holding the real sample data, then what Nudge does with it.

A plain sequence of steps, each printing what it does, so later features add theirs in order:
load the samples → train churn and CLV models → promote and score → plan a retention campaign →
import the sample brand → the plan as a campaign (holdout assigned), drafted with the offline model with a
guardrail report per draft, approved by the demo's sample marketer, sent to the local outbox → simulated
outcomes (``nudge.demo.simulation``) back through the signed webhook and the intake → the experiment report
against the simulation's ground truth, beside the real Hillstrom experiment → the abandoned-cart template
drafted and approved once, sample cart events through the intake, the due carts reminded and the ordered ones
cancelled → the cost ledger and budgets → the one-page HTML report (``nudge.demo.report``) → a web UI login.

Run again, it reuses what it made: samples, models, the sent campaign; the simulated outcomes are posted again
and found to be duplicates.

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
from pathlib import Path
from typing import Any

import typer
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.brand import import_brand
from agents.embeddings import embeddings_for
from agents.ports import LlmRequest, LlmResult
from agents.vectorstore import vector_store
from audience import sources
from audience.commerce import ORDER_COMPLETED
from audience.samples import CDNOW_END, TELCO_SNAPSHOT, Sample, is_loaded
from audience.schemas import Track
from audience.summary import AudienceSummary, summarize
from campaigns import outcomes, repository, review, service, triggers
from campaigns.drafting import ReviewedDrafts, campaign_briefs, draft_briefs, plan_briefs
from campaigns.planning import plan_retention
from campaigns.report import CampaignReport, build_report
from channels.events import sendgrid_public_key
from core import ledger, migrate
from core.clock import utcnow
from core.db import Database
from core.errors import Conflict, NudgeError
from core.models import (
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignVariant,
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
from experiments.analysis import ExperimentAnalysis
from experiments.hillstrom import hillstrom_analysis
from guardrails.budgets import budget_statuses
from ml import jobs, registry
from ml.training import RELIABILITY_PNG
from nudge.commands.budgets import describe as describe_budgets
from nudge.commands.campaign import show_status
from nudge.commands.common import clean_errors, database
from nudge.commands.creative import SAMPLE_BRAND, describe_brand_import, store_name
from nudge.commands.draft import show as show_drafts
from nudge.commands.imports import load_with_progress
from nudge.commands.plan import print_plan, write_profit_curve
from nudge.commands.serve import serve as serve_ui
from nudge.demo.report import (
    DemoReport,
    ModelLine,
    VariantLine,
    check_row,
    costs_plot,
    experiment_plot,
    file_plot,
    hillstrom_rows,
    write_report,
)
from nudge.demo.simulation import (
    Effect,
    GroundTruth,
    Posted,
    Simulated,
    TruthCheck,
    assigned_customers,
    check_against_truth,
    offer_codes,
    post,
    simulate,
    true_effects,
)
from web import accounts
from web.app import create_app
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
            outcomes_run = simulate_outcomes(db, settings)
            measured = show_experiment(db, settings, outcomes_run)
            run_sample_triggers(db, settings)
            costs = show_costs(db, settings)
            write_html_report(db, settings, measured, outcomes_run, costs)
            show_demo_login(db, settings)
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
DEMO_CART_PREFIX = "demo-cart-"
DEMO_CAMPAIGNS = (DEMO_CAMPAIGN, DEMO_TRIGGER)
DEMO_VARIANTS = 3  # the offline model's drafts fail their checks now and then; the A/B needs two that pass
DEMO_TONE = "warm, direct"
DEMO_HOLDOUT = 0.1
DEMO_SALT = "nudge-demo-retention-1"
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
                salt=DEMO_SALT,  # the same customers in the same arms on every run and machine
            )
            service.plan_campaign(session, settings, campaign, actor=DEMO_SYSTEM, now=now)
        state = repository.get_campaign(session, DEMO_CAMPAIGN).state
    if state is CampaignState.PLANNED:
        drafted = draft_sample_campaign(db, settings)
        if drafted:
            approve_and_send(db, drafted)
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
        drafted = draft_briefs(db, settings, briefs, progress=show_llm_call)
    except NudgeError as error:  # a tour goes on: say what failed and why, then show the rest
        typer.echo(f"  no draft passed its checks: {error.message}")
        return []
    for drafts in drafted:
        show_drafts(drafts)
        typer.echo(f"  saved: {drafts.save(settings.data_dir / 'drafts')} (`nudge check` re-checks it)")
    return drafted


def show_llm_call(request: LlmRequest, result: LlmResult, seconds: float) -> None:
    """One line per model answer while drafting, so the minutes offline are not silent."""
    meta = request.metadata
    typer.echo(
        f"  {meta.get('variant', '?')} attempt {meta.get('attempt', '?')}: {result.usage.completion_tokens} tokens "
        f"written in {seconds:.1f} s"
    )


def approve_and_send(db: Database, drafted: list[ReviewedDrafts]) -> None:
    """Store the drafts, submit them, approve as the demo's sample marketer, and send now to the outbox."""
    now = utcnow()  # drafting took minutes: the audit trail records when each step happened
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


# --- simulated outcomes and the experiment report ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutcomesRun:
    """The simulated outcomes of this run and the truth they were drawn from (``None``: nothing was sent)."""

    simulated: Simulated | None = None
    posted: Posted | None = None
    effects: tuple[Effect, ...] = ()


def simulate_outcomes(db: Database, settings: Settings) -> OutcomesRun:
    """Draw the campaign's outcomes from the documented ground truth and send them back through the real API:
    signed SendGrid webhooks for what recipients did with the e-mail, Segment orders through the intake."""
    truth = GroundTruth.load()
    with db.session() as session:
        campaign = repository.get_campaign(session, DEMO_CAMPAIGN)
        if campaign.state not in (CampaignState.SENT, CampaignState.MEASURED):
            typer.echo(f"No simulated outcomes: campaign {DEMO_CAMPAIGN} is {campaign.state}, not sent")
            return OutcomesRun()
        customers = assigned_customers(session, campaign)
        codes = offer_codes(session, campaign)
    simulated = simulate(truth, customers, codes, utcnow())
    typer.echo(
        "Outcomes — SIMULATED, not real behaviour: drawn from the ground truth in data/samples/simulation.json "
        f"(seed {truth.seed}; data/samples/README.md explains it):"
    )
    typer.echo(
        f"  {simulated.customers:,} customers assigned: {simulated.conversions} ordered "
        f"({simulated.coupons} with their variant's offer code); {len(simulated.events):,} e-mail events"
    )
    posted = post_simulated(db, settings, simulated)
    typer.echo(
        f"  sent back over HTTP: {posted.event_requests} signed POST /webhooks/sendgrid ({posted.events_stored:,} "
        f"events stored and processed), {posted.order_requests} POST /v1/batch ({posted.orders_stored:,} orders "
        f"stored); {posted.duplicates:,} duplicates of an earlier run"
    )
    return OutcomesRun(simulated, posted, tuple(true_effects(truth, customers)))


def post_simulated(db: Database, settings: Settings, simulated: Simulated) -> Posted:
    """Post to the API on a loopback port, configured for this run only to trust a SendGrid key made for it and
    a one-off shop source whose write key is revoked afterwards."""
    key = ec.generate_private_key(ec.SECP256R1())  # the curve SendGrid signs with
    app = create_app(settings.model_copy(update={"sendgrid_webhook_public_key": sendgrid_public_key(key)}), database=db)
    name = f"demo-simulated-shop-{utcnow():%Y%m%d%H%M%S%f}"
    with db.session() as session:
        write_key = sources.create_source(session, name).write_key
    try:
        return post(app, simulated, key, write_key)
    finally:
        with db.session() as session:
            sources.revoke_source(session, name)


@dataclass(frozen=True, slots=True)
class Measured:
    report: CampaignReport
    checks: tuple[TruthCheck, ...]
    hillstrom: ExperimentAnalysis


def show_experiment(db: Database, settings: Settings, outcomes_run: OutcomesRun) -> Measured | None:
    """The campaign's A/B and holdout report, each estimate beside the truth it should recover, and the real
    Hillstrom experiment through the same analysis."""
    with db.session() as session:
        try:
            report = build_report(session, repository.get_campaign(session, DEMO_CAMPAIGN), settings, utcnow())
        except Conflict as error:  # not planned: nothing to report
            typer.echo(f"No experiment report: {error.message}")
            return None
    checks = tuple(check_against_truth(report, outcomes_run.effects, settings.roi_margin))
    typer.echo(f"Experiment report of {DEMO_CAMPAIGN} (`nudge report campaign {DEMO_CAMPAIGN}` has all of it):")
    typer.echo("  " + ", ".join(f"{arm.arm} {arm.n:,}" for arm in report.arms))
    if checks:
        inside = sum(check.inside for check in checks)
        typer.echo(
            f"  against the simulation's ground truth: {inside} of {len(checks)} true values inside the 95 % intervals"
        )
        for what, arm, truth, estimate, interval, verdict in (check_row(check) for check in checks):
            typer.echo(f"    {what:<34} {arm:<8} truth {truth:>11}  estimate {estimate:>11} {interval:<26} {verdict}")
    if report.roi is not None and report.roi.roi is not None:
        typer.echo(
            f"  ROI {report.roi.roi:+.1%} [{report.roi.ci_low:+.1%}, {report.roi.ci_high:+.1%}] on "
            f"${report.roi.total_cost:,.2f} of costs from the cost ledger"
        )
    hillstrom = hillstrom_analysis()
    typer.echo(
        "Beside it, the real Hillstrom e-mail experiment (64,000 customers, randomised) through the same analysis:"
    )
    for arm, label, value, effect, p_value, _ in hillstrom_rows(hillstrom):
        typer.echo(f"  {arm:<14} {label:<10} {value:<16} effect {effect} (p {p_value})")
    return Measured(report, checks, hillstrom)


# --- costs, budgets and the HTML report -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Costs:
    by_component: dict[str, float]
    budgets: list[str]


def show_costs(db: Database, settings: Settings) -> Costs:
    """Today's cost ledger by component (with the day's infrastructure share, as the daily task books it) and the
    LLM budgets."""
    today = utcnow().date()
    with db.session() as session:
        ledger.record_infrastructure(session, settings, today)
    with db.session() as session:
        totals = ledger.totals_by_component(session, today, today + timedelta(days=1))
        budgets = describe_budgets(budget_statuses(session, settings, campaign_keys=DEMO_CAMPAIGNS, now=utcnow()))
    costs = {component.value: float(amount) for component, amount in totals.items()}
    typer.echo(
        f"Cost ledger today: ${sum(costs.values()):,.2f} — " + ", ".join(f"{k} ${v:,.2f}" for k, v in costs.items())
    )
    typer.echo("LLM budgets:")
    for line in budgets:
        typer.echo(f"  {line}")
    return Costs(costs, budgets)


def write_html_report(
    db: Database, settings: Settings, measured: Measured | None, outcomes_run: OutcomesRun, costs: Costs
) -> None:
    """The run on one page: var/demo/report.html, plots embedded."""
    if measured is None:
        return
    with db.session() as session:
        campaign = repository.get_campaign(session, DEMO_CAMPAIGN)
        status = service.campaign_status(session, campaign)
        variants = [variant_line(v) for v in repository.variants(session, campaign.id)]
        models = [registry.production(session, step.kind) for step in SAMPLE_MODELS]
        plan, carts = dict(campaign.plan), cart_outcome_counts(session)
    churn = models[0]
    plots = [
        file_plot(
            "Profit curve",
            "Expected profit against customers targeted, highest EV first: the unconstrained optimum N* and where "
            "production mode stopped under the budget.",
            settings.data_dir / "plans" / "profit_curve.png",
        ),
        file_plot(
            "Reliability diagram",
            f"{churn.kind.value} v{churn.version}: predicted against observed churn per bin, out of fold. On the "
            "diagonal, a probability means what it says — the decision engine multiplies it by money.",
            Path(churn.artifact_path) / RELIABILITY_PNG,
        ),
        experiment_plot(measured.report.analysis) if measured.report.analysis else None,
        costs_plot(costs.by_component),
    ]
    report = DemoReport(
        generated_at=utcnow(),
        database=db.engine.url.render_as_string(hide_password=True),
        models=[ModelLine(m.kind.value, m.version, headline(m.metrics)) for m in models],
        plan=plan,
        status=status,
        variants=variants,
        campaign=measured.report,
        simulated=outcomes_run.simulated,
        posted=outcomes_run.posted,
        checks=measured.checks,
        hillstrom=measured.hillstrom,
        carts=carts,
        costs_today=costs.by_component,
        budgets=costs.budgets,
        plots=[plot for plot in plots if plot is not None],
        ui_url=f"http://{settings.api_host}:{settings.api_port}",
    )
    path = write_report(report, settings.data_dir / "demo" / "report.html")
    typer.echo(f"\nThe run on one page: {path.resolve()} (open it in a browser)")


def variant_line(variant: CampaignVariant) -> VariantLine:
    content = variant.content
    findings = variant.report.get("findings", [])
    verdict = "blocked" if variant.blocked else f"passes ({len(findings)} warning(s))" if findings else "passes"
    return VariantLine(
        variant=variant.variant,
        subject=str(content.get("subject", "")),
        offers=", ".join(content.get("offer_codes", [])) or "none",
        verdict=verdict,
        citations=", ".join(content.get("creative_ids", [])) or "none",
        approved_by=variant.approved_by or "not approved",
    )


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
        briefs = campaign_briefs(db, campaign, n_variants=1, tone=DEMO_TONE)
        drafted = draft_briefs(db, settings, briefs, progress=show_llm_call)
    except NudgeError as error:
        typer.echo(f"  no draft passed its checks: {error.message}")
        return False
    for drafts in drafted:
        show_drafts(drafts)
    with db.session() as session:
        campaign = repository.get_campaign(session, DEMO_TRIGGER)
        drafted_at = utcnow()  # drafting took minutes: the audit trail records when each step happened
        service.store_drafts(session, campaign, drafted, actor=DEMO_SYSTEM, now=drafted_at)
        service.submit(session, campaign, actor=DEMO_SYSTEM, now=drafted_at)
        return approve_as_sample_marketer(session, campaign, drafted_at)


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
        show_cart_outcomes(session)


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
    cart_id = f"{DEMO_CART_PREFIX}{shopper}"
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


def show_cart_outcomes(session: Session) -> None:
    """What became of each sample cart, and one reminder as it went out."""
    for status, reason, count in cart_outcome_counts(session):
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


def cart_outcome_counts(session: Session) -> list[tuple[str, str | None, int]]:
    """The demo carts' trigger checks by status and reason."""
    query = (
        select(TriggerCheck.status, TriggerCheck.reason, func.count())
        .join(Cart, Cart.id == TriggerCheck.cart_id)
        .where(Cart.external_id.like(f"{DEMO_CART_PREFIX}%"))
        .group_by(TriggerCheck.status, TriggerCheck.reason)
        .order_by(TriggerCheck.status, TriggerCheck.reason)
    )
    return [(str(status), reason, int(count)) for status, reason, count in session.execute(query)]


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
