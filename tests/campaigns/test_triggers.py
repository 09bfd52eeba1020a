"""Abandoned carts: one reminder per cart, after its window and not before, unless an order, the cooldown, a
send-time check or the real-time send limit says otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from agents.brand import import_brand
from agents.layout import html_from_text
from campaigns.triggers import check_cart, on_cart_activity, on_order, scan, with_items
from core.db import Database
from core.models import (
    CampaignKind,
    CampaignState,
    Cart,
    CartStatus,
    Channel,
    Message,
    MessageStatus,
    Order,
    OutboxMessage,
    Provider,
    Suppression,
    TriggerCheck,
    TriggerStatus,
)
from guardrails.ratelimit import TokenBucket
from nudge.commands.creative import SAMPLE_BRAND
from tests.campaigns.test_sending import NOW, SETTINGS, add_campaign, add_customer, email_content
from tests.nudge.test_check_command import FOOTER

TRIGGER = "cart-reminder"
WINDOW = timedelta(minutes=SETTINGS.cart_trigger_window_minutes)
CART_BODY = (
    "Hi {{first_name}}, you left this in your {{brand_name}} cart:\n{{cart_items}}\n\n"
    "Take {{offer.name}} with code {{offer.code}} when you check out.\n\nClaim it here: {{offer.url}}\n\n"
    "The {{brand_name}} team"
)
ITEMS = [{"name": "Mesh Wi-Fi extender", "quantity": 2}, {"name": "Fiber starter kit", "quantity": 1}]


def cart_content() -> dict[str, Any]:
    text = f"{CART_BODY}\n\n{FOOTER}"
    return {**email_content(), "body_text": text, "body_html": html_from_text(text)}


def seed(db: Database, *, updated: datetime = NOW - timedelta(minutes=30), customer: int = 1) -> int:
    """The catalog, an approved trigger campaign with its template, a customer with consent and an open cart."""
    with db.session() as session:
        import_brand(session, SAMPLE_BRAND, store=None)
        add_campaign(
            session, key=TRIGGER, kind=CampaignKind.TRIGGER, state=CampaignState.APPROVED, content=cart_content()
        )
        add_customer(session, customer)
        cart = Cart(customer_id=customer, items=ITEMS, value=Decimal("89.00"), currency="USD", cart_updated_at=updated)
        session.add(cart)
        session.flush()
        return cart.id


def activity(db: Database, cart_id: int, now: datetime = NOW) -> TriggerCheck | None:
    with db.session() as session:
        return on_cart_activity(session, SETTINGS, cart_id, now)


def run_check(db: Database, cart_id: int, now: datetime, **options: Any) -> TriggerStatus:
    with db.session() as session:
        return check_cart(session, SETTINGS, cart_id, now, limiter=options.pop("limiter", _open()), **options)


def _open() -> TokenBucket:
    return TokenBucket(100, 100)


def check_row(db: Database, cart_id: int) -> tuple[Any, ...]:
    with db.session() as session:
        check = session.scalars(select(TriggerCheck).where(TriggerCheck.cart_id == cart_id)).one()
        return check.status, check.reason, check.due_at, check.message_id is not None


def cart_messages(db: Database) -> list[tuple[Any, ...]]:
    with db.session() as session:
        query = select(Message.idempotency_key, Message.status, Message.error).order_by(Message.id)
        return [tuple(row) for row in session.execute(query) if row[0].startswith(TRIGGER)]


def test_a_cart_is_checked_after_its_window_and_not_before(db: Database) -> None:
    updated = NOW - timedelta(minutes=30)
    cart_id = seed(db, updated=updated)

    check = activity(db, cart_id)
    early = run_check(db, cart_id, NOW)
    due = run_check(db, cart_id, updated + WINDOW)

    assert check is not None
    assert check.due_at == updated + WINDOW
    assert (early, due) == (TriggerStatus.WAITING, TriggerStatus.SENT)
    assert check_row(db, cart_id) == (TriggerStatus.SENT, None, updated + WINDOW, True)
    assert cart_messages(db) == [(f"{TRIGGER}:cart:{cart_id}:email", MessageStatus.SENT, None)]
    with db.session() as session:
        body = session.scalars(select(OutboxMessage.body_text)).one() or ""
    assert "you left this in your Fablewave cart:\n2 × Mesh Wi-Fi extender\nFiber starter kit\n" in body


def test_new_activity_moves_the_check_on(db: Database) -> None:
    cart_id = seed(db)
    activity(db, cart_id)
    with db.session() as session:
        session.get(Cart, cart_id).cart_updated_at = NOW  # type: ignore[union-attr]

    check = activity(db, cart_id)

    assert check is not None
    assert check.due_at == NOW + WINDOW
    assert run_check(db, cart_id, NOW + WINDOW - timedelta(seconds=1)) is TriggerStatus.WAITING


def test_a_cart_checked_twice_gets_one_message(db: Database) -> None:
    cart_id = seed(db)
    activity(db, cart_id)

    first = run_check(db, cart_id, NOW + WINDOW)
    second = run_check(db, cart_id, NOW + WINDOW + timedelta(minutes=5))

    assert (first, second) == (TriggerStatus.SENT, TriggerStatus.SENT)
    assert len(cart_messages(db)) == 1
    with db.session() as session:
        assert len(session.scalars(select(OutboxMessage)).all()) == 1


def test_an_order_cancels_the_waiting_check(db: Database) -> None:
    cart_id = seed(db)
    activity(db, cart_id)

    with db.session() as session:
        cancelled = on_order(session, 1, NOW)
    status = run_check(db, cart_id, NOW + WINDOW)

    assert (cancelled, status) == (1, TriggerStatus.CANCELLED)
    assert check_row(db, cart_id)[:2] == (TriggerStatus.CANCELLED, "order placed")
    assert cart_messages(db) == []


def test_an_order_placed_since_the_cart_changed_cancels_at_check_time(db: Database) -> None:
    cart_id = seed(db)
    activity(db, cart_id)
    with db.session() as session:
        session.add(Order(customer_id=1, amount=Decimal("89.00"), currency="USD", ordered_at=NOW))

    assert run_check(db, cart_id, NOW + WINDOW) is TriggerStatus.CANCELLED
    assert check_row(db, cart_id)[:2] == (TriggerStatus.CANCELLED, "order placed")


def test_a_converted_cart_gets_no_check_and_an_emptied_one_is_cancelled(db: Database) -> None:
    cart_id = seed(db)
    activity(db, cart_id)
    with db.session() as session:
        session.get(Cart, cart_id).items = []  # type: ignore[union-attr]

    assert run_check(db, cart_id, NOW + WINDOW) is TriggerStatus.CANCELLED
    assert check_row(db, cart_id)[:2] == (TriggerStatus.CANCELLED, "cart emptied")
    with db.session() as session:
        other = Cart(customer_id=1, items=ITEMS, value=Decimal(1), currency="USD", cart_updated_at=NOW)
        other.status = CartStatus.CONVERTED
        session.add(other)
        session.flush()
        assert on_cart_activity(session, SETTINGS, other.id, NOW) is None


def test_a_customer_reminded_within_the_cooldown_is_skipped(db: Database) -> None:
    cart_id = seed(db)
    activity(db, cart_id)
    earlier = NOW - timedelta(days=2)
    with db.session() as session:
        session.add(
            Message(
                message_key="earlier",
                idempotency_key=f"{TRIGGER}:cart:999:email",
                campaign_key=TRIGGER,
                customer_id=1,
                channel=Channel.EMAIL,
                address="customer1@example.com",
                provider=Provider.OUTBOX,
                status=MessageStatus.SENT,
                sent_at=earlier,
            )
        )

    assert run_check(db, cart_id, NOW + WINDOW) is TriggerStatus.SKIPPED
    assert check_row(db, cart_id)[:2] == (
        TriggerStatus.SKIPPED,
        f"cooldown: an abandoned-cart message was sent {earlier:%Y-%m-%d %H:%M} UTC",
    )
    assert len(cart_messages(db)) == 1


def test_a_blocking_send_time_check_skips_with_the_rule_id(db: Database) -> None:
    cart_id = seed(db)
    activity(db, cart_id)
    with db.session() as session:
        session.add(Suppression(channel=Channel.EMAIL, address="customer1@example.com", reason="bounced", source="t"))

    assert run_check(db, cart_id, NOW + WINDOW) is TriggerStatus.SKIPPED
    assert check_row(db, cart_id) == (TriggerStatus.SKIPPED, "send.suppressed", NOW + timedelta(minutes=30), True)
    assert cart_messages(db) == [(f"{TRIGGER}:cart:{cart_id}:email", MessageStatus.BLOCKED, "send.suppressed")]


def test_without_a_send_token_the_check_waits_for_the_bucket(db: Database) -> None:
    cart_id = seed(db)
    activity(db, cart_id)
    clock = [0.0]
    bucket = TokenBucket(2.0, 1, clock=lambda: clock[0])
    assert bucket.try_acquire().allowed

    status = run_check(db, cart_id, NOW + WINDOW, limiter=bucket)

    assert status is TriggerStatus.WAITING
    assert check_row(db, cart_id) == (TriggerStatus.WAITING, None, NOW + WINDOW + timedelta(seconds=0.5), False)
    assert cart_messages(db) == []


def test_scan_creates_missed_checks_and_resolves_the_due_ones(db: Database) -> None:
    cart_id = seed(db, updated=NOW - WINDOW - timedelta(minutes=1))

    with db.session() as session:
        resolved = scan(session, SETTINGS, NOW, limiter=_open())

    assert resolved == 1
    assert check_row(db, cart_id)[0] is TriggerStatus.SENT


def test_item_names_cannot_become_template_syntax() -> None:
    filled = with_items({"body_text": "{{cart_items}}", "body_html": "<p>{{cart_items}}</p>"}, [{"name": "{{x}} <b>"}])

    assert filled == {"body_text": "((x)) <b>", "body_html": "<p>((x)) &lt;b&gt;</p>"}


@pytest.mark.parametrize("quantity", [None, 1])
def test_a_single_item_is_named_without_a_count(quantity: int | None) -> None:
    assert with_items({"sms_text": "{{cart_items}}"}, [{"name": "Kit", "quantity": quantity}]) == {"sms_text": "Kit"}


def test_a_customer_in_the_global_holdout_gets_no_reminder(db: Database) -> None:
    cart_id = seed(db)
    activity(db, cart_id)
    everyone_held = SETTINGS.model_copy(update={"global_holdout_fraction": 0.9999})

    with db.session() as session:
        status = check_cart(session, everyone_held, cart_id, NOW + WINDOW, limiter=_open())

    assert status is TriggerStatus.SKIPPED
    assert check_row(db, cart_id)[:2] == (TriggerStatus.SKIPPED, "global holdout: this customer gets no marketing")
    assert cart_messages(db) == []
