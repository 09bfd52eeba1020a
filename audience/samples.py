"""Loaders for the real sample data sets in ``data/samples/``: IBM Telco churn and CDNOW.

Both go through the importer's bulk path (``upsert_customers``, then ``insert_rows`` for the
subscriptions or orders and for the consents), so loading CDNOW's 69,659 orders takes seconds.
What the data sets lack (names, addresses, places, consent, Telco's dates) is generated
deterministically, as ``data/samples/README.md`` documents. A sample loads once: loading it again
raises ``Conflict`` and writes nothing, and ``is_loaded`` tells a caller beforehand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from audience.generated_contacts import (
    CONSENT_PROOF,
    CONSENT_SOURCE,
    GeneratedConsent,
    GeneratedContact,
    consent_terms,
    draw,
    generate_consents,
    generate_contact,
)
from audience.repository import upsert_customers
from core.bulk import insert_rows
from core.clock import utcnow
from core.errors import BadRequest, Conflict
from core.models import Consent, ConsentPurpose, ConsentStatus, Customer, Order, Subscription
from core.money import to_amount

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "samples"

# Telco is one snapshot without dates; its subscriptions are dated back from this moment.
TELCO_SNAPSHOT = datetime(2026, 10, 1, tzinfo=UTC)
# CDNOW's purchases run to 1998-06-30; generated consent withdrawals fall before this moment.
CDNOW_END = datetime(1998, 7, 1, tzinfo=UTC)
CURRENCY = "USD"

Step = Callable[[str], None]


class Sample(StrEnum):
    TELCO = "telco"
    CDNOW = "cdnow"

    @property
    def label(self) -> str:
        return {Sample.TELCO: "IBM Telco churn", Sample.CDNOW: "CDNOW"}[self]

    @property
    def file_name(self) -> str:
        return {Sample.TELCO: "Telco-Customer-Churn.csv", Sample.CDNOW: "CDNOW_master.txt"}[self]

    @property
    def prefix(self) -> str:
        """Every customer of the sample has an external id starting with this."""
        return f"{self.value}-"


@dataclass(frozen=True, slots=True)
class SampleSummary:
    sample: Sample
    customers: int
    subscriptions: int
    orders: int
    consents: int


def is_loaded(session: Session, sample: Sample) -> bool:
    prefix = sample.prefix
    found = session.scalar(select(Customer.id).where(Customer.external_id.startswith(prefix, autoescape=True)).limit(1))
    return found is not None


def load_sample(
    session: Session, sample: Sample, path: Path | None = None, *, on_step: Step | None = None
) -> SampleSummary:
    """Load a sample data set (from ``data/samples/`` unless ``path`` is given); never commits.

    ``on_step`` is told the name of each step as it starts (for progress output).
    """
    if is_loaded(session, sample):
        raise Conflict(f"the {sample.label} sample is already loaded (customers {sample.prefix}…); nothing was written")
    source = path or SAMPLES_DIR / sample.file_name
    if not source.is_file():
        raise BadRequest(f"sample file not found: {source}")
    step = on_step or _quiet
    step("reading")
    try:
        plan = _telco_plan(_read_telco(source)) if sample is Sample.TELCO else _cdnow_plan(_read_cdnow(source))
    except (ValueError, KeyError) as error:
        raise BadRequest(f"{source} is not a well-formed {sample.label} file: {error}") from error
    return _write(session, sample, plan, step)


def _quiet(_step: str) -> None:
    pass


@dataclass(slots=True)
class _Plan:
    """What a sample becomes: rows of orders and subscriptions name their customer's external id as ``customer``."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    # (external id, contact, granted at, withdrawals before) per customer
    consents: list[tuple[str, GeneratedContact, datetime, datetime]] = field(default_factory=list)


def _write(session: Session, sample: Sample, plan: _Plan, step: Step) -> SampleSummary:
    step("customers")
    ids = upsert_customers(session, plan.customers)
    for model, rows, name in ((Subscription, plan.subscriptions, "subscriptions"), (Order, plan.orders, "orders")):
        if rows:
            step(name)
            insert_rows(session, model, _owned(rows, ids))
    step("consents")
    consents = _insert_consents(session, plan.consents, ids)
    return SampleSummary(sample, len(plan.customers), len(plan.subscriptions), len(plan.orders), consents)


