"""Abandoned carts: a cart left alone for ``cart_trigger_window_minutes`` gets one reminder, unless it should not.

Each cart has at most one ``TriggerCheck`` (unique by cart), so at most one message: its idempotency key is
``<campaign>:cart:<cart id>:<channel>``. The flow, for the workers (each call one session; the task commits):

- ``on_cart_activity``: a cart changed; its check is created, or its ``due_at`` moved on to the end of the
  new window. Only while a trigger campaign is approved (its template is the pre-approved variant).
- ``check_cart``: at ``due_at``, the cart is checked in this order — cancelled if it was converted, emptied,
  or an order was placed since it was last changed; skipped if the customer is in the global holdout, or had
  an abandoned-cart message within ``cart_trigger_cooldown_days``; then the send-time checks and the
  guardrail re-check (skipped with the rule id on a block; kept waiting until the allowed instant on a
  deferral); then the real-time send limit (kept waiting for ``retry_after`` without a token); then one
  message through the campaign send path (``campaigns.sending``: the same checks, write-ahead commit and
  receipts).
- ``on_order``: an order cancels the customer's waiting checks at once;
- ``on_commerce``: both, for what new Segment e-commerce events changed (``audience.commerce``;
  ``campaigns.outcomes.ingest_events`` stores the calls and applies them in one unit of work). The API then
  enqueues ``check_cart`` for each waiting check at its ``due_at``, so the reminder goes out on time,
  not at the next scan.
- ``scan``: the beat backstop — checks for carts whose activity was missed, and every due check run.

The template places the cart's items with the ``{{cart_items}}`` slot (the brand's layout adds it to every
cart-recovery e-mail, ``agents.layout``). It is filled here, as plain text (HTML-escaped in the HTML body),
before the template is compiled; the rendered message is re-checked like any other, item names included.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audience.commerce import CommerceChanges
from campaigns.sending import (
    BatchResult,
    SendKit,
    SendPlan,
    Template,
    compile_variant,
    existing_messages,
    hand_over,
    is_marked_for_retry,
    prepare,
    raise_for_retry,
    write_ahead,
)
from channels.factory import email_sender as configured_email_sender
from channels.factory import sms_sender as configured_sms_sender
from channels.ports import EmailSender, SmsSender
from core.bulk import insert_for
from core.errors import NotFound, ServiceUnavailable
from core.models import (
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignVariant,
    Cart,
    CartStatus,
    Channel,
    ConsentPurpose,
    Message,
    MessageStatus,
    Order,
    TriggerCheck,
    TriggerStatus,
)
from core.settings import Settings
from experiments.assignment import in_global_holdout
from guardrails.ratelimit import SendRateLimiter, send_rate_limiter

logger = logging.getLogger(__name__)

ITEMS_SLOT = "{{cart_items}}"
ORDER_PLACED = "order placed"
CART_CONVERTED = "cart converted"
CART_EMPTY = "cart emptied"
GLOBAL_HOLDOUT_REASON = "global holdout: this customer gets no marketing"
_REASON_MAX = 200  # TriggerCheck.reason
_COPY_FIELDS = ("subject", "preheader", "body_text", "body_html", "sms_text")
_LIMITERS: dict[float, SendRateLimiter] = {}


def cart_idempotency_key(campaign_key: str, cart_id: int, channel: Channel) -> str:
    """One message per cart (and trigger campaign and channel)."""
    return f"{campaign_key}:cart:{cart_id}:{channel.value}"


def active_trigger_campaign(session: Session) -> Campaign | None:
    """The approved trigger campaign (the newest, should there be more than one), or ``None``."""
    query = select(Campaign).where(Campaign.kind == CampaignKind.TRIGGER, Campaign.state == CampaignState.APPROVED)
    return session.scalars(query.order_by(Campaign.id.desc()).limit(1)).first()


def on_cart_activity(session: Session, settings: Settings, cart_id: int, now: datetime) -> TriggerCheck | None:
    """Create the cart's check, or move its ``due_at`` on to the end of the new window.

    Parameters
    ----------
    session : Session
        Not committed here.
    settings : Settings
        ``cart_trigger_window_minutes``.
    cart_id : int
    now : datetime
        The check's creation time.

    Returns
    -------
    TriggerCheck or None
        The cart's check (a resolved one is returned as it is: one message per cart); ``None`` when the cart is
        not open with items, or no trigger campaign is approved.

    Raises
    ------
    NotFound
        No such cart.
    """
    cart = session.get(Cart, cart_id)
    if cart is None:
        raise NotFound(f"no cart {cart_id}")
    if cart.status is not CartStatus.OPEN or not cart.items:
        return None
    campaign = active_trigger_campaign(session)
    if campaign is None:
        logger.info("cart %s: no approved abandoned-cart campaign, so no check", cart_id)
        return None
    due = cart.cart_updated_at + timedelta(minutes=settings.cart_trigger_window_minutes)
    row = {
        "cart_id": cart.id,
        "customer_id": cart.customer_id,
        "campaign_id": campaign.id,
        "due_at": due,
        "status": TriggerStatus.WAITING,
        "created_at": now,
    }
    # Two events for one cart at once: one insert wins, and the due time only ever moves later.
    session.execute(insert_for(session)(TriggerCheck).values(row).on_conflict_do_nothing(index_elements=["cart_id"]))
    session.execute(
        update(TriggerCheck)
        .where(TriggerCheck.cart_id == cart.id, TriggerCheck.status == TriggerStatus.WAITING, TriggerCheck.due_at < due)
        .values(due_at=due)
        .execution_options(synchronize_session=False)
    )
    return session.scalars(
        select(TriggerCheck).where(TriggerCheck.cart_id == cart.id).execution_options(populate_existing=True)
    ).one()


def on_order(session: Session, customer_id: int, now: datetime) -> int:
    """Cancel the customer's waiting checks (reason "order placed"); how many were cancelled."""
    statement = (
        update(TriggerCheck)
        .where(TriggerCheck.customer_id == customer_id, TriggerCheck.status == TriggerStatus.WAITING)
        .values(status=TriggerStatus.CANCELLED, reason=ORDER_PLACED, resolved_at=now)
        .returning(TriggerCheck.id)
        .execution_options(synchronize_session=False)
    )
    return len(session.scalars(statement).all())


