"""Segment e-commerce events become carts and orders in the intake's transaction, and drive the cart trigger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.brand import import_brand
from audience.intake import ingest
from audience.schemas import Track
from campaigns.outcomes import ingest_events
from core.db import Database
from core.models import (
    CampaignKind,
    CampaignState,
    Cart,
    CartStatus,
    CostComponent,
    CostEntry,
    Offer,
    Order,
    TriggerCheck,
    TriggerStatus,
)
from core.settings import Settings
from nudge.commands.creative import SAMPLE_BRAND
from tests.campaigns.test_sending import KEY, NOW, SETTINGS, add_campaign, seed, send
from tests.campaigns.test_triggers import cart_content
from tests.support.intake import basic_auth, new_write_key
from web.app import create_app

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def track(n: int, event: str, at: datetime, user: str | None = "u1", **properties: Any) -> Track:
    call = {"messageId": f"m{n}", "event": event, "timestamp": at.isoformat(), "properties": properties}
    return Track.model_validate({**call, "userId": user} if user else {**call, "anonymousId": "anon"})


def added(n: int, at: datetime, product: str = "p1", price: float = 10.0, quantity: int = 1) -> Track:
    name = {"p1": "Mesh Wi-Fi extender", "p2": "Fiber starter kit"}.get(product, product)
    return track(n, "Product Added", at, cart_id="c1", product_id=product, name=name, price=price, quantity=quantity)


def run(db: Database, *calls: Track) -> None:
    with db.session() as session:
        ingest(session, list(calls), source_id=None, received_at=T0 + timedelta(hours=1))


def carts(db: Database) -> list[tuple[Any, ...]]:
    with db.session() as session:
        query = select(Cart.external_id, Cart.status, Cart.value, Cart.items, Cart.cart_updated_at)
        return [tuple(row) for row in session.execute(query.order_by(Cart.id))]


def test_added_and_removed_products_make_the_cart_with_its_value(db: Database) -> None:
    run(
        db,
        added(1, T0, "p1", 10.0),
        added(2, T0 + timedelta(minutes=1), "p2", 25.5, quantity=2),
        added(3, T0 + timedelta(minutes=2), "p1", 10.0),
        track(4, "Product Removed", T0 + timedelta(minutes=3), cart_id="c1", product_id="p2", quantity=1),
    )

    [(external_id, status, value, items, updated)] = carts(db)
    assert (external_id, status, value) == ("c1", CartStatus.OPEN, Decimal("45.50"))
    assert [(item["product_id"], item["quantity"]) for item in items] == [("p1", 2), ("p2", 1)]
    assert updated == T0 + timedelta(minutes=3)


def test_a_cart_viewed_snapshot_replaces_the_items_and_an_older_event_changes_nothing(db: Database) -> None:
    run(db, added(1, T0 + timedelta(minutes=5)))
    snapshot = [{"product_id": "p9", "name": "Router", "price": 99, "quantity": 1}]
    run(db, track(2, "Cart Viewed", T0 + timedelta(minutes=6), cart_id="c1", products=snapshot))
    run(db, added(3, T0, "p1"))  # arrived late: older than the cart's state

    [(_, _, value, items, _)] = carts(db)
    assert (value, [item["product_id"] for item in items]) == (Decimal(99), ["p9"])


def test_an_order_is_stored_once_and_converts_the_cart_it_names(db: Database) -> None:
    order = {"order_id": "o1", "cart_id": "c1", "total": 45.5, "currency": "eur", "products": [{"quantity": 3}]}
    run(db, added(1, T0), track(2, "Order Completed", T0 + timedelta(minutes=10), **order))
    run(db, track(3, "Order Completed", T0 + timedelta(minutes=11), **order))  # the same order, another message

    with db.session() as session:
        rows = session.execute(select(Order.external_id, Order.amount, Order.currency, Order.quantity)).all()
    assert [tuple(row) for row in rows] == [("o1", Decimal("45.5"), "EUR", 3)]
    assert [row[1] for row in carts(db)] == [CartStatus.CONVERTED]


def test_anonymous_events_and_events_without_a_cart_id_make_no_cart(db: Database) -> None:
    run(db, track(1, "Product Added", T0, user=None, cart_id="c1", product_id="p1"), track(2, "Product Added", T0))

    assert carts(db) == []


# --- through the API, with an approved abandoned-cart campaign --------------------------------------------------


def approved_trigger(session: Session) -> None:
    import_brand(session, SAMPLE_BRAND, store=None)
    add_campaign(session, key="cart", kind=CampaignKind.TRIGGER, state=CampaignState.APPROVED, content=cart_content())


def test_a_product_added_over_the_api_schedules_the_check_and_an_order_cancels_it(db: Database) -> None:
    with db.session() as session:
        approved_trigger(session)
    scheduled: list[tuple[int, datetime]] = []
    app = create_app(Settings(), database=db, schedule_cart_check=lambda _, cart, due: scheduled.append((cart, due)))
    auth = basic_auth(new_write_key(db))
    added_at = datetime.now(UTC).replace(microsecond=0)
    event = {"type": "track", "userId": "u1", "messageId": "a1", "timestamp": added_at.isoformat()}
    properties = {"cart_id": "c1", "product_id": "p1", "name": "Mesh Wi-Fi extender", "price": 89, "quantity": 1}

    with TestClient(app) as client:
        response = client.post(
            "/v1/track", json={**event, "event": "Product Added", "properties": properties}, headers=auth
        )
        assert response.status_code == 200
        with db.session() as session:
            check = session.scalars(select(TriggerCheck)).one()
            assert (check.status, check.due_at) == (TriggerStatus.WAITING, added_at + timedelta(minutes=60))
        assert scheduled == [(check.cart_id, added_at + timedelta(minutes=60))]

        order = {**event, "messageId": "o1", "event": "Order Completed", "properties": {"order_id": "o1", "total": 89}}
        assert client.post("/v1/track", json=order, headers=auth).status_code == 200

    with db.session() as session:
        assert session.scalars(select(TriggerCheck.status)).one() is TriggerStatus.CANCELLED
    assert len(scheduled) == 1


# --- offers redeemed: the cost ledger -----------------------------------------------------------------------------


def test_an_order_with_a_catalog_code_books_the_offer_to_the_campaign_that_offered_it_once(db: Database) -> None:
    campaign_id = seed(db, (1,))
    send(db, campaign_id, [1])  # customer c1 gets the campaign's LOYAL20 e-mail at NOW
    order = {"order_id": "o9", "total": 40, "coupon": "loyal20"}
    calls = [track(1, "Order Completed", NOW + timedelta(days=2), user="c1", **order)]
    unknown = [track(2, "Order Completed", NOW + timedelta(days=2), user="c1", order_id="o10", coupon="NOTOURS")]

    for batch in (calls, calls, unknown):  # the replay and a code the catalog does not hold book nothing
        with db.session() as session:
            ingest_events(session, SETTINGS, batch, source_id=None, now=NOW + timedelta(days=2))

    with db.session() as session:
        rows = session.execute(select(CostEntry.component, CostEntry.campaign_key, CostEntry.item, CostEntry.amount))
        offer_cost = session.scalar(select(Offer.unit_cost).where(Offer.code == "LOYAL20"))
        booked = [tuple(row) for row in rows if row[0] is CostComponent.OFFER]
    assert booked == [(CostComponent.OFFER, KEY, "LOYAL20", offer_cost)]
