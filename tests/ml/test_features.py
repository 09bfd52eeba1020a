"""Point-in-time features and churn labels as pure functions: exact values on a hand-built customer,
nothing at or after the as-of moment counts, labels read only their window, bad frames are refused."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from core.errors import ValidationFailed
from ml.features import (
    build_features,
    contractual_churn_labels,
    noncontractual_churn_labels,
    order_features,
    subscription_features,
)

AS_OF = datetime(2024, 7, 1, tzinfo=UTC)


def at(year: int, month: int, day: int, hour: int = 0) -> pd.Timestamp:
    return pd.Timestamp(datetime(year, month, day, hour, tzinfo=UTC))


def orders(*rows: tuple[int, pd.Timestamp, float, int]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount", "quantity"])
    return frame.astype({"customer_id": "int64", "ordered_at": "datetime64[us, UTC]", "amount": "float64"})


def subscriptions(*rows: tuple[int, int, str, float, pd.Timestamp, Any, dict[str, Any]]) -> pd.DataFrame:
    columns = ["subscription_id", "customer_id", "plan", "monthly_charge", "started_at", "ended_at", "attributes"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["ended_at"] = pd.to_datetime(frame["ended_at"], utc=True)
    return frame.astype({"started_at": "datetime64[us, UTC]", "ended_at": "datetime64[us, UTC]"})


def events(*rows: tuple[int, str, pd.Timestamp]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "name", "occurred_at"])
    return frame.astype({"occurred_at": "datetime64[us, UTC]"})


def carts(*rows: tuple[int, float, pd.Timestamp]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "value", "cart_updated_at"])
    return frame.astype({"cart_updated_at": "datetime64[us, UTC]"})


def profiles(*rows: tuple[int, dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "attributes"])


# Customer 1 bought three times, holds a One-year contract (and cancelled an older one), browsed and
# left a cart; customer 2 only has a cart. Everything dated at or after AS_OF must not count.
ORDERS = orders(
    (1, at(2024, 1, 1), 10.0, 1),  # 182 days before AS_OF
    (1, at(2024, 3, 1), 20.0, 2),  # 122 days
    (1, at(2024, 6, 1), 30.0, 3),  # 30 days
)
SUBSCRIPTIONS = subscriptions(
    (10, 1, "Two year", 80.0, at(2020, 1, 1), at(2021, 1, 1), {}),
    (11, 1, "One year", 50.0, at(2022, 3, 15, 12), None, {"internet_service": "DSL", "paperless_billing": True}),
)
EVENTS = events(
    (1, "Product Viewed", at(2024, 6, 30)), (1, "Product Viewed", at(2024, 6, 21)), (1, "Email Opened", at(2024, 4, 1))
)
CARTS = carts((1, 40.0, at(2024, 5, 15)), (1, 25.5, at(2024, 6, 20)), (2, 5.0, at(2024, 6, 30, 12)))
PROFILES = profiles((1, {"gender": "Female", "senior_citizen": False, "churn_score": 99}), (2, {}))


def features(**frames: pd.DataFrame) -> pd.DataFrame:
    given = {"orders": ORDERS, "subscriptions": SUBSCRIPTIONS, "events": EVENTS, "carts": CARTS} | frames
    return build_features(
        AS_OF,
        orders=given["orders"],
        subscriptions=given["subscriptions"],
        events=given["events"],
        carts=given["carts"],
        profiles=PROFILES,
    )


def test_a_hand_built_customer_gets_exact_features() -> None:
    frame = features()

    row = frame.loc[1].to_dict()
    gap_std = math.sqrt(((60 - 76) ** 2 + (92 - 76) ** 2) / 1)
    assert row == {
        "orders_count": 3.0,
        "orders_recency_days": 30.0,
        "orders_first_days": 182.0,
        "orders_revenue_total": 60.0,
        "orders_revenue_mean": 20.0,
        "orders_items_mean": 2.0,
        "orders_gap_mean_days": 76.0,  # 60 days, then 92
        "orders_gap_std_days": pytest.approx(gap_std),
        "orders_recency_over_gap": pytest.approx(30 / 76),
        "orders_count_30d": 1.0,
        "orders_revenue_30d": 30.0,
        "orders_count_90d": 1.0,
        "orders_revenue_90d": 30.0,
        "orders_count_180d": 2.0,
        "orders_revenue_180d": 50.0,
        "orders_trend_90d": 0.0,  # one order in the last 90 days, one in the 90 before
        "orders_revenue_trend_90d": 10.0,
        "subscription_active": 1.0,
        "subscription_count": 2.0,
        "subscription_ended_count": 1.0,
        "subscription_tenure_months": 27.0,  # 2022-03-15 12:00 → 2024-07-01: the 28th month is not complete
        "subscription_monthly_charge": 50.0,
        "subscription_charges_accrued": 1350.0,
        "subscription_plan": "One year",
        "subscription_phone_service": "none",
        "subscription_multiple_lines": "none",
        "subscription_internet_service": "DSL",
        "subscription_online_security": "none",
        "subscription_online_backup": "none",
        "subscription_device_protection": "none",
        "subscription_tech_support": "none",
        "subscription_streaming_tv": "none",
        "subscription_streaming_movies": "none",
        "subscription_paperless_billing": "True",
        "subscription_payment_method": "none",
        "events_count": 3.0,
        "events_count_30d": 2.0,
        "events_count_90d": 2.0,  # the e-mail opened 91 days before is outside
        "events_recency_days": 1.0,
        "events_distinct_names": 2.0,
        "carts_count_90d": 2.0,
        "carts_recency_days": 11.0,
        "carts_open_count": 1.0,  # the May cart was followed by the June order
        "carts_open_value": 25.5,
        "profile_gender": "Female",
        "profile_senior_citizen": "False",
        "profile_partner": "none",
        "profile_dependents": "none",
    }


def test_a_customer_with_only_a_cart_gets_zero_counts_and_unknown_measures() -> None:
    frame = features()
    row = frame.loc[2]

    assert (row["orders_count"], row["orders_revenue_total"], row["subscription_active"]) == (0.0, 0.0, 0.0)
    assert frame.loc[[2], ["orders_recency_days", "subscription_tenure_months"]].isna().all(axis=None)
    assert (row["subscription_plan"], row["carts_open_value"], row["carts_recency_days"]) == ("none", 5.0, 0.5)


def test_feature_frame_has_float_numbers_and_text_categories_indexed_by_customer() -> None:
    frame = features()

    assert frame.index.tolist() == [1, 2]
    assert frame.index.name == "customer_id"
    kinds = {str(dtype) for dtype in frame.dtypes}
    assert kinds == {"float64", "str"}


def test_rows_at_or_after_as_of_change_no_feature() -> None:
    before = features()
    later = {
        "orders": pd.concat([ORDERS, orders((1, at(2024, 7, 1), 999.0, 9), (3, at(2024, 8, 1), 5.0, 1))]),
        "subscriptions": pd.concat(
            [
                SUBSCRIPTIONS.assign(ended_at=[at(2021, 1, 1), at(2024, 7, 1)]),  # cancelled exactly at AS_OF
                subscriptions((12, 1, "Month-to-month", 99.0, at(2024, 7, 1), None, {})),  # starts at AS_OF
            ]
        ),
        "events": pd.concat([EVENTS, events((1, "Order Completed", at(2024, 7, 1)), (2, "x", at(2025, 1, 1)))]),
        "carts": pd.concat([CARTS, carts((1, 77.0, at(2024, 7, 1)), (3, 1.0, at(2024, 9, 1)))]),
    }

    after = features(**later)

    pd.testing.assert_frame_equal(after, before)


def test_charges_accrued_ignore_the_snapshot_total_charges() -> None:
    frame = subscriptions(
        (1, 7, "Month-to-month", 20.0, at(2024, 1, 1), None, {"total_charges": "5000.00", "tenure_months": 70})
    )

    row = subscription_features(frame, AS_OF).loc[7]

    assert (row["subscription_tenure_months"], row["subscription_charges_accrued"]) == (6.0, 120.0)


def test_noncontractual_labels_count_orders_in_the_window_from_as_of_inclusive() -> None:
    history = orders((1, at(2024, 1, 1), 1.0, 1), (2, at(2024, 1, 1), 1.0, 1), (3, at(2024, 1, 1), 1.0, 1))
    window = orders(
        (1, at(2024, 7, 1), 1.0, 1),  # exactly at AS_OF: in the window
        (2, pd.Timestamp(AS_OF + timedelta(days=90)), 1.0, 1),  # exactly at the end: outside
        (4, at(2024, 7, 2), 1.0, 1),  # a new customer: not labelled
    )

    labels = noncontractual_churn_labels(history, window, AS_OF, horizon_days=90)

    assert labels.to_dict() == {1: 0, 2: 1, 3: 1}
    assert labels.name == "churned"
    assert labels.index.name == "customer_id"


def test_noncontractual_labels_ignore_window_orders_outside_the_window() -> None:
    history = orders((1, at(2024, 1, 1), 1.0, 1), (2, at(2024, 1, 1), 1.0, 1))
    window = orders((1, at(2024, 8, 1), 1.0, 1))
    noise = orders((2, at(2024, 6, 30), 1.0, 1), (2, at(2025, 1, 1), 1.0, 1))

    plain = noncontractual_churn_labels(history, window, AS_OF, 90)
    noisy = noncontractual_churn_labels(history, pd.concat([window, noise]), AS_OF, 90)

    pd.testing.assert_series_equal(noisy, plain)
    assert plain.to_dict() == {1: 0, 2: 1}


def test_contractual_labels_churn_when_no_subscription_is_left_at_the_window_end() -> None:
    end = AS_OF + timedelta(days=30)
    spans = subscriptions(
        (1, 1, "p", 1.0, at(2023, 1, 1), at(2024, 7, 1), {}),  # ends exactly at AS_OF: churn
        (2, 2, "p", 1.0, at(2023, 1, 1), at(2024, 7, 15), {}),  # ends inside
        (3, 3, "p", 1.0, at(2023, 1, 1), end, {}),  # ends exactly at the window end: still active
        (4, 4, "p", 1.0, at(2023, 1, 1), at(2024, 7, 15), {}),  # switches plans: not churn
        (5, 4, "p", 1.0, at(2024, 7, 15), None, {}),
        (6, 5, "p", 1.0, at(2024, 7, 1), at(2024, 7, 20), {}),  # starts at AS_OF: not labelled
        (7, 6, "p", 1.0, at(2023, 1, 1), None, {}),
        (8, 7, "p", 1.0, at(2023, 1, 1), at(2024, 6, 1), {}),  # ended before AS_OF: not labelled
    )

    labels = contractual_churn_labels(spans, AS_OF, horizon_days=30)

    assert labels.to_dict() == {1: 1, 2: 1, 3: 0, 4: 0, 6: 0}


def test_labels_refuse_a_window_with_nobody_to_label() -> None:
    later = orders((1, at(2024, 8, 1), 1.0, 1))

    with pytest.raises(ValidationFailed, match=r"no customer ordered before 2024-07-01.*too little history"):
        noncontractual_churn_labels(later, later, AS_OF, 90)
    with pytest.raises(ValidationFailed, match=r"no subscription was active at 2024-07-01"):
        contractual_churn_labels(subscriptions((1, 1, "p", 1.0, at(2024, 8, 1), None, {})), AS_OF, 30)
    with pytest.raises(ValidationFailed, match="horizon must be a positive number of days, not 0"):
        noncontractual_churn_labels(ORDERS, ORDERS, AS_OF, 0)


def test_a_frame_missing_or_mistyping_columns_is_refused_naming_every_problem() -> None:
    broken = ORDERS.drop(columns=["amount"]).assign(ordered_at=ORDERS["ordered_at"].dt.tz_localize(None))

    with pytest.raises(ValidationFailed) as refused:
        order_features(broken, AS_OF)

    assert refused.value.details == [
        "column 'ordered_at' must be timezone-aware datetimes (UTC), found datetime64[us]",
        "missing column 'amount' (number)",
    ]
    assert str(refused.value).startswith("the orders frame is not usable: ")


def test_subscription_attributes_must_be_dicts() -> None:
    frame = SUBSCRIPTIONS.assign(attributes=["a", "b"], monthly_charge=["x", "y"])

    with pytest.raises(ValidationFailed) as refused:
        subscription_features(frame, AS_OF)

    assert refused.value.details == [
        "column 'monthly_charge' must be numbers, found str",
        "column 'attributes' must be dicts (JSON objects), found str",
    ]


def test_explicit_customer_ids_give_exactly_those_rows_in_that_order() -> None:
    frame = build_features(AS_OF, orders=ORDERS, customer_ids=[5, 1])

    assert frame.index.tolist() == [5, 1]
    assert frame["orders_count"].tolist() == [0.0, 3.0]


def test_without_orders_every_cart_counts_as_open() -> None:
    frame = build_features(AS_OF, carts=CARTS)

    assert frame["carts_open_value"].to_dict() == {1: 65.5, 2: 5.0}
    assert list(frame.columns) == ["carts_count_90d", "carts_recency_days", "carts_open_count", "carts_open_value"]
