"""What a reviewer does to a campaign in review: edit a variant's copy (its guardrails run again at once),
and approve it — by one approver, or by two different ones when the campaign is escalated.

Every function takes a session and never commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.orm import Session

from agents.schemas import Draft
from campaigns import service
from campaigns.guarding import review_draft
from campaigns.lifecycle import Escalation, approve_escalated
from core.errors import NotFound, ValidationFailed, field_errors
from core.models import Campaign, CampaignVariant
from core.settings import Settings
from guardrails.repository import check_context

# The copy a person may change; the variant id, channel, citations and usage stay as drafted.
EDITABLE_FIELDS = ("subject", "preheader", "body_text", "body_html", "sms_text")


def escalation(settings: Settings) -> Escalation:
    """The configured thresholds above which a campaign needs a second approver."""
    return Escalation(max_audience=settings.escalation_audience_size, max_spend=settings.escalation_spend_usd)


def get_variant(session: Session, campaign: Campaign, variant_id: int) -> CampaignVariant:
    variant = session.get(CampaignVariant, variant_id)
    if variant is None or variant.campaign_id != campaign.id:
        raise NotFound(f"campaign {campaign.key!r} has no variant {variant_id}")
    return variant


def edit_copy(
    session: Session,
    settings: Settings,
    variant: CampaignVariant,
    changes: Mapping[str, str],
    *,
    actor: str,
    now: datetime,
) -> CampaignVariant:
    """Replace the copy fields in ``changes``, check the result with the guardrails and store both.

    The edit is stored even when the new report blocks: the reviewer sees the findings and fixes them;
    a blocked variant cannot be approved (``campaigns.lifecycle``).

    Raises
    ------
    core.errors.ValidationFailed
        A field that is not copy, or copy that is not a valid draft (too long, a slot that does not exist …).
    core.errors.Conflict
        The campaign is not drafted, in review or sent back for changes.
    """
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationFailed(f"only the copy can be edited ({', '.join(EDITABLE_FIELDS)}), not {', '.join(unknown)}")
    content = {**variant.content, **{name: value.replace("\r\n", "\n") for name, value in changes.items()}}
    try:
        draft = Draft.model_validate(content)
    except ValidationError as error:
        raise ValidationFailed("the edited copy is not a valid draft", details=field_errors(error.errors())) from error
    report = review_draft(draft, check_context(session, settings, now=now))
    return service.edit_variant(session, variant, content, report, actor=actor, now=now)


def approve(
    session: Session,
    campaign: Campaign,
    rules: Escalation,
    *,
    actor: str,
    comment: str | None = None,
    now: datetime,
) -> bool:
    """``actor`` approves; True when the campaign is now approved, False when it waits for a second approver.

    Raises
    ------
    core.errors.Conflict
        Not in review, a variant blocked or missing, or ``actor`` gave the first approval already.
    """
    if not approve_escalated(session, campaign, rules, actor=actor, comment=comment, now=now):
        return False
    service.approve(session, campaign, actor=actor, comment=comment, now=now)
    return True
