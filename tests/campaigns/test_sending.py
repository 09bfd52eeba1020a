"""The send pipeline: every treatment customer gets at most one message, recorded before the provider is called;
checks at send time block (with the rule) or defer (to the exact instant); provider receipts are recorded and
only transient refusals are sent again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.brand import import_brand
from agents.layout import html_from_text
from agents.schemas import Draft, UsageSummary
from campaigns.scheduled import run_retention
from campaigns.sending import BatchResult, finish_if_done, send_batch, start_sending, unsettled
from channels.outbox import OutboxEmailSender, OutboxSmsSender
from channels.ports import OutboundEmail, OutboundSms, ReceiptStatus, SendReceipt
from core.db import Database
from core.errors import Conflict, ServiceUnavailable
from core.models import (
    Assignment,
    AuditEntry,
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignVariant,
    Channel,
    Consent,
    ConsentBasis,
    ConsentStatus,
    Customer,
    Message,
    MessageStatus,
    OutboxMessage,
    Provider,
    Suppression,
    SuppressionReason,
)
from core.settings import Settings
from guardrails.report import Report
from guardrails.service import check
from nudge.commands.creative import SAMPLE_BRAND
from tests.campaigns.test_drafting import BODY
from tests.campaigns.test_service import reviewed, scored_customers
from tests.nudge.test_check_command import FOOTER

NOW = datetime(2026, 11, 18, 16, 0, tzinfo=UTC)  # 11:00 in New York
SETTINGS = Settings(public_base_url="https://fablewave.example.com", signing_secret=SecretStr("s" * 32))
KEY = "retention-2026-11"
SEGMENT = "fiber-m2m"
SMS_TEXT = "{{brand_name}}: {{first_name}}, take {{offer.name}} with code {{offer.code}}: {{offer.url}} {{sms_opt_out}}"


def email_content(body: str = BODY) -> dict[str, Any]:
    """A finished e-mail draft as a campaign variant stores it."""
    text = f"{body}\n\n{FOOTER}"
    draft = Draft(
        subject="A thank-you from us, {{first_name}}",
        preheader="Your offer: {{offer.name}}, code {{offer.code}}.",
        body_text=text,
        body_html=html_from_text(text),
        offer_codes=("LOYAL20",),
        variant="v1",
        angle="value",
        channel=Channel.EMAIL,
        attempts=1,
        usage=UsageSummary(),
    )
    return draft.model_dump(mode="json")


def sms_content() -> dict[str, Any]:
    draft = Draft(
        sms_text=SMS_TEXT,
        offer_codes=("LOYAL20",),
        variant="v1",
        angle="value",
        channel=Channel.SMS,
        attempts=1,
        usage=UsageSummary(),
    )
    return draft.model_dump(mode="json")


def add_customer(
    session: Session,
    number: int,
    *,
    consent: bool = True,
    first_name: str = "Ada",
    time_zone: str = "America/New_York",
) -> Customer:
    customer = Customer(
        id=number,
        external_id=f"c{number}",
        email=f"customer{number}@example.com",
        phone=f"+1212555{number:04d}",
        first_name=first_name,
        time_zone=time_zone,
        country="US",
        region="NY",
    )
    session.add(customer)
    session.flush()
    if consent:
        for channel in Channel:
            session.add(
                Consent(
                    customer_id=number,
                    channel=channel,
                    status=ConsentStatus.GRANTED,
                    basis=ConsentBasis.EXPRESS_WRITTEN,
                    source="test",
                    recorded_at=NOW - timedelta(days=30),
                )
            )
    return customer


def add_campaign(
    session: Session,
    *,
    channel: Channel = Channel.EMAIL,
    state: CampaignState = CampaignState.SENDING,
    key: str = KEY,
    kind: CampaignKind = CampaignKind.RETENTION,
    content: dict[str, Any] | None = None,
    approved: bool = True,
) -> Campaign:
    campaign = Campaign(
        key=key,
        name=key,
        kind=kind,
        state=state,
        channel=channel,
        salt="salt",
        scheduled_at=NOW - timedelta(minutes=5),
        created_by="test",
    )
    session.add(campaign)
    session.flush()
    session.add(
        CampaignVariant(
            campaign_id=campaign.id,
            segment=SEGMENT,
            variant="v1",
            channel=channel,
            content=content or (sms_content() if channel is Channel.SMS else email_content()),
            report=Report(checked_at=NOW - timedelta(days=1)).model_dump(mode="json"),
            blocked=False,
            approved_at=NOW - timedelta(days=1) if approved else None,
            approved_by="marketer" if approved else None,
        )
    )
    return campaign


def seed(
    db: Database,
    customers: Sequence[int] = (1, 2, 3),
    *,
    holdout: Sequence[int] = (),
    channel: Channel = Channel.EMAIL,
    state: CampaignState = CampaignState.SENDING,
    approved: bool = True,
    content: dict[str, Any] | None = None,
) -> int:
    """The sample brand's catalog, customers with consent, a campaign with one approved variant, assignments."""
    with db.session() as session:
        import_brand(session, SAMPLE_BRAND, store=None)
        campaign = add_campaign(session, channel=channel, state=state, approved=approved, content=content)
        for number in (*customers, *holdout):
            add_customer(session, number)
            arm = "holdout" if number in holdout else "v1"
            session.add(
                Assignment(campaign_id=campaign.id, customer_id=number, segment=SEGMENT, arm=arm, bucket=number)
            )
        return campaign.id


