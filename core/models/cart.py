"""A shopping cart; an open cart left untouched is what the abandoned-cart trigger looks for."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, BigId, JSONDict, TimestampMixin, enum_column
from core.models.customer import Customer


class CartStatus(StrEnum):
    OPEN = "open"
    CONVERTED = "converted"
    ABANDONED = "abandoned"


class Cart(TimestampMixin, Base):
    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONDict, default=list)
    value: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[CartStatus] = mapped_column(enum_column(CartStatus), default=CartStatus.OPEN)
    cart_updated_at: Mapped[datetime] = mapped_column(comment="When the shopper last changed the cart.")

    customer: Mapped[Customer] = relationship(lazy="raise")

    __table_args__ = (Index(None, "status", "cart_updated_at"), Index(None, "customer_id"))
