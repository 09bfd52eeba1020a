"""The sample loaders turn slices of the real files into exact rows, generate what the data lacks,
and load a sample only once. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audience.generated_contacts import CONSENT_PROOF, CONSENT_SOURCE, generate_consents, generate_contact
from audience.samples import SAMPLES_DIR, Sample, SampleSummary, is_loaded, load_sample
from core.db import Database
from core.errors import BadRequest, Conflict
from core.models import Channel, Consent, ConsentBasis, ConsentPurpose, ConsentStatus, Customer, Order, Subscription

TELCO_IDS = ("7590-VHVEG", "3668-QPYBK", "4472-LVYGI")  # tenure 1; tenure 2 and churned; tenure 0, no TotalCharges


@pytest.fixture
def telco_slice(tmp_path: Path) -> Path:
    """The header and three customers of the real Telco file, byte for byte."""
    lines = (SAMPLES_DIR / Sample.TELCO.file_name).read_bytes().splitlines(keepends=True)
    path = tmp_path / "telco.csv"
    path.write_bytes(b"".join([lines[0], *(line for line in lines if line.split(b",")[0].decode() in TELCO_IDS)]))
    return path


@pytest.fixture
def cdnow_slice(tmp_path: Path) -> Path:
    """The header and the first seven purchases (customers 00001 to 00003) of the real CDNOW file."""
    lines = (SAMPLES_DIR / Sample.CDNOW.file_name).read_bytes().splitlines(keepends=True)
    path = tmp_path / "cdnow.txt"
    path.write_bytes(b"".join(lines[:8]))
    return path


def load(db: Database, sample: Sample, path: Path) -> SampleSummary:
    with db.session() as session:
        return load_sample(session, sample, path)


def counts(db: Database) -> tuple[int, int, int, int]:
    with db.session() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Customer, Subscription, Order, Consent)
        )


def test_telco_rows_become_customers_and_dated_subscriptions(db: Database, telco_slice: Path) -> None:
    summary = load(db, Sample.TELCO, telco_slice)

    assert summary == SampleSummary(Sample.TELCO, customers=3, subscriptions=3, orders=0, consents=summary.consents)
    with db.session() as session:
        customer = session.scalars(select(Customer).where(Customer.external_id == "telco-3668-QPYBK")).one()
        subscriptions = {
            row.external_id: row for row in session.scalars(select(Subscription).order_by(Subscription.external_id))
        }
    contact = generate_contact("telco-3668-QPYBK")
    assert (customer.email, customer.phone, customer.first_name, customer.last_name) == (
        contact.email,
        contact.phone,
        contact.first_name,
        contact.last_name,
    )
    assert (customer.country, customer.region, customer.time_zone) == ("US", "AZ", "America/Phoenix")
    assert customer.contact_generated is True
    assert customer.attributes == {
        "sample": "telco",
        "gender": "Male",
        "senior_citizen": False,
        "partner": False,
        "dependents": False,
    }
    churned = subscriptions["telco-3668-QPYBK"]
    assert (churned.customer_id, churned.plan, churned.monthly_charge, churned.currency) == (
        customer.id,
        "Month-to-month",
        Decimal("53.85"),
        "USD",
    )
    assert churned.started_at == datetime(2026, 7, 1, 12, 55, 1, tzinfo=UTC)  # tenure 2: in July 2026
    assert churned.ended_at == datetime(2026, 9, 14, 23, 59, 47, tzinfo=UTC)  # in the month before the snapshot
    assert churned.attributes == {
        "phone_service": True,
        "multiple_lines": "No",
        "internet_service": "DSL",
        "online_security": "Yes",
        "online_backup": "Yes",
        "device_protection": "No",
        "tech_support": "No",
        "streaming_tv": "No",
        "streaming_movies": "No",
        "paperless_billing": True,
        "payment_method": "Mailed check",
        "total_charges": "108.15",
        "tenure_months": 2,
    }
    staying = subscriptions["telco-7590-VHVEG"]
    assert (staying.started_at, staying.ended_at) == (datetime(2026, 8, 1, 19, 7, 53, tzinfo=UTC), None)  # tenure 1
    new = subscriptions["telco-4472-LVYGI"]
    assert (new.plan, new.started_at, new.ended_at) == ("Two year", datetime(2026, 9, 6, 14, 56, 37, tzinfo=UTC), None)
    assert (new.attributes["total_charges"], new.attributes["tenure_months"]) == (None, 0)


def test_cdnow_lines_become_customers_and_orders_with_stable_ids(db: Database, cdnow_slice: Path) -> None:
    summary = load(db, Sample.CDNOW, cdnow_slice)

    assert (summary.customers, summary.subscriptions, summary.orders) == (3, 0, 7)
    with db.session() as session:
        rows = session.execute(
            select(
                Customer.external_id, Order.external_id, Order.amount, Order.currency, Order.quantity, Order.ordered_at
            )
            .join(Customer)
            .order_by(Order.id)
        ).all()
        customers = {customer.external_id: customer for customer in session.scalars(select(Customer))}
    day = lambda year, month, date: datetime(year, month, date, tzinfo=UTC)  # noqa: E731
    assert [tuple(row) for row in rows] == [
        ("cdnow-00001", "cdnow-00001-1", Decimal("11.77"), "USD", 1, day(1997, 1, 1)),
        ("cdnow-00002", "cdnow-00002-1", Decimal("12.00"), "USD", 1, day(1997, 1, 12)),
        ("cdnow-00002", "cdnow-00002-2", Decimal("77.00"), "USD", 5, day(1997, 1, 12)),
        ("cdnow-00003", "cdnow-00003-1", Decimal("20.76"), "USD", 2, day(1997, 1, 2)),
        ("cdnow-00003", "cdnow-00003-2", Decimal("20.76"), "USD", 2, day(1997, 3, 30)),
        ("cdnow-00003", "cdnow-00003-3", Decimal("19.54"), "USD", 2, day(1997, 4, 2)),
        ("cdnow-00003", "cdnow-00003-4", Decimal("57.45"), "USD", 5, day(1997, 11, 15)),
    ]
    assert customers["cdnow-00001"].email == "oliver.lopez.cdnow-00001@example.org"
    assert all(
        customer.contact_generated and customer.attributes == {"sample": "cdnow"} for customer in customers.values()
    )


def test_generated_consents_are_recorded_from_the_first_purchase(db: Database, cdnow_slice: Path) -> None:
    load(db, Sample.CDNOW, cdnow_slice)

    with db.session() as session:
        stored = session.execute(
            select(
                Customer.external_id,
                Consent.channel,
                Consent.status,
                Consent.recorded_at,
                Consent.source,
                Consent.proof,
            )
            .join(Customer)
            .order_by(Consent.id)
        ).all()
    first_purchase = {
        "cdnow-00001": datetime(1997, 1, 1),
        "cdnow-00002": datetime(1997, 1, 12),
        "cdnow-00003": datetime(1997, 1, 2),
    }
    expected = [
        (external_id, consent.channel, consent.status, consent.recorded_at, CONSENT_SOURCE, CONSENT_PROOF)
        for external_id, since in first_purchase.items()
        for consent in generate_consents(
            external_id,
            has_phone=generate_contact(external_id).phone is not None,
            since=since.replace(tzinfo=UTC),
            until=datetime(1998, 7, 1, tzinfo=UTC),
        )
    ]
    assert [tuple(row) for row in stored] == expected
    assert len(expected) >= 3


def test_generated_consents_record_their_purpose_basis_and_disclosure(db: Database, cdnow_slice: Path) -> None:
    load(db, Sample.CDNOW, cdnow_slice)

    with db.session() as session:
        stored = session.execute(
            select(
                Customer.external_id,
                Consent.channel,
                Consent.status,
                Consent.purpose,
                Consent.basis,
                Consent.expires_at,
                Consent.disclosure_version,
            )
            .join(Customer)
            .order_by(Consent.id)
        ).all()

    email = (Channel.EMAIL, ConsentStatus.GRANTED, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS, None)
    sms = (Channel.SMS, ConsentStatus.GRANTED, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS_WRITTEN, None)
    assert [tuple(row) for row in stored] == [
        ("cdnow-00001", *email, "sample-email-opt-in-v1"),
        ("cdnow-00001", *sms, "sample-sms-pewc-v1"),
        ("cdnow-00002", *email, "sample-email-opt-in-v1"),
        ("cdnow-00002", *sms, "sample-sms-pewc-v1"),
        ("cdnow-00003", *email, "sample-email-opt-in-v1"),
        ("cdnow-00003", *sms, "sample-sms-pewc-v1"),
        # cdnow-00003 later replied STOP: the withdrawal names the basis it ends and shows no wording.
        ("cdnow-00003", Channel.SMS, ConsentStatus.WITHDRAWN, *sms[2:], None),
    ]


def test_a_sample_loads_only_once(db: Database, cdnow_slice: Path) -> None:
    load(db, Sample.CDNOW, cdnow_slice)
    before = counts(db)

    with pytest.raises(Conflict, match="the CDNOW sample is already loaded"):
        load(db, Sample.CDNOW, cdnow_slice)

    assert counts(db) == before
    with db.session() as session:
        assert (is_loaded(session, Sample.CDNOW), is_loaded(session, Sample.TELCO)) == (True, False)


def test_a_file_that_is_not_the_sample_is_refused_and_nothing_is_written(db: Database, tmp_path: Path) -> None:
    wrong = tmp_path / "orders.txt"
    wrong.write_text("customer_id date\n00001 19970101\n")

    with pytest.raises(BadRequest, match="is not the CDNOW file: no column number_of_cds, dollar_value"):
        load(db, Sample.CDNOW, wrong)

    assert counts(db) == (0, 0, 0, 0)


def test_the_whole_telco_file_loads_with_its_known_totals(db: Database) -> None:
    summary = load(db, Sample.TELCO, SAMPLES_DIR / Sample.TELCO.file_name)

    assert (summary.customers, summary.subscriptions, summary.consents) == (7043, 7043, 9218)
    with db.session() as session:
        ended = session.scalar(select(func.count()).where(Subscription.ended_at.is_not(None)))
        earliest = session.scalar(select(func.min(Subscription.started_at)))
    assert ended == 1869  # Churn = Yes
    assert datetime(2020, 9, 1, tzinfo=UTC) < earliest < datetime(2020, 10, 1, tzinfo=UTC)  # tenure 72 months