@dataclass
class ScriptedSender:
    """The outbox sender, except for the addresses given a receipt status; records each batch's message keys."""

    inner: Any
    script: dict[str, SendReceipt] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    provider: Provider = Provider.OUTBOX
    max_batch: int = 1000

    def send_batch(self, messages: Sequence[Any]) -> list[SendReceipt]:
        self.calls.append([message.message_key for message in messages])
        passed = [message for message in messages if _address(message) not in self.script]
        accepted = iter(self.inner.send_batch(passed))
        return [self._scripted(message) or next(accepted) for message in messages]

    def _scripted(self, message: Any) -> SendReceipt | None:
        receipt = self.script.get(_address(message))
        return None if receipt is None else SendReceipt(message.message_key, **_fields(receipt))


def _address(message: OutboundEmail | OutboundSms) -> str:
    return message.to_address if isinstance(message, OutboundEmail) else message.to_phone


def _fields(receipt: SendReceipt) -> dict[str, Any]:
    return {
        "status": receipt.status,
        "error": receipt.error,
        "error_code": receipt.error_code,
        "retry_after": receipt.retry_after,
        "opted_out": receipt.opted_out,
    }


def messages(db: Database) -> list[tuple[Any, ...]]:
    with db.session() as session:
        query = select(
            Message.idempotency_key,
            Message.customer_id,
            Message.status,
            Message.variant,
            Message.address,
            Message.attempts,
            Message.error,
            Message.segments,
            Message.cost,
            Message.sent_at,
        ).order_by(Message.customer_id)
        return [tuple(row) for row in session.execute(query)]


def outbox_count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


def send(db: Database, campaign_id: int, customers: Sequence[int], **senders: Any) -> BatchResult:
    with db.session() as session:
        return send_batch(session, SETTINGS, campaign_id, customers, NOW, **senders)


# --- start, send, finish -----------------------------------------------------------------------------------------


def test_a_due_campaign_starts_and_returns_its_treatment_customers_in_batches(db: Database) -> None:
    campaign_id = seed(db, (1, 2, 3), holdout=(4,), state=CampaignState.SCHEDULED)

    with db.session() as session:
        batches = start_sending(session, SETTINGS.model_copy(update={"send_batch_size": 2}), campaign_id, NOW)

    assert batches == [[1, 2], [3]]
    with db.session() as session:
        assert session.get(Campaign, campaign_id).state is CampaignState.SENDING  # type: ignore[union-attr]
        entry = session.scalars(select(AuditEntry)).one()
        assert (entry.actor, entry.action, entry.from_state, entry.to_state) == (
            "system:sending",
            "start",
            "scheduled",
            "sending",
        )


def test_a_campaign_not_yet_due_does_not_start(db: Database) -> None:
    campaign_id = seed(db, (1,), state=CampaignState.SCHEDULED)

    with db.session() as session, pytest.raises(Conflict, match="not yet due"):
        start_sending(session, SETTINGS, campaign_id, NOW - timedelta(hours=1))

    with db.session() as session:
        assert session.get(Campaign, campaign_id).state is CampaignState.SCHEDULED  # type: ignore[union-attr]


