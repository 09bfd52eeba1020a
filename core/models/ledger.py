"""The cost ledger: every cost Nudge incurs, once, attributed to a component, a campaign and a day.

One ``CostEntry`` per source event — an LLM call, a sent e-mail or text, a redeemed offer, a day of
infrastructure — keyed by ``source`` (``llm_call:42``, ``message:7``, ``offer:ORD-1``, ``infrastructure:2026-11-21``).
The unique key is ``(source, day)``: the day is a fact of the source event (when the call was made, the message
sent, the order placed), so the same event always lands on the same day and the pair is as unique as the source
alone. The day is part of the key because on PostgreSQL the table is range-partitioned by month on ``day``
(``core.partitions``), and a partitioned table's unique keys must hold the partition key.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.models.base import Base, BigId, enum_column


class CostComponent(StrEnum):
    LLM = "llm"  # tokens by model, priced from NUDGE_TOKEN_PRICES
    EMAIL = "email"  # e-mails sent, at NUDGE_EMAIL_PRICE_USD
    SMS = "sms"  # texts sent, by segment, at NUDGE_SMS_SEGMENT_PRICE_USD
    OFFER = "offer"  # offers redeemed, at the offer's unit cost
    INFRASTRUCTURE = "infrastructure"  # the stage's monthly estimate, a day at a time


class CostEntry(Base):
    """One cost, booked once per source event."""

    __tablename__ = "cost_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    component: Mapped[CostComponent] = mapped_column(enum_column(CostComponent))
    source: Mapped[str] = mapped_column(String(160), comment="The event that cost: llm_call:42, message:7 …")
    day: Mapped[date] = mapped_column(comment="UTC day of the source event; the partition key.")
    campaign_key: Mapped[str | None] = mapped_column(String(128), comment="Who it is attributed to, if anyone.")
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, comment="The customer contacted (e-mail, SMS, offer); no foreign key: costs outlive customers."
    )
    item: Mapped[str | None] = mapped_column(String(64), comment="Model, channel, offer code or stage.")
    quantity: Mapped[int] = mapped_column(BigInteger, comment="Tokens, e-mails, segments, redemptions or days.")
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 6), comment="US dollars.")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "day"),
        Index(None, "day", "component"),
        Index(None, "campaign_key", "component"),
    )
