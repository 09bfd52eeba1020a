"""What comes back from customers: provider events into outcomes, with the brand's SMS keyword replies (one
function the API in-process and the worker task both call, so the replies quote the same program), and the
offers new orders redeemed, booked in the cost ledger against the campaign that offered them; and
``ingest_events``, which stores Segment calls and applies their e-commerce events to both in one unit of work
(the API's intake, the demo)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from audience.commerce import Redemption
from audience.intake import IngestResult, ingest
from audience.schemas import Message as IntakeMessage
from campaigns.triggers import on_commerce
from channels.factory import sms_sender
from channels.keywords import SmsProgram
from channels.outcomes import ProcessResult, process_pending
from core import ledger
from core.errors import ValidationFailed
from core.models import Campaign, CampaignVariant, Message, MessageStatus, Offer, TriggerCheck
from core.settings import Settings
from guardrails.context import BrandRules

logger = logging.getLogger(__name__)


def process_events(session: Session, settings: Settings, now: datetime) -> ProcessResult:
    """Process one batch of stored provider events; STOP/START/HELP replies go out through the SMS sender."""
    return process_pending(session, settings, now, sms_sender(settings, session), program=sms_program(settings))


def sms_program(settings: Settings) -> SmsProgram | None:
    """What the keyword replies quote: the brand's name, its sender address as the support contact, and the
    weekly cap on marketing texts as the frequency. ``None`` (keywords still acted on, no reply) if the brand
    rules cannot be read or the replies would not fit one segment: an opt-out must never wait for a fix."""
    try:
        brand = BrandRules.load(settings.brand_rules_path)
        frequency = f"Up to {settings.send_sms_max_per_week} msgs/week"
        return SmsProgram(brand_name=brand.brand_name, support_contact=brand.sender_address, frequency=frequency)
    except ValidationFailed:
        logger.exception("the SMS keyword replies cannot be built; keywords are recorded without a reply")
        return None


def book_redemptions(session: Session, settings: Settings, redemptions: Sequence[Redemption]) -> int:
    """Book each new order's use of a catalog offer at the offer's cost; codes not in the catalog are not ours.

    The cost goes to the campaign whose latest message to the customer before the order, within the attribution
    window, offered that code; with none, it is booked without a campaign. Returns how many were booked now."""
    window = timedelta(days=settings.attribution_window_days)
    booked = 0
    for redemption in redemptions:
        if session.scalar(select(Offer.id).where(Offer.code == redemption.code)) is None:
            continue
        booked += ledger.record_offer_redemption(
            session,
            order_id=redemption.order_id,
            offer_code=redemption.code,
            customer_id=redemption.customer_id,
            redeemed_at=redemption.at,
            campaign_key=offering_campaign(session, redemption, window),
        )
    return booked


def offering_campaign(session: Session, redemption: Redemption, window: timedelta) -> str | None:
    """The campaign whose latest message to the customer in ``window`` before the order offered its code."""
    sent = (
        select(Message.campaign_key, CampaignVariant.content)
        .join(Campaign, Campaign.key == Message.campaign_key)
        .join(
            CampaignVariant,
            (CampaignVariant.campaign_id == Campaign.id) & (CampaignVariant.variant == Message.variant),
        )
        .where(
            Message.customer_id == redemption.customer_id,
            Message.status == MessageStatus.SENT,
            Message.sent_at <= redemption.at,
            Message.sent_at > redemption.at - window,
        )
        .order_by(Message.sent_at.desc())
    )
    for campaign_key, content in session.execute(sent):
        if redemption.code in content.get("offer_codes", ()):
            return str(campaign_key)
    return None


def ingest_events(
    session: Session, settings: Settings, messages: Sequence[IntakeMessage], *, source_id: int | None, now: datetime
) -> tuple[IngestResult, list[TriggerCheck]]:
    """Store Segment calls (``audience.intake``) and apply what their e-commerce events mean: the cart trigger's
    checks (``campaigns.triggers.on_commerce``) and the offers redeemed (``book_redemptions``); not committed.

    Returns the intake's result and the cart checks now waiting, for the caller to schedule at their ``due_at``.
    """
    result = ingest(session, messages, source_id=source_id, received_at=now)
    book_redemptions(session, settings, result.commerce.redemptions)
    return result, on_commerce(session, settings, result.commerce, now)
