"""A contractual relationship: a plan with a monthly charge, from a start date until cancelled."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, BigId, TimestampMixin
from core.models.customer import Customer


class Subscription(TimestampMixin, Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    plan: Mapped[str] = mapped_column(String(64))
    monthly_charge: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(comment="Cancellation time; NULL while active.")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, comment="Contract terms and services.")

    customer: Mapped[Customer] = relationship(lazy="raise")
