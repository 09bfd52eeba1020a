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

``transition`` is the only way a state changes. It checks the move and its guards (a comment to reject
or request changes; an approvable set of variants to approve), moves the state with a conditional
``UPDATE`` — so two people approving at once, or two workers starting one send, cannot both succeed —
and writes one ``AuditEntry``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

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
    action: Action,
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
        action=action.value,
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
