"""Campaigns and what they are made of: the lifecycle state, the stored variants a marketer approves, the
assignment of every target to a variant or the holdout, the audit log, and abandoned-cart trigger checks.

- ``Campaign``: a retention send or a trigger (abandoned cart), moving through ``CampaignState``; the
  allowed transitions live in ``campaigns.lifecycle``, which records each one in the audit log.
- ``CampaignVariant``: one drafted variant of one segment, with its guardrail report, as approved.
- ``Assignment``: which arm (a variant or the holdout) a customer is in, decided by a hash of the
  campaign's salt and the customer, and stored before anything is sent, so a retry never re-randomises.
- ``AuditEntry``: who did what, when, to which campaign (and, later, to users, budgets, settings).
- ``TriggerCheck``: one abandoned cart waiting for its window; one per cart, so one message per cart.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.models.base import Base, BigId, JSONDict, TimestampMixin, enum_column
from core.models.consent import Channel


class CampaignKind(StrEnum):
    RETENTION = "retention"
    TRIGGER = "trigger"


class CampaignState(StrEnum):
    DRAFT = "draft"
    PLANNED = "planned"
    DRAFTED = "drafted"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    MEASURED = "measured"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class TriggerStatus(StrEnum):
    WAITING = "waiting"  # the window has not passed
    SENT = "sent"
    CANCELLED = "cancelled"  # an order came, or the cart emptied
    SKIPPED = "skipped"  # a check said no (consent, suppression, cap): the reason is recorded


class Campaign(TimestampMixin, Base):
    """A retention campaign or an abandoned-cart trigger, and where it is in its lifecycle."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True, comment="Stable id: messages and LLM spend use it.")
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[CampaignKind] = mapped_column(enum_column(CampaignKind))
    state: Mapped[CampaignState] = mapped_column(enum_column(CampaignState), default=CampaignState.DRAFT)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), comment="The plan's budget, USD.")
    holdout_fraction: Mapped[float] = mapped_column(default=0.1, comment="Targets kept out to measure lift.")
    salt: Mapped[str] = mapped_column(String(64), comment="Hashes customers into arms; fixed at creation.")
    scheduled_at: Mapped[datetime | None] = mapped_column(comment="When the approved campaign sends.")
    plan: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict, comment="The plan's figures, both modes.")
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index(None, "state", "updated_at", "id"),)  # the review queue: a state, newest first


class CampaignVariant(TimestampMixin, Base):
    """One variant of one segment's copy, as drafted, checked, edited and approved."""

    __tablename__ = "campaign_variants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    segment: Mapped[str] = mapped_column(String(128), comment="The brief's segment key.")
    variant: Mapped[str] = mapped_column(String(16), comment="v1, v2 …")
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    content: Mapped[dict[str, Any]] = mapped_column(JSONDict, comment="The draft: copy, offer codes, citations.")
    report: Mapped[dict[str, Any]] = mapped_column(JSONDict, comment="The guardrail report of this content.")
    blocked: Mapped[bool] = mapped_column(comment="The report has a blocking finding: it cannot be approved.")
    weight: Mapped[float] = mapped_column(default=1.0, comment="Share of the segment's treated customers.")
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("campaign_id", "segment", "variant"),)


class Assignment(Base):
    """The arm a customer is in for one campaign, fixed before any send."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    segment: Mapped[str] = mapped_column(String(128))
    arm: Mapped[str] = mapped_column(String(16), comment="A variant (v1 …) or 'holdout'.")
    bucket: Mapped[int] = mapped_column(comment="The hashed bucket, 0–9999, that chose the arm.")
    expected_value: Mapped[Decimal | None] = mapped_column(Numeric(14, 4), comment="The plan's EV, USD.")
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("campaign_id", "customer_id"), Index(None, "campaign_id", "arm"))


class AuditEntry(Base):
    """One action by a person or the system: who, when, what, on which campaign."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(100), comment="A user, or system:<component>.")
    action: Mapped[str] = mapped_column(String(64), comment="A transition (approve, schedule …) or an edit.")
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index(None, "campaign_id", "created_at"), Index(None, "created_at"))


class TriggerCheck(Base):
    """An abandoned cart waiting for its window, then sent, cancelled or skipped (with the reason)."""

    __tablename__ = "trigger_checks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(comment="When the window ends and the cart is checked.")
    status: Mapped[TriggerStatus] = mapped_column(enum_column(TriggerStatus), default=TriggerStatus.WAITING)
    reason: Mapped[str | None] = mapped_column(String(200), comment="Why it was cancelled or skipped.")
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]

    __table_args__ = (Index(None, "status", "due_at"),)
