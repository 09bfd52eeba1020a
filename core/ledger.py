"""The cost ledger: book every cost once, and answer what things cost.

Booking (``record`` and the helpers built on it) inserts one ``CostEntry`` per source event with
``ON CONFLICT DO NOTHING`` on ``(source, day)``: a retried task, a redelivered message or a second worker
recording the same event books nothing more. Services call it inside their unit of work and never commit.

- LLM calls: ``record_llm_call`` (``agents.accounting.MeteredLlm`` books every call that reached a model);
- sends: ``record_sends`` with the ids of messages just handed to a provider (books the sent ones: e-mail at
  ``NUDGE_EMAIL_PRICE_USD``, SMS at the message's segment cost; counts every one in ``nudge_messages_total``);
- offers: ``record_offer_redemption`` when an order redeems a catalog offer (at the offer's ``unit_cost``);
- infrastructure: ``record_infrastructure`` books the configured stage's monthly estimate one day at a time.

Reading: ``campaign_costs`` (costs by component of one campaign, for ROI), ``totals_by_component``,
``totals_by_day``, ``totals_by_month``, ``cost_per_customer_contacted``, ``contacted_revenue`` and
``infrastructure_share`` (the "infrastructure under 20 % of attributed revenue" rule).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Row, and_, distinct, exists, func, select
from sqlalchemy.orm import Session

from core import partitions, telemetry
from core.bulk import among, chunks, insert_for, table_of
from core.clock import as_utc, utcnow
from core.errors import BadRequest, NotFound
from core.models import Campaign, Channel, CostComponent, CostEntry, LlmCall, Message, MessageStatus, Offer, Order
from core.settings import Settings

MICRODOLLAR = Decimal("0.000001")
ZERO = Decimal("0")
CONTACT_COMPONENTS = (CostComponent.EMAIL, CostComponent.SMS)
DEFAULT_ATTRIBUTION_DAYS = 7


@dataclass(frozen=True, slots=True)
class Cost:
    """One cost to book. ``source`` identifies the event (``llm_call:42``); ``occurred_at`` picks its UTC day."""

    component: CostComponent
    source: str
    occurred_at: datetime
    amount: Decimal
    quantity: int = 1
    campaign_key: str | None = None
    customer_id: int | None = None
    item: str | None = None

    @property
    def day(self) -> date:
        return as_utc(self.occurred_at).date()


@dataclass(frozen=True, slots=True)
class CampaignCosts:
    """What one campaign cost, by component (every component present, 0 if none), and per customer contacted."""

    campaign_key: str
    components: dict[CostComponent, Decimal]
    contacted: int

    @property
    def total(self) -> Decimal:
        return sum(self.components.values(), ZERO)

    @property
    def cost_per_contact(self) -> Decimal | None:
        return (self.total / self.contacted).quantize(MICRODOLLAR) if self.contacted else None


@dataclass(frozen=True, slots=True)
class InfrastructureShare:
    """Infrastructure cost against the revenue attributed to campaigns over the same period."""

    infrastructure: Decimal
    revenue: Decimal
    limit: float
    share: float | None = field(default=None)

    @property
    def over_limit(self) -> bool:
        """No revenue at all with a cost counts as over the limit: nothing justifies the spend yet."""
        if self.share is None:
            return self.infrastructure > 0
        return self.share > self.limit


# --- booking ----------------------------------------------------------------------------------------------------


def record(session: Session, cost: Cost) -> bool:
    """Book one cost; ``False`` when its source event was booked before (nothing changes)."""
    return record_many(session, [cost]) == 1


def record_many(session: Session, costs: Sequence[Cost]) -> int:
    """Book several costs in one statement per chunk; returns how many were new.

    Raises
    ------
    BadRequest
        A negative amount or quantity, or an empty source: a ledger row is a fact and is never corrected.
    """
    if not costs:
        return 0
    for cost in costs:
        _validate(cost)
    for month in sorted({partitions.month_start(cost.day) for cost in costs}):
        partitions.ensure_month(session, "cost_entries", month)
    statement = insert_for(session)(table_of(CostEntry)).on_conflict_do_nothing(index_elements=["source", "day"])
    booked = 0
    for chunk in chunks(list(costs)):
        result = session.execute(statement.returning(table_of(CostEntry).c.id), [_row(cost) for cost in chunk])
        booked += len(result.all())
    return booked


def _validate(cost: Cost) -> None:
    if not cost.source:
        raise BadRequest("a cost needs the source event it came from")
    if cost.amount < 0 or cost.quantity < 0:
        raise BadRequest(f"cost {cost.source}: amount and quantity cannot be negative")


def _row(cost: Cost) -> dict[str, object]:
    return {
        "component": cost.component,
        "source": cost.source[:160],
        "day": cost.day,
        "campaign_key": cost.campaign_key,
        "customer_id": cost.customer_id,
        "item": cost.item[:64] if cost.item else None,
        "quantity": cost.quantity,
        "amount": cost.amount.quantize(MICRODOLLAR),
        "recorded_at": utcnow(),
    }


def record_llm_call(session: Session, call: LlmCall) -> bool:
    """Book a flushed ``LlmCall`` that reached a model (cache hits cost nothing and are not booked)."""
    telemetry.LLM_CALLS.labels(call.model, str(call.cached).lower()).inc()
    if call.cached:
        return False
    telemetry.LLM_TOKENS.labels(call.model, "prompt").inc(call.prompt_tokens)
    telemetry.LLM_TOKENS.labels(call.model, "completion").inc(call.completion_tokens)
    cost = Cost(
        component=CostComponent.LLM,
        source=f"llm_call:{call.id}",
        occurred_at=call.created_at,
        amount=call.cost,
        quantity=call.prompt_tokens + call.completion_tokens,
        campaign_key=call.campaign_key,
        item=call.model,
    )
    return record(session, cost)


def record_sends(session: Session, settings: Settings, message_ids: Sequence[int]) -> int:
    """Book the messages among ``message_ids`` that a provider accepted, and count all of them by status.

    Call it after the provider's receipts are written on the rows. E-mail costs ``NUDGE_EMAIL_PRICE_USD``;
    an SMS costs what its row says (segments × ``NUDGE_SMS_SEGMENT_PRICE_USD``, priced when rendered).
    Returns how many were booked now.
    """
    rows: list[Any] = []
    for chunk in chunks(sorted(set(message_ids))):
        query = select(
            Message.id,
            Message.campaign_key,
            Message.customer_id,
            Message.channel,
            Message.status,
            Message.segments,
            Message.cost,
            Message.sent_at,
        ).where(among(Message.id, chunk))
        rows += session.execute(query).all()
    for row in rows:
        telemetry.MESSAGES.labels(row.channel.value, row.status.value).inc()
    costs = [_send_cost(settings, row) for row in rows if row.status is MessageStatus.SENT and row.sent_at]
    return record_many(session, costs)


def _send_cost(settings: Settings, row: Row[Any]) -> Cost:
    sms = row.channel is Channel.SMS
    segments = row.segments or 1
    if not sms:
        amount = settings.email_price_usd
    else:
        amount = row.cost if row.cost is not None else settings.sms_segment_price_usd * segments
    return Cost(
        component=CostComponent.SMS if sms else CostComponent.EMAIL,
        source=f"message:{row.id}",
        occurred_at=row.sent_at,
        amount=Decimal(amount),
        quantity=segments if sms else 1,
        campaign_key=row.campaign_key,
        customer_id=row.customer_id,
        item=row.channel.value,
    )


def record_offer_redemption(
    session: Session,
    *,
    order_id: int,
    offer_code: str,
    customer_id: int,
    redeemed_at: datetime,
    campaign_key: str | None = None,
) -> bool:
    """Book one redemption of a catalog offer by an order, at the offer's ``unit_cost``; once per order and offer.

    Raises
    ------
    NotFound
        No offer with that code in the catalog.
    """
    offer = session.scalar(select(Offer).where(Offer.code == offer_code))
    if offer is None:
        raise NotFound(f"no offer {offer_code!r} in the catalog")
    cost = Cost(
        component=CostComponent.OFFER,
        source=f"offer:{order_id}:{offer_code}",
        occurred_at=redeemed_at,
        amount=offer.unit_cost,
        campaign_key=campaign_key,
        customer_id=customer_id,
        item=offer_code,
    )
    return record(session, cost)


def record_infrastructure(session: Session, settings: Settings, day: date) -> bool:
    """Book one day of the configured stage's monthly estimate (the month's amount over its days)."""
    stage = settings.infrastructure_stage
    monthly = settings.infrastructure_monthly_usd.get(stage)
    if monthly is None:
        raise BadRequest(f"NUDGE_INFRASTRUCTURE_MONTHLY_USD has no estimate for the stage {stage.value!r}")
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    cost = Cost(
        component=CostComponent.INFRASTRUCTURE,
        source=f"infrastructure:{day.isoformat()}",
        occurred_at=datetime(day.year, day.month, day.day),
        amount=monthly / days_in_month,
        item=stage.value,
    )
    return record(session, cost)


# --- reading ----------------------------------------------------------------------------------------------------


def campaign_costs(session: Session, campaign: str | int) -> CampaignCosts:
    """Costs by component of one campaign, by its key or id, and the customers it contacted.

    Raises
    ------
    NotFound
        An id that names no campaign. A key is taken as given: costs may be booked before a campaign row exists.
    """
    key = _campaign_key(session, campaign)
    components = dict.fromkeys(CostComponent, ZERO)
    query = (
        select(CostEntry.component, func.sum(CostEntry.amount))
        .where(CostEntry.campaign_key == key)
        .group_by(CostEntry.component)
    )
    for component, amount in session.execute(query):
        components[component] = _money(amount)
    contacted = session.scalar(
        select(func.count(distinct(CostEntry.customer_id))).where(
            CostEntry.campaign_key == key, CostEntry.component.in_(CONTACT_COMPONENTS)
        )
    )
    return CampaignCosts(campaign_key=key, components=components, contacted=int(contacted or 0))


def _campaign_key(session: Session, campaign: str | int) -> str:
    if isinstance(campaign, str):
        return campaign
    key = session.scalar(select(Campaign.key).where(Campaign.id == campaign))
    if key is None:
        raise NotFound(f"no campaign {campaign}")
    return key


def totals_by_component(session: Session, start: date, end: date) -> dict[CostComponent, Decimal]:
    """Every component's cost over days ``start`` (inclusive) to ``end`` (exclusive), 0 if none."""
    totals = dict.fromkeys(CostComponent, ZERO)
    query = select(CostEntry.component, func.sum(CostEntry.amount)).where(_between(start, end))
    for component, amount in session.execute(query.group_by(CostEntry.component)):
        totals[component] = _money(amount)
    return totals


