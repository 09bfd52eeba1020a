"""Per-arm sufficient statistics of a campaign's outcomes, aggregated in SQL (SQLite and PostgreSQL).

**Intention to treat.** The population is every ``Assignment`` row of the campaign — treated, held out,
globally held out — whether or not a message was delivered, opened or even sent; a customer with no
outcome counts with zeros. Nothing post-treatment (delivered, opened) ever filters it.

Per customer, relative to their ``assigned_at`` (window ``[assigned_at, assigned_at + attribution))``):

- ``conversion``: placed at least one order in the window; ``revenue``: the window's order amounts;
- ``pre_revenue``: order amounts in ``[assigned_at − pre_period, assigned_at)``, CUPED's covariate;
- ``unsubscribe``: withdrew e-mail marketing consent in the window (one-click, provider or any source);
- ``sms_opt_out``: withdrew SMS consent in the window (STOP);
- ``spam_complaint``: a spam report on any message to them, in the window;
- ``open``, ``click``: opened / clicked this campaign's message (diagnostics: only treated customers
  receive one, so they compare variants, never a variant with a holdout).

Guardrails are measured from consent and complaint records, not from this campaign's messages, so a held-out
customer — who got no message to unsubscribe from — is measured the same way as a treated one.

Each arm comes back as one row of sums (n, Σy, Σy², Σx, Σx², Σxy): the database does the per-customer work,
Python receives one row per arm, however many customers. Order amounts are summed as they are stored: one
currency per installation is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Interval,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from core.errors import BadRequest
from core.models import (
    Assignment,
    Campaign,
    Channel,
    Consent,
    ConsentPurpose,
    ConsentStatus,
    Message,
    Order,
    Outcome,
    OutcomeKind,
)
from experiments.analysis import ArmStats, Metric, MetricKind, Moments, Role

CONVERSION = "conversion"
REVENUE = "revenue"
UNSUBSCRIBE = "unsubscribe"
SPAM_COMPLAINT = "spam_complaint"
SMS_OPT_OUT = "sms_opt_out"
OPEN = "open"
CLICK = "click"

CAMPAIGN_METRICS = (
    Metric(CONVERSION, "Converted", MetricKind.RATE, Role.SUCCESS),
    Metric(REVENUE, "Revenue per customer", MetricKind.MEAN, Role.SUCCESS, cuped=True),
    Metric(UNSUBSCRIBE, "Unsubscribed (e-mail)", MetricKind.RATE, Role.GUARDRAIL, higher_is_better=False),
    Metric(SPAM_COMPLAINT, "Spam complaint", MetricKind.RATE, Role.GUARDRAIL, higher_is_better=False),
    Metric(SMS_OPT_OUT, "SMS opt-out", MetricKind.RATE, Role.GUARDRAIL, higher_is_better=False),
    Metric(OPEN, "Opened", MetricKind.RATE, Role.DIAGNOSTIC),
    Metric(CLICK, "Clicked", MetricKind.RATE, Role.DIAGNOSTIC),
)
FLAGS = (CONVERSION, UNSUBSCRIBE, SPAM_COMPLAINT, SMS_OPT_OUT, OPEN, CLICK)


@dataclass(frozen=True, slots=True)
class Windows:
    """The attribution window after assignment and the covariate (pre-period) window before it."""

    attribution: timedelta
    pre_period: timedelta

    def __post_init__(self) -> None:
        if self.attribution <= timedelta(0) or self.pre_period <= timedelta(0):
            raise BadRequest(f"windows must be positive, not {self.attribution} and {self.pre_period}")


def _shifted(session: Session, column: Any, delta: timedelta) -> ColumnElement[Any]:
    """``column + delta`` on either dialect, exact to the microsecond.

    SQLite keeps datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff`` text and compares them as text: shift the whole
    seconds with ``strftime`` and re-attach the stored fraction, so window edges compare exactly.
    """
    if session.get_bind().dialect.name != "sqlite":
        return column + literal(delta, Interval())  # type: ignore[no-any-return]
    seconds = int(delta.total_seconds())
    if seconds != delta.total_seconds():
        raise BadRequest(f"windows are whole seconds, not {delta}")
    shifted = func.strftime("%Y-%m-%d %H:%M:%S", column, f"{seconds:+d} seconds")
    return shifted.concat(func.substr(column, 20))


def _assigned(session: Session, campaign_id: int, windows: Windows) -> Subquery:
    return (
        select(
            Assignment.customer_id,
            Assignment.arm,
            Assignment.assigned_at.label("starts"),
            _shifted(session, Assignment.assigned_at, windows.attribution).label("ends"),
            _shifted(session, Assignment.assigned_at, -windows.pre_period).label("pre_starts"),
        )
        .where(Assignment.campaign_id == campaign_id)
        .subquery("assigned")
    )


def _order_sums(assigned: Subquery, start: Any, end: Any, name: str) -> Subquery:
    window = and_(Order.customer_id == assigned.c.customer_id, Order.ordered_at >= start, Order.ordered_at < end)
    return (
        select(
            assigned.c.customer_id,
            func.count(Order.id).label("orders"),
            func.sum(cast(Order.amount, Float)).label("amount"),
        )
        .select_from(assigned)
        .join(Order, window)
        .group_by(assigned.c.customer_id)
        .subquery(name)
    )


def _engagement(campaign_key: Any) -> Subquery:
    """Per customer, whether this campaign's message was opened or clicked."""
    opened = func.max(case((Outcome.kind == OutcomeKind.OPEN, 1), else_=0))
    clicked = func.max(case((Outcome.kind == OutcomeKind.CLICK, 1), else_=0))
    return (
        select(Message.customer_id, opened.label("opened"), clicked.label("clicked"))
        .join(Outcome, Outcome.message_id == Message.id)
        .where(Message.campaign_key == campaign_key, Outcome.kind.in_((OutcomeKind.OPEN, OutcomeKind.CLICK)))
        .group_by(Message.customer_id)
        .subquery("engagement")
    )