def test_a_batch_sends_each_treatment_customer_one_email_into_the_outbox(db: Database) -> None:
    campaign_id = seed(db, (1, 2, 3), holdout=(4,))

    result = send(db, campaign_id, [1, 2, 3, 4])

    assert result == BatchResult(sent=3, skipped=1)
    assert messages(db) == [
        (f"{KEY}:{n}:email", n, MessageStatus.SENT, "v1", f"customer{n}@example.com", 1, None, None, None, NOW)
        for n in (1, 2, 3)
    ]
    with db.session() as session:
        rows = session.execute(select(Message, OutboxMessage).join(OutboxMessage)).all()
        assert len(rows) == 3
        message, outbox = rows[0]
        assert message.provider is Provider.OUTBOX
        assert message.provider_message_id == f"outbox-{outbox.id}"
        assert outbox.to_address == "customer1@example.com"
        assert outbox.subject == "A thank-you from us, Ada"
        assert "code LOYAL20" in (outbox.body_text or "")
        assert "https://fablewave.example.com/o/LOYAL20" in (outbox.body_text or "")
        assert outbox.headers["List-Unsubscribe"].startswith("<https://fablewave.example.com/u/")
        assert outbox.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_an_sms_batch_records_segments_and_cost(db: Database) -> None:
    campaign_id = seed(db, (1,), channel=Channel.SMS)

    result = send(db, campaign_id, [1])

    assert result == BatchResult(sent=1)
    [row] = messages(db)
    assert row[:7] == (f"{KEY}:1:sms", 1, MessageStatus.SENT, "v1", "+12125550001", 1, None)
    assert (row[7], row[8]) == (1, Decimal("0.008300"))
    with db.session() as session:
        text = session.scalars(select(OutboxMessage.sms_text)).one()
    assert text is not None
    assert text.startswith("Fablewave: Ada, take 20% off the monthly bill for 3 months")


def test_running_the_same_batch_again_sends_nothing_new(db: Database) -> None:
    campaign_id = seed(db, (1, 2, 3))
    send(db, campaign_id, [1, 2, 3])
    before = messages(db)

    result = send(db, campaign_id, [1, 2, 3])

    assert result == BatchResult(skipped=3)
    assert messages(db) == before
    assert outbox_count(db) == 3


def test_holdout_customers_never_get_a_message(db: Database) -> None:
    campaign_id = seed(db, (), holdout=(4, 5))

    result = send(db, campaign_id, [4, 5])

    assert result == BatchResult(skipped=2)
    assert messages(db) == []


def test_the_row_is_committed_before_the_provider_is_called(db: Database) -> None:
    campaign_id = seed(db, (1,))
    seen: list[tuple[Any, ...]] = []

    class Peeking(OutboxEmailSender):
        def send_batch(self, batch: Sequence[OutboundEmail]) -> list[SendReceipt]:
            seen.extend(messages(db))  # another connection: sees only what is committed
            return super().send_batch(batch)

    with db.session() as session:
        send_batch(session, SETTINGS, campaign_id, [1], NOW, email_sender=Peeking(session))

    assert [(row[0], row[2], row[5]) for row in seen] == [(f"{KEY}:1:email", MessageStatus.PENDING, 0)]


def test_a_crash_after_the_provider_call_is_not_sent_again_by_the_batch_and_holds_the_campaign(db: Database) -> None:
    campaign_id = seed(db, (1,))

    class Crashing(OutboxEmailSender):
        def send_batch(self, batch: Sequence[OutboundEmail]) -> list[SendReceipt]:
            super().send_batch(batch)
            raise RuntimeError("worker lost")

    with db.session() as session, pytest.raises(RuntimeError):
        send_batch(session, SETTINGS, campaign_id, [1], NOW, email_sender=Crashing(session))

    result = send(db, campaign_id, [1])

    assert result == BatchResult(skipped=1)
    assert [(row[2], row[5], row[6]) for row in messages(db)] == [(MessageStatus.PENDING, 0, None)]
    with db.session() as session:
        pending = session.scalars(select(Message.message_key)).one()
        assert unsettled(session, KEY) == [pending]
        assert finish_if_done(session, campaign_id, NOW) is False  # campaigns.reconcile settles it first


