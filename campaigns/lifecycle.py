"""The campaign state machine: which action moves a campaign from which state to which, and the audit log.

::

    draft ─plan→ planned ─draft→ drafted ─submit→ in_review ─approve→ approved ─schedule→ scheduled
                                    ▲                 │  │                                    │ start
                                    └─redraft─ changes_requested ◄─request_changes           sending ─finish→ sent
                                               (─submit→ in_review after an edit)             ─measure→ measured
                                                       in_review ─reject→ rejected

``cancel`` is allowed from every state before sending. A trigger campaign (abandoned cart) goes through
the same review, but once approved it stays approved: its template is pre-approved and it sends per
cart, so it is never scheduled (it can still be cancelled, which turns it off).

**Escalation.** A campaign whose plan reaches more customers, or is expected to cost more, than an
``Escalation`` allows needs two different approvers: ``approve`` records the first approval as an audit
entry (``approval``) and leaves the campaign in review; the second, by someone else, moves it. A new
``submit`` or an edit starts the count again, so a change after the first approval needs both approvers anew.

``transition`` is the only way a state changes. It checks the move and its guards (a comment to reject
or request changes; an approvable set of variants to approve), moves the state with a conditional
``UPDATE`` — so two people approving at once, or two workers starting one send, cannot both succeed —
and writes one ``AuditEntry``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from campaigns import repository
from core.errors import Conflict, ValidationFailed
from core.models import AuditEntry, Campaign, CampaignKind, CampaignState


class Action(StrEnum):
    PLAN = "plan"
    DRAFT = "draft"
    SUBMIT = "submit"
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    REJECT = "reject"
    REDRAFT = "redraft"
    SCHEDULE = "schedule"
    START = "start"
    FINISH = "finish"
    MEASURE = "measure"
    CANCEL = "cancel"


S = CampaignState
CANCELLABLE = (S.DRAFT, S.PLANNED, S.DRAFTED, S.IN_REVIEW, S.CHANGES_REQUESTED, S.APPROVED, S.SCHEDULED)

TRANSITIONS: Mapping[CampaignState, Mapping[Action, CampaignState]] = MappingProxyType(
    {
        S.DRAFT: {Action.PLAN: S.PLANNED},
        S.PLANNED: {Action.DRAFT: S.DRAFTED},
        S.DRAFTED: {Action.SUBMIT: S.IN_REVIEW},
        S.IN_REVIEW: {
            Action.APPROVE: S.APPROVED,
            Action.REQUEST_CHANGES: S.CHANGES_REQUESTED,
            Action.REJECT: S.REJECTED,
        },
        S.CHANGES_REQUESTED: {Action.REDRAFT: S.DRAFTED, Action.SUBMIT: S.IN_REVIEW},
        S.APPROVED: {Action.SCHEDULE: S.SCHEDULED},
        S.SCHEDULED: {Action.START: S.SENDING},
        S.SENDING: {Action.FINISH: S.SENT},
        S.SENT: {Action.MEASURE: S.MEASURED},
        S.MEASURED: {},
        S.REJECTED: {},
        S.CANCELLED: {},
    }
)
# Sending is per cart for a trigger, so from approved it can only be turned off.
TRIGGER_NEVER = frozenset({Action.SCHEDULE, Action.START, Action.FINISH, Action.MEASURE})
NEEDS_COMMENT = frozenset({Action.REJECT, Action.REQUEST_CHANGES})
# The audit action of a first approval that does not yet move an escalated campaign.
FIRST_APPROVAL = "approval"
# What the first approval no longer covers: a new submission, or an edit of the copy.
RESTARTS_APPROVAL = (Action.SUBMIT.value, "edit")


def allowed_actions(campaign: Campaign) -> tuple[Action, ...]:
    """The actions the campaign's state (and kind) allows, in ``Action`` order."""
    moves = set(TRANSITIONS[campaign.state])
    if campaign.state in CANCELLABLE:
        moves.add(Action.CANCEL)
    if campaign.kind is CampaignKind.TRIGGER:
        moves -= TRIGGER_NEVER
    return tuple(action for action in Action if action in moves)


def target_state(campaign: Campaign, action: Action) -> CampaignState:
    """Where ``action`` takes the campaign; ``Conflict`` naming the state and the allowed actions otherwise."""
    allowed = allowed_actions(campaign)
    if action not in allowed:
        names = ", ".join(allowed) or "none"
        raise Conflict(f"cannot {action} campaign {campaign.key!r}: it is {campaign.state}; allowed: {names}")
    return S.CANCELLED if action is Action.CANCEL else TRANSITIONS[campaign.state][action]


