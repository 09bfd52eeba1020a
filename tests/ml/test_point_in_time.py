"""Features read from the database use nothing at or after their as-of moment, and labels read only
their window; on slices of the real CDNOW and Telco files, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from audience.samples import Sample, load_sample
from core.db import Database
from core.errors import ValidationFailed
from core.models import Cart, Customer, Event, EventType, Order, Subscription
from ml.snapshots import ChurnKind, Family, churn_snapshot, feature_snapshot
from tests.support.samples import slice_of

CDNOW_AS_OF = datetime(1997, 10, 1, tzinfo=UTC)
TELCO_AS_OF = datetime(2026, 9, 1, tzinfo=UTC)


@pytest.fixture
def cdnow(db: Database, tmp_path: Path) -> Database:
    """CDNOW customers 00001–00011 (44 orders, 1997-01-01 … 1998-06-08) with a few events and carts."""
    with db.session() as session:
        load_sample(session, Sample.CDNOW, slice_of(Sample.CDNOW, 44, tmp_path))
        ids = customer_ids(session, "cdnow-")
        session.add_all(
            [
                event(ids[0], "Product Viewed", datetime(1997, 9, 20, tzinfo=UTC)),
                event(ids[1], "Email Opened", datetime(1997, 6, 1, tzinfo=UTC)),
                cart(ids[0], "12.50", datetime(1997, 9, 25, tzinfo=UTC)),
                cart(ids[2], "30.00", datetime(1997, 3, 1, tzinfo=UTC)),
            ]
        )
    return db


@pytest.fixture
def telco(db: Database, tmp_path: Path) -> Database:
    """The first 24 Telco customers; their subscriptions start 1 to 71 months before the snapshot."""
    with db.session() as session:
        load_sample(session, Sample.TELCO, slice_of(Sample.TELCO, 24, tmp_path))
    return db


def customer_ids(session: Session, prefix: str) -> list[int]:
    query = select(Customer.id).where(Customer.external_id.startswith(prefix)).order_by(Customer.external_id)
    return list(session.scalars(query))


def event(customer_id: int, name: str, moment: datetime) -> Event:
    return Event(
        message_id=f"{customer_id}-{name}-{moment.isoformat()}",
        type=EventType.TRACK,
        name=name,
        customer_id=customer_id,
        occurred_at=moment,
    )


def cart(customer_id: int, value: str, moment: datetime) -> Cart:
    return Cart(customer_id=customer_id, value=Decimal(value), currency="USD", cart_updated_at=moment)


def order(customer_id: int, amount: str, moment: datetime) -> Order:
    return Order(customer_id=customer_id, amount=Decimal(amount), currency="USD", quantity=1, ordered_at=moment)


def snapshot(db: Database, as_of: datetime) -> pd.DataFrame:
    with db.session() as session:
        return feature_snapshot(session, as_of)


def test_cdnow_features_ignore_the_real_later_orders_and_anything_added_from_as_of_on(cdnow: Database) -> None:
    as_of = CDNOW_AS_OF
    full = snapshot(cdnow, as_of)
    with cdnow.session() as session:  # the same data cut at as_of
        later = session.execute(delete(Order).where(Order.ordered_at >= as_of))
        assert later.rowcount == 15  # type: ignore[attr-defined]
    cut = snapshot(cdnow, as_of)
    with cdnow.session() as session:  # then the future arrives, some of it exactly at as_of
        ids = customer_ids(session, "cdnow-")
        newcomer = Customer(external_id="cdnow-new")
        session.add(newcomer)
        session.flush()
        session.add_all(
            [
                order(ids[0], "99.00", as_of),
                order(ids[1], "5.00", as_of + timedelta(days=3)),
                order(newcomer.id, "7.00", as_of + timedelta(seconds=1)),
                event(ids[0], "Order Completed", as_of),
                event(newcomer.id, "Product Viewed", as_of + timedelta(days=1)),
                cart(ids[3], "40.00", as_of),
                cart(newcomer.id, "8.00", as_of + timedelta(days=2)),
                Subscription(
                    customer_id=ids[2], plan="club", monthly_charge=Decimal("9.99"), currency="USD", started_at=as_of
                ),
            ]
        )
    added = snapshot(cdnow, as_of)

    assert len(full) == 11
    assert full["orders_count"].sum() == 29.0
    pd.testing.assert_frame_equal(cut, full)
    pd.testing.assert_frame_equal(added, full)


def test_telco_features_ignore_cancellations_and_starts_from_as_of_on(telco: Database) -> None:
    as_of = TELCO_AS_OF
    full = snapshot(telco, as_of)
    with telco.session() as session:  # the same data cut at as_of
        session.execute(delete(Subscription).where(Subscription.started_at >= as_of))
        session.execute(update(Subscription).where(Subscription.ended_at >= as_of).values(ended_at=None))
    cut = snapshot(telco, as_of)
    with telco.session() as session:
        subscriptions = session.scalars(select(Subscription).order_by(Subscription.external_id)).all()
        subscriptions[0].ended_at = as_of  # cancelled exactly at as_of
        subscriptions[1].ended_at = as_of + timedelta(days=10)
        session.add(
            Subscription(
                customer_id=subscriptions[2].customer_id,
                plan="Two year",
                monthly_charge=Decimal("10.00"),
                currency="USD",
                started_at=as_of,
            )
        )
    added = snapshot(telco, as_of)

    assert len(full) == 24  # every customer of the slice started in or before August 2026
    assert full["subscription_active"].tolist() == [1.0] * 24
    pd.testing.assert_frame_equal(cut, full)
    pd.testing.assert_frame_equal(added, full)


def test_telco_features_are_recomputed_not_read_from_the_snapshot(telco: Database) -> None:
    with telco.session() as session:
        customer = session.scalars(select(Customer).where(Customer.external_id == "telco-5575-GNVDE")).one()
    row = snapshot(telco, TELCO_AS_OF).loc[customer.id]

    # Tenure 34 at the 2026-10-01 snapshot is 33 months on 2026-09-01; total_charges (1889.50) is not used.
    assert (row["subscription_tenure_months"], row["subscription_monthly_charge"]) == (33.0, 56.95)
    assert row["subscription_charges_accrued"] == pytest.approx(33 * 56.95)
    assert (row["subscription_plan"], row["subscription_internet_service"], row["profile_gender"]) == (
        "One year",
        "DSL",
        "Male",
    )


def test_cdnow_labels_read_only_the_window(cdnow: Database) -> None:
    as_of, horizon = CDNOW_AS_OF, 90
    with cdnow.session() as session:
        labels = churn_snapshot(session, as_of, horizon, ChurnKind.NON_CONTRACTUAL).labels
        ids = customer_ids(session, "cdnow-")
    # Customers 3, 4, 5, 7 and 8 bought between 1997-10-01 and 1997-12-29.
    expected = {id_: int(number not in (3, 4, 5, 7, 8)) for number, id_ in enumerate(ids, start=1)}
    assert labels.to_dict() == expected

    with cdnow.session() as session:  # more history before the window, and orders from its end on
        session.add_all(
            [order(ids[0], "1.00", as_of - timedelta(days=1)), order(ids[1], "1.00", as_of + timedelta(days=90))]
        )
    with cdnow.session() as session:
        assert churn_snapshot(session, as_of, horizon, ChurnKind.NON_CONTRACTUAL).labels.to_dict() == expected

    with cdnow.session() as session:  # an order exactly at as_of is in the window
        session.add(order(ids[0], "1.00", as_of))
    with cdnow.session() as session:
        assert churn_snapshot(session, as_of, horizon, ChurnKind.NON_CONTRACTUAL).labels[ids[0]] == 0


def test_telco_labels_are_the_september_cancellations_of_customers_started_before_as_of(telco: Database) -> None:
    with telco.session() as session:
        result = churn_snapshot(session, TELCO_AS_OF, 30, ChurnKind.CONTRACTUAL, (Family.SUBSCRIPTIONS,))
        churned = session.scalars(
            select(Customer.external_id).where(Customer.id.in_(result.labels[result.labels == 1].index.tolist()))
        ).all()

    assert (len(result.labels), result.churners) == (24, 8)
    assert sorted(churned) == [  # the slice's Churn=Yes rows, the two tenure-1 customers included
        "telco-0280-XJGEX",
        "telco-1066-JKSGK",
        "telco-3668-QPYBK",
        "telco-4190-MFLUW",
        "telco-7892-POOKP",
        "telco-8779-QRDMV",
        "telco-9237-HQITU",
        "telco-9305-CDSKC",
    ]
    assert result.features.index.equals(result.labels.index)
    assert [column.split("_")[0] for column in result.features.columns] == ["subscription"] * 18


def test_a_label_window_that_has_not_ended_is_refused(cdnow: Database) -> None:
    with (
        cdnow.session() as session,
        pytest.raises(ValidationFailed, match="in the future: churn there is not known yet"),
    ):
        churn_snapshot(session, CDNOW_AS_OF, 90, ChurnKind.NON_CONTRACTUAL, now=datetime(1997, 11, 1, tzinfo=UTC))


def test_labels_with_one_class_are_refused(cdnow: Database) -> None:
    # Nobody in the slice orders between 1998-06-09 and 1998-06-30: everyone "churned".
    refusal = r"all of the 11 customers labelled as of 1998-06-09T00:00:00\+00:00 churned by 1998-06-30T00:00:00\+00:00"
    with cdnow.session() as session, pytest.raises(ValidationFailed, match=refusal):
        churn_snapshot(session, datetime(1998, 6, 9, tzinfo=UTC), 21, ChurnKind.NON_CONTRACTUAL)


def test_no_history_before_as_of_is_refused(cdnow: Database) -> None:
    with cdnow.session() as session, pytest.raises(ValidationFailed, match="no customer ordered before 1996-12-01"):
        churn_snapshot(session, datetime(1996, 12, 1, tzinfo=UTC), 90, ChurnKind.NON_CONTRACTUAL)


def test_a_customer_filter_gives_those_rows_even_with_more_ids_than_bound_parameters_allow(cdnow: Database) -> None:
    everyone = snapshot(cdnow, CDNOW_AS_OF)
    wanted = [everyone.index[4], everyone.index[1], 10**9]
    with cdnow.session() as session:
        some = feature_snapshot(session, CDNOW_AS_OF, wanted)
        many = feature_snapshot(session, CDNOW_AS_OF, [*everyone.index, *range(10**8, 10**8 + 70_000)])

    assert some.index.tolist() == wanted
    pd.testing.assert_frame_equal(some.iloc[:2], everyone.loc[wanted[:2]])
    assert some.loc[10**9, "orders_count"] == 0.0
    pd.testing.assert_frame_equal(many.loc[everyone.index], everyone)
