"""The campaign services: creating, planning with hashed assignment, storing drafts and splitting variants,
reviewing, editing, scheduling and the status a marketer sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.layout import html_from_text
from agents.schemas import Draft, DraftSet, SegmentProfile, UsageSummary
from campaigns import repository, service
from campaigns.drafting import ReviewedDrafts
from core.db import Database
from core.errors import Conflict, ValidationFailed
from core.models import (
    Assignment,
    AuditEntry,
    Campaign,
    CampaignState,
    CampaignVariant,
    Channel,
    Consent,
    ConsentStatus,
    Customer,
    ModelKind,
    ModelVersion,
    Prediction,
    Subscription,
)
from core.settings import Settings
from experiments.assignment import HOLDOUT, arm_ranges
from guardrails.report import Finding, Report, Severity
from tests.agents.drafting_fakes import brief
from tests.campaigns.test_drafting import BODY, LOYAL20
from tests.campaigns.test_planning import AS_OF, STARTED, _customers
from tests.nudge.test_check_command import FOOTER

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
EXACT_ARMS = Settings(global_holdout_fraction=0)  # every target in the campaign's own split
SEGMENT = "subscribers_month_to_month"
SUBSCRIBERS = 40
SMS_ONLY = 4  # subscribers with no e-mail consent: targeted by SMS, not reachable on an e-mail campaign
BUYERS = 3  # valuable buyers at risk: targeted, but too few to draft a brief for


def scored_customers(db: Database) -> None:
    """``test_planning``'s three customers, 40 month-to-month subscribers at risk (p 0.31–0.505, $800 a month)
    and three buyers at risk with a high CLV."""
    _customers(db)
    with db.session() as session:
        versions = {version.kind: version for version in session.scalars(select(ModelVersion))}
        _buyers(session, versions)
        version = versions[ModelKind.CHURN_CONTRACTUAL]
        for index in range(SUBSCRIBERS):
            customer = Customer(external_id=f"m2m-{index}", email=f"m{index}@example.com", phone=f"+1212555{index:04d}")
            session.add(customer)
            session.flush()
            session.add(
                Subscription(
                    customer_id=customer.id,
                    plan="Month-to-month",
                    monthly_charge=800,
                    currency="USD",
                    started_at=STARTED,
                )
            )
            p = 0.31 + index / 200
            session.add(Prediction(model_version_id=version.id, customer_id=customer.id, as_of=AS_OF, value=p))
            channels = [Channel.SMS] if index < SMS_ONLY else list(Channel)
            for channel in channels:
                session.add(Consent(customer_id=customer.id, channel=channel, status=ConsentStatus.GRANTED, source="t"))


def _buyers(session: Session, versions: dict[ModelKind, ModelVersion]) -> None:
    for index in range(BUYERS):
        customer = Customer(external_id=f"buyer-{index}", email=f"buyer{index}@example.com")
        session.add(customer)
        session.flush()
        session.add(Consent(customer_id=customer.id, channel=Channel.EMAIL, status=ConsentStatus.GRANTED, source="t"))
        for kind, value in ((ModelKind.CHURN_NONCONTRACTUAL, 0.7), (ModelKind.CLV, 2000.0)):
            session.add(
                Prediction(model_version_id=versions[kind].id, customer_id=customer.id, as_of=AS_OF, value=value)
            )


def create(session: Session, key: str = "winter", budget: str | None = "1000") -> Campaign:
    return service.create_campaign(
        session,
        key=key,
        name="Winter retention",
        channel=Channel.EMAIL,
        budget=None if budget is None else Decimal(budget),
        holdout_fraction=0.2,
        actor="ana",
        now=NOW,
    )


def draft(variant: str, body: str = BODY) -> Draft:
    text = f"{body}\n\n{FOOTER}"
    return Draft(
        body_text=text,
        body_html=html_from_text(text),
        subject="A thank-you from us, {{first_name}}",
        preheader="Your offer: {{offer.name}}, code {{offer.code}}.",
        offer_codes=("LOYAL20",),
        variant=variant,
        angle="value",
        channel=Channel.EMAIL,
        attempts=1,
        usage=UsageSummary(),
    )


BLOCK = Finding(rule="content.banned_claim", severity=Severity.BLOCK, message="a guarantee", field="body_text")


def report(*, blocked: bool = False) -> Report:
    return Report.of([BLOCK] if blocked else [], checked_at=NOW)


def reviewed(
    segment: str = SEGMENT, variants: tuple[str, ...] = ("v1", "v2"), blocked: tuple[str, ...] = ()
) -> ReviewedDrafts:
    """A brief's drafts and reports as ``draft_briefs`` returns them; ``blocked`` variants have a blocking finding."""
    profile = SegmentProfile(name=segment, size=36)
    draft_set = DraftSet(
        brief=brief(offers=(LOYAL20,), campaign_key="winter", segment=profile, n_variants=len(variants)),
        drafts=tuple(draft(variant) for variant in variants),
        prompt_version="drafting-2",
        retrieval_query="q",
        retrieved_ids=(),
    )
    reports = {variant: report(blocked=variant in blocked) for variant in variants}
    return ReviewedDrafts(draft_set=draft_set, reports=reports)