def on_commerce(session: Session, settings: Settings, changes: CommerceChanges, now: datetime) -> list[TriggerCheck]:
    """What new e-commerce events mean for the trigger (not committed): an order cancels its customer's waiting
    checks; each cart changed gets its check, or moves it on. Returns the checks still waiting."""
    for customer_id in changes.orders:
        on_order(session, customer_id, now)
    checks = (on_cart_activity(session, settings, cart_id, now) for cart_id in changes.carts)
    return [check for check in checks if check is not None and check.status is TriggerStatus.WAITING]


def check_cart(
    session: Session,
    settings: Settings,
    cart_id: int,
    now: datetime,
    *,
    email_sender: EmailSender | None = None,
    sms_sender: SmsSender | None = None,
    limiter: SendRateLimiter | None = None,
) -> TriggerStatus:
    """Check a cart whose window may have passed, and send its one reminder if nothing says no.

    Parameters
    ----------
    session : Session
        The task's session; committed before and after the provider call, as ``campaigns.sending`` does.
    settings : Settings
    cart_id : int
    now : datetime
    email_sender, sms_sender : optional
        The senders; by default the configured ones.
    limiter : SendRateLimiter, optional
        The real-time send limit; by default this process's (``NUDGE_TRIGGERED_SEND_MAX_PER_SECOND``).

    Returns
    -------
    TriggerStatus
        ``waiting`` (not due, deferred, rate-limited, or in flight), or how it was resolved; a resolved check
        is returned unchanged, so checking twice sends once.

    Raises
    ------
    NotFound
        The cart has no check.
    ServiceUnavailable
        The provider refused for now: recorded for retry (the check stays waiting); the task retries.
    """
    check = _locked_check(session, cart_id)
    if check.status is not TriggerStatus.WAITING:
        return check.status
    cart = session.get(Cart, cart_id)
    if cart is None:  # the check cascades with its cart, so only a race gets here
        raise NotFound(f"no cart {cart_id}")
    check.due_at = max(check.due_at, cart.cart_updated_at + timedelta(minutes=settings.cart_trigger_window_minutes))
    if now < check.due_at:
        return TriggerStatus.WAITING
    if reason := _cancel_reason(session, cart):
        return _resolve(check, TriggerStatus.CANCELLED, reason, now)
    campaign = session.get(Campaign, check.campaign_id)
    if campaign is None or campaign.state is not CampaignState.APPROVED:
        state = campaign.state if campaign is not None else "deleted"
        return _resolve(check, TriggerStatus.SKIPPED, f"the abandoned-cart campaign is {state}", now)
    held, _ = in_global_holdout(settings.global_holdout_salt, [cart.customer_id], settings.global_holdout_fraction)
    if held[0]:
        return _resolve(check, TriggerStatus.SKIPPED, GLOBAL_HOLDOUT_REASON, now)
    return _send(session, settings, check, cart, campaign, now, _Senders(email_sender, sms_sender, limiter))


