"""The SQL aggregation gives exactly the expected per-arm sufficient statistics: window edges to the microsecond,
customers with no outcome counted as zeros (intention to treat), guardrails measured alike in every arm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest
from sqlalchemy.orm import Session

from core.db import Database
from core.models import (
    Assignment,
    Campaign,
    Channel,
    Consent,
    ConsentStatus,
    Customer,
    Message,
    Order,
    Outcome,
    OutcomeKind,
    Provider,
    ProviderEvent,
)
from experiments.analysis import Moments
from experiments.outcomes import Windows, arm_counts_by_segment, arm_statistics, daily_conversions
from tests.support.experiments import sent_campaign

START = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
LATER = START + timedelta(hours=5, microseconds=250)  # a second assignment time: windows are per customer
WINDOWS = Windows(attribution=timedelta(days=14), pre_period=timedelta(days=90))
TICK = timedelta(microseconds=1)
_ids = count(1)


def customer(session: Session, name: str) -> int:
    row = Customer(external_id=name, email=f"{name}@example.com")
    session.add(row)
    session.flush()
    return row.id


def assign(session: Session, owner: Campaign, customer_id: int, arm: str, at: datetime = START) -> None:
    session.add(
        Assignment(campaign_id=owner.id, customer_id=customer_id, segment="s1", arm=arm, bucket=1, assigned_at=at)
    )


def order(session: Session, customer_id: int, amount: str, at: datetime) -> None:
    session.add(Order(customer_id=customer_id, amount=Decimal(amount), currency="USD", ordered_at=at))


def message(session: Session, campaign_key: str, customer_id: int, *kinds: tuple[OutcomeKind, datetime]) -> None:
    number = next(_ids)
    row = Message(
        message_key=f"m{number}",
        idempotency_key=f"{campaign_key}:{customer_id}:{number}",
        campaign_key=campaign_key,
        customer_id=customer_id,
        channel=Channel.EMAIL,
        address="x@example.com",
        provider=Provider.OUTBOX,
    )
    session.add(row)
    session.flush()
    for kind, at in kinds:
        event = ProviderEvent(
            provider=Provider.SENDGRID,
            event_id=f"e{next(_ids)}",
            fallback_key=f"f{next(_ids)}",
            kind=kind.value,
            payload={},
        )
        session.add(event)
        session.flush()
        session.add(Outcome(message_id=row.id, event_id=event.id, kind=kind, occurred_at=at))


def withdraw(session: Session, customer_id: int, channel: Channel, at: datetime) -> None:
    session.add(
        Consent(customer_id=customer_id, channel=channel, status=ConsentStatus.WITHDRAWN, source="t", recorded_at=at)
    )


@pytest.fixture
def built(db: Database) -> int:
    """Six customers in three arms of "winter", with orders, messages, outcomes and consents at the edges."""
    with db.session() as session:
        winter, other = sent_campaign(session, "winter"), sent_campaign(session, "spring")
        c1, c2, c3, c4, c5, c6 = (customer(session, f"c{i}") for i in range(1, 7))
        for customer_id, arm in ((c1, "v1"), (c2, "v1"), (c4, "holdout"), (c5, "v2"), (c6, "v1")):
            assign(session, winter, customer_id, arm)
        assign(session, winter, c3, "holdout", LATER)
        assign(session, other, c2, "v1")  # another campaign's assignment changes nothing here
        # c1: two orders in the window (its first instant and its last microsecond), one at its end (out);
        # pre-period: one just before assignment and one at its very start, one a microsecond before (out).
        order(session, c1, "10.00", START)
        order(session, c1, "20.50", START + WINDOWS.attribution - TICK)
        order(session, c1, "100.00", START + WINDOWS.attribution)
        order(session, c1, "4.00", START - TICK)
        order(session, c1, "8.00", START - WINDOWS.pre_period)
        order(session, c1, "50.00", START - WINDOWS.pre_period - TICK)
        # c2: nothing at all — counts with zeros.
        # c3 (held out, assigned later): an order and an e-mail unsubscribe in its own window.
        order(session, c3, "25.50", LATER + timedelta(days=3))
        order(session, c3, "9.00", START + timedelta(hours=1))  # in c1's window, before c3's assignment: pre-period
        withdraw(session, c3, Channel.EMAIL, LATER + timedelta(days=1))
        # c4 (held out): a spam report on another campaign's message in the window; STOP after the window.
        message(session, "spring", c4, (OutcomeKind.SPAM_REPORT, START + timedelta(days=2)))
        withdraw(session, c4, Channel.SMS, START + WINDOWS.attribution)
        # c5: this campaign's message delivered, opened twice and clicked; one order a day and a half later.
        message(
            session,
            "winter",
            c5,
            (OutcomeKind.DELIVERED, START),
            (OutcomeKind.OPEN, START + timedelta(hours=1)),
            (OutcomeKind.OPEN, START + timedelta(hours=2)),
            (OutcomeKind.CLICK, START + timedelta(hours=2)),
        )
        order(session, c5, "7.25", START + timedelta(days=1, hours=12))
        # c6: opened this campaign's message, texted STOP inside the window.
        message(session, "winter", c6, (OutcomeKind.OPEN, START + timedelta(minutes=5)))
        withdraw(session, c6, Channel.SMS, START + WINDOWS.attribution - TICK)
        return winter.id


def test_each_arm_gets_exactly_the_expected_sufficient_statistics(db: Database, built: int) -> None:
    with db.session() as session:
        arms = {arm.arm: arm for arm in arm_statistics(session, built, WINDOWS)}

    assert {name: arm.n for name, arm in arms.items()} == {"holdout": 2, "v1": 3, "v2": 1}
    v1, holdout, v2 = arms["v1"].metrics, arms["holdout"].metrics, arms["v2"].metrics
    assert v1["revenue"] == Moments(30.5, 30.5**2, 12.0, 12.0**2, 30.5 * 12.0)
    assert holdout["revenue"] == Moments(25.5, 25.5**2, 9.0, 81.0, 25.5 * 9.0)
    assert v2["revenue"] == Moments(7.25, 7.25**2, 0.0, 0.0, 0.0)
    flags = ("conversion", "unsubscribe", "spam_complaint", "sms_opt_out", "open", "click")
    assert [v1[name].total for name in flags] == [1, 0, 0, 1, 1, 0]
    assert [holdout[name].total for name in flags] == [1, 1, 1, 0, 0, 0]
    assert [v2[name].total for name in flags] == [1, 0, 0, 0, 1, 1]
    assert all(
        moments.total_sq == moments.total
        for arm in arms.values()
        for name, moments in arm.metrics.items()
        if name in flags
    )


def test_new_converters_are_counted_by_day_since_each_customers_assignment(db: Database, built: int) -> None:
    with db.session() as session:
        series = daily_conversions(session, built, WINDOWS)

    assert series == {
        "v1": [1] + [0] * 13,
        "holdout": [0, 0, 0, 1] + [0] * 10,
        "v2": [0, 1] + [0] * 12,
    }


def test_assignment_counts_are_given_per_segment_and_arm(db: Database, built: int) -> None:
    with db.session() as session:
        counts = arm_counts_by_segment(session, built)

    assert counts == {("s1", "v1"): 3, ("s1", "holdout"): 2, ("s1", "v2"): 1}
