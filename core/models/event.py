"""Behavioural events in the Segment spec (identify, track), stored once per ``messageId``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.models.base import Base, BigId, enum_column


class EventType(StrEnum):
    IDENTIFY = "identify"
    TRACK = "track"


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), unique=True, comment="Segment messageId: the idempotency key.")
    type: Mapped[EventType] = mapped_column(enum_column(EventType))
    name: Mapped[str | None] = mapped_column(String(200), comment="Track event name; NULL for identify.")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    user_id: Mapped[str | None] = mapped_column(String(128))
    anonymous_id: Mapped[str | None] = mapped_column(String(128))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict, comment="Track properties or identify traits.")
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(comment="Segment timestamp, corrected for client clock skew.")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))

    __table_args__ = (Index(None, "customer_id", "occurred_at"), Index(None, "name", "occurred_at"))
