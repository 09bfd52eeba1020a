"""An order: a purchase with an amount, a currency and a time. Conversions and revenue come from here."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, BigId, TimestampMixin
from core.models.customer import Customer


class Order(TimestampMixin, Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int] = mapped_column(default=1, comment="Number of items.")
    ordered_at: Mapped[datetime]

    customer: Mapped[Customer] = relationship(lazy="raise")

    __table_args__ = (Index(None, "customer_id", "ordered_at"),)