def scan(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    email_sender: EmailSender | None = None,
    sms_sender: SmsSender | None = None,
    limiter: SendRateLimiter | None = None,
) -> int:
    """The beat backstop: checks for open carts idle longer than the window without one, then every due check.

    Returns
    -------
    int
        Checks resolved now (sent, cancelled or skipped). A check the provider refused for now stays waiting
        for the next scan (logged), and the others go on.
    """
    for cart_id in _carts_without_check(session, now - timedelta(minutes=settings.cart_trigger_window_minutes)):
        if on_cart_activity(session, settings, cart_id, now) is None:
            break  # no approved trigger campaign: none of them can get a check
    resolved = 0
    for cart_id in _due_checks(session, now):
        try:
            status = check_cart(
                session, settings, cart_id, now, email_sender=email_sender, sms_sender=sms_sender, limiter=limiter
            )
        except ServiceUnavailable as error:  # recorded for retry by check_cart: the next scan sends it
            logger.warning("cart %s: %s", cart_id, error.message)
            continue
        resolved += status is not TriggerStatus.WAITING
    return resolved


def default_limiter(settings: Settings) -> SendRateLimiter:
    """This process's limit on triggered sends: one bucket per configured rate, shared by every call."""
    rate = settings.triggered_send_max_per_second
    if rate not in _LIMITERS:
        _LIMITERS[rate] = send_rate_limiter(settings)
    return _LIMITERS[rate]


# --- the steps of check_cart -------------------------------------------------------------------------------------


class _Senders:
    """The senders and the rate limit a check may use; the configured ones unless given."""

    def __init__(
        self, email_sender: EmailSender | None, sms_sender: SmsSender | None, limiter: SendRateLimiter | None
    ) -> None:
        self.email, self.sms, self.limiter = email_sender, sms_sender, limiter

    def sender(self, settings: Settings, session: Session, channel: Channel) -> EmailSender | SmsSender:
        if channel is Channel.SMS:
            return self.sms if self.sms is not None else configured_sms_sender(settings, session)
        return self.email if self.email is not None else configured_email_sender(settings, session)


