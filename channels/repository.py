"""Every query of the channels package: messages, provider events, outcomes, and the consents and suppressions
that events change. Functions take the caller's session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.bulk import among, chunks, insert_for, table_of
from core.models import (
    Channel,
    Consent,
    ConsentPurpose,
    Customer,
    Message,
    Outcome,
    Provider,
    ProviderEvent,
    Suppression,
    SuppressionReason,
)

# --- provider events ----------------------------------------------------------------------------------------


def claim_pending_events(session: Session, *, now: datetime, limit: int) -> list[ProviderEvent]:
    """Mark up to ``limit`` unprocessed events processed at ``now`` and return them, oldest first.

    The claim is an ``UPDATE … WHERE processed_at IS NULL`` run before anything else in the transaction, so
    two processors never take the same event: on PostgreSQL the second skips rows the first has locked
    (``SKIP LOCKED``) or finds them processed once it commits; on SQLite the UPDATE waits for the write lock
    and then reads the latest rows. The caller's rollback returns the events to the queue.
    """
    pending = select(ProviderEvent.id).where(ProviderEvent.processed_at.is_(None)).order_by(ProviderEvent.id)
    pending = pending.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)
    # MATERIALIZED: PostgreSQL may otherwise rescan a subquery for the UPDATE, and with SKIP LOCKED a rescan
    # skips the rows just claimed and returns the next ones: the limit would not hold.
    claimable = pending.cte("claimable").prefix_with("MATERIALIZED")
    claim = (
        update(ProviderEvent)
        .where(ProviderEvent.id.in_(select(claimable.c.id)), ProviderEvent.processed_at.is_(None))
        .values(processed_at=now)
        .returning(ProviderEvent.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(session.scalars(claim))
    if not ids:
        return []
    return list(session.scalars(select(ProviderEvent).where(among(ProviderEvent.id, ids)).order_by(ProviderEvent.id)))


def pending_event_count(session: Session) -> int:
    """Events stored and not yet processed."""
    return session.scalar(select(func.count()).where(ProviderEvent.processed_at.is_(None))) or 0


# --- messages -----------------------------------------------------------------------------------------------


def messages_by_key(session: Session, keys: Sequence[str]) -> dict[str, Message]:
    """The messages with these ``message_key`` values, by key."""
    found: dict[str, Message] = {}
    for chunk in chunks(sorted(set(keys))):
        found.update(
            (m.message_key, m) for m in session.scalars(select(Message).where(among(Message.message_key, chunk)))
        )
    return found


def messages_by_provider_id(session: Session, provider: Provider, ids: Sequence[str]) -> dict[str, Message]:
    """The messages ``provider`` knows by these ids (``Message.provider_message_id``), by id."""
    found: dict[str, Message] = {}
    for chunk in chunks(sorted(set(ids))):
        query = select(Message).where(Message.provider == provider, among(Message.provider_message_id, chunk))
        found.update((m.provider_message_id, m) for m in session.scalars(query) if m.provider_message_id)
    return found


def latest_message_to(session: Session, channel: Channel, address: str, *, excluding_campaign: str) -> Message | None:
    """The most recent message to ``address`` on ``channel``, whoever it was for, other than ``excluding_campaign``."""
    query = (
        select(Message)
        .where(Message.channel == channel, Message.address == address, Message.campaign_key != excluding_campaign)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def insert_message(session: Session, row: dict[str, Any]) -> Message | None:
    """Insert a message unless its ``idempotency_key`` (or ``message_key``) exists; the new row, or ``None``."""
    statement = insert_for(session)(table_of(Message)).values(row).on_conflict_do_nothing()
    new_id = session.scalar(statement.returning(table_of(Message).c.id))
    return None if new_id is None else session.get(Message, new_id)


def message_by_idempotency_key(session: Session, key: str) -> Message | None:
    return session.scalar(select(Message).where(Message.idempotency_key == key))


# --- outcomes -----------------------------------------------------------------------------------------------


def insert_outcomes(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert outcome rows; one whose event already has an outcome is skipped. Returns the number inserted."""
    if not rows:
        return 0
    table = table_of(Outcome)
    statement = insert_for(session)(table).on_conflict_do_nothing(index_elements=["event_id"]).returning(table.c.id)
    return len(session.scalars(statement, list(rows)).all())


# --- customers, consents, suppressions ----------------------------------------------------------------------


def customer_ids_with_phone(session: Session, phone: str) -> list[int]:
    """Every customer with this E.164 phone: several people (a family, a shop) can share one."""
    return list(session.scalars(select(Customer.id).where(Customer.phone == phone).order_by(Customer.id)))


def latest_consents(
    session: Session, customer_ids: Sequence[int], channel: Channel
) -> dict[tuple[int, ConsentPurpose], Consent]:
    """The current consent record per (customer, purpose) on ``channel``: the latest row of each."""
    latest: dict[tuple[int, ConsentPurpose], Consent] = {}
    if not customer_ids:
        return latest
    query = (
        select(Consent)
        .where(among(Consent.customer_id, customer_ids), Consent.channel == channel)
        .order_by(Consent.recorded_at, Consent.id)
    )
    for consent in session.scalars(query):
        latest[(consent.customer_id, consent.purpose)] = consent
    return latest


def add_consents(session: Session, consents: Sequence[Consent]) -> None:
    """Append consent records (the log is never updated)."""
    session.add_all(consents)
    session.flush()


def suppress(
    session: Session, channel: Channel, address: str, reason: SuppressionReason, *, source: str, now: datetime
) -> bool:
    """Suppress ``address`` on ``channel`` unless it already is (the first reason stays); ``True`` if new."""
    row = {"channel": channel, "address": address, "reason": reason, "source": source, "created_at": now}
    table = table_of(Suppression)
    statement = insert_for(session)(table).values(row).on_conflict_do_nothing(index_elements=["channel", "address"])
    return session.scalar(statement.returning(table.c.id)) is not None


def unsuppress(session: Session, channel: Channel, address: str, reason: SuppressionReason) -> bool:
    """Lift the suppression of ``address`` on ``channel`` if it is for ``reason``; ``True`` if one was lifted."""
    statement = delete(Suppression).where(
        Suppression.channel == channel, Suppression.address == address, Suppression.reason == reason
    )
    return bool(session.execute(statement.returning(Suppression.id)).first())
