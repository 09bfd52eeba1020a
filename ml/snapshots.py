"""Point-in-time snapshots from the database: the feature frame as of a moment, and the labelled
training set (features as of ``as_of``, churn in the window after it).

The thin joint between ``ml.repository`` (queries) and ``ml.features`` (pure functions): one query
per source, then vectorised pandas. Takes a ``Session``, never commits.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import pandas as pd
from sqlalchemy.orm import Session

from core.clock import as_utc, utcnow
from core.errors import ValidationFailed
from ml import repository
from ml.features import build_features, contractual_churn_labels, noncontractual_churn_labels, window_end


class Family(StrEnum):
    """A group of features, named after the source it reads."""

    ORDERS = "orders"
    SUBSCRIPTIONS = "subscriptions"
    EVENTS = "events"
    CARTS = "carts"
    PROFILE = "profile"


ALL_FAMILIES = tuple(Family)


class ChurnKind(StrEnum):
    """Contractual churn ends a subscription (Telco); non-contractual churn is the absence of orders (CDNOW)."""

    CONTRACTUAL = "contractual"
    NON_CONTRACTUAL = "non_contractual"


@dataclass(frozen=True, slots=True)
class LabelledSnapshot:
    """Features as of ``as_of`` and churn labels in ``[as_of, window_end)``, on the same index."""

    as_of: datetime
    window_end: datetime
    features: pd.DataFrame
    labels: pd.Series

    @property
    def churners(self) -> int:
        return int(self.labels.sum())


def feature_snapshot(
    session: Session,
    as_of: datetime,
    customer_ids: Collection[int] | None = None,
    families: Collection[Family] = ALL_FAMILIES,
) -> pd.DataFrame:
    """Every customer's features as of ``as_of`` (see ``ml.features.build_features``).

    With ``customer_ids`` the frame has exactly those rows, in that order (what batch scoring
    wants); otherwise every customer with an order, subscription, event or cart before ``as_of``.
    """
    return _snapshot(session, as_of, set(families), read=customer_ids, rows=customer_ids)


def churn_snapshot(
    session: Session,
    as_of: datetime,
    horizon_days: int,
    kind: ChurnKind,
    families: Collection[Family] = ALL_FAMILIES,
    *,
    now: datetime | None = None,
) -> LabelledSnapshot:
    """A training set: features as of ``as_of`` for every labelled customer, churn in the window after.

    Raises
    ------
    ValidationFailed
        When the window has not ended yet (its labels would be wrong), nobody can be labelled, or
        the labels hold one class only (nothing to learn from).
    """
    end = window_end(as_of, horizon_days)
    if end > as_utc(now or utcnow()):
        raise ValidationFailed(f"the label window ends {end.isoformat()}, in the future: churn there is not known yet")
    labels = _labels(session, as_of, horizon_days, kind)
    _require_both_classes(labels, as_of, end)
    features = _snapshot(session, as_of, set(families), read=None, rows=labels.index)
    return LabelledSnapshot(as_utc(as_of), end, features, labels)


def _snapshot(
    session: Session,
    as_of: datetime,
    wanted: set[Family],
    *,
    read: Collection[int] | None,
    rows: Collection[int] | None,
) -> pd.DataFrame:
    # Carts need the orders to tell whether a cart was still open, even when order features are not wanted.
    orders = repository.orders_before(session, as_of, read) if wanted & {Family.ORDERS, Family.CARTS} else None
    subscriptions = repository.subscriptions_before(session, as_of, read) if Family.SUBSCRIPTIONS in wanted else None
    frame = build_features(
        as_of,
        orders=orders,
        subscriptions=subscriptions,
        events=repository.events_before(session, as_of, read) if Family.EVENTS in wanted else None,
        carts=repository.carts_before(session, as_of, read) if Family.CARTS in wanted else None,
        profiles=repository.customer_profiles(session, read) if Family.PROFILE in wanted else None,
        customer_ids=rows,
    )
    if Family.ORDERS not in wanted:
        frame = frame.drop(columns=[column for column in frame.columns if column.startswith("orders_")])
    return frame


def _labels(session: Session, as_of: datetime, horizon_days: int, kind: ChurnKind) -> pd.Series:
    end = window_end(as_of, horizon_days)
    if kind is ChurnKind.CONTRACTUAL:
        spans = repository.subscriptions_spanning(session, as_of, end)
        return contractual_churn_labels(spans, as_of, horizon_days)
    orders = repository.orders_before(session, as_of)
    return noncontractual_churn_labels(orders, repository.orders_between(session, as_of, end), as_of, horizon_days)


def _require_both_classes(labels: pd.Series, as_of: datetime, end: datetime) -> None:
    churners = int(labels.sum())
    if churners in (0, len(labels)):
        outcome = "none" if churners == 0 else "all"
        raise ValidationFailed(
            f"{outcome} of the {len(labels):,} customers labelled as of {as_utc(as_of).isoformat()} churned by "
            f"{end.isoformat()}: labels with one class only cannot train a churn model"
        )
