"""The campaign state machine: every allowed move, refusals with exact messages, the audit log, approval guards,
and trigger campaigns that stay approved."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.lifecycle import Action, allowed_actions, transition
from core.db import Database
from core.errors import Conflict, ValidationFailed
from core.models import AuditEntry, Campaign, CampaignKind, CampaignState, CampaignVariant, Channel

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
S = CampaignState

ALLOWED = [
    (S.DRAFT, Action.PLAN, S.PLANNED),
    (S.PLANNED, Action.DRAFT, S.DRAFTED),
    (S.DRAFTED, Action.SUBMIT, S.IN_REVIEW),
    (S.IN_REVIEW, Action.APPROVE, S.APPROVED),
    (S.IN_REVIEW, Action.REQUEST_CHANGES, S.CHANGES_REQUESTED),
    (S.IN_REVIEW, Action.REJECT, S.REJECTED),
    (S.CHANGES_REQUESTED, Action.REDRAFT, S.DRAFTED),
    (S.CHANGES_REQUESTED, Action.SUBMIT, S.IN_REVIEW),
    (S.APPROVED, Action.SCHEDULE, S.SCHEDULED),
    (S.SCHEDULED, Action.START, S.SENDING),
    (S.SENDING, Action.FINISH, S.SENT),
    (S.SENT, Action.MEASURE, S.MEASURED),
    *[
        (state, Action.CANCEL, S.CANCELLED)
        for state in (S.DRAFT, S.PLANNED, S.DRAFTED, S.IN_REVIEW, S.CHANGES_REQUESTED, S.APPROVED, S.SCHEDULED)
    ],
]


def make_campaign(
    session: Session, state: CampaignState = S.DRAFT, *, kind: CampaignKind = CampaignKind.RETENTION, key: str = "c1"
) -> Campaign:
    campaign = Campaign(
        key=key,
        name="Winter retention",
        kind=kind,
        state=state,
        channel=Channel.EMAIL,
        holdout_fraction=0.1,
        salt="salt",
        created_by="ana",
    )
    session.add(campaign)
    session.flush()
    return campaign


def add_variant(session: Session, campaign: Campaign, variant: str = "v1", *, blocked: bool = False) -> None:
    session.add(
        CampaignVariant(
            campaign_id=campaign.id,
            segment="subscribers_month_to_month",
            variant=variant,
            channel=Channel.EMAIL,
            content={"subject": "Hello"},
            report={"findings": []},
            blocked=blocked,
        )
    )
    session.flush()


def audit_rows(session: Session) -> list[tuple[Any, ...]]:
    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
    return [(e.actor, e.action, e.from_state, e.to_state, e.comment, e.detail, e.created_at) for e in entries]


@pytest.mark.parametrize(("source", "action", "target"), ALLOWED, ids=lambda value: str(value))
def test_every_allowed_transition_moves_the_state_and_writes_one_audit_entry(
    db: Database, source: CampaignState, action: Action, target: CampaignState
) -> None:
    with db.session() as session:
        campaign = make_campaign(session, source)
        add_variant(session, campaign)

        transition(session, campaign, action, actor="ana", comment="looks right", detail={"n": 3}, now=NOW)

    with db.session() as session:
        assert session.scalars(select(Campaign.state)).one() is target
        assert audit_rows(session) == [("ana", action.value, source.value, target.value, "looks right", {"n": 3}, NOW)]


@pytest.mark.parametrize(
    ("state", "action", "allowed"),
    [
        (S.DRAFT, Action.APPROVE, "plan, cancel"),
        (S.PLANNED, Action.SUBMIT, "draft, cancel"),
        (S.DRAFTED, Action.APPROVE, "submit, cancel"),
        (S.IN_REVIEW, Action.SCHEDULE, "approve, request_changes, reject, cancel"),
        (S.CHANGES_REQUESTED, Action.APPROVE, "submit, redraft, cancel"),
        (S.APPROVED, Action.START, "schedule, cancel"),
        (S.SCHEDULED, Action.FINISH, "start, cancel"),
        (S.SENDING, Action.CANCEL, "finish"),
        (S.SENT, Action.CANCEL, "measure"),
        (S.MEASURED, Action.MEASURE, "none"),
        (S.REJECTED, Action.SUBMIT, "none"),
        (S.CANCELLED, Action.CANCEL, "none"),
    ],
)
def test_a_refused_transition_names_the_state_and_the_allowed_actions_and_changes_nothing(
    db: Database, state: CampaignState, action: Action, allowed: str
) -> None:
    with db.session() as session:
        campaign = make_campaign(session, state)

        message = f"cannot {action} campaign 'c1': it is {state}; allowed: {allowed}"
        with pytest.raises(Conflict, match=f"^{message}$"):
            transition(session, campaign, action, actor="ana", now=NOW)

        assert campaign.state is state
        assert audit_rows(session) == []


@pytest.mark.parametrize("action", [Action.REJECT, Action.REQUEST_CHANGES])
@pytest.mark.parametrize("comment", [None, "", "   "])
def test_reject_and_request_changes_need_a_comment(db: Database, action: Action, comment: str | None) -> None:
    with db.session() as session:
        campaign = make_campaign(session, S.IN_REVIEW)

        with pytest.raises(ValidationFailed, match=f"^{action} needs a comment saying why$"):
            transition(session, campaign, action, actor="bo", comment=comment, now=NOW)

        assert campaign.state is S.IN_REVIEW
        assert audit_rows(session) == []


def test_a_rejection_records_its_comment(db: Database) -> None:
    with db.session() as session:
        campaign = make_campaign(session, S.IN_REVIEW)

        transition(session, campaign, Action.REJECT, actor="bo", comment="off-brand tone", now=NOW)

        assert audit_rows(session) == [("bo", "reject", "in_review", "rejected", "off-brand tone", {}, NOW)]


def test_approval_is_refused_while_a_variant_is_blocked_by_its_guardrail_report(db: Database) -> None:
    with db.session() as session:
        campaign = make_campaign(session, S.IN_REVIEW)
        add_variant(session, campaign, "v1")
        add_variant(session, campaign, "v2", blocked=True)

        message = "cannot approve campaign 'c1': blocked by their guardrail reports: subscribers_month_to_month/v2"
        with pytest.raises(Conflict, match=f"^{message}$"):
            transition(session, campaign, Action.APPROVE, actor="bo", now=NOW)

        assert campaign.state is S.IN_REVIEW
        assert audit_rows(session) == []


def test_approval_is_refused_without_variants(db: Database) -> None:
    with db.session() as session:
        campaign = make_campaign(session, S.IN_REVIEW)

        with pytest.raises(Conflict, match=r"^cannot approve campaign 'c1': it has no variants$"):
            transition(session, campaign, Action.APPROVE, actor="bo", now=NOW)


def test_a_transition_raced_by_another_transaction_is_refused(db: Database) -> None:
    with db.session() as session:
        make_campaign(session, S.IN_REVIEW)
    with db.session() as first, db.session() as second:
        mine = first.scalars(select(Campaign)).one()
        theirs = second.scalars(select(Campaign)).one()
        transition(second, theirs, Action.REJECT, actor="bo", comment="no", now=NOW)
        second.commit()

        with pytest.raises(Conflict, match=r"^campaign 'c1' changed while you looked at it: reload it and try again$"):
            transition(first, mine, Action.CANCEL, actor="ana", now=NOW)


def test_a_trigger_campaign_is_approved_once_and_then_never_scheduled(db: Database) -> None:
    with db.session() as session:
        campaign = make_campaign(session, S.IN_REVIEW, kind=CampaignKind.TRIGGER)
        add_variant(session, campaign)

        transition(session, campaign, Action.APPROVE, actor="bo", now=NOW)

        assert campaign.state is S.APPROVED
        assert allowed_actions(campaign) == (Action.CANCEL,)
        for action in (Action.SCHEDULE, Action.START, Action.APPROVE):
            message = f"cannot {action} campaign 'c1': it is approved; allowed: cancel"
            with pytest.raises(Conflict, match=f"^{message}$"):
                transition(session, campaign, action, actor="bo", now=NOW)
        assert campaign.state is S.APPROVED


def test_a_trigger_campaign_can_be_turned_off(db: Database) -> None:
    with db.session() as session:
        campaign = make_campaign(session, S.APPROVED, kind=CampaignKind.TRIGGER)

        transition(session, campaign, Action.CANCEL, actor="bo", comment="season over", now=NOW)

        assert campaign.state is S.CANCELLED
