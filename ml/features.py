"""Point-in-time features and churn labels: pure functions from the frames ``ml.repository`` returns.

Every feature of a customer "as of" a moment uses only rows strictly before that moment; every
function re-applies that cut itself, so the guarantee holds whoever built the frames. Labels look
at the window ``[as_of, as_of + horizon)``. Half-open on the same boundary as the features, it
means an order stamped exactly at ``as_of`` (CDNOW's orders are all at midnight) is a label, never
a feature, and no moment falls in neither.

Feature frames are indexed by ``customer_id``; numeric columns are float64 (NaN where a value is
undefined, e.g. the gap between orders of a one-order customer), categorical columns are strings.

Point-in-time honesty of the Telco sample: its services (internet, streaming, support, payment
method, …) and the customer attributes (gender, senior citizen, partner, dependents) are one
snapshot taken at the end, not a history. Using them "as of" an earlier date assumes they did not
change in between, so a customer who dropped a service on the way out would leak a little of the
outcome. The snapshot's ``total_charges`` and ``tenure_months`` attributes are measured after the
as-of date and are never read; tenure and charges are recomputed from ``started_at`` instead.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from core.clock import as_utc
from core.errors import ValidationFailed

DAY = pd.Timedelta(days=1)
SECONDS_PER_DAY = 86_400.0
WINDOWS_DAYS = (30, 90, 180)
TREND_DAYS = 90

# Whitelists, not "every key": an imported attribute such as a churn score would leak the label.
PROFILE_ATTRIBUTES = ("gender", "senior_citizen", "partner", "dependents")
SUBSCRIPTION_ATTRIBUTES = (
    "phone_service",
    "multiple_lines",
    "internet_service",
    "online_security",
    "online_backup",
    "device_protection",
    "tech_support",
    "streaming_tv",
    "streaming_movies",
    "paperless_billing",
    "payment_method",
)
ABSENT = "none"  # the category of a customer with no subscription, or without the attribute

# The kind each input frame's columns must have: checked before any arithmetic, every problem listed.
ORDERS_SCHEMA = {"customer_id": "integer", "ordered_at": "datetime", "amount": "number", "quantity": "number"}
SUBSCRIPTIONS_SCHEMA = {
    "subscription_id": "integer",
    "customer_id": "integer",
    "plan": "text",
    "monthly_charge": "number",
    "started_at": "datetime",
    "ended_at": "datetime",
    "attributes": "mapping",
}
EVENTS_SCHEMA = {"customer_id": "integer", "occurred_at": "datetime"}
CARTS_SCHEMA = {"customer_id": "integer", "value": "number", "cart_updated_at": "datetime"}
PROFILES_SCHEMA = {"customer_id": "integer", "attributes": "mapping"}
SPANS_SCHEMA = {"customer_id": "integer", "started_at": "datetime", "ended_at": "datetime"}


# --- the feature frame ----------------------------------------------------------------------------


def build_features(
    as_of: datetime,
    *,
    orders: pd.DataFrame | None = None,
    subscriptions: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    carts: pd.DataFrame | None = None,
    profiles: pd.DataFrame | None = None,
    customer_ids: Collection[int] | None = None,
) -> pd.DataFrame:
    """The feature frame as of ``as_of``, one family of columns per frame given.

    Parameters
    ----------
    as_of
        The moment the features describe; rows at or after it are ignored.
    orders, subscriptions, events, carts, profiles
        Frames shaped as ``ml.repository`` returns them; a family is left out when its frame is None.
        Carts use ``orders`` (if given) to tell whether a cart was still open at ``as_of``.
    customer_ids
        The rows of the result, in this order; by default every customer with an order,
        subscription, event or cart before ``as_of`` (profiles alone do not add a customer).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``; customers without rows in a family get zero counts, NaN
        measures and the ``"none"`` category.
    """
    parts: list[pd.DataFrame] = []
    if orders is not None:
        parts.append(order_features(orders, as_of))
    if subscriptions is not None:
        parts.append(subscription_features(subscriptions, as_of))
    if events is not None:
        parts.append(event_features(events, as_of))
    if carts is not None:
        parts.append(cart_features(carts, as_of, orders))
    index = _population(parts, customer_ids)
    if profiles is not None:
        parts.append(profile_features(profiles))
    return _filled(pd.concat([part.reindex(index) for part in parts], axis=1) if parts else pd.DataFrame(index=index))


def _population(parts: Sequence[pd.DataFrame], customer_ids: Collection[int] | None) -> pd.Index:
    if customer_ids is not None:
        return pd.Index(np.asarray(list(customer_ids), dtype=np.int64), name="customer_id")
    indexes = [part.index.to_numpy(dtype=np.int64) for part in parts]
    ids = np.unique(np.concatenate(indexes)) if indexes else np.empty(0, dtype=np.int64)
    return pd.Index(ids, name="customer_id")


# Columns that are 0 rather than unknown for a customer without rows in their family.
_ZERO_WHEN_ABSENT = (
    "orders_count",
    "orders_revenue_total",
    *(f"orders_count_{days}d" for days in WINDOWS_DAYS),
    *(f"orders_revenue_{days}d" for days in WINDOWS_DAYS),
    "orders_trend_90d",
    "orders_revenue_trend_90d",
    "subscription_count",
    "subscription_active",
    "subscription_ended_count",
    "events_count",
    *(f"events_count_{days}d" for days in (30, 90)),
    "events_distinct_names",
    "carts_count_90d",
    "carts_open_count",
    "carts_open_value",
)


def _filled(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if column in _ZERO_WHEN_ABSENT:
            frame[column] = frame[column].fillna(0.0)
        elif not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].fillna(ABSENT).astype("str")
    frame.index.name = "customer_id"
    return frame


# --- orders ---------------------------------------------------------------------------------------


def order_features(orders: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """RFM and rhythm of each customer's orders before ``as_of``.

    Columns: ``orders_count``, ``orders_recency_days`` (days since the last order),
    ``orders_first_days`` (days since the first: tenure as a buyer), ``orders_revenue_total``,
    ``orders_revenue_mean``, ``orders_items_mean``, ``orders_gap_mean_days`` and
    ``orders_gap_std_days`` (between consecutive orders; NaN below 2 and 3 orders),
    ``orders_recency_over_gap`` (days since the last order in mean gaps: 1 means "due now"),
    ``orders_count_{30,90,180}d`` and ``orders_revenue_{30,90,180}d`` (windows ending at
    ``as_of``), ``orders_trend_90d`` and ``orders_revenue_trend_90d`` (last 90 days minus the 90
    before them).
    """
    _check(orders, "orders", ORDERS_SCHEMA)
    moment = _moment(as_of)
    seen = orders.loc[orders["ordered_at"] < moment, list(ORDERS_SCHEMA)].sort_values(["customer_id", "ordered_at"])
    seen = seen.assign(days_ago=_days_before(moment, seen["ordered_at"]), amount=seen["amount"].astype("float64"))
    by_customer = seen.groupby("customer_id", sort=True)
    features = pd.DataFrame(
        {
            "orders_count": by_customer.size().astype("float64"),
            "orders_recency_days": by_customer["days_ago"].min(),
            "orders_first_days": by_customer["days_ago"].max(),
            "orders_revenue_total": by_customer["amount"].sum(),
            "orders_revenue_mean": by_customer["amount"].mean(),
            "orders_items_mean": by_customer["quantity"].mean().astype("float64"),
        }
    )
    features = features.join(_gap_features(seen, features["orders_recency_days"]))
    return features.join(_window_features(seen))


def _gap_features(seen: pd.DataFrame, recency: pd.Series) -> pd.DataFrame:
    gaps = _days(seen.groupby("customer_id", sort=False)["ordered_at"].diff())
    stats = gaps.groupby(seen["customer_id"]).agg(["mean", "std"]).reindex(recency.index)
    # Orders all on one day give a zero mean gap: "due" is then undefined, not infinite.
    due = recency / stats["mean"].where(stats["mean"] > 0)
    return pd.DataFrame(
        {"orders_gap_mean_days": stats["mean"], "orders_gap_std_days": stats["std"], "orders_recency_over_gap": due}
    )


def _window_features(seen: pd.DataFrame) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {}
    customer = seen["customer_id"]
    for days in WINDOWS_DAYS:
        inside = seen["days_ago"] <= days
        columns[f"orders_count_{days}d"] = inside.astype("float64").groupby(customer).sum()
        columns[f"orders_revenue_{days}d"] = seen["amount"].where(inside, 0.0).groupby(customer).sum()
    before = (seen["days_ago"] > TREND_DAYS) & (seen["days_ago"] <= 2 * TREND_DAYS)
    earlier_count = before.astype("float64").groupby(customer).sum()
    earlier_revenue = seen["amount"].where(before, 0.0).groupby(customer).sum()
    columns["orders_trend_90d"] = columns[f"orders_count_{TREND_DAYS}d"] - earlier_count
    columns["orders_revenue_trend_90d"] = columns[f"orders_revenue_{TREND_DAYS}d"] - earlier_revenue
    return pd.DataFrame(columns)


# --- subscriptions --------------------------------------------------------------------------------


def subscription_features(
    subscriptions: pd.DataFrame, as_of: datetime, attributes: Sequence[str] = SUBSCRIPTION_ATTRIBUTES
) -> pd.DataFrame:
    """The contract each customer held at ``as_of``.

    The customer's current subscription is the latest-started one still active at ``as_of``, or
    failing that the latest-started. Columns: ``subscription_active`` (1/0),
    ``subscription_count``, ``subscription_ended_count`` (cancellations before ``as_of``),
    ``subscription_tenure_months`` (whole calendar months from start to ``as_of``, or to the end
    if it had ended), ``subscription_monthly_charge``, ``subscription_charges_accrued`` (monthly
    charge × tenure months: what was billed by ``as_of``, never the snapshot's ``total_charges``,
    which is measured later), ``subscription_plan`` and one categorical ``subscription_<key>`` per
    name in ``attributes`` (booleans become ``"True"``/``"False"``).
    """
    _check(subscriptions, "subscriptions", SUBSCRIPTIONS_SCHEMA)
    moment = _moment(as_of)
    seen = subscriptions.loc[subscriptions["started_at"] < moment].copy()
    seen["ended_at"] = seen["ended_at"].where(seen["ended_at"] < moment)  # a later cancellation is not known yet
    seen["active"] = seen["ended_at"].isna()
    by_customer = seen.groupby("customer_id", sort=True)
    ordered = seen.sort_values(["customer_id", "active", "started_at", "subscription_id"])
    current = ordered.groupby("customer_id", sort=True).tail(1).set_index("customer_id")
    tenure = _whole_months(current["started_at"], current["ended_at"].fillna(moment)).astype("float64")
    monthly = current["monthly_charge"].astype("float64")
    features = pd.DataFrame(
        {
            "subscription_active": current["active"].astype("float64"),
            "subscription_count": by_customer.size().astype("float64"),
            "subscription_ended_count": (~seen["active"]).astype("float64").groupby(seen["customer_id"]).sum(),
            "subscription_tenure_months": tenure,
            "subscription_monthly_charge": monthly,
            "subscription_charges_accrued": monthly * tenure,
            "subscription_plan": current["plan"].astype("str"),
        }
    )
    return features.join(_categoricals(current["attributes"], attributes, "subscription_"))


def _whole_months(start: pd.Series, end: pd.Series) -> pd.Series:
    """Calendar months from ``start`` to ``end``; a month counts once its day and time come round again."""
    months = (end.dt.year - start.dt.year) * 12 + (end.dt.month - start.dt.month)
    into_month_end = (end.dt.day - 1) * DAY + (end - end.dt.floor("D"))
    into_month_start = (start.dt.day - 1) * DAY + (start - start.dt.floor("D"))
    whole: pd.Series = (months - (into_month_end < into_month_start).astype("int64")).clip(lower=0)
    return whole


# --- events and carts -----------------------------------------------------------------------------


def event_features(events: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Activity before ``as_of``: ``events_count``, ``events_count_{30,90}d``, ``events_recency_days``
    and ``events_distinct_names`` (how many different things the customer did)."""
    _check(events, "events", EVENTS_SCHEMA)
    moment = _moment(as_of)
    seen = events.loc[events["occurred_at"] < moment]
    days_ago = _days_before(moment, seen["occurred_at"])
    customer = seen["customer_id"]
    columns = {
        "events_count": customer.groupby(customer).size().astype("float64"),
        "events_count_30d": (days_ago <= 30).astype("float64").groupby(customer).sum(),
        "events_count_90d": (days_ago <= 90).astype("float64").groupby(customer).sum(),
        "events_recency_days": days_ago.groupby(customer).min(),
    }
    names = seen["name"] if "name" in seen.columns else pd.Series(np.nan, index=seen.index)
    columns["events_distinct_names"] = names.groupby(customer).nunique().astype("float64")
    return pd.DataFrame(columns).rename_axis("customer_id")


