"""A sent campaign with its variants, for the experiment tests and benchmark to hang assignments, orders and
messages on."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from core.models import Campaign, CampaignKind, CampaignState, CampaignVariant, Channel


def sent_campaign(
    session: Session,
    key: str,
    *,
    name: str | None = None,
    holdout_fraction: float = 0.2,
    segment: str = "all",
    variants: Sequence[str] = (),
) -> Campaign:
    """A retention e-mail campaign in state ``sent``, with ``variants`` of equal weight in ``segment`` (flushed)."""
    campaign = Campaign(
        key=key,
        name=name or key,
        kind=CampaignKind.RETENTION,
        state=CampaignState.SENT,
        channel=Channel.EMAIL,
        budget=None,
        holdout_fraction=holdout_fraction,
        salt="s",
        plan={},
        created_by="t",
    )
    session.add(campaign)
    session.flush()
    session.add_all(
        CampaignVariant(
            campaign_id=campaign.id,
            segment=segment,
            variant=variant,
            channel=Channel.EMAIL,
            content={},
            report={},
            blocked=False,
            weight=1.0,
        )
        for variant in variants
    )
    return campaign
