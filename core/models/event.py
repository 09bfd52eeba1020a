"""Behavioural events in the Segment spec (identify, track), stored once per ``messageId``.

Two tables, so that the log can be partitioned by month on PostgreSQL without weakening the dedupe:

- ``EventKey``: one narrow row per ``messageId`` ever stored (within retention). Its primary key takes the
  intake's ``INSERT … ON CONFLICT DO NOTHING``, so a replay is recognised whenever it arrives.
- ``Event``: the log itself, written only for the keys inserted by the same statement. On PostgreSQL it is
  range-partitioned by month on ``received_at`` with the primary key ``(id, received_at)`` (migration 0010);
  the model declares ``id`` alone, which is what SQLite (one plain table) has and what the ORM needs.

Retention (``core.partitions``) drops the log's old partitions and deletes the keys received before the
same cutoff: a replay older than the retention window is then stored again.
"""

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


class EventKey(Base):
    """The intake's idempotency key: a ``messageId`` seen, and when (retention deletes it by that time)."""

    __tablename__ = "event_keys"

    message_id: Mapped[str] = mapped_column(String(128), primary_key=True, comment="Segment messageId.")
    received_at: Mapped[datetime] = mapped_column(comment="When it was first stored: Event.received_at.")

    __table_args__ = (Index(None, "received_at"),)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), comment="Segment messageId; unique by event_keys.")
    type: Mapped[EventType] = mapped_column(enum_column(EventType))
    name: Mapped[str | None] = mapped_column(String(200), comment="Track event name; NULL for identify.")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    user_id: Mapped[str | None] = mapped_column(String(128))
    anonymous_id: Mapped[str | None] = mapped_column(String(128))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict, comment="Track properties or identify traits.")
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(comment="Segment timestamp, corrected for client clock skew.")
    received_at: Mapped[datetime] = mapped_column(default=utcnow, comment="The partition key on PostgreSQL.")
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))

    __table_args__ = (Index(None, "customer_id", "occurred_at"), Index(None, "name", "occurred_at"))