def cart_features(carts: pd.DataFrame, as_of: datetime, orders: pd.DataFrame | None = None) -> pd.DataFrame:
    """Carts before ``as_of``: ``carts_count_90d``, ``carts_recency_days``, ``carts_open_count`` and
    ``carts_open_value``.

    A cart counts as open at ``as_of`` when no order of its customer followed its last change
    (before ``as_of``). The stored status is not used: it is rewritten when the cart converts or
    is marked abandoned, which may be after ``as_of``.
    """
    _check(carts, "carts", CARTS_SCHEMA)
    moment = _moment(as_of)
    seen = carts.loc[carts["cart_updated_at"] < moment]
    days_ago = _days_before(moment, seen["cart_updated_at"])
    last_order = _last_order_at(orders, moment).reindex(seen["customer_id"]).set_axis(seen.index)
    still_open = ~(last_order >= seen["cart_updated_at"])  # no order since (NaT compares False): still open
    customer = seen["customer_id"]
    columns = {
        "carts_count_90d": (days_ago <= 90).astype("float64").groupby(customer).sum(),
        "carts_recency_days": days_ago.groupby(customer).min(),
        "carts_open_count": still_open.astype("float64").groupby(customer).sum(),
        "carts_open_value": seen["value"].astype("float64").where(still_open, 0.0).groupby(customer).sum(),
    }
    return pd.DataFrame(columns).rename_axis("customer_id")


