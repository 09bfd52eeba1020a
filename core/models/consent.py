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


class ConsentPurpose(StrEnum):
    """What the consent covers. CTIA wants one opt-in per program: cart reminders are not weekly promotions."""

    MARKETING = "marketing"
    CART = "cart"
    TRANSACTIONAL = "transactional"


class ConsentBasis(StrEnum):
    """The legal ground the consent stands on; which ones a send accepts depends on the recipient's country."""

    EXPRESS_WRITTEN = "express_written"  # TCPA prior express written consent (PEWC); also express everywhere else
    EXPRESS = "express"  # an opt-in (GDPR Art. 7, CASL express consent)
    IMPLIED_EBR = "implied_ebr"  # CASL implied consent / existing business relationship: time-limited
    SOFT_OPT_IN = "soft_opt_in"  # ePrivacy Art. 13(2): e-mail collected in a sale, similar products only


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    STOP_KEYWORD = "stop_keyword"
    MANUAL = "manual"


class Consent(Base):
    """One consent decision. The current state for (customer, channel, purpose) is the latest row;
    rows are never updated, so the record of who agreed to what, when and how survives.

    A withdrawal row carries the basis of the consent it withdraws and no disclosure version.
    """

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    status: Mapped[ConsentStatus] = mapped_column(enum_column(ConsentStatus))
    # Server defaults: rows written before the basis was recorded are marketing opt-ins.
    purpose: Mapped[ConsentPurpose] = mapped_column(
        enum_column(ConsentPurpose), default=ConsentPurpose.MARKETING, server_default=ConsentPurpose.MARKETING.value
    )
    basis: Mapped[ConsentBasis] = mapped_column(
        enum_column(ConsentBasis), default=ConsentBasis.EXPRESS, server_default=ConsentBasis.EXPRESS.value
    )
    source: Mapped[str] = mapped_column(
        String(64), comment="Where it was captured: import, signup_form, sms_keyword, …"
    )
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(
        comment="When the consent lapses (CASL implied consent: 2 years after a purchase); NULL: never."
    )
    disclosure_version: Mapped[str | None] = mapped_column(
        String(64), comment="Version of the consent text the customer saw (TCPA PEWC, GDPR Art. 7(1))."
    )
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
