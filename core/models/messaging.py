"""What was sent and what came back: messages, the local outbox, provider events and the outcomes they become.

- ``Message``: one e-mail or SMS to one customer, written **before** the provider is called. Its
  ``idempotency_key`` (campaign, customer, channel) is unique, so a retried or redelivered task finds
  the row and never sends twice; its ``message_key`` is the opaque id that travels with the message
  (SendGrid ``custom_args``, Twilio's status-callback URL) and comes back in webhooks.
- ``OutboxMessage``: the rendered message itself, kept by the local outbox (the embedded default)
  so the UI and the demo can show exactly what would have gone out.
- ``ProviderEventKey`` / ``ProviderEvent``: every webhook event, stored once by its provider id, or by a
  fallback key (SendGrid may give a retried event a new id), raw, before it is processed; the keys in a
  narrow table, the raw event in a log partitioned by month on PostgreSQL.
- ``Outcome``: what an event means for one message (delivered, open, bounce, STOP …), one per event.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.models.base import Base, BigId, JSONDict, TimestampMixin, enum_column
from core.models.consent import Channel


class MessageStatus(StrEnum):
    PENDING = "pending"  # written, the provider not yet (or not successfully) called
    SENT = "sent"  # the provider accepted it
    REJECTED = "rejected"  # the provider refused it for good (4xx): recorded, never retried
    BLOCKED = "blocked"  # a send-time check or guardrail stopped it before the provider


class Provider(StrEnum):
    OUTBOX = "outbox"
    SENDGRID = "sendgrid"
    TWILIO = "twilio"


class OutcomeKind(StrEnum):
    PROCESSED = "processed"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCE = "bounce"
    DROPPED = "dropped"
    OPEN = "open"
    CLICK = "click"
    SPAM_REPORT = "spamreport"
    UNSUBSCRIBE = "unsubscribe"
    SMS_SENT = "sms_sent"
    SMS_DELIVERED = "sms_delivered"
    SMS_UNDELIVERED = "sms_undelivered"
    SMS_FAILED = "sms_failed"
    SMS_STOP = "sms_stop"
    SMS_START = "sms_start"


class Message(TimestampMixin, Base):
    """One message to one customer on one channel, recorded before the provider is called."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_key: Mapped[str] = mapped_column(String(64), unique=True, comment="Opaque id sent with the message.")
    idempotency_key: Mapped[str] = mapped_column(
        String(255), unique=True, comment="campaign:customer:channel — one message each, whatever retries."
    )
    campaign_key: Mapped[str] = mapped_column(String(128))
    variant: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    address: Mapped[str] = mapped_column(String(254), comment="The e-mail address or E.164 phone it went to.")
    provider: Mapped[Provider] = mapped_column(enum_column(Provider))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus), default=MessageStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0, comment="Provider calls made for it.")
    error: Mapped[str | None] = mapped_column(
        Text, comment="Why the provider rejected it, or the check that blocked it."
    )
    segments: Mapped[int | None] = mapped_column(comment="SMS segments billed.")
    cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 6), comment="USD, from the provider price settings.")
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        Index(None, "campaign_key", "status"),
        # A campaign's send asks which of its customers have a message: by index, whatever the statistics say.
        Index(None, "campaign_key", "customer_id"),
        Index(None, "customer_id", "channel", "sent_at"),  # frequency caps read recent sends
        Index(None, "provider", "provider_message_id"),
    )


class OutboxMessage(Base):
    """A rendered message as the local outbox keeps it (the embedded default sends nothing)."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    to_address: Mapped[str] = mapped_column(String(254))
    from_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    sms_text: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderEventKey(Base):
    """A webhook event's identity: stored once per provider by its id and by its fallback key.

    The writer inserts here first (``ON CONFLICT DO NOTHING``) and writes the ``ProviderEvent`` row only for the
    keys it inserted. The keys live in this narrow unpartitioned table because on a partitioned table every
    unique key must contain the partition key, and ``(provider, event_id, received_at)`` would store a retry
    twice. Retention deletes a key after the same cutoff that drops its event's partition.
    """

    __tablename__ = "provider_event_keys"

    provider: Mapped[Provider] = mapped_column(enum_column(Provider), primary_key=True)
    event_id: Mapped[str] = mapped_column(
        String(128), primary_key=True, comment="The provider's id (sg_event_id, a Twilio SID+status)."
    )
    fallback_key: Mapped[str] = mapped_column(
        String(128), comment="sha256 of what identifies the event without its id: retries may carry new ids."
    )
    received_at: Mapped[datetime] = mapped_column(comment="ProviderEvent.received_at: retention deletes by it.")

    __table_args__ = (UniqueConstraint("provider", "fallback_key"), Index(None, "received_at"))


_PENDING = text("processed_at IS NULL")


class ProviderEvent(Base):
    """A webhook event, stored raw and once (``ProviderEventKey`` holds its keys), then processed into an outcome.

    On PostgreSQL the table is range-partitioned by month on ``received_at`` with the primary key
    ``(id, received_at)`` (migration 0010); the model declares ``id`` alone, as SQLite has it (and needs, to
    number rows). ``(id, received_at)`` is also declared unique: it is what ``outcomes`` references.
    """

    __tablename__ = "provider_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[Provider] = mapped_column(enum_column(Provider))
    event_id: Mapped[str] = mapped_column(String(128), comment="The provider's id (sg_event_id, a Twilio SID+status).")
    fallback_key: Mapped[str] = mapped_column(
        String(128), comment="sha256 of what identifies the event without its id: retries may carry new ids."
    )
    kind: Mapped[str] = mapped_column(String(32), comment="The provider's event or status name.")
    message_key: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, comment="The partition key on PostgreSQL.")
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("id", "received_at"),
        # The claim's queue (pending events by id) and nothing else: it stays as small as the backlog, where an
        # index on processed_at, or the primary key, made every claim step over the month's processed events.
        Index("ix_provider_events_pending", "id", postgresql_where=_PENDING, sqlite_where=_PENDING),
        Index(None, "message_key", "received_at"),  # reconciliation asks when a message was first heard of
    )


class Outcome(Base):
    """What one provider event means for one message.

    The event is referenced by ``(event_id, event_received_at)``: a foreign key into a partitioned table must
    name a key holding the partition key. Retention clears both before it drops the event's partition; the
    outcome stays as long as its message, since experiment reports count it.
    """

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(
        BigId, unique=True, comment="ProviderEvent.id; NULL once that event is past retention."
    )
    event_received_at: Mapped[datetime | None] = mapped_column(comment="ProviderEvent.received_at.")
    kind: Mapped[OutcomeKind] = mapped_column(enum_column(OutcomeKind))
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict, comment="URL clicked, bounce reason …")

    __table_args__ = (
        ForeignKeyConstraint(
            ["event_id", "event_received_at"],
            ["provider_events.id", "provider_events.received_at"],
            ondelete="SET NULL",
        ),
        Index(None, "message_id", "kind"),
    )
