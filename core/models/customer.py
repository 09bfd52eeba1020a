"""A customer: who we may contact, and how."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, BigId, TimestampMixin


class Customer(TimestampMixin, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(
        String(128), unique=True, comment="The business's own id (Segment userId)."
    )
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(16), comment="E.164")
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    time_zone: Mapped[str | None] = mapped_column(String(64), comment="IANA name; quiet hours use it.")
    country: Mapped[str | None] = mapped_column(String(2), comment="ISO 3166-1 alpha-2")
    region: Mapped[str | None] = mapped_column(String(64), comment="State or province code, e.g. FL")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    contact_generated: Mapped[bool] = mapped_column(
        default=False,
        comment="True when name, e-mail, phone and time zone were generated for sample data, not real.",
    )

    __table_args__ = (Index(None, "email"), Index(None, "phone"))