def test_a_provider_retry_is_left_pending_raises_and_only_it_is_sent_again(db: Database) -> None:
    campaign_id = seed(db, (1, 2, 3))
    retry = SendReceipt("", ReceiptStatus.RETRY, error="HTTP 503", retry_after=5.0)

    with db.session() as session:
        first = ScriptedSender(OutboxEmailSender(session), {"customer2@example.com": retry})
        with pytest.raises(ServiceUnavailable, match="1 message\\(s\\) refused for now") as raised:
            send_batch(session, SETTINGS, campaign_id, [1, 2, 3], NOW, email_sender=first)

    assert raised.value.details == {"sent": 2, "retry": 1, "rejected": 0, "retry_after": 5.0}

    assert [(row[1], row[2], row[5], row[6]) for row in messages(db)] == [
        (1, MessageStatus.SENT, 1, None),
        (2, MessageStatus.PENDING, 1, "retry: HTTP 503"),
        (3, MessageStatus.SENT, 1, None),
    ]
    with db.session() as session:
        second = ScriptedSender(OutboxEmailSender(session))
        result = send_batch(session, SETTINGS, campaign_id, [1, 2, 3], NOW, email_sender=second)

    assert result == BatchResult(sent=1, skipped=2)
    assert second.calls == [[first.calls[0][1]]]  # the same message key, only that one
    assert [(row[1], row[2], row[5], row[6]) for row in messages(db)] == [
        (1, MessageStatus.SENT, 1, None),
        (2, MessageStatus.SENT, 2, None),
        (3, MessageStatus.SENT, 1, None),
    ]
    assert outbox_count(db) == 3


def test_a_rejection_is_recorded_and_never_retried(db: Database) -> None:
    campaign_id = seed(db, (1, 2))
    rejected = SendReceipt("", ReceiptStatus.REJECTED, error="Does not contain a valid address.", error_code="400")

    with db.session() as session:
        sender = ScriptedSender(OutboxEmailSender(session), {"customer2@example.com": rejected})
        result = send_batch(session, SETTINGS, campaign_id, [1, 2], NOW, email_sender=sender)
    again = send(db, campaign_id, [1, 2])

    assert result == BatchResult(sent=1, rejected=1)
    assert again == BatchResult(skipped=2)
    assert [(row[1], row[2], row[5], row[6]) for row in messages(db)] == [
        (1, MessageStatus.SENT, 1, None),
        (2, MessageStatus.REJECTED, 1, "400: Does not contain a valid address."),
    ]


def test_an_opted_out_recipient_is_rejected_and_suppressed(db: Database) -> None:
    campaign_id = seed(db, (1, 2), channel=Channel.SMS)
    stop = SendReceipt("", ReceiptStatus.REJECTED, error="unsubscribed recipient", error_code="21610", opted_out=True)

    with db.session() as session:
        sender = ScriptedSender(OutboxSmsSender(session), {"+12125550002": stop})
        result = send_batch(session, SETTINGS, campaign_id, [1, 2], NOW, sms_sender=sender)

    assert result == BatchResult(sent=1, rejected=1)
    assert [(row[1], row[2], row[6]) for row in messages(db)] == [
        (1, MessageStatus.SENT, None),
        (2, MessageStatus.REJECTED, "21610: unsubscribed recipient"),
    ]
    with db.session() as session:
        suppression = session.scalars(select(Suppression)).one()
        assert (suppression.channel, suppression.address, suppression.reason, suppression.source) == (
            Channel.SMS,
            "+12125550002",
            SuppressionReason.STOP_KEYWORD,
            "outbox:21610",
        )


# --- send-time checks ----------------------------------------------------------------------------------------------


def test_an_sms_at_23_local_is_deferred_to_08_local_with_no_row_written(db: Database) -> None:
    campaign_id = seed(db, (1,), channel=Channel.SMS)
    eleven_pm_new_york = datetime(2026, 11, 19, 4, 0, tzinfo=UTC)

    with db.session() as session:
        result = send_batch(session, SETTINGS, campaign_id, [1], eleven_pm_new_york)

    assert result == BatchResult(deferred={"2026-11-19T13:00:00+00:00": [1]})
    assert messages(db) == []


def test_suppression_and_missing_consent_block_with_the_rule_and_a_full_cap_defers(db: Database) -> None:
    campaign_id = seed(db, (1, 2))
    earlier = NOW - timedelta(hours=2)
    with db.session() as session:
        add_customer(session, 3, consent=False)
        session.add(Assignment(campaign_id=campaign_id, customer_id=3, segment=SEGMENT, arm="v1", bucket=3))
        session.add(Suppression(channel=Channel.EMAIL, address="customer2@example.com", reason="bounced", source="t"))
        session.add(
            Message(
                message_key="earlier",
                idempotency_key="other:1:email",
                campaign_key="other",
                customer_id=1,
                channel=Channel.EMAIL,
                address="customer1@example.com",
                provider=Provider.OUTBOX,
                status=MessageStatus.SENT,
                sent_at=earlier,
            )
        )

    result = send(db, campaign_id, [1, 2, 3])

    assert result == BatchResult(
        blocked={"send.suppressed": 1, "send.consent.missing": 1},
        deferred={(earlier + timedelta(hours=24)).isoformat(): [1]},
    )
    assert [(row[0], row[2], row[5], row[6]) for row in messages(db) if row[0].startswith(KEY)] == [
        (f"{KEY}:2:email", MessageStatus.BLOCKED, 0, "send.suppressed"),
        (f"{KEY}:3:email", MessageStatus.BLOCKED, 0, "send.consent.missing"),
    ]
    assert outbox_count(db) == 0


