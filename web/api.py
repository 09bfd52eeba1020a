"""The REST API for review: list and read campaigns, edit a variant's copy, and move a campaign through review.

Authenticated with an API token (``Authorization: Bearer …``, ``nudge users token create``); the token
acts with its owner's role, exactly as the pages do. Errors have the usual ``ErrorBody`` shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from campaigns import repository, review, service
from campaigns.lifecycle import allowed_actions, approvers_so_far
from core.clock import utcnow
from core.models import Campaign, CampaignVariant
from web import views
from web.auth import ApiApprover, ApiMarketer, ApiUser
from web.deps import SessionDep, SettingsDep
from web.errors import ErrorBody
from web.pages import parse_utc, states_named

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Invalid input; `details` lists every problem.",
        401: "Missing, unknown or revoked API token.",
        403: "The token's owner does not have the role this needs.",
        404: "No such campaign or variant.",
        409: "The campaign's state does not allow it (the message names the allowed actions), a variant is "
        "blocked by its guardrails, or a second approver is needed.",
        422: "A comment is missing, or the edited copy is not a valid draft.",
    }.items()
}
router = APIRouter(prefix="/api", tags=["review"], responses=ERRORS)


class CampaignSummary(BaseModel):
    key: str
    name: str
    kind: str
    state: str
    channel: str
    variants: int
    blocked: int
    updated_at: datetime


class VariantOut(BaseModel):
    id: int
    segment: str
    variant: str
    channel: str
    blocked: bool
    content: dict[str, Any]
    report: dict[str, Any]
    approved_by: str | None


class CampaignOut(BaseModel):
    key: str
    name: str
    kind: str
    state: str
    channel: str
    scheduled_at: datetime | None
    plan: dict[str, Any]
    allowed_actions: list[str]
    escalation: list[str] = Field(description="Why the campaign needs a second approver; empty if it does not.")
    approvals_so_far: list[str]
    arms: dict[str, int]
    variants: list[VariantOut]


class Decision(BaseModel):
    comment: str = Field(default="", max_length=2000, description="Required to reject or request changes.")


class ScheduleIn(BaseModel):
    at: datetime = Field(description="When to send, ISO 8601 with a zone (UTC if none).")


class CopyEdit(BaseModel):
    """The copy fields to replace; the others stay."""

    subject: str | None = None
    preheader: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    sms_text: str | None = None


class ActionResult(BaseModel):
    key: str
    state: str
    approved: bool | None = Field(default=None, description="For approve: False while a second approver is needed.")


class Me(BaseModel):
    username: str
    role: str


@router.get("/me", response_model=Me)
def me(principal: ApiUser) -> Me:
    return Me(username=principal.username, role=principal.role.value)


@router.get("/campaigns", response_model=list[CampaignSummary])
def list_campaigns(
    session: SessionDep,
    _: ApiUser,
    state: Annotated[str, Query(max_length=32, description="A state, 'queue' (waiting for a person) or 'all'.")] = (
        "queue"
    ),
    page: Annotated[int, Query(ge=1)] = 1,
) -> list[CampaignSummary]:
    rows = views.queue(session, states=states_named(state), page=page).rows
    return [
        CampaignSummary(
            key=r.key,
            name=r.name,
            kind=r.kind.value,
            state=r.state.value,
            channel=r.channel,
            variants=r.variants,
            blocked=r.blocked,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


@router.get("/campaigns/{key}", response_model=CampaignOut)
def get_campaign(key: str, session: SessionDep, settings: SettingsDep, _: ApiUser) -> CampaignOut:
    return _campaign_out(session, settings, repository.get_campaign(session, key))


def _campaign_out(session: Any, settings: Any, campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        key=campaign.key,
        name=campaign.name,
        kind=campaign.kind.value,
        state=campaign.state.value,
        channel=campaign.channel.value,
        scheduled_at=campaign.scheduled_at,
        plan=campaign.plan,
        allowed_actions=[action.value for action in allowed_actions(campaign)],
        escalation=review.escalation(settings).reasons(campaign),
        approvals_so_far=approvers_so_far(session, campaign),
        arms=repository.arm_counts(session, campaign.id),
        variants=[_variant_out(v) for v in repository.variants(session, campaign.id)],
    )


def _variant_out(variant: CampaignVariant) -> VariantOut:
    return VariantOut(
        id=variant.id,
        segment=variant.segment,
        variant=variant.variant,
        channel=variant.channel.value,
        blocked=variant.blocked,
        content=variant.content,
        report=variant.report,
        approved_by=variant.approved_by,
    )


@router.put("/campaigns/{key}/variants/{variant_id}", response_model=VariantOut)
def edit_variant(
    key: str, variant_id: int, edit: CopyEdit, session: SessionDep, settings: SettingsDep, principal: ApiMarketer
) -> VariantOut:
    """Replace copy fields; the guardrails check the result at once and the report comes back with it."""
    campaign = repository.get_campaign(session, key)
    variant = review.get_variant(session, campaign, variant_id)
    changes = edit.model_dump(exclude_none=True)
    review.edit_copy(session, settings, variant, changes, actor=principal.username, now=utcnow())
    return _variant_out(variant)


@router.post("/campaigns/{key}/submit", response_model=ActionResult)
def submit(key: str, session: SessionDep, principal: ApiMarketer) -> ActionResult:
    campaign = service.submit(session, repository.get_campaign(session, key), actor=principal.username, now=utcnow())
    return ActionResult(key=key, state=campaign.state.value)


@router.post("/campaigns/{key}/approve", response_model=ActionResult)
def approve(
    key: str, decision: Decision, session: SessionDep, settings: SettingsDep, principal: ApiApprover
) -> ActionResult:
    campaign = repository.get_campaign(session, key)
    rules = review.escalation(settings)
    done = review.approve(
        session, campaign, rules, actor=principal.username, comment=decision.comment or None, now=utcnow()
    )
    return ActionResult(key=key, state=campaign.state.value, approved=done)


@router.post("/campaigns/{key}/reject", response_model=ActionResult)
def reject(key: str, decision: Decision, session: SessionDep, principal: ApiApprover) -> ActionResult:
    campaign = repository.get_campaign(session, key)
    service.reject(session, campaign, actor=principal.username, comment=decision.comment, now=utcnow())
    return ActionResult(key=key, state=campaign.state.value)


@router.post("/campaigns/{key}/request-changes", response_model=ActionResult)
def request_changes(key: str, decision: Decision, session: SessionDep, principal: ApiApprover) -> ActionResult:
    campaign = repository.get_campaign(session, key)
    service.request_changes(session, campaign, actor=principal.username, comment=decision.comment, now=utcnow())
    return ActionResult(key=key, state=campaign.state.value)


@router.post("/campaigns/{key}/schedule", response_model=ActionResult)
def schedule(key: str, body: ScheduleIn, session: SessionDep, principal: ApiApprover) -> ActionResult:
    campaign = repository.get_campaign(session, key)
    service.schedule(session, campaign, parse_utc(body.at.isoformat()), actor=principal.username, now=utcnow())
    return ActionResult(key=key, state=campaign.state.value)


@router.post("/campaigns/{key}/cancel", response_model=ActionResult)
def cancel(key: str, decision: Decision, session: SessionDep, principal: ApiApprover) -> ActionResult:
    campaign = repository.get_campaign(session, key)
    service.cancel(session, campaign, actor=principal.username, comment=decision.comment or None, now=utcnow())
    return ActionResult(key=key, state=campaign.state.value)
