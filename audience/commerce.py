"""Carts and orders from Segment's e-commerce events, in the intake's own transaction.

A shop that already speaks the Segment e-commerce spec (v2) needs nothing more for abandoned-cart triggers:

- ``Product Added`` / ``Product Removed`` (``cart_id``, ``product_id`` or ``sku``, ``name``, ``price``,
  ``quantity``) add to or take from the cart ``cart_id`` names; ``Cart Viewed`` with ``products`` replaces its
  items with that snapshot. The cart is (re)opened and ``cart_updated_at`` moves to the event's time.
- ``Order Completed`` (``order_id``, ``total`` or ``revenue``, ``currency``, ``products``, optionally
  ``cart_id`` and ``coupon``) stores an ``Order`` once per ``order_id`` and converts the cart it names, or else
  the customer's open carts last changed before it; a ``coupon`` is reported for the cost ledger.

Only events of identified customers (a ``userId``) count: an anonymous cart has nobody to remind. Events are
applied in time order; a replayed event is never stored twice by the intake, so it is never applied twice.
A cart event older than the cart's last change is ignored (events may arrive out of order; the newest state
wins). Amounts are in the event's ``currency`` (default USD).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import as_utc
from core.models import Cart, CartStatus, Order

PRODUCT_ADDED = "Product Added"
PRODUCT_REMOVED = "Product Removed"
CART_VIEWED = "Cart Viewed"
ORDER_COMPLETED = "Order Completed"
COMMERCE_EVENTS = frozenset({PRODUCT_ADDED, PRODUCT_REMOVED, CART_VIEWED, ORDER_COMPLETED})
DEFAULT_CURRENCY = "USD"
_ITEM_FIELDS = ("product_id", "sku", "name", "category", "price", "quantity", "url")


@dataclass(frozen=True, slots=True)
class CommerceEvent:
    """One stored e-commerce track call: who, what, when."""

    customer_id: int
    name: str
    properties: Mapping[str, Any]
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Redemption:
    """A new order that used a code (Segment's order-level ``coupon``): the campaigns book the offer's cost."""

    order_id: int
    code: str
    customer_id: int
    at: datetime


@dataclass
class CommerceChanges:
    """What the events changed: carts touched (still open), customers who placed an order (with when), and the
    codes new orders used."""

    carts: list[int] = field(default_factory=list)
    orders: dict[int, datetime] = field(default_factory=dict)
    redemptions: list[Redemption] = field(default_factory=list)


def apply(session: Session, events: Iterable[CommerceEvent]) -> CommerceChanges:
    """Apply the events to carts and orders (not committed); what changed, for the triggers."""
    changes = CommerceChanges()
    touched: dict[int, Cart] = {}
    for event in sorted(events, key=lambda event: event.occurred_at):
        if event.name == ORDER_COMPLETED:
            if (order := _order(session, event)) is not None:
                changes.orders[event.customer_id] = event.occurred_at  # events are in time order: the latest
                if (code := _text(event.properties.get("coupon"))) is not None:
                    changes.redemptions.append(Redemption(order.id, code.upper(), event.customer_id, order.ordered_at))
            for converted in _converted(session, event):
                touched.pop(converted.id, None)
        elif (cart := _cart_event(session, event)) is not None:
            touched[cart.id] = cart
    session.flush()
    changes.carts = sorted(cart_id for cart_id, cart in touched.items() if cart.status is CartStatus.OPEN)
    return changes


def _cart_event(session: Session, event: CommerceEvent) -> Cart | None:
    external_id = _text(event.properties.get("cart_id"))
    if external_id is None:
        return None
    cart = session.scalars(select(Cart).where(Cart.external_id == external_id)).first()
    if cart is None:
        cart = Cart(
            external_id=external_id,
            customer_id=event.customer_id,
            items=[],
            value=Decimal(0),
            currency=_currency(event.properties),
            cart_updated_at=event.occurred_at,
        )
        session.add(cart)
    elif cart.customer_id != event.customer_id or as_utc(cart.cart_updated_at) > as_utc(event.occurred_at):
        return None  # another customer's cart id, or an older event than the cart's state: not applied
    cart.items = _items_after(cart.items, event)
    cart.value = sum((_price(item) * _quantity(item) for item in cart.items), Decimal(0))
    cart.status, cart.cart_updated_at = CartStatus.OPEN, event.occurred_at
    session.flush()
    return cart


def _items_after(items: Sequence[Mapping[str, Any]], event: CommerceEvent) -> list[dict[str, Any]]:
    """The cart's items once ``event`` is applied, one entry per product with its quantity."""
    if event.name == CART_VIEWED:
        return [_item(product) for product in _products(event.properties)]
    current = {_product_key(item): dict(item) for item in items}
    product = _item(event.properties)
    key = _product_key(product)
    held = _quantity(current[key]) if key in current else 0
    change = _quantity(product) if event.name == PRODUCT_ADDED else -_quantity(product)
    if held + change > 0:
        current[key] = {**current.get(key, {}), **product, "quantity": held + change}
    else:
        current.pop(key, None)
    return list(current.values())


def _order(session: Session, event: CommerceEvent) -> Order | None:
    """Store the order once per ``order_id``; the new order, or ``None`` when it was stored before."""
    external_id = _text(event.properties.get("order_id"))
    if external_id is not None and session.scalars(select(Order.id).where(Order.external_id == external_id)).first():
        return None
    products = _products(event.properties)
    amount = _decimal(event.properties.get("total", event.properties.get("revenue")))
    if amount is None:
        amount = sum((_price(item) * _quantity(item) for item in products), Decimal(0))
    order = Order(
        external_id=external_id,
        customer_id=event.customer_id,
        amount=amount,
        currency=_currency(event.properties),
        quantity=sum(_quantity(item) for item in products) or 1,
        ordered_at=event.occurred_at,
    )
    session.add(order)
    session.flush()
    return order


def _converted(session: Session, event: CommerceEvent) -> list[Cart]:
    """The carts the order came from: the one it names, or the customer's open carts changed before it."""
    query = select(Cart).where(Cart.customer_id == event.customer_id, Cart.status == CartStatus.OPEN)
    if (external_id := _text(event.properties.get("cart_id"))) is not None:
        query = query.where(Cart.external_id == external_id)
    carts = [cart for cart in session.scalars(query) if as_utc(cart.cart_updated_at) <= as_utc(event.occurred_at)]
    for cart in carts:
        cart.status = CartStatus.CONVERTED
    return carts


def _products(properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    products = properties.get("products")
    return [_item(product) for product in products if isinstance(product, dict)] if isinstance(products, list) else []


def _item(properties: Mapping[str, Any]) -> dict[str, Any]:
    item = {name: properties[name] for name in _ITEM_FIELDS if properties.get(name) is not None}
    item["quantity"] = _quantity(properties)
    return item


def _product_key(item: Mapping[str, Any]) -> str:
    return str(item.get("product_id") or item.get("sku") or item.get("name") or "")


def _quantity(item: Mapping[str, Any]) -> int:
    try:
        return max(int(item.get("quantity", 1)), 0)
    except (TypeError, ValueError):
        return 1


def _price(item: Mapping[str, Any]) -> Decimal:
    return _decimal(item.get("price")) or Decimal(0)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _currency(properties: Mapping[str, Any]) -> str:
    currency = _text(properties.get("currency"))
    return currency.upper() if currency is not None and len(currency) == 3 and currency.isalpha() else DEFAULT_CURRENCY


def _text(value: Any) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()[:128]
    return None