def assignments(session: Session) -> list[Assignment]:
    return list(session.scalars(select(Assignment).order_by(Assignment.customer_id)))


def audit(session: Session) -> list[tuple[str, str, str | None, str | None, str | None]]:
    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
    return [(e.actor, e.action, e.from_state, e.to_state, e.comment) for e in entries]


def planned(db: Database) -> None:
    scored_customers(db)
    with db.session() as session:
        campaign = create(session)
        campaign.salt = "pinned"  # random in production; pinned so every arm is certain to be non-empty here
        service.plan_campaign(session, EXACT_ARMS, campaign, actor="ana", now=NOW)


# --- create ---------------------------------------------------------------------------------------------------


def test_a_new_campaign_is_a_draft_with_a_random_salt_and_a_create_entry(db: Database) -> None:
    with db.session() as session:
        first, second = create(session, "a"), create(session, "b")

        assert (first.state, first.kind, first.budget, first.created_by) == (
            CampaignState.DRAFT,
            "retention",
            Decimal(1000),
            "ana",
        )
        assert len(first.salt) == 32
        assert first.salt != second.salt
        assert audit(session) == [("ana", "create", None, "draft", None)] * 2


def test_a_taken_key_is_refused(db: Database) -> None:
    with db.session() as session:
        create(session)
        with pytest.raises(Conflict, match=r"^campaign 'winter' already exists$"):
            create(session)


def test_invalid_campaign_fields_are_all_reported(db: Database) -> None:
    with db.session() as session, pytest.raises(ValidationFailed) as refused:
        service.create_campaign(
            session,
            key="no spaces",
            name="x",
            channel=Channel.EMAIL,
            budget=Decimal(-1),
            holdout_fraction=1.0,
            actor="ana",
            now=NOW,
        )

    assert refused.value.details == [
        "key 'no spaces': 1–64 letters, digits and . _ : -, starting with a letter or digit",
        "budget must not be negative, not -1",
        "holdout_fraction must be in [0, 1), not 1.0",
    ]


# --- plan -----------------------------------------------------------------------------------------------------


