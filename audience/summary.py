"""What the audience tables hold, in a few numbers: what ``nudge demo`` prints after loading the samples."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from core.models import Channel, Consent, ConsentStatus, Customer, Order, Subscription
from core.money import CENT


@dataclass(frozen=True, slots=True)
class AudienceSummary:
    customers: int
    generated_contacts: int  # customers whose contact details were generated for sample data
    active_subscriptions: int
    ended_subscriptions: int
    monthly_recurring: dict[str, Decimal]  # active subscriptions' monthly charges, by currency
    orders: int
    revenue: dict[str, Decimal]  # orders' amounts, by currency
    first_order: datetime | None
    last_order: datetime | None
    # Customers by their current consent (the latest record) on each channel.
    consents: dict[Channel, dict[ConsentStatus, int]] = field(default_factory=dict)


def summarize(session: Session) -> AudienceSummary:
    customers, generated = session.execute(
        select(func.count(), func.count().filter(Customer.contact_generated.is_(True)))
    ).one()
    active, ended = session.execute(
        select(
            func.count().filter(Subscription.ended_at.is_(None)),
            func.count().filter(Subscription.ended_at.is_not(None)),
        )
    ).one()
    orders, first_order, last_order = session.execute(
        select(func.count(), func.min(Order.ordered_at), func.max(Order.ordered_at))
    ).one()
    return AudienceSummary(
        customers=customers,
        generated_contacts=generated,
        active_subscriptions=active,
        ended_subscriptions=ended,
        monthly_recurring=_totals(
            session, Subscription.monthly_charge, Subscription.currency, Subscription.ended_at.is_(None)
        ),
        orders=orders,
        revenue=_totals(session, Order.amount, Order.currency),
        first_order=first_order,
        last_order=last_order,
        consents=_current_consents(session),
    )


def _totals(session: Session, amount: Any, currency: Any, *where: Any) -> dict[str, Decimal]:
    """Sums in whole cents: exact on SQLite too, which stores NUMERIC as floating point."""
    cents = func.sum(cast(func.round(amount * 100), Integer))
    rows = session.execute(select(currency, cents).where(*where).group_by(currency).order_by(currency))
    return {code: (Decimal(int(total)) * CENT) for code, total in rows if total is not None}


def _current_consents(session: Session) -> dict[Channel, dict[ConsentStatus, int]]:
    rank = func.row_number().over(
        partition_by=(Consent.customer_id, Consent.channel), order_by=(Consent.recorded_at.desc(), Consent.id.desc())
    )
    latest = select(Consent.channel, Consent.status, rank.label("rank")).subquery()
    rows = session.execute(
        select(latest.c.channel, latest.c.status, func.count())
        .where(latest.c.rank == 1)
        .group_by(latest.c.channel, latest.c.status)
    )
    counts: dict[Channel, dict[ConsentStatus, int]] = defaultdict(dict)
    for channel, status, count in rows:
        counts[Channel(channel)][ConsentStatus(status)] = count
    return dict(counts)
