"""Settle the messages a dead worker left in flight: sent exactly once, none lost and none doubled.

``campaigns.sending`` commits a ``PENDING`` row before it calls the provider and records the receipt after.
A worker killed between the two leaves a row that may or may not have gone out. Neither SendGrid nor Twilio
takes an idempotency key, so Nudge cannot just ask again; it reconciles from what the provider says on its
own (compliance reference §5, "reconcile first, retry only if absent"):

- **Evidence of acceptance** — a stored provider event naming the message key (SendGrid's ``processed`` and
  every later event carry it in ``custom_args``; Twilio's status callbacks in their URL), or the outbox row
  for the local outbox: the row becomes ``SENT``.
- **Evidence of absence** — the local outbox stores in the same commit as the receipt, so a row without its
  outbox entry never went out. A real provider reports every message it accepts within seconds to minutes;
  a row with no event ``NUDGE_SEND_RECONCILE_AFTER_SECONDS`` after its write-ahead (default 2 h) was never
  accepted. It is marked for retry like a transient refusal and sent again by the normal path.
- **No way to know** — SendGrid without its Event Webhook configured, Twilio without a public URL for its
  callbacks: the row stays ``PENDING`` and is reported (``campaigns.sending.unsettled``); it is never resent.

Only rows older than ``NUDGE_SEND_IN_FLIGHT_SECONDS`` are touched: a live worker finishes a batch within the
send task's hard time limit (300 s), so an older unmarked row has lost its worker. The same sweep picks up
rows marked for retry whose task gave up (retries exhausted, or lost with its worker), so a campaign always
comes back to ``sent``.

The trade-off is stated, not hidden: if the provider's webhook is down for longer than the reconcile window,
a message whose receipt was lost in a crash could go twice. The window is a setting for that reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from campaigns.sending import RETRY_MARK
from core import ledger
from core.bulk import among, chunks, table_of
from core.models import (
    Campaign,
    CampaignState,
    Message,
    MessageStatus,
    OutboxMessage,
    Provider,
    ProviderEvent,
    TriggerCheck,
)
from core.settings import Settings

logger = logging.getLogger(__name__)

LOST_MARK = f"{RETRY_MARK} in flight when its worker was lost; the provider reported no such message"
SWEEP_LIMIT = 20_000  # rows per run: the next run (a minute later) takes the rest


@dataclass
class Reconciled:
    """What one sweep came to.

    Attributes
    ----------
    confirmed : int
        Rows settled ``SENT`` from the provider's own record.
    resend : dict of campaign id to customer ids
        Campaign messages to send again (marked for retry now, or earlier by a task that gave up).
    carts : list of int
        Carts whose reminder was settled or marked: their checks run again.
    finished : set of int
        Campaigns with rows settled now, to be finished if nothing else is left.
    unknown : int
        Rows left in flight with no way to know (see the module docstring): reported, never resent.
    """

    confirmed: int = 0
    resend: dict[int, list[int]] = field(default_factory=dict)
    carts: list[int] = field(default_factory=list)
    finished: set[int] = field(default_factory=set)
    unknown: int = 0


def reconcile(session: Session, settings: Settings, now: datetime) -> Reconciled:
    """Settle the rows left in flight and collect what must be sent again (module docstring); not committed."""
    result = Reconciled()
    stale = now - timedelta(seconds=settings.send_in_flight_seconds)
    query = _in_flight(stale)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # two sweeps at once split the rows, never share one
    in_flight = list(session.scalars(query))
    accepted = _accepted(session, in_flight)
    absent_before = now - timedelta(seconds=settings.send_reconcile_after_seconds)
    confirmed, lost = [], []
    for message in in_flight:
        if message.message_key in accepted:
            confirmed.append(message)
        elif message.provider is Provider.OUTBOX or (
            message.updated_at <= absent_before and _reports_acceptance(settings, message.provider)
        ):
            lost.append(message)
        else:
            result.unknown += 1
    _settle_sent(session, [(message.id, accepted[message.message_key]) for message in confirmed], now)
    _mark_lost(session, [message.id for message in lost], now)
    result.confirmed = len(confirmed)
    ledger.record_sends(session, settings, [message.id for message in confirmed])
    _route(session, result, confirmed, [*lost, *session.scalars(_abandoned(stale))])
    if in_flight:
        logger.info(
            "reconciled: %d confirmed sent, %d lost and sent again, %d unknown",
            len(confirmed),
            len(lost),
            result.unknown,
        )
    return result


def _in_flight(stale: datetime) -> Any:
    """Unmarked ``PENDING`` rows written before ``stale``: their worker is gone."""
    unmarked = or_(Message.error.is_(None), ~Message.error.like(f"{RETRY_MARK}%"))
    query = select(Message).where(Message.status == MessageStatus.PENDING, unmarked, Message.updated_at < stale)
    return query.order_by(Message.id).limit(SWEEP_LIMIT)


def _accepted(session: Session, messages: Sequence[Message]) -> dict[str, datetime]:
    """Message keys the provider (or the outbox) has a record of, with the earliest evidence's time."""
    keys = [message.message_key for message in messages]
    found: dict[str, datetime] = {}
    for chunk in chunks(keys):
        events = (
            select(ProviderEvent.message_key, func.min(ProviderEvent.received_at))
            .where(among(ProviderEvent.message_key, chunk))
            .group_by(ProviderEvent.message_key)
        )
        found.update((key, first) for key, first in session.execute(events) if key is not None)
        stored = (
            select(Message.message_key, OutboxMessage.created_at)
            .join(OutboxMessage, OutboxMessage.message_id == Message.id)
            .where(among(Message.message_key, chunk))
        )
        found.update((key, created_at) for key, created_at in session.execute(stored))
    return found


