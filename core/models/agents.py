"""What the campaign agents draw on and what they spend: the offer catalog, the creative library, and
a ledger of every LLM call (with the cache that makes a repeated prompt free)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.models.base import Base, BigId, JSONDict, TimestampMixin, enum_column
from core.models.consent import Channel


class OfferKind(StrEnum):
    PERCENT_OFF = "percent_off"
    AMOUNT_OFF = "amount_off"
    FREE_MONTHS = "free_months"
    FREE_SHIPPING = "free_shipping"
    GIFT = "gift"


class Offer(TimestampMixin, Base):
    """An offer the agents may make; nothing outside this catalog may be offered."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OfferKind] = mapped_column(enum_column(OfferKind))
    value: Mapped[Decimal] = mapped_column(comment="Percent for percent_off, amount or months otherwise; 0 if n/a.")
    currency: Mapped[str | None] = mapped_column(String(3))
    terms: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]
    eligible_segments: Mapped[list[str]] = mapped_column(JSONDict, default=list, comment="Empty: every segment.")
    unit_cost: Mapped[Decimal] = mapped_column(comment="What one redemption costs the business.")


class CreativeKind(StrEnum):
    CAMPAIGN = "campaign"
    SNIPPET = "snippet"
    GUIDELINE = "guideline"


class CreativeItem(TimestampMixin, Base):
    """A past campaign, a reusable snippet or a brand guideline, with how it performed."""

    __tablename__ = "creative_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[CreativeKind] = mapped_column(enum_column(CreativeKind))
    channel: Mapped[Channel | None] = mapped_column(enum_column(Channel))
    title: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSONDict, default=list)
    audience: Mapped[str | None] = mapped_column(String(200))
    sent_from: Mapped[datetime | None]
    sent_until: Mapped[datetime | None]
    sends: Mapped[int] = mapped_column(default=0)
    opens: Mapped[int] = mapped_column(default=0)
    clicks: Mapped[int] = mapped_column(default=0)
    conversions: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[Decimal] = mapped_column(default=Decimal("0"))


class LlmCall(Base):
    """One LLM call (or cache hit) and what it cost, attributed to a campaign and variant."""

    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_key: Mapped[str | None] = mapped_column(String(128), comment="The campaign this was spent on.")
    variant: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(32), comment="draft, repair, embed, …")
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(100))
    prompt_tokens: Mapped[int]
    completion_tokens: Mapped[int]
    cost: Mapped[Decimal] = mapped_column(Numeric(14, 6), comment="USD, from the price table in settings.")
    cached: Mapped[bool] = mapped_column(default=False, comment="Served from the cache: no tokens spent.")
    cache_key: Mapped[str] = mapped_column(String(64))
    latency_ms: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Campaign budgets filter by campaign_key; day and month budgets by created_at alone.
    __table_args__ = (Index(None, "campaign_key", "created_at"), Index(None, "created_at"))


class LlmCacheEntry(Base):
    """A model's answer to an exact prompt, so asking again costs nothing."""

    __tablename__ = "llm_cache"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, comment="sha256 of model, parameters and prompt.")
    model: Mapped[str] = mapped_column(String(100))
    response: Mapped[dict[str, Any]]
    prompt_tokens: Mapped[int]
    completion_tokens: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