def _last_order_at(orders: pd.DataFrame | None, moment: pd.Timestamp) -> pd.Series:
    if orders is None:
        return pd.Series(pd.NaT, index=pd.Index([], dtype="int64"), dtype="datetime64[us, UTC]")
    _check(orders, "orders", ORDERS_SCHEMA)
    seen = orders.loc[orders["ordered_at"] < moment]
    last: pd.Series = seen.groupby("customer_id")["ordered_at"].max()
    return last


# --- profiles -------------------------------------------------------------------------------------


def profile_features(profiles: pd.DataFrame, attributes: Sequence[str] = PROFILE_ATTRIBUTES) -> pd.DataFrame:
    """One categorical ``profile_<key>`` per name in ``attributes`` from the customers' attributes.

    Not point-in-time: customer attributes have no history (see the module docstring).
    """
    _check(profiles, "profiles", PROFILES_SCHEMA)
    return _categoricals(profiles.set_index("customer_id")["attributes"], attributes, "profile_")


def _categoricals(values: pd.Series, keys: Sequence[str], prefix: str) -> pd.DataFrame:
    """The named keys of JSON attribute dicts as string columns (missing key → ``"none"``)."""
    records = [value if isinstance(value, Mapping) else {} for value in values.tolist()]
    table = pd.DataFrame.from_records(records, index=values.index, columns=list(keys))
    columns = {f"{prefix}{key}": _text_or_absent(table[key]) for key in keys}
    return pd.DataFrame(columns, index=values.index).astype("str").rename_axis("customer_id")