def _reports_acceptance(settings: Settings, provider: Provider) -> bool:
    """Whether the provider's events reach Nudge, so that their absence means something."""
    if provider is Provider.SENDGRID:
        return bool(settings.sendgrid_webhook_public_key)
    if provider is Provider.TWILIO:
        return bool(settings.public_base_url)  # the status callback each message names
    return False


def _settle_sent(session: Session, evidence: Sequence[tuple[int, datetime]], now: datetime) -> None:
    """``SENT`` at the time of the first evidence, each row its own: one executemany, not a statement a row."""
    if not evidence:
        return
    table = table_of(Message)
    statement = (
        update(table)
        .where(table.c.id == bindparam("message_id"), table.c.status == MessageStatus.PENDING)
        .values(status=MessageStatus.SENT, sent_at=bindparam("evidence_at"), attempts=table.c.attempts + 1)
        .values(updated_at=now)
    )
    session.execute(statement, [{"message_id": id_, "evidence_at": at} for id_, at in evidence])


def _mark_lost(session: Session, message_ids: Sequence[int], now: datetime) -> None:
    """Mark for retry the rows the provider never had, a chunk of ids a statement."""
    for chunk in chunks(list(message_ids)):
        session.execute(
            update(Message)
            .where(among(Message.id, chunk), Message.status == MessageStatus.PENDING)
            .where(or_(Message.error.is_(None), ~Message.error.like(f"{RETRY_MARK}%")))
            .values(error=LOST_MARK, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def _abandoned(stale: datetime) -> Any:
    """Rows marked for retry that no task has tried since ``stale``: their task gave up or was lost."""
    query = select(Message).where(
        Message.status == MessageStatus.PENDING, Message.error.like(f"{RETRY_MARK}%"), Message.updated_at < stale
    )
    return query.order_by(Message.id).limit(SWEEP_LIMIT)


def _route(session: Session, result: Reconciled, confirmed: Sequence[Message], resend: Sequence[Message]) -> None:
    """A cart reminder goes back to its cart's check; a campaign message to its campaign's send, if still sending."""
    carts = _carts_of(session, [message.id for message in [*confirmed, *resend]])
    campaigns = _sending_campaigns(session, {message.campaign_key for message in [*confirmed, *resend]})
    for message in confirmed:
        if message.id in carts:
            result.carts.append(carts[message.id])
        elif message.campaign_key in campaigns:
            result.finished.add(campaigns[message.campaign_key])
    for message in resend:
        if message.id in carts:
            result.carts.append(carts[message.id])
        elif message.campaign_key in campaigns:
            result.resend.setdefault(campaigns[message.campaign_key], []).append(message.customer_id)


def _carts_of(session: Session, message_ids: Sequence[int]) -> dict[int, int]:
    """The cart of each trigger message (by message id): a cart reminder is resent by its check."""
    carts: dict[int, int] = {}
    for chunk in chunks(list(message_ids)):
        query = select(TriggerCheck.message_id, TriggerCheck.cart_id).where(among(TriggerCheck.message_id, chunk))
        carts.update((message_id, cart_id) for message_id, cart_id in session.execute(query) if message_id)
    return carts


def _sending_campaigns(session: Session, keys: set[str]) -> dict[str, int]:
    """Campaign ids by key, of those still ``sending`` (a cancelled campaign sends nothing more)."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(keys)):
        query = select(Campaign.key, Campaign.id).where(
            among(Campaign.key, chunk), Campaign.state == CampaignState.SENDING
        )
        found.update((key, id_) for key, id_ in session.execute(query))
    return found
