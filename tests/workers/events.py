"""A sent e-mail and SendGrid events about it: the rows the provider-event tasks turn into outcomes."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.events import parse_sendgrid, store_events
from core.clock import utcnow
from core.db import Database
from core.models import Channel, Customer, Message, MessageStatus, Outcome, OutcomeKind, Provider, ProviderEvent

EMAIL = "ann@example.com"


def add_message(database: Database) -> int:
    with database.session() as session:
        customer = Customer(external_id="ann", email=EMAIL)
        session.add(customer)
        session.flush()
        message = Message(
            message_key="mail-1",
            idempotency_key="spring:ann:email",
            campaign_key="spring",
            customer_id=customer.id,
            channel=Channel.EMAIL,
            address=EMAIL,
            provider=Provider.SENDGRID,
            provider_message_id="sgm1",
            status=MessageStatus.SENT,
        )
        session.add(message)
        session.flush()
        return message.id


def sendgrid_event(name: str, event_id: str, second: int = 0) -> dict[str, object]:
    """A SendGrid event; events differing only in their id are one retried event, so ``second`` tells apart."""
    return {
        "email": EMAIL,
        "timestamp": 1_795_000_000 + second,
        "event": name,
        "sg_event_id": event_id,
        "sg_message_id": "sgm1.filter0001",
        "message_key": "mail-1",
    }


def store(session: Session, *events: dict[str, object]) -> int:
    """Store SendGrid events as the webhook does; the number stored."""
    result = store_events(session, parse_sendgrid(json.dumps(list(events)).encode()), received_at=utcnow())
    return len(result.stored)


def outcomes(database: Database) -> list[tuple[int, str, OutcomeKind]]:
    with database.session() as session:
        query = select(Outcome.message_id, ProviderEvent.event_id, Outcome.kind).join(ProviderEvent)
        return sorted((message_id, event_id, kind) for message_id, event_id, kind in session.execute(query))


def unprocessed(database: Database) -> int:
    with database.session() as session:
        return len(session.scalars(select(ProviderEvent.id).where(ProviderEvent.processed_at.is_(None))).all())
