"""Provider events into outcomes, with the brand's SMS keyword replies: one function the API (in-process) and the
worker task both call, so the replies quote the same program whoever processes the events."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from channels.factory import sms_sender
from channels.keywords import SmsProgram
from channels.outcomes import ProcessResult, process_pending
from core.errors import ValidationFailed
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