def test_planning_assigns_every_reachable_target_of_a_draftable_segment_to_treatment_or_holdout(db: Database) -> None:
    planned(db)

    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        rows = assignments(session)
        held = arm_ranges([("treatment", 1.0)], 0.2)[0].stop

        assert campaign.state is CampaignState.PLANNED
        assert len(rows) == SUBSCRIBERS - SMS_ONLY
        assert {row.segment for row in rows} == {SEGMENT}
        assert all((row.arm == HOLDOUT) == (row.bucket < held) for row in rows)
        assert {row.arm for row in rows} == {HOLDOUT, "treatment"}
        assert all(row.expected_value is not None and row.expected_value > 0 for row in rows)
        assert campaign.plan["assignment"] == {
            "not_reachable": SMS_ONLY,
            "segment_too_small": BUYERS,  # a population this small gets no brief, so it could never be sent
            "assigned": SUBSCRIBERS - SMS_ONLY,
            "holdout": sum(row.arm == HOLDOUT for row in rows),
            "global_holdout": 0,
        }
        assert campaign.plan["production"]["n"] == SUBSCRIBERS + BUYERS
        assert set(campaign.plan) == {"production", "unconstrained", "funnel", "assignment", "curve"}
        curve = campaign.plan["curve"]
        assert curve[0] == [0, 0.0]  # JSON: (N, expected profit of the best N) pairs, from nobody targeted
        assert max(profit for _, profit in curve) == pytest.approx(campaign.plan["unconstrained"]["expected_profit"])
        assert audit(session)[-1] == ("ana", "plan", "draft", "planned", None)


def test_planning_twice_is_refused_and_assignments_stay_as_they_were(db: Database) -> None:
    planned(db)
    with db.session() as session:
        before = [(row.customer_id, row.arm, row.bucket) for row in assignments(session)]
        campaign = repository.get_campaign(session, "winter")

        with pytest.raises(Conflict, match=r"^cannot plan campaign 'winter': it is planned; allowed: draft, cancel$"):
            service.plan_campaign(session, EXACT_ARMS, campaign, actor="ana", now=NOW)

        assert [(row.customer_id, row.arm, row.bucket) for row in assignments(session)] == before


def test_a_customers_first_assignment_stands_when_it_is_inserted_again(db: Database) -> None:
    planned(db)
    with db.session() as session:
        first = assignments(session)[0]
        again = {
            "campaign_id": first.campaign_id,
            "customer_id": first.customer_id,
            "segment": "other",
            "arm": "v9",
            "bucket": 1,
            "expected_value": None,
            "assigned_at": NOW,
        }

        repository.insert_assignments(session, [again])
        session.expire_all()

        row = session.scalars(select(Assignment).where(Assignment.id == first.id)).one()
        assert (row.segment, row.arm, row.bucket) == (SEGMENT, first.arm, first.bucket)
        assert len(assignments(session)) == SUBSCRIBERS - SMS_ONLY


# --- drafts ---------------------------------------------------------------------------------------------------


def test_stored_drafts_become_variants_and_treated_customers_are_split_over_them_by_bucket(db: Database) -> None:
    planned(db)
    with db.session() as session:
        holdout_before = {row.customer_id for row in assignments(session) if row.arm == HOLDOUT}
        campaign = repository.get_campaign(session, "winter")

        service.store_drafts(session, campaign, [reviewed(blocked=("v2",))], actor="ana", now=NOW)

        variants = repository.variants(session, campaign.id)
        assert [(v.segment, v.variant, v.blocked) for v in variants] == [(SEGMENT, "v1", False), (SEGMENT, "v2", True)]
        assert variants[0].content == draft("v1").model_dump(mode="json")
        assert variants[1].report["findings"][0]["rule"] == "content.banned_claim"
        session.expire_all()
        ranges = {r.arm: r for r in arm_ranges([("v1", 1.0), ("v2", 1.0)], 0.2)}
        rows = assignments(session)
        assert {row.customer_id for row in rows if row.arm == HOLDOUT} == holdout_before
        assert all(ranges[row.arm].start <= row.bucket < ranges[row.arm].stop for row in rows)
        assert campaign.state is CampaignState.DRAFTED
        assert audit(session)[-1] == ("ana", "draft", "planned", "drafted", None)