def _require(frame: pd.DataFrame, columns: Iterable[str], source: Path, sample: Sample) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise BadRequest(f"{source} is not the {sample.label} file: no column {', '.join(missing)}")


# --- Telco ----------------------------------------------------------------------------------------

TELCO_CUSTOMER_FLAGS = {"SeniorCitizen": "senior_citizen", "Partner": "partner", "Dependents": "dependents"}
# Services with three answers keep the file's words ("No internet service"); yes/no ones become booleans.
TELCO_SERVICES = {
    "MultipleLines": "multiple_lines",
    "InternetService": "internet_service",
    "OnlineSecurity": "online_security",
    "OnlineBackup": "online_backup",
    "DeviceProtection": "device_protection",
    "TechSupport": "tech_support",
    "StreamingTV": "streaming_tv",
    "StreamingMovies": "streaming_movies",
    "PaymentMethod": "payment_method",
}
TELCO_SUBSCRIPTION_FLAGS = {"PhoneService": "phone_service", "PaperlessBilling": "paperless_billing"}
TELCO_COLUMNS = (
    "customerID",
    "gender",
    "tenure",
    "Contract",
    "MonthlyCharges",
    "TotalCharges",
    "Churn",
    *TELCO_CUSTOMER_FLAGS,
    *TELCO_SERVICES,
    *TELCO_SUBSCRIPTION_FLAGS,
)


def _read_telco(source: Path) -> list[dict[str, str]]:
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    _require(frame, TELCO_COLUMNS, source, Sample.TELCO)
    return [{str(name): str(value).strip() for name, value in row.items()} for row in frame.to_dict("records")]


def _telco_plan(rows: list[dict[str, str]]) -> _Plan:
    plan = _Plan()
    for row in rows:
        external_id = f"{Sample.TELCO.prefix}{row['customerID']}"
        contact = generate_contact(external_id)
        subscription = _telco_subscription(external_id, row)
        plan.customers.append(_customer_row(external_id, contact, _telco_customer_attributes(row)))
        plan.subscriptions.append(subscription)
        plan.consents.append((external_id, contact, subscription["started_at"], TELCO_SNAPSHOT))
    return plan


def _telco_customer_attributes(row: dict[str, str]) -> dict[str, Any]:
    flags = {name: row[column] in ("Yes", "1") for column, name in TELCO_CUSTOMER_FLAGS.items()}
    return {"sample": Sample.TELCO.value, "gender": row["gender"], **flags}


def _telco_subscription(external_id: str, row: dict[str, str]) -> dict[str, Any]:
    tenure = int(row["tenure"])
    started = _telco_start(external_id, tenure)
    ended = _telco_churn_moment(external_id, started) if row["Churn"] == "Yes" else None
    attributes: dict[str, Any] = {name: row[column] for column, name in TELCO_SERVICES.items()}
    attributes |= {name: row[column] == "Yes" for column, name in TELCO_SUBSCRIPTION_FLAGS.items()}
    # Money stays text in JSON (floats would round); blank for the 11 customers in their first month.
    attributes |= {"total_charges": str(to_amount(row["TotalCharges"])) if row["TotalCharges"] else None}
    attributes["tenure_months"] = tenure
    return {
        "customer": external_id,
        "external_id": external_id,
        "plan": row["Contract"],
        "monthly_charge": to_amount(row["MonthlyCharges"]),
        "currency": CURRENCY,
        "started_at": started,
        "ended_at": ended,
        "attributes": attributes,
    }


