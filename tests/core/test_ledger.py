"""The cost ledger books each source event once and answers what campaigns, days and months cost."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core import ledger
from core.db import Database
from core.errors import BadRequest, NotFound
from core.ledger import Cost
from core.models import (
    Campaign,
    CampaignKind,
    Channel,
    CostComponent,
    CostEntry,
    Customer,
    LlmCall,
    Message,
    MessageStatus,
    Offer,
    OfferKind,
    Order,
    Provider,
)
from core.settings import InfrastructureStage, Settings
from core.telemetry import MESSAGES

NOV_3 = datetime(2026, 11, 3, 10, tzinfo=UTC)
NOV_4 = datetime(2026, 11, 4, 10, tzinfo=UTC)


def _cost(source: str, amount: str, *, component: CostComponent = CostComponent.EMAIL, **fields: object) -> Cost:
    values: dict[str, object] = {"occurred_at": NOV_3, "campaign_key": "spring", **fields}
    return Cost(component=component, source=source, amount=Decimal(amount), **values)  # type: ignore[arg-type]


def _customers(session: object, count: int) -> list[int]:
    rows = [Customer(external_id=f"c-{n}") for n in range(count)]
    session.add_all(rows)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return [row.id for row in rows]


def test_a_source_event_is_booked_once_however_often_it_is_recorded(db: Database) -> None:
    with db.session() as session:
        assert ledger.record(session, _cost("message:1", "0.001")) is True
    with db.session() as session:
        assert ledger.record(session, _cost("message:1", "0.001")) is False
        booked = ledger.record_many(session, [_cost("message:1", "0.001"), _cost("message:2", "0.001")])

    with db.session() as session:
        rows = session.scalars(select(CostEntry.source).order_by(CostEntry.source)).all()
    assert booked == 1
    assert rows == ["message:1", "message:2"]


def test_a_negative_cost_is_refused_and_nothing_is_booked(db: Database) -> None:
    with db.session() as session, pytest.raises(BadRequest, match="cannot be negative"):
        ledger.record_many(session, [_cost("message:1", "0.001"), _cost("message:2", "-1")])

    with db.session() as session:
        assert session.scalar(select(func.count(CostEntry.id))) == 0


def test_campaign_costs_sum_each_component_and_count_customers_contacted(db: Database) -> None:
    with db.session() as session:
        session.add(
            Campaign(
                key="spring",
                name="Spring",
                kind=CampaignKind.RETENTION,
                channel=Channel.EMAIL,
                holdout_fraction=0.1,
                salt="s",
                plan={},
                created_by="t",
            )
        )
        ledger.record_many(
            session,
            [
                _cost("message:1", "0.001", customer_id=1),
                _cost("message:2", "0.001", customer_id=2),
                _cost("message:3", "0.0249", component=CostComponent.SMS, customer_id=2, quantity=3),
                _cost("llm_call:1", "0.0125", component=CostComponent.LLM, quantity=5000, item="gpt-4.1-mini"),
                _cost("offer:9:SAVE10", "10", component=CostComponent.OFFER, customer_id=1),
                _cost("message:4", "0.001", customer_id=3, campaign_key="other"),
            ],
        )
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.key == "spring"))

    with db.session() as session:
        by_key = ledger.campaign_costs(session, "spring")
        by_id = ledger.campaign_costs(session, campaign_id)

    assert by_key == by_id
    assert by_key.components == {
        CostComponent.LLM: Decimal("0.012500"),
        CostComponent.EMAIL: Decimal("0.002000"),
        CostComponent.SMS: Decimal("0.024900"),
        CostComponent.OFFER: Decimal("10.000000"),
        CostComponent.INFRASTRUCTURE: Decimal("0.000000"),
    }
    assert by_key.total == Decimal("10.039400")
    assert by_key.contacted == 2
    assert by_key.cost_per_contact == Decimal("5.019700")


def test_campaign_costs_of_an_unknown_id_is_not_found(db: Database) -> None:
    with db.session() as session, pytest.raises(NotFound):
        ledger.campaign_costs(session, 999)


def test_totals_by_component_day_and_month_over_a_period(db: Database) -> None:
    with db.session() as session:
        ledger.record_many(
            session,
            [
                _cost("message:1", "1.5"),
                _cost("message:2", "2", occurred_at=NOV_4),
                _cost("llm_call:1", "4", component=CostComponent.LLM, occurred_at=NOV_4),
                _cost("message:3", "8", occurred_at=datetime(2026, 12, 1, tzinfo=UTC)),
            ],
        )

    with db.session() as session:
        components = ledger.totals_by_component(session, date(2026, 11, 1), date(2026, 12, 1))
        days = ledger.totals_by_day(session, date(2026, 11, 1), date(2027, 1, 1))
        months = ledger.totals_by_month(session, date(2026, 11, 1), date(2027, 1, 1))

    assert components[CostComponent.EMAIL] == Decimal("3.5")
    assert components[CostComponent.LLM] == Decimal("4")
    assert days == {
        date(2026, 11, 3): {CostComponent.EMAIL: Decimal("1.5")},
        date(2026, 11, 4): {CostComponent.EMAIL: Decimal("2"), CostComponent.LLM: Decimal("4")},
        date(2026, 12, 1): {CostComponent.EMAIL: Decimal("8")},
    }
    assert months == {
        date(2026, 11, 1): {CostComponent.EMAIL: Decimal("3.5"), CostComponent.LLM: Decimal("4")},
        date(2026, 12, 1): {CostComponent.EMAIL: Decimal("8")},
    }


def test_cost_per_customer_contacted_includes_every_component(db: Database) -> None:
    with db.session() as session:
        ledger.record_many(
            session,
            [
                _cost("message:1", "1", customer_id=1),
                _cost("message:2", "1", customer_id=2),
                _cost("message:3", "1", customer_id=2),
                _cost("infrastructure:2026-11-03", "3", component=CostComponent.INFRASTRUCTURE, campaign_key=None),
            ],
        )

    with db.session() as session:
        assert ledger.cost_per_customer_contacted(session, date(2026, 11, 1), date(2026, 12, 1)) == Decimal("3")
        assert ledger.cost_per_customer_contacted(session, date(2026, 10, 1), date(2026, 11, 1)) is None


def test_an_infrastructure_day_is_the_stage_month_over_its_days_booked_once(db: Database) -> None:
    settings = Settings(
        infrastructure_stage=InfrastructureStage.MANAGED,
        infrastructure_monthly_usd={InfrastructureStage.MANAGED: Decimal("450")},
    )
    with db.session() as session:
        assert ledger.record_infrastructure(session, settings, date(2026, 11, 3)) is True
        assert ledger.record_infrastructure(session, settings, date(2026, 11, 3)) is False

    with db.session() as session:
        entry = session.scalars(select(CostEntry)).one()
    assert (entry.component, entry.item, entry.amount) == (CostComponent.INFRASTRUCTURE, "managed", Decimal("15"))


def test_infrastructure_share_of_revenue_from_contacted_customers(db: Database) -> None:
    settings = Settings(infrastructure_max_revenue_share=0.2)
    with db.session() as session:
        first, second, never = _customers(session, 3)
        ledger.record_many(
            session,
            [
                _cost("message:1", "0", customer_id=first),
                _cost("message:2", "0", customer_id=second, occurred_at=datetime(2026, 11, 1, tzinfo=UTC)),
                _cost("infrastructure:2026-11-03", "30", component=CostComponent.INFRASTRUCTURE, campaign_key=None),
            ],
        )
        session.add_all(
            [
                Order(customer_id=first, amount=Decimal("100"), currency="USD", ordered_at=NOV_4),  # 1 day after
                Order(
                    customer_id=first,
                    amount=Decimal("50"),
                    currency="USD",
                    ordered_at=datetime(2026, 11, 2, tzinfo=UTC),
                ),  # before
                Order(
                    customer_id=second,
                    amount=Decimal("70"),
                    currency="USD",
                    ordered_at=datetime(2026, 11, 20, tzinfo=UTC),
                ),  # too late
                Order(customer_id=never, amount=Decimal("999"), currency="USD", ordered_at=NOV_4),  # never contacted
            ]
        )

    with db.session() as session:
        share = ledger.infrastructure_share(session, settings, date(2026, 11, 1), date(2026, 12, 1))

    assert share.revenue == Decimal("100")
    assert share.infrastructure == Decimal("30")
    assert share.share == pytest.approx(0.3)
    assert share.over_limit is True


def test_llm_calls_that_reached_a_model_are_booked_with_their_tokens(db: Database) -> None:
    with db.session() as session:
        calls = [
            LlmCall(
                campaign_key="spring",
                purpose="draft",
                provider="openai",
                model="gpt-4.1-mini",
                prompt_tokens=1000,
                completion_tokens=200,
                cost=Decimal("0.00072"),
                cached=False,
                cache_key="a",
                latency_ms=5,
            ),
            LlmCall(
                campaign_key="spring",
                purpose="draft",
                provider="openai",
                model="gpt-4.1-mini",
                prompt_tokens=0,
                completion_tokens=0,
                cost=Decimal("0"),
                cached=True,
                cache_key="a",
                latency_ms=1,
            ),
        ]
        session.add_all(calls)
        session.flush()
        booked = [ledger.record_llm_call(session, call) for call in calls]

    with db.session() as session:
        entry = session.scalars(select(CostEntry)).one()
    assert booked == [True, False]
    assert (entry.component, entry.item, entry.quantity, entry.amount) == (
        CostComponent.LLM,
        "gpt-4.1-mini",
        1200,
        Decimal("0.00072"),
    )


def test_record_sends_books_sent_messages_and_counts_every_status(db: Database) -> None:
    settings = Settings(email_price_usd=Decimal("0.002"))
    sent_before = MESSAGES.labels("sms", "sent")._value.get()
    rejected_before = MESSAGES.labels("email", "rejected")._value.get()
    with db.session() as session:
        [customer] = _customers(session, 1)
        rows = [
            _message(customer, "a", Channel.EMAIL, MessageStatus.SENT),
            _message(customer, "b", Channel.SMS, MessageStatus.SENT, segments=2, cost=Decimal("0.0166")),
            _message(customer, "c", Channel.EMAIL, MessageStatus.REJECTED),
        ]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
        booked = ledger.record_sends(session, settings, ids)
        again = ledger.record_sends(session, settings, ids)

    with db.session() as session:
        entries = {row.component: (row.quantity, row.amount) for row in session.scalars(select(CostEntry))}
    assert (booked, again) == (2, 0)
    assert entries == {CostComponent.EMAIL: (1, Decimal("0.002")), CostComponent.SMS: (2, Decimal("0.0166"))}
    assert MESSAGES.labels("sms", "sent")._value.get() - sent_before == 2  # counted on both calls
    assert MESSAGES.labels("email", "rejected")._value.get() - rejected_before == 2


def test_an_offer_redemption_is_booked_at_the_offer_unit_cost(db: Database) -> None:
    with db.session() as session:
        session.add(
            Offer(
                code="SAVE10",
                name="Save",
                kind=OfferKind.AMOUNT_OFF,
                value=Decimal("10"),
                currency="USD",
                terms="t",
                valid_from=NOV_3,
                unit_cost=Decimal("7.5"),
            )
        )
        session.flush()
        assert ledger.record_offer_redemption(
            session, order_id=5, offer_code="SAVE10", customer_id=1, redeemed_at=NOV_4, campaign_key="spring"
        )
        assert not ledger.record_offer_redemption(
            session, order_id=5, offer_code="SAVE10", customer_id=1, redeemed_at=NOV_4, campaign_key="spring"
        )
        with pytest.raises(NotFound):
            ledger.record_offer_redemption(session, order_id=5, offer_code="NOPE", customer_id=1, redeemed_at=NOV_4)

    with db.session() as session:
        assert ledger.campaign_costs(session, "spring").components[CostComponent.OFFER] == Decimal("7.5")


def _message(customer: int, key: str, channel: Channel, status: MessageStatus, **fields: object) -> Message:
    return Message(
        message_key=key,
        idempotency_key=f"spring:{key}",
        campaign_key="spring",
        customer_id=customer,
        channel=channel,
        address="x",
        provider=Provider.OUTBOX,
        status=status,
        sent_at=NOV_3 if status is MessageStatus.SENT else None,
        **fields,
    )
