"""The local outbox: every message kept exactly, once, linked to its ``Message``; receipts in order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from channels import outbox
from channels.outbox import (
    OutboxEmailSender,
    OutboxSmsSender,
    get_outbox_message,
    list_outbox,
)
from channels.ports import EmailSender, OutboundEmail, OutboundSms, ReceiptStatus, SendReceipt, SmsSender
from core.db import Database
from core.errors import NotFound
from core.models import Channel, Customer, Message, OutboxMessage, Provider


def add_message(
    session: Session, key: str, channel: Channel = Channel.EMAIL, *, campaign: str = "winback", customer: int = 1
) -> Message:
    """A customer (made once per id) and one pending message to them."""
    if session.get(Customer, customer) is None:
        session.add(Customer(id=customer, external_id=f"c{customer}", email="ada@example.com", phone="+15555550123"))
    message = Message(
        message_key=key,
        idempotency_key=f"{campaign}:{customer}:{channel.value}:{key}",
        campaign_key=campaign,
        customer_id=customer,
        channel=channel,
        address="ada@example.com" if channel is Channel.EMAIL else "+15555550123",
        provider=Provider.OUTBOX,
    )
    session.add(message)
    session.flush()
    return message


def email(key: str, **overrides: Any) -> OutboundEmail:
    fields: dict[str, Any] = {
        "message_key": key,
        "to_address": "ada@example.com",
        "to_name": "Ada Lovelace",
        "subject": f"Subject {key}",
        "body_text": f"Text {key}",
        "body_html": f"<p>HTML {key}</p>",
        "from_address": "hello@fablewave.example",
        "from_name": "Fablewave",
        "headers": {"List-Unsubscribe": f"<https://nudge.example/u/{key}>"},
        "categories": ("winback",),
    }
    return OutboundEmail(**(fields | overrides))


def sms(key: str) -> OutboundSms:
    return OutboundSms(message_key=key, to_phone="+15555550123", body=f"Fablewave: text {key}. Reply STOP to opt out")


def outbox_rows(session: Session) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.session() as session:
        yield session


def test_the_outbox_senders_satisfy_the_ports(session: Session) -> None:
    email_sender: EmailSender = OutboxEmailSender(session)
    sms_sender: SmsSender = OutboxSmsSender(session)

    assert (email_sender.provider, email_sender.max_batch) == (Provider.OUTBOX, 1000)
    assert (sms_sender.provider, sms_sender.max_batch) == (Provider.OUTBOX, 1000)


def test_emails_are_kept_exactly_and_accepted_in_order(session: Session) -> None:
    first, second = add_message(session, "k1"), add_message(session, "k2", customer=2)

    receipts = OutboxEmailSender(session).send_batch([email("k2", to_name=None), email("k1")])

    rows = outbox_rows(session)
    assert receipts == [
        SendReceipt("k2", ReceiptStatus.ACCEPTED, provider_message_id=f"outbox-{rows[0].id}"),
        SendReceipt("k1", ReceiptStatus.ACCEPTED, provider_message_id=f"outbox-{rows[1].id}"),
    ]
    assert [_columns(row) for row in rows] == [
        (
            second.id,
            Channel.EMAIL,
            "ada@example.com",
            "hello@fablewave.example",
            "Subject k2",
            "Text k2",
            "<p>HTML k2</p>",
            None,
            {"From": "Fablewave <hello@fablewave.example>", "List-Unsubscribe": "<https://nudge.example/u/k2>"},
        ),
        (
            first.id,
            Channel.EMAIL,
            "ada@example.com",
            "hello@fablewave.example",
            "Subject k1",
            "Text k1",
            "<p>HTML k1</p>",
            None,
            {
                "From": "Fablewave <hello@fablewave.example>",
                "To": "Ada Lovelace <ada@example.com>",
                "List-Unsubscribe": "<https://nudge.example/u/k1>",
            },
        ),
    ]


def test_texts_are_kept_exactly_and_accepted(session: Session) -> None:
    message = add_message(session, "s1", Channel.SMS)

    receipts = OutboxSmsSender(session).send_batch([sms("s1")])

    rows = outbox_rows(session)
    assert receipts == [SendReceipt("s1", ReceiptStatus.ACCEPTED, provider_message_id=f"outbox-{rows[0].id}")]
    assert [_columns(row) for row in rows] == [
        (
            message.id,
            Channel.SMS,
            "+15555550123",
            None,
            None,
            None,
            None,
            "Fablewave: text s1. Reply STOP to opt out",
            {},
        )
    ]


def test_a_message_key_without_a_message_is_rejected_and_not_kept(session: Session) -> None:
    add_message(session, "k1")

    receipts = OutboxEmailSender(session).send_batch([email("ghost"), email("k1")])

    assert receipts[0] == SendReceipt(
        "ghost",
        ReceiptStatus.REJECTED,
        error="no message with key 'ghost': the Message row must be written before the sender is called",
        error_code="unknown_message",
    )
    assert receipts[1].status is ReceiptStatus.ACCEPTED
    assert [row.to_address for row in outbox_rows(session)] == ["ada@example.com"]


def test_a_message_of_the_other_channel_is_rejected(session: Session) -> None:
    add_message(session, "s1", Channel.SMS)

    receipts = OutboxEmailSender(session).send_batch([email("s1")])

    assert receipts == [
        SendReceipt(
            "s1", ReceiptStatus.REJECTED, error="message 's1' is a sms message, not email", error_code="wrong_channel"
        )
    ]
    assert outbox_rows(session) == []


def test_the_same_message_stored_twice_is_kept_once_under_the_same_id(session: Session) -> None:
    add_message(session, "k1")
    sender = OutboxEmailSender(session)

    first = sender.send_batch([email("k1"), email("k1", subject="changed")])
    again = sender.send_batch([email("k1", subject="changed again")])

    rows = outbox_rows(session)
    assert [row.subject for row in rows] == ["Subject k1"]
    expected = SendReceipt("k1", ReceiptStatus.ACCEPTED, provider_message_id=f"outbox-{rows[0].id}")
    assert first + again == [expected, expected, expected]


def test_a_row_stored_by_another_worker_after_the_lookup_is_returned_not_duplicated(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_message(session, "k1")
    OutboxEmailSender(session).send_batch([email("k1")])
    [stored] = outbox_rows(session)
    lookup = outbox._lookup

    def stale(session: Session, keys: list[str]) -> dict[str, Any]:  # as if the other worker had not stored it yet
        return {key: replace(known, outbox_id=None) for key, known in lookup(session, keys).items()}

    monkeypatch.setattr(outbox, "_lookup", stale)

    receipts = OutboxEmailSender(session).send_batch([email("k1", subject="second worker")])

    assert receipts == [SendReceipt("k1", ReceiptStatus.ACCEPTED, provider_message_id=f"outbox-{stored.id}")]
    assert [row.subject for row in outbox_rows(session)] == ["Subject k1"]


def test_a_full_batch_takes_one_lookup_and_one_insert(session: Session) -> None:
    keys = [f"k{number}" for number in range(1000)]
    session.add(Customer(id=1, external_id="c1", email="ada@example.com"))
    session.add_all(
        Message(
            message_key=key,
            idempotency_key=key,
            campaign_key="winback",
            customer_id=1,
            channel=Channel.EMAIL,
            address="ada@example.com",
            provider=Provider.OUTBOX,
        )
        for key in keys
    )
    session.flush()
    statements: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *args: statements.append(args[2].split()[0]))

    receipts = OutboxEmailSender(session).send_batch([email(key) for key in keys])

    assert statements == ["SELECT", "INSERT"]
    assert [receipt.status for receipt in receipts] == [ReceiptStatus.ACCEPTED] * 1000
    assert len({receipt.provider_message_id for receipt in receipts}) == 1000
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1000


def test_the_sender_leaves_committing_to_the_caller(db: Database) -> None:
    def failing_task() -> None:
        with db.session() as session:
            add_message(session, "k1")
            OutboxEmailSender(session).send_batch([email("k1")])
            raise RuntimeError("the task failed after the send")

    with pytest.raises(RuntimeError):
        failing_task()

    with db.session() as session:
        assert outbox_rows(session) == []


def test_the_outbox_lists_newest_first_by_channel_and_campaign(session: Session) -> None:
    add_message(session, "old", campaign="winback")
    add_message(session, "text", Channel.SMS, campaign="winback")
    add_message(session, "new", campaign="cart", customer=2)
    OutboxEmailSender(session).send_batch([email("old")])
    OutboxSmsSender(session).send_batch([sms("text")])
    OutboxEmailSender(session).send_batch([email("new")])
    _age(session, {"old": 1, "text": 2, "new": 3})

    assert [entry.message_key for entry in list_outbox(session)] == ["new", "text", "old"]
    assert [entry.message_key for entry in list_outbox(session, channel=Channel.EMAIL)] == ["new", "old"]
    assert [entry.message_key for entry in list_outbox(session, campaign_key="winback")] == ["text", "old"]
    assert [entry.message_key for entry in list_outbox(session, limit=1)] == ["new"]
    assert [entry.summary for entry in list_outbox(session)] == [
        "Subject new",
        "Fablewave: text text. Reply STOP to opt out",
        "Subject old",
    ]


def test_one_outbox_message_is_found_by_id_with_its_campaign(session: Session) -> None:
    add_message(session, "k1", campaign="winback")
    [receipt] = OutboxEmailSender(session).send_batch([email("k1")])
    outbox_id = int(str(receipt.provider_message_id).removeprefix("outbox-"))

    entry = get_outbox_message(session, outbox_id)

    assert (entry.id, entry.message_key, entry.campaign_key, entry.channel) == (
        outbox_id,
        "k1",
        "winback",
        Channel.EMAIL,
    )
    assert (entry.subject, entry.body_text, entry.body_html) == ("Subject k1", "Text k1", "<p>HTML k1</p>")
    with pytest.raises(NotFound, match="no outbox message 999"):
        get_outbox_message(session, 999)


def _columns(row: OutboxMessage) -> tuple[Any, ...]:
    return (
        row.message_id,
        row.channel,
        row.to_address,
        row.from_address,
        row.subject,
        row.body_text,
        row.body_html,
        row.sms_text,
        row.headers,
    )


def _age(session: Session, minutes_by_key: dict[str, int]) -> None:
    """Give the rows distinct times (they were stored within the same instant)."""
    for row in outbox_rows(session):
        key = session.scalar(select(Message.message_key).where(Message.id == row.message_id))
        row.created_at = datetime(2026, 11, 21, 10, minutes_by_key[str(key)], tzinfo=UTC)
    session.flush()