def _months_before(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def _telco_start(external_id: str, tenure: int) -> datetime:
    """``tenure`` counts completed months, so the start lies in the month before the snapshot minus ``tenure``
    months: a moment in (snapshot − (tenure + 1) months, snapshot − tenure months], fixed per customer. Starting
    everyone at midnight on the 1st would put a month's sign-ups exactly on a month boundary, where a
    point-in-time snapshot taken on the 1st sees none of them."""
    latest, earliest = _months_before(TELCO_SNAPSHOT, tenure), _months_before(TELCO_SNAPSHOT, tenure + 1)
    seconds = int((latest - earliest).total_seconds())
    return latest - timedelta(seconds=int(draw(external_id, "telco-start") * seconds))


def _telco_churn_moment(external_id: str, started: datetime) -> datetime:
    """Churn means "left within the last month": a moment in the month before the snapshot, fixed per customer."""
    window_start = max(_months_before(TELCO_SNAPSHOT, 1), started)
    seconds = int((TELCO_SNAPSHOT - window_start).total_seconds())
    return window_start + timedelta(seconds=int(draw(external_id, "telco-churn") * seconds))


# --- CDNOW ----------------------------------------------------------------------------------------

CDNOW_COLUMNS = ("customer_id", "date", "number_of_cds", "dollar_value")


def _read_cdnow(source: Path) -> pd.DataFrame:
    frame = pd.read_csv(source, sep=r"\s+", dtype=str)
    _require(frame, CDNOW_COLUMNS, source, Sample.CDNOW)
    return frame


def _cdnow_plan(frame: pd.DataFrame) -> _Plan:
    plan = _Plan(orders=_cdnow_orders(frame))
    first_orders: dict[str, datetime] = {}
    for order in plan.orders:  # the file lists each customer's purchases by date
        first_orders.setdefault(order["customer"], order["ordered_at"])
    for external_id, first_order in first_orders.items():
        contact = generate_contact(external_id)
        plan.customers.append(_customer_row(external_id, contact, {"sample": Sample.CDNOW.value}))
        plan.consents.append((external_id, contact, first_order, CDNOW_END))
    return plan


def _cdnow_orders(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One order per line; its id is the customer's id and the order's rank among that customer's lines."""
    # Each distinct text is converted once: 69,659 lines hold about 550 dates and 9,000 amounts.
    amounts = {text: to_amount(text) for text in frame["dollar_value"].unique()}
    days = {text: datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC) for text in frame["date"].unique()}
    ranks = frame.groupby("customer_id", sort=False).cumcount() + 1
    columns = zip(
        frame["customer_id"], frame["date"], frame["number_of_cds"], frame["dollar_value"], ranks, strict=True
    )
    return [
        {
            "customer": f"{Sample.CDNOW.prefix}{customer}",
            "external_id": f"{Sample.CDNOW.prefix}{customer}-{rank}",
            "amount": amounts[amount],
            "currency": CURRENCY,
            "quantity": int(quantity),
            "ordered_at": days[day],
        }
        for customer, day, quantity, amount, rank in columns
    ]


# --- shared ---------------------------------------------------------------------------------------


def _customer_row(external_id: str, contact: GeneratedContact, attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "email": contact.email,
        "phone": contact.phone,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "time_zone": contact.time_zone,
        "country": contact.country,
        "region": contact.region,
        "attributes": attributes,
        "contact_generated": True,
    }


def _owned(rows: list[dict[str, Any]], ids: dict[str, int]) -> list[dict[str, Any]]:
    """Rows naming their customer's external id (``customer``) as insertable rows with the ``customer_id``."""
    now = utcnow()
    owned = []
    for row in rows:
        values = {name: value for name, value in row.items() if name != "customer"}
        owned.append(values | {"customer_id": ids[row["customer"]], "created_at": now, "updated_at": now})
    return owned


def _insert_consents(
    session: Session, customers: list[tuple[str, GeneratedContact, datetime, datetime]], ids: dict[str, int]
) -> int:
    rows = [
        _consent_row(ids[external_id], contact, consent)
        for external_id, contact, since, until in customers
        for consent in generate_consents(external_id, has_phone=contact.phone is not None, since=since, until=until)
    ]
    insert_rows(session, Consent, rows)
    return len(rows)


def _consent_row(customer_id: int, contact: GeneratedContact, consent: GeneratedConsent) -> dict[str, Any]:
    """A marketing consent with its basis; a withdrawal names the basis it ends and shows no wording."""
    terms = consent_terms(consent.channel, contact.country)
    granted = consent.status is ConsentStatus.GRANTED
    return {
        "customer_id": customer_id,
        "channel": consent.channel,
        "status": consent.status,
        "purpose": ConsentPurpose.MARKETING,
        "basis": terms.basis,
        "source": CONSENT_SOURCE,
        "recorded_at": consent.recorded_at,
        "expires_at": None,
        "disclosure_version": terms.disclosure_version if granted else None,
        "proof": CONSENT_PROOF,
    }