def _withdrew(assigned: Subquery, channel: Channel) -> ColumnElement[bool]:
    return exists().where(
        Consent.customer_id == assigned.c.customer_id,
        Consent.channel == channel,
        Consent.purpose == ConsentPurpose.MARKETING,
        Consent.status == ConsentStatus.WITHDRAWN,
        Consent.recorded_at >= assigned.c.starts,
        Consent.recorded_at < assigned.c.ends,
    )


def _complained(assigned: Subquery) -> ColumnElement[bool]:
    return exists().where(
        Message.customer_id == assigned.c.customer_id,
        Outcome.message_id == Message.id,
        Outcome.kind == OutcomeKind.SPAM_REPORT,
        Outcome.occurred_at >= assigned.c.starts,
        Outcome.occurred_at < assigned.c.ends,
    )


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def arm_statistics(session: Session, campaign_id: int, windows: Windows) -> list[ArmStats]:
    """Every arm of the campaign with the sufficient statistics of ``CAMPAIGN_METRICS``, sorted by arm.

    Raises
    ------
    core.errors.NotFound
        No such campaign (via the key lookup).
    """
    key = select(Campaign.key).where(Campaign.id == campaign_id).scalar_subquery()
    assigned = _assigned(session, campaign_id, windows)
    post = _order_sums(assigned, assigned.c.starts, assigned.c.ends, "post")
    pre = _order_sums(assigned, assigned.c.pre_starts, assigned.c.starts, "pre")
    engaged = _engagement(key)
    revenue = func.coalesce(post.c.amount, 0.0)
    pre_revenue = func.coalesce(pre.c.amount, 0.0)
    flags = {
        CONVERSION: _flag(post.c.orders > 0),
        UNSUBSCRIBE: _flag(_withdrew(assigned, Channel.EMAIL)),
        SPAM_COMPLAINT: _flag(_complained(assigned)),
        SMS_OPT_OUT: _flag(_withdrew(assigned, Channel.SMS)),
        OPEN: func.coalesce(engaged.c.opened, 0),
        CLICK: func.coalesce(engaged.c.clicked, 0),
    }
    query = (
        select(
            assigned.c.arm,
            func.count().label("n"),
            *(func.sum(cast(flag, Integer)).label(name) for name, flag in flags.items()),
            func.sum(revenue).label("revenue"),
            func.sum(revenue * revenue).label("revenue_sq"),
            func.sum(pre_revenue).label("pre"),
            func.sum(pre_revenue * pre_revenue).label("pre_sq"),
            func.sum(revenue * pre_revenue).label("cross"),
        )
        .select_from(assigned)
        .outerjoin(post, post.c.customer_id == assigned.c.customer_id)
        .outerjoin(pre, pre.c.customer_id == assigned.c.customer_id)
        .outerjoin(engaged, engaged.c.customer_id == assigned.c.customer_id)
        .group_by(assigned.c.arm)
        .order_by(assigned.c.arm)
    )
    return [_arm(row._mapping) for row in session.execute(query)]


def _arm(row: Any) -> ArmStats:
    metrics = {name: Moments(float(row[name]), float(row[name])) for name in FLAGS}
    metrics[REVENUE] = Moments(
        float(row["revenue"]), float(row["revenue_sq"]), float(row["pre"]), float(row["pre_sq"]), float(row["cross"])
    )
    return ArmStats(str(row["arm"]), int(row["n"]), metrics)


def arm_counts_by_segment(session: Session, campaign_id: int) -> dict[tuple[str, str], int]:
    """Customers per (segment, arm): what the SRM check's expected split is built from."""
    query = (
        select(Assignment.segment, Assignment.arm, func.count())
        .where(Assignment.campaign_id == campaign_id)
        .group_by(Assignment.segment, Assignment.arm)
    )
    return {(str(segment), str(arm)): int(count) for segment, arm, count in session.execute(query)}


def daily_conversions(session: Session, campaign_id: int, windows: Windows) -> dict[str, list[int]]:
    """New converters per arm by day since assignment (day 0 = the first 24 hours), over the window."""
    assigned = _assigned(session, campaign_id, windows)
    post = (
        select(assigned.c.customer_id, assigned.c.arm, assigned.c.starts, func.min(Order.ordered_at).label("first"))
        .select_from(assigned)
        .join(
            Order,
            and_(
                Order.customer_id == assigned.c.customer_id,
                Order.ordered_at >= assigned.c.starts,
                Order.ordered_at < assigned.c.ends,
            ),
        )
        .group_by(assigned.c.customer_id, assigned.c.arm, assigned.c.starts)
        .subquery("first_orders")
    )
    day = _days_between(session, post.c.starts, post.c.first)
    query = select(post.c.arm, day.label("day"), func.count()).group_by(post.c.arm, day)
    days = max(1, -(-int(windows.attribution.total_seconds()) // 86_400))
    series: dict[str, list[int]] = {}
    for arm, index, count in session.execute(query):
        series.setdefault(str(arm), [0] * days)[min(int(index), days - 1)] += int(count)
    return series


def _days_between(session: Session, start: Any, end: Any) -> ColumnElement[int]:
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(end) - func.julianday(start), Integer)
    # A literal, not a parameter: PostgreSQL must see the same expression in SELECT and GROUP BY.
    return cast(func.floor(func.extract("epoch", end - start) / literal_column("86400")), Integer)
