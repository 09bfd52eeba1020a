"""CSV import is all or nothing: a clean file is written with exact values; any problem is reported
with its row, column and reason, and then nothing at all is written. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from audience.importer import ImportKind, ImportSummary, import_csv
from core.db import Database
from core.errors import ValidationFailed
from core.models import Base, Consent, Customer, Order, Subscription

CUSTOMERS = ImportKind.CUSTOMERS
ORDERS = ImportKind.ORDERS
SUBSCRIPTIONS = ImportKind.SUBSCRIPTIONS


def csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def run(db: Database, kind: ImportKind, data: bytes, **options: Any) -> ImportSummary:
    with db.session() as session:
        return import_csv(session, kind, data, **options)


def problems(db: Database, kind: ImportKind, data: bytes, **options: Any) -> list[tuple[Any, ...]]:
    """The (row, column, reason, value) of every problem the import refuses the file for."""
    with pytest.raises(ValidationFailed) as refused:
        run(db, kind, data, **options)
    assert refused.value.message.endswith("; nothing was imported")
    return [(item["row"], item["column"], item["reason"], item["value"]) for item in refused.value.details]


def counts(db: Database) -> dict[str, int]:
    models: list[type[Base]] = [Customer, Subscription, Order, Consent]
    with db.session() as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0 for model in models}


def customers_in(db: Database) -> dict[str, Customer]:
    with db.session() as session:
        return {customer.external_id: customer for customer in session.scalars(select(Customer))}


def given_customers(db: Database, *external_ids: str) -> None:
    run(db, CUSTOMERS, csv("external_id", *external_ids))


NOTHING = {"customers": 0, "subscriptions": 0, "orders": 0, "consents": 0}

# --- clean files ----------------------------------------------------------------------------------


def test_customers_file_is_imported_with_normalised_values(db: Database) -> None:
    data = csv(
        "external_id,email,phone,first_name,last_name,time_zone,country,region",
        "c-1,Ann.Lee@Example.COM,+1 (212) 555-0100,Ann,Lee,America/New_York,us,NY",
        "c-2,,,,,,,",
    )

    summary = run(db, CUSTOMERS, data)

    assert summary == ImportSummary(CUSTOMERS, rows=2, created=2, updated=0, ignored_columns=())
    customers = customers_in(db)
    ann = customers["c-1"]
    assert (ann.email, ann.phone, ann.first_name, ann.last_name) == (
        "Ann.Lee@example.com",
        "+12125550100",
        "Ann",
        "Lee",
    )
    assert (ann.time_zone, ann.country, ann.region, ann.attributes) == ("America/New_York", "US", "NY", {})
    assert ann.contact_generated is False
    blank = customers["c-2"]
    assert (blank.email, blank.phone, blank.time_zone, blank.country, blank.region) == (None, None, None, None, None)


def test_orders_file_is_imported_with_exact_values_and_defaults(db: Database) -> None:
    given_customers(db, "c-1", "c-2")
    data = csv(
        "external_id,customer_external_id,amount,currency,quantity,ordered_at",
        "o-1,c-1,12.5,eur,3,2024-03-31T14:05:00+02:00",
        ",c-2,0.125,,,2024-03-31",
    )

    summary = run(db, ORDERS, data, currency="GBP")

    assert summary == ImportSummary(ORDERS, rows=2, created=2, updated=0, ignored_columns=())
    with db.session() as session:
        rows = session.execute(
            select(
                Customer.external_id, Order.external_id, Order.amount, Order.currency, Order.quantity, Order.ordered_at
            )
            .join(Customer)
            .order_by(Customer.external_id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("c-1", "o-1", Decimal("12.50"), "EUR", 3, datetime(2024, 3, 31, 12, 5, tzinfo=UTC)),
        ("c-2", None, Decimal("0.12"), "GBP", 1, datetime(2024, 3, 31, tzinfo=UTC)),
    ]


def test_subscriptions_file_is_imported_with_mapped_attributes(db: Database) -> None:
    given_customers(db, "c-1")
    data = csv(
        "Sub ID,Customer,Plan,Monthly,Since,Until,Seats,Notes",
        "s-1,c-1,Gold,19.99,2024-01-01,2024-06-30T23:59:59Z,5,ignore me",
    )
    mapping = {
        "external_id": "Sub ID",
        "customer_external_id": "Customer",
        "monthly_charge": "Monthly",
        "started_at": "Since",
        "ended_at": "Until",
        "attributes.seats": "Seats",
    }

    summary = run(db, SUBSCRIPTIONS, data, mapping=mapping)

    assert summary == ImportSummary(SUBSCRIPTIONS, rows=1, created=1, updated=0, ignored_columns=("Notes",))
    with db.session() as session:
        subscription = session.scalars(select(Subscription)).one()
    assert (subscription.external_id, subscription.plan, subscription.monthly_charge) == (
        "s-1",
        "Gold",
        Decimal("19.99"),
    )
    assert subscription.currency == "USD"
    assert subscription.started_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert subscription.ended_at == datetime(2024, 6, 30, 23, 59, 59, tzinfo=UTC)
    assert subscription.attributes == {"seats": "5"}


def test_columns_match_field_names_ignoring_case_and_a_bom(db: Database) -> None:
    data = "\ufeffExternal_ID,EMAIL\r\nc-1,ann@example.com\r\n".encode()

    run(db, CUSTOMERS, data)

    assert customers_in(db)["c-1"].email == "ann@example.com"


def test_a_file_in_another_encoding_is_read_when_the_encoding_is_given(db: Database) -> None:
    data = "external_id,first_name\nc-1,Zoë\n".encode("cp1252")

    run(db, CUSTOMERS, data, encoding="cp1252")

    assert customers_in(db)["c-1"].first_name == "Zoë"


def test_reimported_customers_are_updated_and_blank_cells_keep_stored_values(db: Database) -> None:
    run(
        db,
        CUSTOMERS,
        csv("external_id,email,first_name,tier,since", "c-1,old@example.com,Ann,gold,2020", "c-2,b@example.com,Bo,,"),
        mapping={"attributes.tier": "tier", "attributes.since": "since"},
    )

    summary = run(
        db,
        CUSTOMERS,
        csv("external_id,email,first_name,tier", "c-1,new@example.com,,silver", "c-3,c@example.com,Cy,"),
        mapping={"attributes.tier": "tier"},
    )

    assert (summary.rows, summary.created, summary.updated) == (2, 1, 1)
    customers = customers_in(db)
    assert sorted(customers) == ["c-1", "c-2", "c-3"]
    updated = customers["c-1"]
    assert (updated.email, updated.first_name) == ("new@example.com", "Ann")
    assert updated.attributes == {"tier": "silver", "since": "2020"}
    assert (customers["c-2"].email, customers["c-2"].attributes) == ("b@example.com", {})


# --- refused files: every problem, nothing written ------------------------------------------------


def test_wrong_values_are_all_reported_and_nothing_is_written_even_after_good_rows(db: Database) -> None:
    given_customers(db, "c-1")
    data = csv(
        "external_id,customer_external_id,amount,currency,quantity,ordered_at",
        "o-1,c-1,10.00,USD,1,2024-01-01",
        "o-2,c-1,ten,US,-2,01/02/2024",
        "o-3,c-1,$5,USD,1.5,2024-02-30",
        "o-4,c-1,-3,USD,0,2024",
        "o-5,c-1,1e3,USD,two,2024-01-01T25:00",
    )

    found = problems(db, ORDERS, data)

    number = "not a number (use digits and a '.', no currency sign or thousands separator)"
    not_a_date = "not a date or time in ISO 8601 (e.g. 2024-03-31 or 2024-03-31T14:05:00+02:00)"
    assert found == [
        (3, "amount", number, "ten"),
        (3, "currency", "not an ISO 4217 currency code (three letters, e.g. USD)", "US"),
        (3, "quantity", "must be a whole number of at least 1", "-2"),
        (3, "ordered_at", not_a_date, "01/02/2024"),
        (4, "amount", number, "$5"),
        (4, "quantity", "not a whole number", "1.5"),
        (4, "ordered_at", not_a_date, "2024-02-30"),
        (5, "amount", "must not be negative", "-3"),
        (5, "quantity", "must be a whole number of at least 1", "0"),
        (5, "ordered_at", not_a_date, "2024"),
        (6, "amount", number, "1e3"),
        (6, "quantity", "not a whole number", "two"),
        (6, "ordered_at", not_a_date, "2024-01-01T25:00"),
    ]
    assert counts(db) == NOTHING | {"customers": 1}


def test_bad_contact_details_are_reported_and_no_customer_is_written(db: Database) -> None:
    data = csv(
        "external_id,email,phone,time_zone,country,first_name",
        "c-1,ann@example.com,+12125550100,Europe/Paris,FR,Ann",
        "c-2,ann@,2125550100,Europe/Pariss,France," + "x" * 101,
        ",bo@example.com,,,,",
    )

    found = problems(db, CUSTOMERS, data)

    assert found == [
        (3, "email", "not an e-mail address", "ann@"),
        (3, "phone", "not a phone number in international format (+, country code, number)", "2125550100"),
        (3, "time_zone", "not an IANA time zone (e.g. America/New_York)", "Europe/Pariss"),
        (3, "country", "not a two-letter ISO 3166-1 country code (e.g. US)", "France"),
        (3, "first_name", "longer than 100 characters", "x" * 59 + "…"),
        (4, "external_id", "required value is blank", None),
    ]
    assert counts(db) == NOTHING


def test_missing_required_columns_are_reported_once_against_the_header(db: Database) -> None:
    given_customers(db, "c-1")
    data = csv("customer_external_id,price", *[f"c-1,{n}" for n in range(5)])

    found = problems(db, ORDERS, data)

    assert found == [
        (1, "amount", "required column is missing", None),
        (1, "ordered_at", "required column is missing", None),
    ]
    assert counts(db) == NOTHING | {"customers": 1}


def test_mapping_to_absent_columns_or_unknown_fields_is_reported(db: Database) -> None:
    data = csv("id,mail", "c-1,ann@example.com")
    mapping = {"external_id": "id", "email": "E-mail", "emial": "mail", "attributes.": "mail"}

    found = problems(db, CUSTOMERS, data, mapping=mapping)

    fields = "external_id, email, phone, first_name, last_name, time_zone, country, region"
    assert found == [
        (1, "E-mail", "no such column in the file (mapped to email)", None),
        (1, "mail", f"mapped to unknown field 'emial' (fields: {fields}; keep other columns as attributes.NAME)", None),
        (1, "mail", "cannot map to 'attributes.': attribute name is empty", None),
    ]
    assert counts(db) == NOTHING


def test_orders_keep_no_attributes(db: Database) -> None:
    given_customers(db, "c-1")
    data = csv("customer_external_id,amount,ordered_at,channel", "c-1,1,2024-01-01,web")

    found = problems(db, ORDERS, data, mapping={"attributes.channel": "channel"})

    assert found == [(1, "channel", "cannot map to 'attributes.channel': orders keep no attributes", None)]


def test_duplicate_ids_within_the_file_are_reported_for_each_repeat(db: Database) -> None:
    data = csv("external_id,email", "c-1,a@example.com", "c-2,b@example.com", "c-1,c@example.com", "c-1,")

    found = problems(db, CUSTOMERS, data)

    assert found == [
        (4, "external_id", "duplicate id: also on row 2", "c-1"),
        (5, "external_id", "duplicate id: also on row 2", "c-1"),
    ]
    assert counts(db) == NOTHING


def test_orders_already_imported_are_refused_and_nothing_else_is_written(db: Database) -> None:
    given_customers(db, "c-1")
    header = "external_id,customer_external_id,amount,ordered_at"
    run(db, ORDERS, csv(header, "o-1,c-1,5,2024-01-01"))

    found = problems(db, ORDERS, csv(header, "o-2,c-1,6,2024-01-02", "o-1,c-1,5,2024-01-01"))

    assert found == [(3, "external_id", "already imported: orders has a row with this external id", "o-1")]
    assert counts(db) == NOTHING | {"customers": 1, "orders": 1}


def test_subscriptions_of_unknown_customers_are_refused(db: Database) -> None:
    given_customers(db, "c-1")
    data = csv(
        "customer_external_id,plan,monthly_charge,started_at",
        "c-1,Gold,10,2024-01-01",
        "c-404,Gold,10,2024-01-01",
        "c-404,Silver,5,2024-01-01",
    )

    found = problems(db, SUBSCRIPTIONS, data)

    reason = "no customer with this external id (import customers first)"
    assert found == [(3, "customer_external_id", reason, "c-404"), (4, "customer_external_id", reason, "c-404")]
    assert counts(db) == NOTHING | {"customers": 1}


def test_a_subscription_ending_before_it_starts_is_refused(db: Database) -> None:
    given_customers(db, "c-1")
    data = csv("customer_external_id,plan,monthly_charge,started_at,ended_at", "c-1,Gold,10,2024-02-01,2024-01-31")

    found = problems(db, SUBSCRIPTIONS, data)

    assert found == [(2, "ended_at", "ends before it starts", "2024-01-31")]


def test_undecodable_bytes_are_reported_by_line_and_byte(db: Database) -> None:
    data = b"external_id,first_name\nc-1,Ann\nc-2,Zo\xeb\nc-3,\xff\xfeBo\n"

    found = problems(db, CUSTOMERS, data)

    save = "save the file as UTF-8 or give its encoding"
    assert found == [
        (3, None, f"not valid utf-8: EB at byte 7 of the line, offset 37 in the file; {save}", "c-2,Zo\ufffd"),
        (4, None, f"not valid utf-8: FF at byte 5 of the line, offset 43 in the file; {save}", "c-3,\ufffd\ufffdBo"),
    ]
    assert counts(db) == NOTHING


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty: no header row"),
        (b"\n\n", "the file is empty: no header row"),
        (b"external_id,email\n", "the file has a header but no rows"),
        (b"external_id,email\n\n,\n", "the file has a header but no rows"),
    ],
)
def test_an_empty_file_is_refused(db: Database, data: bytes, reason: str) -> None:
    assert problems(db, CUSTOMERS, data) == [(None, None, reason, None)]
    assert counts(db) == NOTHING


def test_a_row_with_the_wrong_number_of_cells_is_reported_by_the_line_it_starts_on(db: Database) -> None:
    data = b'external_id,first_name\nc-1,"Ann\nMarie"\nc-2,Bo,extra\nc-3,Cy,,\n'

    found = problems(db, CUSTOMERS, data)

    assert found == [(4, None, "has 3 cells but the header has 2", None)]
    assert counts(db) == NOTHING


def test_an_unknown_encoding_is_refused(db: Database) -> None:
    with pytest.raises(ValidationFailed, match="unknown encoding 'klingon'"):
        run(db, CUSTOMERS, csv("external_id", "c-1"), encoding="klingon")
