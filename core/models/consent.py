"""Consent (an append-only log per customer and channel) and suppressions (addresses never to contact)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.models.base import Base, BigId, enum_column
from core.models.customer import Customer


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    STOP_KEYWORD = "stop_keyword"
    MANUAL = "manual"


class Consent(Base):
    """One consent decision. The current state for (customer, channel) is the latest row;
    rows are never updated, so the record of who agreed to what, when and how survives."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    status: Mapped[ConsentStatus] = mapped_column(enum_column(ConsentStatus))
    source: Mapped[str] = mapped_column(
        String(64), comment="Where it was captured: import, signup_form, sms_keyword, …"
    )
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    proof: Mapped[str | None] = mapped_column(Text, comment="Evidence: form URL and IP, keyword message, document id.")

    customer: Mapped[Customer] = relationship(lazy="raise")

    __table_args__ = (Index(None, "customer_id", "channel", "recorded_at"),)


class Suppression(Base):
    """An address that must not be contacted on a channel, whoever it belongs to now."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    address: Mapped[str] = mapped_column(String(254), comment="Normalised e-mail or E.164 phone.")
    reason: Mapped[SuppressionReason] = mapped_column(enum_column(SuppressionReason))
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("channel", "address"),)
