"""Spend budgets for LLM calls: a limit in tokens and/or US dollars per campaign, per UTC day or per UTC month.

What was spent is not stored here: it is summed from the ``LlmCall`` ledger when a budget is checked,
so there is one record of spend and nothing to keep in step with it.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, BigId, TimestampMixin, enum_column


class BudgetScope(StrEnum):
    CAMPAIGN = "campaign"  # every call attributed to one campaign key, for as long as the campaign lives
    DAY = "day"  # every call made in one calendar day (UTC)
    MONTH = "month"  # every call made in one calendar month (UTC)


class Budget(TimestampMixin, Base):
    """A limit on LLM spend; an empty limit (``NULL``) falls back to the settings' default for that scope."""

    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[BudgetScope] = mapped_column(enum_column(BudgetScope))
    campaign_key: Mapped[str | None] = mapped_column(String(128), comment="Set for campaign budgets only.")
    max_tokens: Mapped[int | None] = mapped_column(BigInteger, comment="Prompt plus completion tokens.")
    max_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 6), comment="US dollars, priced like the ledger.")

    __table_args__ = (
        UniqueConstraint("scope", "campaign_key"),
        # NULLs are distinct in a unique constraint, so the day and month budgets need their own guarantee.
        Index(
            "uq_budgets_one_per_period",
            "scope",
            unique=True,
            postgresql_where=text("campaign_key IS NULL"),
            sqlite_where=text("campaign_key IS NULL"),
        ),
        CheckConstraint(
            "(scope = 'campaign' AND campaign_key IS NOT NULL) OR (scope <> 'campaign' AND campaign_key IS NULL)",
            name="campaign_key_iff_campaign_scope",
        ),
        CheckConstraint("max_tokens IS NULL OR max_tokens >= 0", name="max_tokens_not_negative"),
        CheckConstraint("max_usd IS NULL OR max_usd >= 0", name="max_usd_not_negative"),
    )
