"""The scheduled retention run (beat, ``NUDGE_RETENTION_SCHEDULE``): this month's campaign created, planned,
drafted and sent for review — never sent: a marketer approves and schedules it.

``run_retention`` is idempotent by the campaign key ``retention-YYYY-MM``: a month that has its campaign is
skipped, and a campaign a crash left ``draft`` or ``planned`` is taken up where it stopped.

Drafting calls the LLM for minutes and writes its spend ledger in sessions of its own
(``campaigns.drafting``), so the planned campaign is committed before drafting starts: on SQLite an open
write transaction here would lock those sessions out, and a crash while drafting should leave the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import service
from campaigns.drafting import ReviewedDrafts, campaign_briefs, draft_briefs
from core.db import Database
from core.models import Campaign, CampaignState, Channel
from core.settings import Settings

ACTOR = "system:retention"
# The plan's defaults, as `nudge draft` has them; settings of their own can replace them.
BUDGET = Decimal("5000")
CHANNEL = Channel.EMAIL
HOLDOUT_FRACTION = 0.1
VARIANTS = 3
TONE = "warm, direct"

Drafter = Callable[[Database, Settings, Campaign], list[ReviewedDrafts]]


def retention_key(now: datetime) -> str:
    """The month's campaign key: ``retention-YYYY-MM``."""
    return f"retention-{now:%Y-%m}"


def run_retention(
    session: Session, settings: Settings, now: datetime, *, drafter: Drafter | None = None
) -> Campaign | None:
    """Create, plan and draft this month's retention campaign and submit it for review.

    Parameters
    ----------
    session : Session
        The task's session; committed once, after planning (module docstring). The task commits the rest.
    settings : Settings
    now : datetime
        Names the month.
    drafter : callable, optional
        Drafts the planned campaign; by default the configured LLM (``campaigns.drafting``).

    Returns
    -------
    Campaign or None
        The campaign, now ``in_review``; ``None`` when the month's campaign was already drafted.
    """
    key = retention_key(now)
    campaign = session.scalars(select(Campaign).where(Campaign.key == key)).first()
    if campaign is not None and campaign.state not in (CampaignState.DRAFT, CampaignState.PLANNED):
        return None
    if campaign is None:
        campaign = service.create_campaign(
            session,
            key=key,
            name=f"Retention {now:%B %Y}",
            channel=CHANNEL,
            budget=BUDGET,
            holdout_fraction=HOLDOUT_FRACTION,
            actor=ACTOR,
            now=now,
        )
    if campaign.state is CampaignState.DRAFT:
        service.plan_campaign(session, settings, campaign, actor=ACTOR, now=now)
    session.commit()  # the plan stands before minutes of drafting in other sessions
    drafted = (drafter or draft_campaign)(Database(session.get_bind().engine), settings, campaign)
    service.store_drafts(session, campaign, drafted, actor=ACTOR, now=now)
    return service.submit(session, campaign, actor=ACTOR, now=now)


def draft_campaign(db: Database, settings: Settings, campaign: Campaign) -> list[ReviewedDrafts]:
    """One brief per planned segment, drafted and reviewed with the configured LLM."""
    return draft_briefs(db, settings, campaign_briefs(db, campaign, n_variants=VARIANTS, tone=TONE))