def totals_by_day(session: Session, start: date, end: date) -> dict[date, dict[CostComponent, Decimal]]:
    """Cost per day and component over ``[start, end)``; days without costs are left out."""
    query = (
        select(CostEntry.day, CostEntry.component, func.sum(CostEntry.amount))
        .where(_between(start, end))
        .group_by(CostEntry.day, CostEntry.component)
        .order_by(CostEntry.day)
    )
    days: dict[date, dict[CostComponent, Decimal]] = defaultdict(dict)
    for day, component, amount in session.execute(query):
        days[day][component] = _money(amount)
    return dict(days)


def totals_by_month(session: Session, start: date, end: date) -> dict[date, dict[CostComponent, Decimal]]:
    """Cost per month (keyed by its first day) and component over ``[start, end)``."""
    months: dict[date, dict[CostComponent, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for day, components in totals_by_day(session, start, end).items():
        for component, amount in components.items():
            months[partitions.month_start(day)][component] += amount
    return {month: dict(components) for month, components in sorted(months.items())}


def customers_contacted(session: Session, start: date, end: date) -> int:
    """Distinct customers sent an e-mail or a text over ``[start, end)``."""
    query = select(func.count(distinct(CostEntry.customer_id))).where(
        _between(start, end), CostEntry.component.in_(CONTACT_COMPONENTS)
    )
    return int(session.scalar(query) or 0)


def cost_per_customer_contacted(session: Session, start: date, end: date) -> Decimal | None:
    """All costs over ``[start, end)`` (infrastructure included) per customer contacted; ``None`` if nobody was."""
    contacted = customers_contacted(session, start, end)
    if not contacted:
        return None
    total = sum(totals_by_component(session, start, end).values(), ZERO)
    return (total / contacted).quantize(MICRODOLLAR)


def contacted_revenue(session: Session, start: date, end: date, window_days: int = DEFAULT_ATTRIBUTION_DAYS) -> Decimal:
    """Revenue of orders placed over ``[start, end)`` by customers sent a message in the ``window_days`` before.

    A last-touch window, counted once per order however many messages preceded it. It is the ledger's own
    estimate for the infrastructure rule; the experiments' holdout analysis measures true incremental revenue.
    """
    if window_days < 0:
        raise BadRequest("the attribution window cannot be negative")
    contacts = pd.DataFrame(_contacts(session, start - timedelta(days=window_days), end), columns=["customer", "day"])
    orders = pd.DataFrame(_orders_of_contacted(session, start, end, window_days), columns=["customer", "at", "amount"])
    if contacts.empty or orders.empty:
        return ZERO
    contacts["contacted"] = pd.to_datetime(contacts["day"]).astype("datetime64[ns]")
    orders["day"] = pd.to_datetime(orders["at"], utc=True).dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")
    merged = pd.merge_asof(
        orders.sort_values("day"),
        contacts.sort_values("contacted")[["customer", "contacted"]],
        left_on="day",
        right_on="contacted",
        by="customer",
        tolerance=pd.Timedelta(days=window_days),
        direction="backward",
    )
    attributed = merged.loc[merged["contacted"].notna(), "amount"]
    return _money(sum((Decimal(str(amount)) for amount in attributed), ZERO))


def _contacts(session: Session, start: date, end: date) -> list[tuple[int, date]]:
    query = (
        select(CostEntry.customer_id, CostEntry.day)
        .where(_between(start, end), CostEntry.component.in_(CONTACT_COMPONENTS), CostEntry.customer_id.is_not(None))
        .distinct()
    )
    return [(customer, day) for customer, day in session.execute(query) if customer is not None]


def _orders_of_contacted(
    session: Session, start: date, end: date, window_days: int
) -> list[tuple[int, datetime, Decimal]]:
    contacted = exists().where(
        CostEntry.customer_id == Order.customer_id,
        CostEntry.component.in_(CONTACT_COMPONENTS),
        _between(start - timedelta(days=window_days), end),
    )
    query = select(Order.customer_id, Order.ordered_at, Order.amount).where(
        Order.ordered_at >= _midnight(start), Order.ordered_at < _midnight(end), contacted
    )
    return [(customer, at, amount) for customer, at, amount in session.execute(query)]


def infrastructure_share(
    session: Session,
    settings: Settings,
    start: date,
    end: date,
    *,
    revenue: Decimal | None = None,
) -> InfrastructureShare:
    """Infrastructure cost over ``[start, end)`` as a share of attributed revenue (``contacted_revenue`` unless
    the caller passes the experiments' figure), against ``NUDGE_INFRASTRUCTURE_MAX_REVENUE_SHARE``."""
    infrastructure = totals_by_component(session, start, end)[CostComponent.INFRASTRUCTURE]
    revenue = contacted_revenue(session, start, end) if revenue is None else revenue
    share = float(infrastructure / revenue) if revenue > 0 else None
    return InfrastructureShare(infrastructure, revenue, settings.infrastructure_max_revenue_share, share)


def _between(start: date, end: date) -> ColumnElement[bool]:
    if end < start:
        raise BadRequest(f"the period ends ({end}) before it starts ({start})")
    return and_(CostEntry.day >= start, CostEntry.day < end)


def _midnight(day: date) -> datetime:
    return as_utc(datetime(day.year, day.month, day.day))


def _money(amount: object) -> Decimal:
    return Decimal(str(amount or 0)).quantize(MICRODOLLAR)
