"""Reachability: an address, the latest consent granted, and no suppression of that address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from audience.consent import reachable
from core.db import Database
from core.models import Channel, Consent, ConsentStatus, Customer, Suppression, SuppressionReason

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _customer(db: Database, external_id: str, email: str | None, phone: str | None, consents: list[tuple]) -> int:
    with db.session() as session:
        customer = Customer(external_id=external_id, email=email, phone=phone)
        session.add(customer)
        session.flush()
        for days, channel, status in consents:
            session.add(
                Consent(
                    customer_id=customer.id,
                    channel=channel,
                    status=status,
                    source="test",
                    recorded_at=T0 + timedelta(days=days),
                )
            )
        return customer.id


def test_the_latest_consent_decides_and_suppressed_or_missing_addresses_are_unreachable(db: Database) -> None:
    granted = (0, Channel.EMAIL, ConsentStatus.GRANTED)
    withdrawn = (5, Channel.EMAIL, ConsentStatus.WITHDRAWN)
    regranted = (9, Channel.EMAIL, ConsentStatus.GRANTED)
    sms = (0, Channel.SMS, ConsentStatus.GRANTED)
    ids = [
        _customer(db, "both", "a@example.com", "+12125550101", [granted, sms]),
        _customer(db, "withdrew", "b@example.com", "+12125550102", [granted, withdrawn]),
        _customer(db, "came-back", "c@example.com", None, [granted, withdrawn, regranted, sms]),
        _customer(db, "never-asked", "d@example.com", "+12125550104", []),
        _customer(db, "suppressed", "e@example.com", "+12125550105", [granted, sms]),
    ]
    with db.session() as session:
        session.add(
            Suppression(channel=Channel.SMS, address="+12125550105", reason=SuppressionReason.STOP_KEYWORD, source="t")
        )

    with db.session() as session:
        masks = reachable(session, ids)

    assert masks[Channel.EMAIL].tolist() == [True, False, True, False, True]
    assert masks[Channel.SMS].tolist() == [True, False, False, False, False]
