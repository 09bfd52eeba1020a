"""Every query ``ml`` makes for features and labels, each one SQL statement returning a pandas frame.

Feature queries are point-in-time: they read only what was known strictly before ``as_of`` —
orders with ``ordered_at < as_of``, events with ``occurred_at < as_of``, carts with
``cart_updated_at < as_of``, subscriptions with ``started_at < as_of`` whose ``ended_at`` is shown
only when it is itself before ``as_of`` (a cancellation after that moment was not known yet).

Label queries read the window ``[start, end)`` that follows ``as_of``; the window is half-open on
the same boundary as the features, so a row stamped exactly at ``as_of`` belongs to the label and
never to the features, and no moment is in neither (see ``ml.features``).

What the tables cannot tell apart in time, documented where it is read: customer attributes and a
subscription's plan, charge and services are current values without history.

Every query takes an optional ``customer_ids`` filter. The ids are rendered into the statement
rather than bound one parameter each, so a filter of 50,000 ids stays under SQLite's and
PostgreSQL's bound-parameter limits while remaining a single query.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Float, Select, bindparam, case, cast, false, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.clock import as_utc
from core.models import Cart, Customer, Event, Order, Subscription

CustomerIds = Collection[int] | None
AnySelect = Select[*tuple[Any, ...]]
CustomerColumn = InstrumentedAttribute[int] | InstrumentedAttribute[int | None]

ORDER_COLUMNS = ("customer_id", "ordered_at", "amount", "quantity")
SUBSCRIPTION_COLUMNS = (
    "subscription_id",
    "customer_id",
    "plan",
    "monthly_charge",
    "started_at",
    "ended_at",
    "attributes",
)
EVENT_COLUMNS = ("customer_id", "name", "occurred_at")
CART_COLUMNS = ("customer_id", "value", "cart_updated_at")
PROFILE_COLUMNS = ("customer_id", "attributes")
SPAN_COLUMNS = ("subscription_id", "customer_id", "started_at", "ended_at")


# --- features: strictly before as_of --------------------------------------------------------------


def orders_before(session: Session, as_of: datetime, customer_ids: CustomerIds = None) -> pd.DataFrame:
    """Orders placed strictly before ``as_of``: ``customer_id, ordered_at, amount, quantity``."""
    query = select(Order.customer_id, Order.ordered_at, cast(Order.amount, Float), Order.quantity).where(
        Order.ordered_at < as_utc(as_of)
    )
    return _frame(session, _for_customers(query, Order.customer_id, customer_ids), ORDER_COLUMNS)


def subscriptions_before(session: Session, as_of: datetime, customer_ids: CustomerIds = None) -> pd.DataFrame:
    """Subscriptions started strictly before ``as_of``, as they looked then.

    Columns ``subscription_id, customer_id, plan, monthly_charge, started_at, ended_at, attributes``.
    ``ended_at`` is NaT unless the subscription had ended before ``as_of``. ``plan``,
    ``monthly_charge`` and ``attributes`` are the row's current values: the table keeps no history
    of plan changes, so a change made after ``as_of`` in place would show through.
    """
    moment = as_utc(as_of)
    known_end = case((Subscription.ended_at < moment, Subscription.ended_at), else_=None)
    query = select(
        Subscription.id,
        Subscription.customer_id,
        Subscription.plan,
        cast(Subscription.monthly_charge, Float),
        Subscription.started_at,
        known_end.label("ended_at"),
        Subscription.attributes,
    ).where(Subscription.started_at < moment)
    return _frame(session, _for_customers(query, Subscription.customer_id, customer_ids), SUBSCRIPTION_COLUMNS)


def events_before(session: Session, as_of: datetime, customer_ids: CustomerIds = None) -> pd.DataFrame:
    """Events of known customers that occurred strictly before ``as_of``: ``customer_id, name, occurred_at``."""
    query = select(Event.customer_id, Event.name, Event.occurred_at).where(
        Event.customer_id.is_not(None), Event.occurred_at < as_utc(as_of)
    )
    return _frame(session, _for_customers(query, Event.customer_id, customer_ids), EVENT_COLUMNS)


def carts_before(session: Session, as_of: datetime, customer_ids: CustomerIds = None) -> pd.DataFrame:
    """Carts last changed strictly before ``as_of``: ``customer_id, value, cart_updated_at``.

    The cart's ``status`` is deliberately not read: it is overwritten when the cart converts or is
    marked abandoned, possibly after ``as_of``, so it would leak the outcome. ``ml.features`` infers
    whether a cart was still open at ``as_of`` from the orders that followed it instead.
    """
    query = select(Cart.customer_id, cast(Cart.value, Float), Cart.cart_updated_at).where(
        Cart.cart_updated_at < as_utc(as_of)
    )
    return _frame(session, _for_customers(query, Cart.customer_id, customer_ids), CART_COLUMNS)


def customer_profiles(session: Session, customer_ids: CustomerIds = None) -> pd.DataFrame:
    """Customers' ``attributes`` (``customer_id, attributes``).

    Not point-in-time: attributes are current values without history (Telco's gender, senior
    citizen, partner, dependents). Use only attributes that do not change with the outcome.
    """
    query = select(Customer.id, Customer.attributes)
    return _frame(session, _for_customers(query, Customer.id, customer_ids), PROFILE_COLUMNS)


# --- labels: the window [start, end) after as_of --------------------------------------------------


def orders_between(session: Session, start: datetime, end: datetime, customer_ids: CustomerIds = None) -> pd.DataFrame:
    """Orders with ``start <= ordered_at < end``: ``customer_id, ordered_at, amount, quantity``."""
    query = select(Order.customer_id, Order.ordered_at, cast(Order.amount, Float), Order.quantity).where(
        Order.ordered_at >= as_utc(start), Order.ordered_at < as_utc(end)
    )
    return _frame(session, _for_customers(query, Order.customer_id, customer_ids), ORDER_COLUMNS)


def subscriptions_spanning(
    session: Session, start: datetime, end: datetime, customer_ids: CustomerIds = None
) -> pd.DataFrame:
    """Subscriptions that overlap ``[start, end)``: ``subscription_id, customer_id, started_at, ended_at``.

    A subscription overlaps when it started before ``end`` and had not ended before ``start``.
    ``ended_at`` is NaT unless it falls before ``end``: what happens after the window is not read.
    """
    moment, stop = as_utc(start), as_utc(end)
    known_end = case((Subscription.ended_at < stop, Subscription.ended_at), else_=None)
    query = select(Subscription.id, Subscription.customer_id, Subscription.started_at, known_end.label("ended_at"))
    query = query.where(
        Subscription.started_at < stop, or_(Subscription.ended_at.is_(None), Subscription.ended_at >= moment)
    )
    return _frame(session, _for_customers(query, Subscription.customer_id, customer_ids), SPAN_COLUMNS)


# --- shared ---------------------------------------------------------------------------------------


def _for_customers(query: AnySelect, column: CustomerColumn, ids: CustomerIds) -> AnySelect:
    if ids is None:
        return query
    return query.where(_id_in(column, sorted({int(value) for value in ids})))


def _id_in(column: CustomerColumn, ids: Sequence[int]) -> ColumnElement[bool]:
    if not ids:
        return false()  # an empty filter matches nothing
    # literal_execute renders the integers into the SQL instead of one bound parameter per id.
    return column.in_(bindparam("customer_ids", list(ids), expanding=True, literal_execute=True))


def _frame(session: Session, query: AnySelect, columns: Sequence[str]) -> pd.DataFrame:
    rows = session.execute(query).all()
    frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=list(columns))
    return _typed(frame)


# Empty results and SQLite's loose typing both come back as object columns; give every column its kind.
_DATETIMES = ("ordered_at", "started_at", "ended_at", "occurred_at", "cart_updated_at")
_FLOATS = ("amount", "monthly_charge", "value")
_INTEGERS = ("customer_id", "subscription_id", "quantity")
_STRINGS = ("plan", "name")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if column in _DATETIMES:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        elif column in _FLOATS:
            frame[column] = frame[column].astype("float64")
        elif column in _INTEGERS:
            frame[column] = frame[column].astype("int64")
        elif column in _STRINGS:
            frame[column] = frame[column].astype("str")
    return frame