def _locked_check(session: Session, cart_id: int) -> TriggerCheck:
    query = select(TriggerCheck).where(TriggerCheck.cart_id == cart_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # two workers on one cart: the second waits, then sees it resolved
    check = session.scalars(query.execution_options(populate_existing=True)).first()
    if check is None:
        raise NotFound(f"cart {cart_id} has no abandoned-cart check")
    return check


def _cancel_reason(session: Session, cart: Cart) -> str | None:
    if cart.status is CartStatus.CONVERTED:
        return CART_CONVERTED
    if not cart.items:
        return CART_EMPTY
    ordered = select(Order.id).where(Order.customer_id == cart.customer_id, Order.ordered_at >= cart.cart_updated_at)
    if session.scalars(ordered.limit(1)).first() is not None:
        return ORDER_PLACED
    return None


def _resolve(check: TriggerCheck, status: TriggerStatus, reason: str | None, now: datetime) -> TriggerStatus:
    check.status, check.resolved_at = status, now
    check.reason = reason[:_REASON_MAX] if reason else None
    return status


def _send(
    session: Session,
    settings: Settings,
    check: TriggerCheck,
    cart: Cart,
    campaign: Campaign,
    now: datetime,
    senders: _Senders,
) -> TriggerStatus:
    key = cart_idempotency_key(campaign.key, cart.id, campaign.channel)
    existing = existing_messages(session, [key]).get(key)
    if existing is not None and not is_marked_for_retry(existing):
        return _settle(check, existing, now)
    if existing is None and (last := _last_cart_message(session, settings, cart.customer_id, now)) is not None:
        return _resolve(
            check, TriggerStatus.SKIPPED, f"cooldown: an abandoned-cart message was sent {last:%Y-%m-%d %H:%M} UTC", now
        )
    sender = senders.sender(settings, session, campaign.channel)
    kit = SendKit.load(session, settings, campaign.channel, sender.provider, now=now)
    plan = SendPlan(cart.customer_id, key, _template(session, kit, campaign, cart), existing)
    [item] = prepare(kit, [plan], purpose=ConsentPurpose.CART)
    if item.deferred is not None:
        check.due_at = item.deferred
        return TriggerStatus.WAITING
    if item.outbound is not None:
        admission = (senders.limiter or default_limiter(settings)).try_acquire()
        if not admission.allowed:
            check.due_at = now + timedelta(seconds=admission.retry_after)
            return TriggerStatus.WAITING
    result = BatchResult()
    written = write_ahead(session, kit, [item], campaign_key=campaign.key, result=result)
    if item.blocked:
        check.message_id = _message_id(session, key)
        return _resolve(check, TriggerStatus.SKIPPED, ",".join(item.blocked), now)
    if not written:  # another worker wrote the row first: it sends, this one leaves the check as it is
        return TriggerStatus.WAITING
    check.message_id = written[0].message_id
    session.commit()  # write-ahead: the row (and the check's link to it) before the provider call
    [(_, receipt)] = hand_over(session, kit, sender, written, result)
    if result.retry:
        session.commit()  # the receipt survives the task's rollback on the error below
        raise_for_retry(result, f"cart {cart.id}")
    if result.sent:
        return _resolve(check, TriggerStatus.SENT, None, now)
    return _resolve(
        check, TriggerStatus.SKIPPED, f"rejected: {receipt.error_code or receipt.error or 'by the provider'}", now
    )


def _settle(check: TriggerCheck, message: Message, now: datetime) -> TriggerStatus:
    """Resolve a check whose message exists (a crash or a race between the write-ahead and the record)."""
    check.message_id = message.id
    if message.status is MessageStatus.SENT:
        return _resolve(check, TriggerStatus.SENT, None, now)
    if message.status is not MessageStatus.PENDING:
        return _resolve(check, TriggerStatus.SKIPPED, f"{message.status}: {message.error}", now)
    return TriggerStatus.WAITING  # in flight: its worker records it, or campaigns.reconcile settles it


def _last_cart_message(session: Session, settings: Settings, customer_id: int, now: datetime) -> datetime | None:
    """When the customer was last sent an abandoned-cart message within the cooldown, if they were."""
    if settings.cart_trigger_cooldown_days == 0:
        return None
    triggers = select(Campaign.key).where(Campaign.kind == CampaignKind.TRIGGER)
    query = select(Message.sent_at).where(
        Message.customer_id == customer_id,
        Message.campaign_key.in_(triggers),
        Message.status == MessageStatus.SENT,
        Message.sent_at > now - timedelta(days=settings.cart_trigger_cooldown_days),
    )
    return session.scalars(query.order_by(Message.sent_at.desc()).limit(1)).first()


def _template(session: Session, kit: SendKit, campaign: Campaign, cart: Cart) -> Template | None:
    """The campaign's approved template, compiled with this cart's items in place."""
    query = select(CampaignVariant).where(
        CampaignVariant.campaign_id == campaign.id,
        CampaignVariant.channel == campaign.channel,
        CampaignVariant.approved_at.is_not(None),
        CampaignVariant.blocked.is_(False),
    )
    variant = session.scalars(query.order_by(CampaignVariant.segment, CampaignVariant.variant).limit(1)).first()
    if variant is None:
        return None
    return compile_variant(kit, campaign.key, variant.variant, with_items(variant.content, cart.items))


def with_items(content: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``content`` with ``{{cart_items}}`` replaced by the items, one per line (HTML-escaped in the HTML body).

    Item names come from the shop, so braces are taken out: they must not become template syntax.
    """
    lines = [_item_line(item) for item in items]
    filled = dict(content)
    for name in _COPY_FIELDS:
        text = filled.get(name)
        if isinstance(text, str) and ITEMS_SLOT in text:
            filled[name] = text.replace(ITEMS_SLOT, _items_text(name, lines))
    return filled


def _items_text(field: str, lines: Sequence[str]) -> str:
    if field == "body_html":
        return "<br>".join(html.escape(line) for line in lines)
    return "\n".join(lines) if field == "body_text" else ", ".join(lines)  # one line in a subject or a text


def _item_line(item: Mapping[str, Any]) -> str:
    name = str(item.get("name") or item.get("product_name") or item.get("sku") or "an item")
    name = " ".join(name.replace("{", "(").replace("}", ")").split())
    quantity = item.get("quantity", 1)
    return f"{quantity} × {name}" if quantity not in (None, 1, "1") else name


def _message_id(session: Session, key: str) -> int | None:
    return session.scalars(select(Message.id).where(Message.idempotency_key == key)).first()


def _carts_without_check(session: Session, idle_since: datetime) -> list[int]:
    checked = select(TriggerCheck.id).where(TriggerCheck.cart_id == Cart.id)
    query = select(Cart.id, Cart.items).where(
        Cart.status == CartStatus.OPEN, Cart.cart_updated_at <= idle_since, ~checked.exists()
    )
    return [cart_id for cart_id, items in session.execute(query.order_by(Cart.id)) if items]


def _due_checks(session: Session, now: datetime) -> list[int]:
    query = select(TriggerCheck.cart_id).where(TriggerCheck.status == TriggerStatus.WAITING, TriggerCheck.due_at <= now)
    return list(session.scalars(query.order_by(TriggerCheck.due_at, TriggerCheck.id)))
