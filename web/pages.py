"""The marketer's pages: dashboard, review queue, campaign, draft review and its actions, triggers, messages,
outbox, creative library, models, experiments and the audit log.

Reading needs any role; editing and submitting drafts needs ``marketer``; approving, rejecting, requesting
changes, scheduling and cancelling needs ``approver`` (``web.auth``). Every action goes through
``campaigns`` (which audits it) and answers with a redirect back to the page, with a notice. With HTMX
(``web.templating.is_htmx``), saving a variant answers with its re-checked card instead, and the library's
search box with its results only.

Every handler that touches the database is a plain ``def``: FastAPI runs it in its thread pool, so a slow
query never holds up the event loop. Only reading a form is ``async`` (a dependency, before the handler).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from campaigns import repository, review, service
from campaigns.lifecycle import allowed_actions, approvers_so_far, planned_audience, planned_spend
from campaigns.report import arm_sizes
from core.clock import utcnow
from core.errors import NotFound, ValidationFailed
from core.models import Campaign, CampaignKind, CampaignState, CampaignVariant, Channel
from core.plots import png_bytes
from core.settings import Settings
from experiments.plots import cumulative_conversions_figure, lift_figure
from guardrails.budgets import budget_statuses
from guardrails.context import CheckContext
from guardrails.repository import check_context
from web import presenting, views
from web.auth import Approver, Marketer, PageUser
from web.deps import SessionDep, SettingsDep
from web.templating import PREVIEW_HEADERS, PageRoute, is_htmx, render, see_other

PlotName = Literal["lift", "cumulative"]
router = APIRouter(route_class=PageRoute, include_in_schema=False)

NOTICES = {
    "edited": "Saved. The guardrails checked the new copy: see the report below.",
    "submitted": "Submitted for review.",
    "approved": "Approved.",
    "first_approval": "Your approval is recorded. This campaign needs a second approver before it is approved.",
    "rejected": "Rejected.",
    "changes_requested": "Sent back for changes.",
    "scheduled": "Scheduled.",
    "cancelled": "Cancelled.",
}
Comment = Annotated[str, Form(max_length=2000)]


async def copy_changes(request: Request) -> dict[str, str]:
    """The copy fields the edit form sent (reading the body is the only asynchronous part of an edit)."""
    form = await request.form()
    return {name: str(form[name]) for name in review.EDITABLE_FIELDS if name in form}


CopyChanges = Annotated[dict[str, str], Depends(copy_changes)]


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, settings: SettingsDep, _: PageUser) -> HTMLResponse:
    now = utcnow()
    context = {
        "states": views.states_count(session),
        "budgets": budget_statuses(session, settings, now=now),
        "outcomes": views.recent_outcomes(session),
        "alerts": views.alerts(session, now=now),
        "waiting": views.queue(session, states=(CampaignState.IN_REVIEW,)).rows[:10],
    }
    return render(request, "dashboard.html", context)


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns(
    request: Request,
    session: SessionDep,
    _: PageUser,
    state: Annotated[str, Query(max_length=32)] = "queue",
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    states = states_named(state)
    listing = views.queue(session, states=states, page=page)
    return render(request, "campaigns.html", {"page": listing, "state": state, "all_states": list(CampaignState)})


def states_named(name: str) -> tuple[CampaignState, ...]:
    if name == "queue":
        return views.QUEUE_STATES
    if name == "all":
        return tuple(CampaignState)
    try:
        return (CampaignState(name),)
    except ValueError:
        raise ValidationFailed(f"no campaign state {name!r}") from None


@router.get("/triggers", response_class=HTMLResponse)
def triggers(request: Request, session: SessionDep, _: PageUser) -> HTMLResponse:
    listing = views.queue(session, states=tuple(CampaignState), kind=CampaignKind.TRIGGER)
    return render(request, "triggers.html", {"page": listing})


@router.get("/campaigns/{key}", response_class=HTMLResponse)
def campaign_page(request: Request, key: str, session: SessionDep, settings: SettingsDep, _: PageUser) -> HTMLResponse:
    campaign = repository.get_campaign(session, key)
    status = service.campaign_status(session, campaign)
    plan = campaign.plan
    markers = [
        presenting.Marker(mode, int(plan[mode]["n"]), float(plan[mode]["expected_profit"]))
        for mode in ("production", "unconstrained")
        if mode in plan
    ]
    context = {
        "campaign": campaign,
        "status": status,
        "plan": plan,
        "curve": presenting.profit_curve_svg(plan.get("curve") or views.profit_curve(session, campaign.id), markers),
        "audience": planned_audience(campaign),
        **_approval_context(session, settings, campaign),
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "now": utcnow(),
    }
    return render(request, "campaign.html", context)


def _approval_context(session: Any, settings: Any, campaign: Campaign) -> dict[str, Any]:
    return {
        "actions": [action.value for action in allowed_actions(campaign)],
        "escalation": review.escalation(settings).reasons(campaign),
        "approvers": approvers_so_far(session, campaign),
        "spend": planned_spend(campaign),
    }


@router.get("/campaigns/{key}/review", response_class=HTMLResponse)
def review_page(request: Request, key: str, session: SessionDep, settings: SettingsDep, _: PageUser) -> HTMLResponse:
    campaign = repository.get_campaign(session, key)
    variants = repository.variants(session, campaign.id)
    page = {
        "campaign": campaign,
        **_cards(session, settings, campaign, variants),
        "plan": campaign.plan,
        "audit": views.recent_audit(session, campaign.id),
        **_approval_context(session, settings, campaign),
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }
    return render(request, "review.html", page)


def _cards(session: Session, settings: Settings, campaign: Campaign, variants: list[CampaignVariant]) -> dict[str, Any]:
    """The variants' cards and what they show: cited creative titles, and whether the copy can be edited."""
    context = check_context(session, settings, now=utcnow())
    cited = views.creative_titles(session, sorted({c for v in variants for c in v.content.get("creative_ids", [])}))
    prices = {name: (price.input, price.output) for name, price in settings.token_prices.items()}
    return {
        "cards": [_variant_card(variant, campaign, context, prices) for variant in variants],
        "cited": cited,
        "editable": campaign.state in service.EDITABLE,
    }


