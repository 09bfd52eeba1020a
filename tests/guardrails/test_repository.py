"""Recipient snapshots from the database: the channel's address, the latest consent among the purposes that
cover the message, suppression by address, and the recent sends the caller passes. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, event, text

from core.db import Database
from core.models import (
    Channel,
    Consent,
    ConsentBasis,
    ConsentPurpose,
    ConsentStatus,
    Customer,
    Suppression,
    SuppressionReason,
)
from core.models.base import UTCDateTime
from guardrails.repository import load_recipients
from guardrails.sendtime import ConsentRecord, Recipient

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GRANTED, WITHDRAWN = ConsentStatus.GRANTED, ConsentStatus.WITHDRAWN
MARKETING, CART = ConsentPurpose.MARKETING, ConsentPurpose.CART
WRITTEN, EXPRESS = ConsentBasis.EXPRESS_WRITTEN, ConsentBasis.EXPRESS

# (days after T0, channel, status, purpose, basis)
ConsentRow = tuple[int, Channel, ConsentStatus, ConsentPurpose, ConsentBasis]


def _customer(db: Database, external_id: str, phone: str | None, consents: list[ConsentRow], **place: str) -> int:
    with db.session() as session:
        customer = Customer(external_id=external_id, email=f"{external_id}@example.com", phone=phone, **place)
        session.add(customer)
        session.flush()
        for days, channel, status, purpose, basis in consents:
            session.add(
                Consent(
                    customer_id=customer.id,
                    channel=channel,
                    status=status,
                    purpose=purpose,
                    basis=basis,
                    source="test",
                    recorded_at=T0 + timedelta(days=days),
                    disclosure_version="pewc-v3" if status is GRANTED else None,
                )
            )
        return customer.id


def _people(db: Database) -> dict[str, int]:
    new_york = {"country": "US", "region": "NY", "time_zone": "America/New_York"}
    ids = {
        "ana": _customer(
            db,
            "ana",
            "+12125550101",
            [(0, Channel.SMS, GRANTED, MARKETING, EXPRESS), (3, Channel.SMS, GRANTED, MARKETING, WRITTEN)],
            **new_york,
        ),
        "ben": _customer(
            db,
            "ben",
            "+12125550102",
            [(0, Channel.SMS, GRANTED, MARKETING, WRITTEN), (5, Channel.SMS, WITHDRAWN, MARKETING, WRITTEN)],
            country="US",
            region="FL",
        ),
        "cy": _customer(
            db,
            "cy",
            "+12125550103",
            [(0, Channel.SMS, GRANTED, MARKETING, WRITTEN), (9, Channel.SMS, WITHDRAWN, CART, WRITTEN)],
        ),
        "dee": _customer(db, "dee", "+12125550104", [(0, Channel.SMS, GRANTED, MARKETING, WRITTEN)], **new_york),
        "eve": _customer(db, "eve", None, [(0, Channel.EMAIL, GRANTED, MARKETING, EXPRESS)]),
    }
    with db.session() as session:
        session.add(
            Suppression(channel=Channel.SMS, address="+12125550104", reason=SuppressionReason.STOP_KEYWORD, source="t")
        )
        # The same number suppressed for e-mail means nothing: suppression is per channel.
        session.add(
            Suppression(channel=Channel.EMAIL, address="+12125550101", reason=SuppressionReason.MANUAL, source="t")
        )
    return ids


def _record(days: int, status: ConsentStatus, purpose: ConsentPurpose, basis: ConsentBasis) -> ConsentRecord:
    version = "pewc-v3" if status is GRANTED else None
    return ConsentRecord(status, purpose, basis, T0 + timedelta(days=days), None, version)


def test_snapshots_carry_the_address_the_latest_consent_suppression_and_recent_sends(db: Database) -> None:
    ids = _people(db)
    sent = [T0 + timedelta(days=20), T0 + timedelta(days=21)]

    with db.session() as session:
        found = load_recipients(session, [*ids.values(), 99_999], Channel.SMS, recent_sends={ids["ana"]: sent})

    def snapshot(name: str, **fields: object) -> Recipient:
        base = {"customer_id": ids[name], "channel": Channel.SMS, "country": None, "region": None, "time_zone": None}
        return Recipient(**{**base, **fields})

    assert found == {
        ids["ana"]: snapshot(
            "ana",
            address="+12125550101",
            country="US",
            region="NY",
            time_zone="America/New_York",
            consent=_record(3, GRANTED, MARKETING, WRITTEN),
            recent_sends=tuple(sent),
        ),
        ids["ben"]: snapshot(
            "ben",
            address="+12125550102",
            country="US",
            region="FL",
            consent=_record(5, WITHDRAWN, MARKETING, WRITTEN),
        ),
        # A cart consent does not speak for marketing: the marketing grant is still current.
        ids["cy"]: snapshot("cy", address="+12125550103", consent=_record(0, GRANTED, MARKETING, WRITTEN)),
        ids["dee"]: snapshot(
            "dee",
            address="+12125550104",
            country="US",
            region="NY",
            time_zone="America/New_York",
            consent=_record(0, GRANTED, MARKETING, WRITTEN),
            suppressed=True,
        ),
        ids["eve"]: snapshot("eve", address=None, consent=None),
    }


def test_a_cart_reminder_takes_the_latest_of_the_cart_and_marketing_consents(db: Database) -> None:
    ids = _people(db)

    with db.session() as session:
        found = load_recipients(session, [ids["ana"], ids["cy"]], Channel.SMS, purpose=CART)

    assert found[ids["cy"]].consent == _record(9, WITHDRAWN, CART, WRITTEN)
    assert found[ids["ana"]].consent == _record(3, GRANTED, MARKETING, WRITTEN)
    assert {recipient.purpose for recipient in found.values()} == {CART}


def test_the_email_snapshot_reads_the_email_address_consent_and_suppressions(db: Database) -> None:
    ids = _people(db)

    with db.session() as session:
        found = load_recipients(session, [ids["ana"], ids["eve"]], Channel.EMAIL)

    assert (found[ids["ana"]].address, found[ids["ana"]].consent, found[ids["ana"]].suppressed) == (
        "ana@example.com",
        None,
        False,
    )
    assert found[ids["eve"]].consent == ConsentRecord(GRANTED, MARKETING, EXPRESS, T0, None, "pewc-v3")


def test_a_batch_costs_three_queries(db: Database) -> None:
    ids = _people(db)

    with db.session() as session, _counting(db) as statements:
        load_recipients(session, list(ids.values()), Channel.SMS)

    assert len(statements) == 3


def test_a_consent_row_written_before_the_basis_existed_reads_as_an_express_marketing_consent(db: Database) -> None:
    with db.session() as session:
        customer = Customer(external_id="old", phone="+12125550109")
        session.add(customer)
        session.flush()
        # Plain SQL, as an older release wrote it: only the database's defaults fill the new columns.
        session.execute(
            text(
                "INSERT INTO consents (customer_id, channel, status, source, recorded_at)"
                " VALUES (:customer, 'sms', 'granted', 'old release', :at)"
            ).bindparams(bindparam("at", type_=UTCDateTime())),
            {"customer": customer.id, "at": T0},
        )

    with db.session() as session:
        found = load_recipients(session, [customer.id], Channel.SMS)

    assert found[customer.id].consent == ConsentRecord(GRANTED, MARKETING, EXPRESS, T0)


@contextmanager
def _counting(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on ``db`` inside the block."""
    seen: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
