"""The offer catalog: the only offers the agents may make, imported from a JSON file and queried by segment and date.

``import_offers`` checks every offer in the file first and writes all of them or none, reporting every
problem (``agents.files``). Offers are upserted by ``code``: a new code is created, a known one updated
in place, so a re-import of the same file changes nothing. The file::

    {"offers": [{"code": "LOYAL20", "name": "…", "kind": "percent_off", "value": "20", "currency": "USD",
                 "terms": "…", "valid_from": "2026-09-01", "valid_until": "2027-03-31T23:59:59-05:00",
                 "eligible_segments": ["subscribers_month_to_month"], "unit_cost": "42.00"}]}

Rules beyond the types (checked on the items whose fields are all valid): a ``percent_off`` value is in
(0, 100]; ``free_months`` is a whole number of at least 1; ``amount_off`` is positive and needs a
currency; ``valid_until`` (empty: open-ended) is after ``valid_from``; segment names are unique.

An offer is valid from ``valid_from`` up to, not including, ``valid_until``; an empty
``eligible_segments`` means every segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from agents.files import (
    Problem,
    UtcDatetime,
    apply_columns,
    duplicates,
    raise_problems,
    read_items,
    shown,
    validate_items,
)
from core.clock import as_utc
from core.errors import NudgeError
from core.models import Offer, OfferKind
from core.money import to_currency

OFFERS_KEY = "offers"
MAX_AMOUNT = Decimal("1e12")  # Numeric(14, 2) holds 12 digits before the point

Segment = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class OfferRow(BaseModel):
    """One offer as the file holds it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Z0-9][A-Z0-9_-]*$")
    name: str = Field(min_length=1, max_length=200)
    kind: OfferKind
    value: Decimal = Field(ge=0, lt=MAX_AMOUNT, decimal_places=2)
    currency: str | None = None
    terms: str = Field(min_length=1)
    valid_from: UtcDatetime
    valid_until: UtcDatetime | None = None
    eligible_segments: list[Segment] = Field(default_factory=list)
    unit_cost: Decimal = Field(ge=0, lt=MAX_AMOUNT, decimal_places=2)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return to_currency(value)
        except NudgeError as error:
            raise ValueError("not an ISO 4217 currency code (three letters, e.g. USD)") from error

    def columns(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass(frozen=True, slots=True)
class OfferImportSummary:
    file: str
    offers: int
    created: int
    updated: int
    unchanged: int


def parse_offers(data: bytes, file: str = "offers.json") -> tuple[list[OfferRow], list[Problem]]:
    """Every offer in the file, checked; the rows are only usable when there is no problem."""
    items, problems = read_items(data, file, OFFERS_KEY)
    rows, row_problems = validate_items(OfferRow, items, file)
    problems += row_problems
    for number, row in enumerate(rows, start=1):
        if row is not None:
            problems += [Problem(file, number, field, reason, value) for field, reason, value in _rules(row)]
    problems += duplicates(file, items, "code")
    return [row for row in rows if row is not None], problems


def _rules(row: OfferRow) -> list[tuple[str, str, str | None]]:
    """(field, reason, value) for each rule the offer breaks."""
    broken: list[tuple[str, str, str | None]] = []
    value = str(row.value)
    if row.kind is OfferKind.PERCENT_OFF and not Decimal(0) < row.value <= Decimal(100):
        broken.append(("value", "a percent_off value is a percentage in (0, 100]", value))
    if row.kind is OfferKind.FREE_MONTHS and (row.value < 1 or row.value != row.value.to_integral_value()):
        broken.append(("value", "free_months is a whole number of months, at least 1", value))
    if row.kind is OfferKind.AMOUNT_OFF and row.value <= 0:
        broken.append(("value", "an amount_off value must be positive", value))
    if row.kind is OfferKind.AMOUNT_OFF and row.currency is None:
        broken.append(("currency", "an amount_off offer needs a currency", None))
    if row.valid_until is not None and row.valid_until <= row.valid_from:
        broken.append(("valid_until", "must be after valid_from", shown(row.valid_until.isoformat())))
    if len(set(row.eligible_segments)) != len(row.eligible_segments):
        broken.append(("eligible_segments", "lists a segment more than once", shown(row.eligible_segments)))
    return broken


def import_offers(session: Session, data: bytes, *, file: str = "offers.json") -> OfferImportSummary:
    """Check every offer, then upsert all of them by code, or raise ``ValidationFailed`` with every problem.

    Never commits: the caller's session scope does, or rolls back.
    """
    rows, problems = parse_offers(data, file)
    raise_problems(problems)
    return write_offers(session, rows, file)


def write_offers(session: Session, rows: Sequence[OfferRow], file: str) -> OfferImportSummary:
    """Upsert checked offers by code; an offer whose every column already matches is left untouched."""
    stored = {
        offer.code: offer for offer in session.scalars(select(Offer).where(Offer.code.in_([r.code for r in rows])))
    }
    created = updated = 0
    for row in rows:
        offer = stored.get(row.code)
        if offer is None:
            session.add(Offer(**row.columns()))
            created += 1
        elif apply_columns(offer, row.columns()):
            updated += 1
    session.flush()
    return OfferImportSummary(file, len(rows), created, updated, len(rows) - created - updated)


def eligible_offers(session: Session, segment: str, at: datetime) -> list[Offer]:
    """The offers valid at ``at`` (``valid_from`` ≤ at < ``valid_until``) that ``segment`` may receive, by code."""
    moment = as_utc(at)
    valid = select(Offer).where(
        Offer.valid_from <= moment, or_(Offer.valid_until.is_(None), Offer.valid_until > moment)
    )
    # Segments are filtered here rather than in SQL: JSON containment differs between SQLite and
    # PostgreSQL, and a catalog holds tens of offers.
    offers = session.scalars(valid.order_by(Offer.code)).all()
    return [offer for offer in offers if not offer.eligible_segments or segment in offer.eligible_segments]