def test_drafts_for_another_channel_are_refused(db: Database) -> None:
    planned(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        campaign.channel = Channel.SMS

        with pytest.raises(ValidationFailed, match=r"^drafts for email cannot be stored in the sms campaign 'winter'$"):
            service.store_drafts(session, campaign, [reviewed()], actor="ana", now=NOW)


def test_approval_is_refused_while_a_segment_has_no_variant(db: Database) -> None:
    planned(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        service.store_drafts(session, campaign, [reviewed("another_segment")], actor="ana", now=NOW)
        service.submit(session, campaign, actor="ana", now=NOW)

        message = f"cannot approve campaign 'winter': segments without a variant: {SEGMENT}"
        with pytest.raises(Conflict, match=f"^{message}$"):
            service.approve(session, campaign, actor="bo", now=NOW)


def test_a_blocked_variant_fixed_by_an_edit_lets_the_campaign_be_approved(db: Database) -> None:
    planned(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        service.store_drafts(session, campaign, [reviewed(blocked=("v2",))], actor="ana", now=NOW)
        service.submit(session, campaign, actor="ana", now=NOW)
        with pytest.raises(Conflict, match=r"blocked by their guardrail reports: subscribers_month_to_month/v2$"):
            service.approve(session, campaign, actor="bo", now=NOW)
        service.request_changes(session, campaign, actor="bo", comment="fix v2's claim", now=NOW)
        v2 = repository.variants(session, campaign.id)[1]
        edited = draft("v2", BODY.replace("thank you", "thanks")).model_dump(mode="json")

        service.edit_variant(session, v2, edited, report(), actor="ana", now=NOW)
        service.submit(session, campaign, actor="ana", now=NOW)
        service.approve(session, campaign, actor="bo", now=NOW + timedelta(hours=1))

        assert campaign.state is CampaignState.APPROVED
        assert [(v.blocked, v.approved_by, v.approved_at) for v in repository.variants(session, campaign.id)] == [
            (False, "bo", NOW + timedelta(hours=1))
        ] * 2
        assert audit(session)[-5:] == [
            ("ana", "submit", "drafted", "in_review", None),
            ("bo", "request_changes", "in_review", "changes_requested", "fix v2's claim"),
            ("ana", "edit", "changes_requested", "changes_requested", None),
            ("ana", "submit", "changes_requested", "in_review", None),
            ("bo", "approve", "in_review", "approved", None),
        ]
        edit = session.scalars(select(AuditEntry).where(AuditEntry.action == "edit")).one()
        assert edit.detail == {
            "segment": SEGMENT,
            "variant": "v2",
            "changed": ["body_html", "body_text"],
            "blocked": False,
        }


def test_an_edit_is_refused_once_the_campaign_is_approved(db: Database) -> None:
    planned(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        service.store_drafts(session, campaign, [reviewed()], actor="ana", now=NOW)
        service.submit(session, campaign, actor="ana", now=NOW)
        service.approve(session, campaign, actor="bo", now=NOW)
        v1 = repository.variants(session, campaign.id)[0]
        before = dict(v1.content)

        message = (
            "cannot edit campaign 'winter': it is approved; edits are allowed in changes_requested, drafted, in_review"
        )
        with pytest.raises(Conflict, match=f"^{message}$"):
            service.edit_variant(
                session, v1, draft("v1", BODY + " More.").model_dump(mode="json"), report(), actor="ana", now=NOW
            )

        assert v1.content == before


def test_an_edit_that_is_not_a_valid_draft_or_changes_the_variant_is_refused(db: Database) -> None:
    planned(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        service.store_drafts(session, campaign, [reviewed()], actor="ana", now=NOW)
        v1 = repository.variants(session, campaign.id)[0]

        with pytest.raises(ValidationFailed, match=r"^the edited content is not a valid draft$"):
            service.edit_variant(session, v1, {**v1.content, "body_text": "no footer"}, report(), actor="ana", now=NOW)
        with pytest.raises(ValidationFailed, match=r"^an edit cannot change variant$"):
            service.edit_variant(session, v1, draft("v2").model_dump(mode="json"), report(), actor="ana", now=NOW)


def test_a_redraft_replaces_the_variants_and_keeps_the_holdout(db: Database) -> None:
    planned(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        service.store_drafts(session, campaign, [reviewed()], actor="ana", now=NOW)
        holdout = {row.customer_id for row in assignments(session) if row.arm == HOLDOUT}
        service.submit(session, campaign, actor="ana", now=NOW)
        service.request_changes(session, campaign, actor="bo", comment="three angles", now=NOW)

        service.store_drafts(session, campaign, [reviewed(variants=("v1", "v2", "v3"))], actor="ana", now=NOW)

        session.expire_all()
        rows = assignments(session)
        assert [v.variant for v in repository.variants(session, campaign.id)] == ["v1", "v2", "v3"]
        assert {row.customer_id for row in rows if row.arm == HOLDOUT} == holdout
        assert {row.arm for row in rows} <= {HOLDOUT, "v1", "v2", "v3"}
        assert audit(session)[-1] == ("ana", "redraft", "changes_requested", "drafted", None)


# --- schedule, cancel, status ---------------------------------------------------------------------------------


def approved(db: Database) -> None:
    planned(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        service.store_drafts(session, campaign, [reviewed()], actor="ana", now=NOW)
        service.submit(session, campaign, actor="ana", now=NOW)
        service.approve(session, campaign, actor="bo", now=NOW)


def test_scheduling_sets_the_send_time_and_a_time_in_the_past_is_refused(db: Database) -> None:
    approved(db)
    at = NOW + timedelta(days=1)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        with pytest.raises(ValidationFailed, match=r"^cannot schedule campaign 'winter' in the past \(2026-11-01"):
            service.schedule(session, campaign, NOW - timedelta(days=1), actor="bo", now=NOW)

        service.schedule(session, campaign, at, actor="bo", now=NOW)

    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        assert (campaign.state, campaign.scheduled_at) == (CampaignState.SCHEDULED, at)
        entry = repository.audit_trail(session, campaign.id)[-1]
        assert (entry.action, entry.detail) == ("schedule", {"at": at.isoformat()})


def test_cancelling_a_scheduled_campaign_records_who_and_why(db: Database) -> None:
    approved(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        service.schedule(session, campaign, NOW + timedelta(days=1), actor="bo", now=NOW)

        service.cancel(session, campaign, actor="bo", comment="offer withdrawn", now=NOW)

        assert campaign.state is CampaignState.CANCELLED
        assert audit(session)[-1] == ("bo", "cancel", "scheduled", "cancelled", "offer withdrawn")


def test_rejecting_needs_a_comment_and_records_it(db: Database) -> None:
    approved(db)
    with db.session() as session:
        campaign = Campaign(
            key="other",
            name="x",
            kind="retention",
            state=CampaignState.IN_REVIEW,
            channel=Channel.EMAIL,
            salt="s",
            created_by="ana",
        )
        session.add(campaign)
        session.flush()
        with pytest.raises(ValidationFailed, match=r"^reject needs a comment saying why$"):
            service.reject(session, campaign, actor="bo", comment="", now=NOW)

        service.reject(session, campaign, actor="bo", comment="wrong audience", now=NOW)

        assert campaign.state is CampaignState.REJECTED


def test_the_status_shows_state_arms_variants_messages_and_the_audit_trail(db: Database) -> None:
    approved(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")

        status = service.campaign_status(session, campaign)

        arms = status.arms
        assert (status.key, status.state, status.channel, status.holdout_fraction) == (
            "winter",
            CampaignState.APPROVED,
            Channel.EMAIL,
            0.2,
        )
        assert set(arms) == {HOLDOUT, "v1", "v2"}
        assert sum(arms.values()) == SUBSCRIBERS - SMS_ONLY
        assert [(v.variant, v.blocked, v.approved_by) for v in status.variants] == [
            ("v1", False, "bo"),
            ("v2", False, "bo"),
        ]
        assert status.messages == {}
        assert [line.action for line in status.audit] == ["create", "plan", "draft", "submit", "approve"]
        assert status.audit[-1].actor == "bo"


def test_a_variant_row_is_unique_per_campaign_segment_and_variant(db: Database) -> None:
    planned(db)
    with db.session() as session:
        campaign = repository.get_campaign(session, "winter")
        service.store_drafts(session, campaign, [reviewed()], actor="ana", now=NOW)
        count = session.scalars(select(CampaignVariant)).all()

        assert len(count) == 2