def _variant_card(
    variant: CampaignVariant, campaign: Campaign, context: CheckContext, prices: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    content, findings = variant.content, list(variant.report.get("findings", []))
    card: dict[str, Any] = {
        "variant": variant,
        "findings": findings,
        "fields": {
            name: presenting.highlighted(str(content.get(name, "")), findings, name)
            for name in review.EDITABLE_FIELDS
            if content.get(name)
        },
        "usage": content.get("usage", {}),
        "token_cost": views.token_cost(content.get("usage", {}), prices),
    }
    if variant.channel is Channel.EMAIL:
        # Its own document (``email_preview`` below), so the page does not wait for the e-mail to compile.
        card["preview_url"] = f"/campaigns/{campaign.key}/variants/{variant.id}/preview"
    else:
        card["sms_text"], card["sms"] = presenting.sms_preview(content, context)
    return card


@router.get("/campaigns/{key}/variants/{variant_id}/preview", response_class=HTMLResponse)
def email_preview(key: str, variant_id: int, session: SessionDep, settings: SettingsDep, _: PageUser) -> HTMLResponse:
    """An e-mail variant as a sample recipient gets it, for the review page's sandboxed frame."""
    campaign = repository.get_campaign(session, key)
    variant = review.get_variant(session, campaign, variant_id)
    if variant.channel is not Channel.EMAIL:
        raise NotFound(f"variant {variant_id} is not an e-mail: it has no e-mail preview")
    context = check_context(session, settings, now=utcnow())
    subject, html = presenting.email_preview(variant.content, context, campaign.key)
    return HTMLResponse(presenting.preview_document(subject, html, context.brand), headers=PREVIEW_HEADERS)


@router.post("/campaigns/{key}/variants/{variant_id}", response_model=None)
def edit_variant(
    key: str,
    variant_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Marketer,
    changes: CopyChanges,
) -> RedirectResponse | HTMLResponse:
    """Save the copy and re-check it; HTMX gets the variant's new card (and the review actions) in place."""
    campaign = repository.get_campaign(session, key)
    variant = review.get_variant(session, campaign, variant_id)
    review.edit_copy(session, settings, variant, changes, actor=principal.username, now=utcnow())
    if not is_htmx(request):
        return see_other(f"/campaigns/{key}/review?done=edited#variant-{variant_id}")
    shown = _cards(session, settings, campaign, [variant])
    context = {
        "campaign": campaign,
        "card": shown["cards"][0],
        "cited": shown["cited"],
        "editable": shown["editable"],
        "card_notice": NOTICES["edited"],
        **_approval_context(session, settings, campaign),
    }
    return render(request, "_variant_saved.html", context)


@router.post("/campaigns/{key}/submit")
def submit(key: str, session: SessionDep, principal: Marketer) -> RedirectResponse:
    service.submit(session, repository.get_campaign(session, key), actor=principal.username, now=utcnow())
    return see_other(f"/campaigns/{key}/review?done=submitted")


@router.post("/campaigns/{key}/approve")
def approve(
    key: str, session: SessionDep, settings: SettingsDep, principal: Approver, comment: Comment = ""
) -> RedirectResponse:
    campaign = repository.get_campaign(session, key)
    rules = review.escalation(settings)
    done = review.approve(session, campaign, rules, actor=principal.username, comment=comment or None, now=utcnow())
    return see_other(f"/campaigns/{key}?done={'approved' if done else 'first_approval'}")


@router.post("/campaigns/{key}/reject")
def reject(key: str, session: SessionDep, principal: Approver, comment: Comment = "") -> RedirectResponse:
    campaign = repository.get_campaign(session, key)
    service.reject(session, campaign, actor=principal.username, comment=comment, now=utcnow())
    return see_other(f"/campaigns/{key}?done=rejected")


@router.post("/campaigns/{key}/request-changes")
def request_changes(key: str, session: SessionDep, principal: Approver, comment: Comment = "") -> RedirectResponse:
    campaign = repository.get_campaign(session, key)
    service.request_changes(session, campaign, actor=principal.username, comment=comment, now=utcnow())
    return see_other(f"/campaigns/{key}/review?done=changes_requested")


@router.post("/campaigns/{key}/schedule")
def schedule(
    key: str, session: SessionDep, principal: Approver, at: Annotated[str, Form(max_length=40)]
) -> RedirectResponse:
    campaign = repository.get_campaign(session, key)
    service.schedule(session, campaign, parse_utc(at), actor=principal.username, now=utcnow())
    return see_other(f"/campaigns/{key}?done=scheduled")


def parse_utc(text: str) -> datetime:
    """A ``datetime-local`` value (or ISO 8601) as UTC; without a zone it is read as UTC, as the form says."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"not a date and time: {text!r} (use YYYY-MM-DDTHH:MM, UTC)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.post("/campaigns/{key}/cancel")
def cancel(key: str, session: SessionDep, principal: Approver, comment: Comment = "") -> RedirectResponse:
    campaign = repository.get_campaign(session, key)
    service.cancel(session, campaign, actor=principal.username, comment=comment or None, now=utcnow())
    return see_other(f"/campaigns/{key}?done=cancelled")


@router.get("/messages", response_class=HTMLResponse)
def messages(
    request: Request,
    session: SessionDep,
    _: PageUser,
    campaign: Annotated[str, Query(max_length=128)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    listing = views.messages(session, campaign_key=campaign or None, page=page)
    return render(request, "messages.html", {"page": listing, "campaign": campaign})


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request, session: SessionDep, _: PageUser, page: Annotated[int, Query(ge=1)] = 1) -> HTMLResponse:
    return render(request, "outbox.html", {"page": views.outbox(session, page=page)})


@router.get("/library", response_class=HTMLResponse)
def library(
    request: Request,
    session: SessionDep,
    _: PageUser,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    context = {"page": views.library(session, q, page=page), "q": q}
    if is_htmx(request):  # the search box, as the user types: the results only
        return render(request, "_library_results.html", context)
    return render(request, "library.html", context)


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, session: SessionDep, _: PageUser) -> HTMLResponse:
    return render(request, "models.html", {"versions": views.model_versions(session)})


@router.get("/experiments", response_class=HTMLResponse)
def experiments(request: Request, session: SessionDep, _: PageUser) -> HTMLResponse:
    return render(request, "experiments.html", {"campaigns": views.experiment_arms(session)})


@router.get("/experiments/{key}", response_class=HTMLResponse)
def experiment(request: Request, session: SessionDep, settings: SettingsDep, _: PageUser, key: str) -> HTMLResponse:
    """The campaign's experiment report: every number with its interval and the method that made it."""
    report = views.experiment_report(session, settings, key, utcnow())
    return render(request, "experiment.html", {"report": report, **views.experiment_tables(report)})


@router.get("/experiments/{key}/{plot}.png")
def experiment_plot(session: SessionDep, settings: SettingsDep, _: PageUser, key: str, plot: PlotName) -> Response:
    """The report's lift plot or cumulative conversions, as PNG."""
    report = views.experiment_report(session, settings, key, utcnow())
    if plot == "lift":
        if report.analysis is None:
            raise NotFound(f"campaign {key!r} has nothing to compare yet: no lift plot")
        figure = lift_figure(report.analysis)
    else:
        figure = cumulative_conversions_figure(report.daily_conversions, arm_sizes(report))
    return Response(png_bytes(figure), media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@router.get("/audit", response_class=HTMLResponse)
def audit(
    request: Request,
    session: SessionDep,
    _: PageUser,
    actor: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    return render(request, "audit.html", {"page": views.audit_log(session, actor=actor, page=page), "actor": actor})
