"""The offer catalog: a file is imported whole or not at all (every problem reported), upserted by code, and
``eligible_offers`` answers which offers a segment may get at a moment."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from agents.catalog import eligible_offers, import_offers
from core.db import Database
from core.errors import ValidationFailed
from core.models import Offer, OfferKind

KINDS = "'percent_off', 'amount_off', 'free_months', 'free_shipping' or 'gift'"


def offer(code: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "code": code,
        "name": f"{code} offer",
        "kind": "percent_off",
        "value": "20",
        "currency": "USD",
        "terms": "20% off for 3 bills.",
        "valid_from": "2026-09-01",
        "valid_until": "2027-03-31T23:59:59-05:00",
        "eligible_segments": ["subscribers_month_to_month"],
        "unit_cost": "42.00",
    }
    row.update(changes)
    return row


def file_of(*offers: Any) -> bytes:
    return json.dumps({"offers": list(offers)}).encode()


def stored(db: Database) -> list[Offer]:
    with db.session() as session:
        return list(session.scalars(select(Offer).order_by(Offer.code)))


def test_a_good_file_is_imported_with_exact_values(db: Database) -> None:
    data = file_of(offer("LOYAL20"), offer("FIBER", kind="free_months", value=3, currency=None, valid_until=None))

    with db.session() as session:
        summary = import_offers(session, data)

    assert (summary.offers, summary.created, summary.updated, summary.unchanged) == (2, 2, 0, 0)
    fiber, loyal = stored(db)
    assert (loyal.code, loyal.kind, loyal.value, loyal.currency, loyal.unit_cost) == (
        "LOYAL20",
        OfferKind.PERCENT_OFF,
        Decimal("20.00"),
        "USD",
        Decimal("42.00"),
    )
    assert loyal.valid_from == datetime(2026, 9, 1, tzinfo=UTC)
    assert loyal.valid_until == datetime(2027, 4, 1, 4, 59, 59, tzinfo=UTC)
    assert loyal.eligible_segments == ["subscribers_month_to_month"]
    assert (fiber.kind, fiber.value, fiber.currency, fiber.valid_until) == (
        OfferKind.FREE_MONTHS,
        Decimal(3),
        None,
        None,
    )


def test_a_reimport_updates_by_code_and_leaves_unchanged_offers_alone(db: Database) -> None:
    with db.session() as session:
        import_offers(session, file_of(offer("A"), offer("B")))

    with db.session() as session:
        summary = import_offers(session, file_of(offer("A"), offer("B", value="25"), offer("C")))

    assert (summary.created, summary.updated, summary.unchanged) == (1, 1, 1)
    assert [(row.code, row.value) for row in stored(db)] == [
        ("A", Decimal("20.00")),
        ("B", Decimal("25.00")),
        ("C", Decimal("20.00")),
    ]


def problems_of(error: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[Any, ...]]:
    return [(d["row"], d["column"], d["reason"], d["value"]) for d in error.value.details]


def test_every_problem_is_reported_and_nothing_is_written(db: Database) -> None:
    with db.session() as session:
        import_offers(session, file_of(offer("KEEP")))
    data = file_of(
        offer("GOOD"),
        offer("bad code", kind="half_off"),
        offer("PCT", value="120"),
        offer("AMT", kind="amount_off", value="10", currency=None),
        offer("MONTHS", kind="free_months", value="1.5"),
        offer("CURRENCY", currency="dollars"),
        offer("DATES", valid_from="2027-01-01", valid_until="2026-01-01", eligible_segments=["a", "a"]),
        offer("GOOD", unit_cost="-1", surprise=True),
        {"code": "MISSING"},
    )

    with db.session() as session, pytest.raises(ValidationFailed) as error:
        import_offers(session, data)

    assert error.value.message == "17 problems in offers.json; nothing was imported"
    assert problems_of(error) == [
        (2, "code", "String should match pattern '^[A-Z0-9][A-Z0-9_-]*$'", "bad code"),
        (2, "kind", f"Input should be {KINDS}", "half_off"),
        (3, "value", "a percent_off value is a percentage in (0, 100]", "120"),
        (4, "currency", "an amount_off offer needs a currency", None),
        (5, "value", "free_months is a whole number of months, at least 1", "1.5"),
        (6, "currency", "not an ISO 4217 currency code (three letters, e.g. USD)", "dollars"),
        (7, "valid_until", "must be after valid_from", "2026-01-01T00:00:00+00:00"),
        (7, "eligible_segments", "lists a segment more than once", '["a", "a"]'),
        (8, "unit_cost", "Input should be greater than or equal to 0", "-1"),
        (8, "surprise", "Extra inputs are not permitted", "true"),
        (8, "code", "duplicate: also item 1", "GOOD"),
        (9, "name", "Field required", None),
        (9, "kind", "Field required", None),
        (9, "value", "Field required", None),
        (9, "terms", "Field required", None),
        (9, "valid_from", "Field required", None),
        (9, "unit_cost", "Field required", None),
    ]
    assert [row.code for row in stored(db)] == ["KEEP"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2"),
        (b"\xff\xfe", "not UTF-8 text (byte 0)"),
        (b'[{"code": "A"}]', 'expected a JSON object with a list under "offers"'),
        (b'{"offers": [], "extra": 1}', "unknown top-level keys: extra"),
    ],
)
def test_a_file_that_is_not_a_catalog_is_refused_whole(db: Database, data: bytes, reason: str) -> None:
    with db.session() as session, pytest.raises(ValidationFailed) as error:
        import_offers(session, data, file="mine.json")

    assert error.value.details == [{"file": "mine.json", "row": None, "column": None, "reason": reason, "value": None}]
    assert stored(db) == []


def test_eligible_offers_respect_validity_window_and_segment(db: Database) -> None:
    with db.session() as session:
        import_offers(
            session,
            file_of(
                offer("EVERYONE", eligible_segments=[], valid_until=None),
                offer("M2M", eligible_segments=["subscribers_month_to_month", "subscribers_new"]),
                offer("LAPSED", eligible_segments=["music_buyers_lapsed"]),
                offer("ENDED", valid_from="2026-06-01", valid_until="2026-09-01T00:00:00Z"),
                offer("LATER", valid_from="2027-03-01", valid_until=None),
            ),
        )

    def codes(segment: str, at: datetime) -> list[str]:
        with db.session() as session:
            return [row.code for row in eligible_offers(session, segment, at)]

    november = datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert codes("subscribers_month_to_month", november) == ["EVERYONE", "M2M"]
    assert codes("music_buyers_lapsed", november) == ["EVERYONE", "LAPSED"]
    assert codes("subscribers_fiber", november) == ["EVERYONE"]
    # valid_from is inclusive, valid_until exclusive
    assert codes("subscribers_month_to_month", datetime(2026, 9, 1, tzinfo=UTC)) == ["EVERYONE", "M2M"]
    assert codes("subscribers_month_to_month", datetime(2026, 8, 31, 23, 59, tzinfo=UTC)) == ["ENDED"]
    assert codes("subscribers_month_to_month", datetime(2027, 3, 1, tzinfo=UTC)) == ["EVERYONE", "LATER", "M2M"]
    # a naive moment is UTC
    assert codes("subscribers_month_to_month", datetime(2027, 4, 1, 4, 59, 59)) == ["EVERYONE", "LATER"]
