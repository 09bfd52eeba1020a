"""Stored events become outcomes, suppressions, consent records and keyword replies — each exactly once."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from channels.events import ParsedEvent, parse_sendgrid, parse_twilio_inbound, parse_twilio_status, store_events
from channels.keywords import SmsProgram, help_reply, start_reply, stop_reply
from channels.outcomes import REPLY_CAMPAIGN, ProcessResult, process_pending
from channels.ports import OutboundSms, ReceiptStatus, SendReceipt
from core.db import Database
from core.models import (
    Channel,
    Consent,
    ConsentBasis,
    ConsentPurpose,
    ConsentStatus,
    Customer,
    Message,
    MessageStatus,
    Outcome,
    OutcomeKind,
    Provider,
    ProviderEvent,
    Suppression,
    SuppressionReason,
)
from core.settings import Settings

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
EMAIL = "ann@example.com"
PHONE = "+15555550100"
PROGRAM = SmsProgram(brand_name="Fablewave", support_contact="fablewave.example.com/help")
SETTINGS = Settings(public_base_url="https://nudge.example.com")


@dataclass
class RecordingSmsSender:
    """An ``SmsSender`` that accepts everything and keeps what it was given."""

    provider: Provider = Provider.TWILIO
    max_batch: int = 100
    sent: list[OutboundSms] = field(default_factory=list)

    def send_batch(self, messages: Sequence[OutboundSms]) -> list[SendReceipt]:
        self.sent.extend(messages)
        return [
            SendReceipt(sms.message_key, ReceiptStatus.ACCEPTED, provider_message_id=f"SMreply{len(self.sent)}")
            for sms in messages
        ]


# --- given --------------------------------------------------------------------------------------------------


def add_customer(db: Database, external_id: str, *, email: str | None = EMAIL, phone: str | None = PHONE) -> int:
    with db.session() as session:
        customer = Customer(external_id=external_id, email=email, phone=phone)
        session.add(customer)
        session.flush()
        return customer.id


def add_message(
    db: Database,
    customer_id: int,
    key: str,
    channel: Channel,
    *,
    provider_message_id: str | None = None,
    created_at: datetime = NOW - timedelta(hours=1),
) -> int:
    with db.session() as session:
        message = Message(
            message_key=key,
            idempotency_key=f"spring:{customer_id}:{channel}:{key}",
            campaign_key="spring",
            customer_id=customer_id,
            channel=channel,
            address=EMAIL if channel is Channel.EMAIL else PHONE,
            provider=Provider.SENDGRID if channel is Channel.EMAIL else Provider.TWILIO,
            provider_message_id=provider_message_id,
            status=MessageStatus.SENT,
            sent_at=created_at,
            created_at=created_at,
        )
        session.add(message)
        session.flush()
        return message.id


def grant(
    db: Database, customer_id: int, purpose: ConsentPurpose, basis: ConsentBasis, channel: Channel = Channel.SMS
) -> None:
    with db.session() as session:
        session.add(
            Consent(
                customer_id=customer_id,
                channel=channel,
                status=ConsentStatus.GRANTED,
                purpose=purpose,
                basis=basis,
                source="signup_form",
                recorded_at=NOW - timedelta(days=30),
            )
        )


def sendgrid(**fields: Any) -> dict[str, Any]:
    return {"email": EMAIL, "timestamp": 1_795_000_000, "sg_message_id": "sgm1.filter0001", **fields}


def store(db: Database, events: list[ParsedEvent], received_at: datetime = NOW) -> None:
    with db.session() as session:
        store_events(session, events, received_at=received_at)


def store_sendgrid(db: Database, *items: dict[str, Any]) -> None:
    store(db, parse_sendgrid(json.dumps(list(items)).encode()))


def store_status(db: Database, sid: str, status: str, key: str | None = "sms-1", **extra: str) -> None:
    store(db, [parse_twilio_status({"MessageSid": sid, "MessageStatus": status, "To": PHONE, **extra}, key)])


def store_inbound(db: Database, sid: str, body: str, phone: str = PHONE, received_at: datetime = NOW) -> None:
    store(
        db, [parse_twilio_inbound({"MessageSid": sid, "From": phone, "To": "+15555550999", "Body": body})], received_at
    )


def process(
    db: Database, sender: RecordingSmsSender | None = None, program: SmsProgram | None = PROGRAM
) -> ProcessResult:
    with db.session() as session:
        return process_pending(session, SETTINGS, NOW, sender, program=program)


# --- then ---------------------------------------------------------------------------------------------------


def outcomes(db: Database) -> list[tuple[int, str, OutcomeKind]]:
    """(message id, provider event id, kind) of every outcome, in event order."""
    with db.session() as session:
        query = (
            select(Outcome.message_id, ProviderEvent.event_id, Outcome.kind)
            .join(ProviderEvent)
            .order_by(ProviderEvent.id)
        )
        return [(message_id, event_id, kind) for message_id, event_id, kind in session.execute(query)]


def suppressions(db: Database) -> list[tuple[Channel, str, SuppressionReason, str]]:
    with db.session() as session:
        rows = session.scalars(select(Suppression).order_by(Suppression.id))
        return [(row.channel, row.address, row.reason, row.source) for row in rows]


def consents(
    db: Database, source: str = "sms_keyword"
) -> list[tuple[int, ConsentStatus, ConsentPurpose, ConsentBasis]]:
    with db.session() as session:
        rows = session.scalars(select(Consent).where(Consent.source == source).order_by(Consent.id))
        return [(row.customer_id, row.status, row.purpose, row.basis) for row in rows]


def pending(db: Database) -> int:
    with db.session() as session:
        return len(session.scalars(select(ProviderEvent).where(ProviderEvent.processed_at.is_(None))).all())


# --- SendGrid -----------------------------------------------------------------------------------------------


@pytest.fixture
def email_message(db: Database) -> int:
    return add_message(db, add_customer(db, "u-1"), "mail-1", Channel.EMAIL, provider_message_id="sgm1")


def test_every_sendgrid_event_kind_becomes_its_outcome(db: Database, email_message: int) -> None:
    kinds = ["processed", "delivered", "deferred", "bounce", "dropped", "open", "click", "spamreport"]
    kinds += ["unsubscribe", "group_unsubscribe"]
    store_sendgrid(db, *[sendgrid(event=kind, sg_event_id=f"e-{kind}", message_key="mail-1") for kind in kinds])

    result = process(db)

    assert (result.events, result.outcomes, result.unmatched) == (10, 10, 0)
    assert sorted(outcomes(db)) == sorted(
        [
            (email_message, "e-processed", OutcomeKind.PROCESSED),
            (email_message, "e-delivered", OutcomeKind.DELIVERED),
            (email_message, "e-deferred", OutcomeKind.DEFERRED),
            (email_message, "e-bounce", OutcomeKind.BOUNCE),
            (email_message, "e-dropped", OutcomeKind.DROPPED),
            (email_message, "e-open", OutcomeKind.OPEN),
            (email_message, "e-click", OutcomeKind.CLICK),
            (email_message, "e-spamreport", OutcomeKind.SPAM_REPORT),
            (email_message, "e-unsubscribe", OutcomeKind.UNSUBSCRIBE),
            (email_message, "e-group_unsubscribe", OutcomeKind.UNSUBSCRIBE),
        ]
    )
    assert pending(db) == 0


def test_events_out_of_order_each_get_one_outcome_and_a_second_run_does_nothing(
    db: Database, email_message: int
) -> None:
    store_sendgrid(db, sendgrid(event="delivered", sg_event_id="d", message_key="mail-1"))
    store_sendgrid(db, sendgrid(event="click", sg_event_id="c", message_key="mail-1", url="https://x.io/a"))
    first = process(db)
    store_sendgrid(db, sendgrid(event="processed", sg_event_id="p", message_key="mail-1"))
    store_sendgrid(db, sendgrid(event="open", sg_event_id="o", message_key="mail-1", sg_machine_open=False))
    second = process(db)

    again = process(db)

    assert (first.outcomes, second.outcomes, again) == (2, 2, ProcessResult())
    assert [kind for _, _, kind in outcomes(db)] == [
        OutcomeKind.DELIVERED,
        OutcomeKind.CLICK,
        OutcomeKind.PROCESSED,
        OutcomeKind.OPEN,
    ]


def test_an_outcome_keeps_the_events_time_and_details(db: Database, email_message: int) -> None:
    store_sendgrid(
        db,
        sendgrid(event="open", sg_event_id="o", message_key="mail-1", sg_machine_open=True, useragent="Mozilla"),
        sendgrid(event="click", sg_event_id="c", message_key="mail-1", url="https://x.io/a", url_offset={"index": 0}),
    )

    process(db)

    with db.session() as session:
        rows = session.scalars(select(Outcome).order_by(Outcome.id)).all()
        assert [(row.occurred_at, row.data) for row in rows] == [
            (datetime.fromtimestamp(1_795_000_000, UTC), {"url": "https://x.io/a"}),  # stored in event id order
            (datetime.fromtimestamp(1_795_000_000, UTC), {"machine_open": True}),
        ]


def test_an_event_without_our_key_is_linked_by_the_sendgrid_message_id(db: Database, email_message: int) -> None:
    store_sendgrid(db, sendgrid(event="delivered", sg_event_id="d"))

    process(db)

    assert outcomes(db) == [(email_message, "d", OutcomeKind.DELIVERED)]


def test_an_event_for_an_unknown_message_is_kept_processed_without_an_outcome(
    db: Database, email_message: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="channels.outcomes")
    store_sendgrid(
        db,
        sendgrid(event="delivered", sg_event_id="k", message_key="nobody"),
        sendgrid(event="open", sg_event_id="n", sg_message_id="other.filter1"),
    )

    result = process(db)

    assert (result.events, result.outcomes, result.unmatched) == (2, 0, 2)
    assert outcomes(db) == []
    assert pending(db) == 0
    assert "no message has key 'nobody'" in caplog.text
    assert "it names no message of ours" in caplog.text


def test_an_email_event_naming_a_text_message_is_not_linked_to_it(db: Database) -> None:
    add_message(db, add_customer(db, "u-1"), "sms-1", Channel.SMS)
    store_sendgrid(db, sendgrid(event="delivered", sg_event_id="d", message_key="sms-1"))

    assert process(db).unmatched == 1


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"event": "bounce", "type": "bounce", "reason": "550 5.1.1 no such user"}, SuppressionReason.BOUNCED),
        ({"event": "dropped", "reason": "Bounced Address"}, SuppressionReason.BOUNCED),
        ({"event": "dropped", "reason": "Unsubscribed Address"}, SuppressionReason.UNSUBSCRIBED),
        ({"event": "dropped", "reason": "Spam Reporting Address"}, SuppressionReason.COMPLAINED),
        ({"event": "spamreport"}, SuppressionReason.COMPLAINED),
        ({"event": "unsubscribe"}, SuppressionReason.UNSUBSCRIBED),
        ({"event": "group_unsubscribe", "asm_group_id": 42}, SuppressionReason.UNSUBSCRIBED),
    ],
)
def test_a_hard_bounce_complaint_or_unsubscribe_suppresses_the_address_at_once(
    db: Database, email_message: int, event: dict[str, Any], reason: SuppressionReason
) -> None:
    store_sendgrid(db, sendgrid(sg_event_id="e", message_key="mail-1", email="ann@EXAMPLE.com", **event))

    result = process(db)

    assert result.suppressed == 1
    assert suppressions(db) == [(Channel.EMAIL, EMAIL, reason, "sendgrid_webhook")]


@pytest.mark.parametrize("kind", ["unsubscribe", "group_unsubscribe"])
def test_an_unsubscribe_through_sendgrid_withdraws_what_the_recipient_had_granted_as_of_when_they_clicked(
    db: Database, email_message: int, kind: str
) -> None:
    with db.session() as session:
        owner = session.get_one(Message, email_message).customer_id
    grant(db, owner, ConsentPurpose.MARKETING, ConsentBasis.SOFT_OPT_IN, channel=Channel.EMAIL)
    grant(db, owner, ConsentPurpose.CART, ConsentBasis.EXPRESS, channel=Channel.EMAIL)
    clicked = NOW - timedelta(minutes=20)
    store_sendgrid(db, sendgrid(event=kind, sg_event_id="u", message_key="mail-1", timestamp=int(clicked.timestamp())))

    result = process(db)

    assert result.consents == 2
    assert consents(db, source="sendgrid_webhook") == [
        (owner, ConsentStatus.WITHDRAWN, ConsentPurpose.MARKETING, ConsentBasis.SOFT_OPT_IN),
        (owner, ConsentStatus.WITHDRAWN, ConsentPurpose.CART, ConsentBasis.EXPRESS),
    ]
    with db.session() as session:
        recorded = session.scalars(select(Consent.recorded_at).where(Consent.source == "sendgrid_webhook")).all()
    assert {moment.replace(tzinfo=UTC) for moment in recorded} == {clicked}


@pytest.mark.parametrize(
    "event",
    [
        {"event": "bounce", "type": "blocked", "reason": "421 try later"},
        {"event": "deferred"},
        {"event": "dropped", "reason": "Invalid SMTPAPI header"},
        {"event": "open"},
        {"event": "group_resubscribe", "asm_group_id": 42},
    ],
)
def test_soft_failures_and_engagement_do_not_suppress(db: Database, email_message: int, event: dict[str, Any]) -> None:
    store_sendgrid(db, sendgrid(sg_event_id="e", message_key="mail-1", **event))

    process(db)

    assert suppressions(db) == []


def test_a_bounce_for_an_unknown_message_still_suppresses_its_address(db: Database) -> None:
    store_sendgrid(db, sendgrid(event="bounce", type="bounce", sg_event_id="b", sg_message_id=None))

    result = process(db)

    assert (result.unmatched, result.suppressed) == (1, 1)
    assert suppressions(db) == [(Channel.EMAIL, EMAIL, SuppressionReason.BOUNCED, "sendgrid_webhook")]


def test_an_address_suppressed_before_keeps_its_first_reason(db: Database, email_message: int) -> None:
    store_sendgrid(db, sendgrid(event="spamreport", sg_event_id="s", message_key="mail-1"))
    process(db)
    store_sendgrid(db, sendgrid(event="unsubscribe", sg_event_id="u", message_key="mail-1"))

    assert process(db).suppressed == 0
    assert suppressions(db) == [(Channel.EMAIL, EMAIL, SuppressionReason.COMPLAINED, "sendgrid_webhook")]


# --- Twilio status callbacks --------------------------------------------------------------------------------


@pytest.fixture
def sms_message(db: Database) -> int:
    return add_message(db, add_customer(db, "u-1"), "sms-1", Channel.SMS, provider_message_id="SM1")


def test_twilio_statuses_become_sms_outcomes_and_others_none(db: Database, sms_message: int) -> None:
    for status in ["queued", "sent", "delivered"]:
        store_status(db, "SM1", status)
    store_status(db, "SM1", "undelivered", key=None, ErrorCode="30003")
    store_status(db, "SM1", "failed", key=None, ErrorCode="30007")

    result = process(db)

    assert (result.events, result.outcomes, result.unmatched) == (5, 4, 0)
    assert outcomes(db) == [
        (sms_message, "SM1:sent", OutcomeKind.SMS_SENT),
        (sms_message, "SM1:delivered", OutcomeKind.SMS_DELIVERED),
        (sms_message, "SM1:undelivered", OutcomeKind.SMS_UNDELIVERED),
        (sms_message, "SM1:failed", OutcomeKind.SMS_FAILED),
    ]
    assert suppressions(db) == []


def test_error_21610_suppresses_the_phone_for_every_later_text(db: Database, sms_message: int) -> None:
    store_status(db, "SM1", "failed", ErrorCode="21610")

    process(db)

    assert suppressions(db) == [(Channel.SMS, PHONE, SuppressionReason.STOP_KEYWORD, "twilio_webhook")]
    with db.session() as session:
        assert session.scalars(select(Outcome.data)).all() == [{"error_code": "21610"}]


# --- inbound keywords ---------------------------------------------------------------------------------------


def test_stop_suppresses_the_phone_withdraws_everyones_consent_and_confirms_once(db: Database) -> None:
    ann, bob = add_customer(db, "ann"), add_customer(db, "bob", email="bob@example.com")
    grant(db, ann, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS_WRITTEN)
    grant(db, ann, ConsentPurpose.CART, ConsentBasis.EXPRESS)
    older = add_message(db, ann, "sms-old", Channel.SMS, created_at=NOW - timedelta(days=2))
    latest = add_message(db, bob, "sms-new", Channel.SMS, created_at=NOW - timedelta(hours=1))
    store_inbound(db, "SMin1", "Stop")
    sender = RecordingSmsSender()

    result = process(db, sender)

    assert suppressions(db) == [(Channel.SMS, PHONE, SuppressionReason.STOP_KEYWORD, "sms_keyword")]
    assert sorted(consents(db)) == [
        (ann, ConsentStatus.WITHDRAWN, ConsentPurpose.CART, ConsentBasis.EXPRESS),
        (ann, ConsentStatus.WITHDRAWN, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS_WRITTEN),
        (bob, ConsentStatus.WITHDRAWN, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS),
    ]
    assert outcomes(db) == [(latest, "SMin1:inbound", OutcomeKind.SMS_STOP)]
    assert older != latest
    assert [(sms.to_phone, sms.body) for sms in sender.sent] == [(PHONE, stop_reply(PROGRAM))]
    assert (result.suppressed, result.consents, result.replies) == (1, 3, 1)


def test_the_withdrawal_is_dated_when_the_stop_arrived_and_carries_its_proof(db: Database) -> None:
    add_customer(db, "ann")
    arrived = NOW - timedelta(minutes=3)
    store_inbound(db, "SMin1", "STOP", received_at=arrived)

    process(db, RecordingSmsSender())

    with db.session() as session:
        (withdrawal,) = session.scalars(select(Consent)).all()
        assert (withdrawal.recorded_at, withdrawal.proof) == (arrived, "SMin1: STOP")


def test_a_stop_reply_is_recorded_as_a_message_with_its_status_callback(db: Database) -> None:
    ann = add_customer(db, "ann")
    store_inbound(db, "SMin1", "stop")
    sender = RecordingSmsSender()

    process(db, sender)

    with db.session() as session:
        reply = session.scalars(select(Message).where(Message.campaign_key == REPLY_CAMPAIGN)).one()
        assert (reply.customer_id, reply.address, reply.status, reply.attempts) == (ann, PHONE, MessageStatus.SENT, 1)
        assert (reply.provider, reply.provider_message_id, reply.sent_at) == (Provider.TWILIO, "SMreply1", NOW)
    (sms,) = sender.sent
    assert sms.message_key == reply.message_key
    assert sms.status_callback_url == f"https://nudge.example.com/webhooks/twilio/status?mk={reply.message_key}"


def test_a_stop_replayed_ten_times_is_acted_on_and_answered_once(db: Database) -> None:
    add_customer(db, "ann")
    sender = RecordingSmsSender()

    for _ in range(10):
        store_inbound(db, "SMin1", "STOP")
        process(db, sender)

    assert len(sender.sent) == 1
    assert len(consents(db)) == 1
    assert len(suppressions(db)) == 1


def test_stop_from_a_phone_nobody_has_still_suppresses_and_confirms(db: Database) -> None:
    store_inbound(db, "SMin1", "unsubscribe")
    sender = RecordingSmsSender()

    result = process(db, sender)

    assert suppressions(db) == [(Channel.SMS, PHONE, SuppressionReason.STOP_KEYWORD, "sms_keyword")]
    assert (consents(db), outcomes(db)) == ([], [])
    assert [sms.to_phone for sms in sender.sent] == [PHONE]
    assert result.replies == 1


def test_without_the_brands_facts_stop_still_counts_and_nothing_is_replied(db: Database) -> None:
    add_customer(db, "ann")
    store_inbound(db, "SMin1", "STOP")
    sender = RecordingSmsSender()

    process(db, sender, program=None)

    assert len(suppressions(db)) == 1
    assert sender.sent == []


def test_start_lifts_the_stop_and_restores_what_it_withdrew_as_express_consent(db: Database) -> None:
    ann = add_customer(db, "ann")
    grant(db, ann, ConsentPurpose.CART, ConsentBasis.EXPRESS_WRITTEN)
    message = add_message(db, ann, "sms-1", Channel.SMS)
    store_inbound(db, "SMin1", "STOP", received_at=NOW - timedelta(minutes=2))
    process(db, RecordingSmsSender())
    store_inbound(db, "SMin2", "start")
    sender = RecordingSmsSender()

    result = process(db, sender)

    assert suppressions(db) == []
    assert consents(db) == [
        (ann, ConsentStatus.WITHDRAWN, ConsentPurpose.CART, ConsentBasis.EXPRESS_WRITTEN),
        (ann, ConsentStatus.GRANTED, ConsentPurpose.CART, ConsentBasis.EXPRESS),
    ]
    assert [kind for message_id, _, kind in outcomes(db) if message_id == message] == [
        OutcomeKind.SMS_STOP,
        OutcomeKind.SMS_START,
    ]
    assert [sms.body for sms in sender.sent] == [start_reply(PROGRAM)]
    assert result.consents == 1


def test_start_without_an_earlier_stop_is_a_marketing_opt_in(db: Database) -> None:
    ann = add_customer(db, "ann")
    store_inbound(db, "SMin1", "START")

    process(db, RecordingSmsSender())

    assert consents(db) == [(ann, ConsentStatus.GRANTED, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS)]


def test_start_does_not_lift_a_suppression_for_another_reason(db: Database) -> None:
    with db.session() as session:
        session.add(Suppression(channel=Channel.SMS, address=PHONE, reason=SuppressionReason.MANUAL, source="ops"))
    store_inbound(db, "SMin1", "START")

    process(db, RecordingSmsSender())

    assert suppressions(db) == [(Channel.SMS, PHONE, SuppressionReason.MANUAL, "ops")]


def test_help_only_replies(db: Database) -> None:
    add_message(db, add_customer(db, "ann"), "sms-1", Channel.SMS)
    store_inbound(db, "SMin1", "help")
    sender = RecordingSmsSender()

    result = process(db, sender)

    assert (suppressions(db), consents(db), outcomes(db)) == ([], [], [])
    assert [sms.body for sms in sender.sent] == [help_reply(PROGRAM)]
    assert (result.events, result.replies) == (1, 1)


def test_a_text_that_is_no_keyword_changes_nothing_and_gets_no_reply(db: Database) -> None:
    add_customer(db, "ann")
    store_inbound(db, "SMin1", "What time do you open?")
    sender = RecordingSmsSender()

    result = process(db, sender)

    assert (suppressions(db), consents(db), outcomes(db), sender.sent) == ([], [], [], [])
    assert (result.events, pending(db)) == (1, 0)


def test_without_a_sender_replies_are_not_sent_but_the_stop_counts(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    add_customer(db, "ann")
    store_inbound(db, "SMin1", "STOP")

    result = process(db, None)

    assert (result.suppressed, result.replies) == (1, 0)
    assert "no SMS sender: 1 keyword replies not sent" in caplog.text


# --- claiming -----------------------------------------------------------------------------------------------


def test_a_batch_takes_at_most_its_limit_oldest_first(db: Database, email_message: int) -> None:
    store_sendgrid(
        db, *[sendgrid(event="open", sg_event_id=f"o{i}", timestamp=i, message_key="mail-1") for i in range(5)]
    )

    with db.session() as session:
        first = process_pending(session, SETTINGS, NOW, limit=3)

    assert (first.events, pending(db)) == (3, 2)
    assert [event_id for _, event_id, _ in outcomes(db)] == ["o0", "o1", "o2"]


def test_two_processors_at_once_never_take_the_same_event(db: Database, email_message: int) -> None:
    """The second waits for the first's claim (SQLite) or skips its locked rows (PostgreSQL)."""
    store_sendgrid(db, sendgrid(event="open", sg_event_id="o", message_key="mail-1"))
    second: list[ProcessResult] = []

    with db.session() as session:
        assert process_pending(session, SETTINGS, NOW).events == 1
        thread = threading.Thread(target=lambda: second.append(process(db)))
        thread.start()
        thread.join(timeout=0.5)
    thread.join(timeout=30)

    assert second == [ProcessResult()]
    assert len(outcomes(db)) == 1


def test_error_21610_for_an_unknown_message_without_a_phone_suppresses_nothing(db: Database) -> None:
    store(db, [parse_twilio_status({"MessageSid": "SM9", "MessageStatus": "failed", "ErrorCode": "21610"}, None)])

    result = process(db)

    assert (result.events, result.unmatched, suppressions(db)) == (1, 1, [])