def _text_or_absent(values: pd.Series) -> pd.Series:
    texts: pd.Series = values.astype("object").map(str).where(values.notna(), ABSENT)
    return texts


# --- labels ---------------------------------------------------------------------------------------


def window_end(as_of: datetime, horizon_days: int) -> datetime:
    """The end of the label window ``[as_of, as_of + horizon_days)``."""
    if horizon_days <= 0:
        raise ValidationFailed(f"the churn horizon must be a positive number of days, not {horizon_days}")
    return as_utc(as_of) + timedelta(days=horizon_days)


def noncontractual_churn_labels(
    orders: pd.DataFrame, window_orders: pd.DataFrame, as_of: datetime, horizon_days: int
) -> pd.Series:
    """Churn without contracts (CDNOW): 1 when a customer who ordered before ``as_of`` places no
    order in ``[as_of, as_of + horizon_days)``.

    Parameters
    ----------
    orders
        Orders before ``as_of`` (they define who is labelled).
    window_orders
        Orders in the window (``ml.repository.orders_between``); rows outside it are ignored.

    Returns
    -------
    pandas.Series
        ``churned`` (int 0/1) indexed by ``customer_id``.
    """
    _check(orders, "orders", ORDERS_SCHEMA)
    _check(window_orders, "window orders", ORDERS_SCHEMA)
    start, end = _moment(as_of), _moment(window_end(as_of, horizon_days))
    population = np.unique(orders.loc[orders["ordered_at"] < start, "customer_id"].to_numpy(dtype=np.int64))
    if population.size == 0:
        raise ValidationFailed(f"no customer ordered before {start.isoformat()}: too little history to label churn")
    inside = window_orders["ordered_at"].between(start, end, inclusive="left")
    buyers = window_orders.loc[inside, "customer_id"].to_numpy(dtype=np.int64)
    return _labels(population, ~np.isin(population, buyers))