def transition(
    session: Session,
    campaign: Campaign,
    action: Action,
    *,
    actor: str,
    comment: str | None = None,
    detail: Mapping[str, Any] | None = None,
    now: datetime,
) -> Campaign:
    """Move ``campaign`` by ``action`` and record who did it.

    Parameters
    ----------
    session : Session
        Not committed here.
    campaign : Campaign
    action : Action
    actor : str
        A user name, or ``system:<component>``.
    comment : str, optional
        Required (non-blank) to reject or request changes.
    detail : mapping, optional
        JSON-safe facts stored with the audit entry (counts, the scheduled time …).
    now : datetime
        The audit entry's time.

    Returns
    -------
    Campaign
        The same object, in its new state.

    Raises
    ------
    core.errors.Conflict
        The state or kind does not allow the action, approval is blocked by a variant, or another
        transaction moved the campaign first.
    core.errors.ValidationFailed
        Reject or request changes without a comment.
    """
    source = campaign.state
    target = target_state(campaign, action)
    if action in NEEDS_COMMENT and not (comment and comment.strip()):
        raise ValidationFailed(f"{action} needs a comment saying why")
    if action is Action.APPROVE:
        _check_approvable(session, campaign)
    if not repository.move_state(session, campaign.id, source, target):
        raise Conflict(f"campaign {campaign.key!r} changed while you looked at it: reload it and try again")
    set_committed_value(campaign, "state", target)  # the UPDATE already wrote it
    session.add(_audit(campaign, action, source, target, actor=actor, comment=comment, detail=detail, now=now))
    return campaign


def _audit(
    campaign: Campaign,
    action: str,
    source: CampaignState,
    target: CampaignState,
    *,
    actor: str,
    comment: str | None,
    detail: Mapping[str, Any] | None,
    now: datetime,
) -> AuditEntry:
    return AuditEntry(
        actor=actor,
        action=str(action),
        campaign_id=campaign.id,
        from_state=source.value,
        to_state=target.value,
        comment=comment,
        detail=dict(detail or {}),
        created_at=now,
    )


def _check_approvable(session: Session, campaign: Campaign) -> None:
    """Every variant passes its guardrails, and every assigned segment has a variant."""
    stored = repository.variants(session, campaign.id)
    if not stored:
        raise Conflict(f"cannot approve campaign {campaign.key!r}: it has no variants")
    blocked = [f"{variant.segment}/{variant.variant}" for variant in stored if variant.blocked]
    if blocked:
        names = ", ".join(blocked)
        raise Conflict(f"cannot approve campaign {campaign.key!r}: blocked by their guardrail reports: {names}")
    missing = sorted(set(repository.assigned_segments(session, campaign.id)) - {v.segment for v in stored})
    if missing:
        raise Conflict(f"cannot approve campaign {campaign.key!r}: segments without a variant: {', '.join(missing)}")


@dataclass(frozen=True, slots=True)
class Escalation:
    """When a campaign needs a second, different approver: its plan treats more than ``max_audience``
    customers, or its production plan is expected to cost more than ``max_spend`` USD (``None``: no limit)."""

    max_audience: int | None = None
    max_spend: Decimal | None = None

    def reasons(self, campaign: Campaign) -> list[str]:
        """Why ``campaign`` needs two approvers; empty when one is enough."""
        reasons = []
        audience, spend = planned_audience(campaign), planned_spend(campaign)
        if self.max_audience is not None and audience > self.max_audience:
            reasons.append(f"it treats {audience:,} customers, more than {self.max_audience:,}")
        if self.max_spend is not None and spend > self.max_spend:
            reasons.append(f"it is expected to cost ${spend:,.2f}, more than ${self.max_spend:,.2f}")
        return reasons


def planned_audience(campaign: Campaign) -> int:
    """The customers the plan treats: assigned, less the holdout (0 before planning, and for triggers)."""
    figures = campaign.plan.get("assignment", {})
    return int(figures.get("assigned", 0)) - int(figures.get("holdout", 0))


def planned_spend(campaign: Campaign) -> Decimal:
    """The production plan's expected cost, USD (0 before planning, and for triggers)."""
    cost = campaign.plan.get("production", {}).get("total_cost") or 0
    return Decimal(str(round(float(cost), 2)))


def approvers_so_far(session: Session, campaign: Campaign) -> list[str]:
    """Who recorded a first approval since the campaign was last submitted or edited."""
    entries = session.execute(
        select(AuditEntry.action, AuditEntry.actor)
        .where(AuditEntry.campaign_id == campaign.id, AuditEntry.action.in_([*RESTARTS_APPROVAL, FIRST_APPROVAL]))
        .order_by(AuditEntry.created_at, AuditEntry.id)
    ).all()
    actors: list[str] = []
    for action, actor in entries:
        actors = [] if action in RESTARTS_APPROVAL else [*actors, actor]
    return actors


def approve_escalated(
    session: Session,
    campaign: Campaign,
    escalation: Escalation,
    *,
    actor: str,
    comment: str | None = None,
    now: datetime,
) -> bool:
    """Record ``actor``'s approval of a campaign that needs two approvers; True once it may move.

    The first approval is checked like an approval (state, variants, guardrails) and written to the audit
    log without moving the campaign; the caller moves it (``transition(…, Action.APPROVE, …)``) when this
    returns True — at once when ``escalation`` does not apply.

    Raises
    ------
    core.errors.Conflict
        The campaign cannot be approved, or ``actor`` already gave the first approval.
    """
    reasons = escalation.reasons(campaign)
    if not reasons:
        return True
    target_state(campaign, Action.APPROVE)
    _check_approvable(session, campaign)
    earlier = approvers_so_far(session, campaign)
    if actor in earlier:
        raise Conflict(f"campaign {campaign.key!r} needs a second approver other than {actor}: {'; '.join(reasons)}")
    if earlier:
        return True
    state = campaign.state
    detail = {"approvals": 1, "needed": 2, "reasons": reasons}
    session.add(_audit(campaign, FIRST_APPROVAL, state, state, actor=actor, comment=comment, detail=detail, now=now))
    return False