def test_the_rendered_check_runs_once_per_name_and_jurisdiction_in_a_batch_and_still_sees_each_name(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = seed(db, (1, 2, 3, 4))
    with db.session() as session:
        for number, name in ((1, "Ada"), (2, "Ada"), (3, "Verizon"), (4, "Ada")):
            session.get(Customer, number).first_name = name  # type: ignore[union-attr]
        session.get(Customer, 4).region = "ON"  # type: ignore[union-attr]  # another jurisdiction
    checked: list[str | None] = []

    def counting(message: Any, context: Any) -> Any:
        checked.append(context.recipient.first_name)
        return check(message, context)

    monkeypatch.setattr("campaigns.sending.check", counting)

    result = send(db, campaign_id, [1, 2, 3, 4])

    assert sorted(checked, key=str) == ["Ada", "Ada", "Verizon"]  # Ada in NY once, Ada in ON once, Verizon once
    assert (result.sent, result.blocked) == (3, {"brand.banned_word": 1})


def test_a_rendered_message_the_guardrails_block_is_blocked_with_the_rule_ids(db: Database) -> None:
    campaign_id = seed(db, (1,))
    with db.session() as session:
        session.get(Customer, 1).first_name = "Verizon"  # type: ignore[union-attr]  # a banned word, once rendered

    result = send(db, campaign_id, [1])

    assert result == BatchResult(blocked={"brand.banned_word": 1})
    assert [(row[2], row[6]) for row in messages(db)] == [(MessageStatus.BLOCKED, "brand.banned_word")]
    assert outbox_count(db) == 0


def test_a_customer_whose_variant_is_not_approved_is_blocked_with_the_reason(db: Database) -> None:
    campaign_id = seed(db, (1,), approved=False)

    result = send(db, campaign_id, [1])

    assert result == BatchResult(blocked={"campaign.no_approved_variant": 1})
    assert [(row[2], row[4], row[6]) for row in messages(db)] == [
        (MessageStatus.BLOCKED, "customer1@example.com", "campaign.no_approved_variant")
    ]


def test_a_campaign_that_is_not_sending_sends_nothing(db: Database) -> None:
    campaign_id = seed(db, (1,), state=CampaignState.CANCELLED)

    with pytest.raises(Conflict, match="is cancelled, not sending"):
        send(db, campaign_id, [1])

    assert messages(db) == []


def test_the_campaign_finishes_once_nobody_is_left_and_not_before(db: Database) -> None:
    campaign_id = seed(db, (1, 2), holdout=(3,))
    send(db, campaign_id, [1])

    with db.session() as session:
        assert finish_if_done(session, campaign_id, NOW) is False
    send(db, campaign_id, [2])
    with db.session() as session:
        assert finish_if_done(session, campaign_id, NOW) is True
        assert session.get(Campaign, campaign_id).state is CampaignState.SENT  # type: ignore[union-attr]


# --- the scheduled retention run ------------------------------------------------------------------------------------


def test_the_monthly_run_plans_and_drafts_the_campaign_into_review_once(db: Database) -> None:
    scored_customers(db)
    month = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    drafted: list[str] = []

    def drafter(_db: Database, _settings: Settings, campaign: Campaign) -> list[Any]:
        drafted.append(campaign.key)
        return [reviewed()]

    with db.session() as session:
        campaign = run_retention(session, SETTINGS, month, drafter=drafter)
    with db.session() as session:
        again = run_retention(session, SETTINGS, month, drafter=drafter)
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()

    assert campaign is not None
    assert (campaign.key, campaign.state) == ("retention-2026-12", CampaignState.IN_REVIEW)
    assert again is None
    assert drafted == ["retention-2026-12"]
    assert actions == ["create", "plan", "draft", "submit"]