def contractual_churn_labels(spans: pd.DataFrame, as_of: datetime, horizon_days: int) -> pd.Series:
    """Churn with contracts (Telco): 1 when a customer with a subscription active at ``as_of`` has
    none active at ``as_of + horizon_days`` (it ended in the window and nothing replaced it).

    "Active at ``as_of``" means started strictly before it and not ended before it, the same cut
    the features use, so every labelled customer has subscription features.

    Parameters
    ----------
    spans
        Subscriptions overlapping the window (``ml.repository.subscriptions_spanning``).

    Returns
    -------
    pandas.Series
        ``churned`` (int 0/1) indexed by ``customer_id``.
    """
    _check(spans, "subscription spans", SPANS_SCHEMA)
    start, end = _moment(as_of), _moment(window_end(as_of, horizon_days))
    ended = spans["ended_at"].where(spans["ended_at"] < end)  # nothing after the window is read
    at_start = (spans["started_at"] < start) & (ended.isna() | (ended >= start))
    at_end = (spans["started_at"] < end) & ended.isna()
    population = np.unique(spans.loc[at_start, "customer_id"].to_numpy(dtype=np.int64))
    if population.size == 0:
        raise ValidationFailed(f"no subscription was active at {start.isoformat()}: too little history to label churn")
    kept = spans.loc[at_end, "customer_id"].to_numpy(dtype=np.int64)
    return _labels(population, ~np.isin(population, kept))


def _labels(population: np.ndarray, churned: np.ndarray) -> pd.Series:
    return pd.Series(churned.astype(np.int64), index=pd.Index(population, name="customer_id"), name="churned")


# --- input checks ---------------------------------------------------------------------------------


def _days(deltas: pd.Series) -> pd.Series:
    days: pd.Series = deltas.dt.total_seconds() / SECONDS_PER_DAY
    return days


def _days_before(moment: pd.Timestamp, moments: pd.Series) -> pd.Series:
    return _days(moment - moments)


def _moment(as_of: datetime) -> pd.Timestamp:
    return pd.Timestamp(as_utc(as_of))


def _check(frame: pd.DataFrame, name: str, schema: Mapping[str, str]) -> None:
    """Refuse a frame that lacks a column or has one of the wrong kind, naming every problem."""
    if not isinstance(frame, pd.DataFrame):
        raise ValidationFailed(f"the {name} must be a pandas DataFrame, not {type(frame).__name__}")
    problems = []
    for column, kind in schema.items():
        if column not in frame.columns:
            problems.append(f"missing column {column!r} ({kind})")
        elif not _KIND_CHECKS[kind](frame[column]):
            problems.append(f"column {column!r} must be {_KIND_NAMES[kind]}, found {frame[column].dtype}")
    if problems:
        raise ValidationFailed(f"the {name} frame is not usable: {'; '.join(problems)}", details=problems)


def _is_mapping_column(column: pd.Series) -> bool:
    return column.dtype == object and all(value is None or isinstance(value, Mapping) for value in column.tolist())


_KIND_CHECKS = {
    "integer": lambda column: pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column),
    "number": lambda column: pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column),
    "datetime": lambda column: isinstance(column.dtype, pd.DatetimeTZDtype),
    "text": lambda column: pd.api.types.is_string_dtype(column) or column.dtype == object,
    "mapping": _is_mapping_column,
}
_KIND_NAMES = {
    "integer": "integers",
    "number": "numbers",
    "datetime": "timezone-aware datetimes (UTC)",
    "text": "text",
    "mapping": "dicts (JSON objects)",
}
