"""Provider events on a partitioned ``provider_events`` log: stored once by id or fallback key whatever month
the retry comes in, outcomes linked to their event by ``(id, received_at)``, and retention that drops old
months, forgets their keys and keeps the outcomes (without their event)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from channels.events import StoreResult, parse_sendgrid, store_events
from channels.outcomes import process_pending
from core import partitions
from core.db import Database
from core.models import (
    Channel,
    Customer,
    Message,
    MessageStatus,
    Outcome,
    OutcomeKind,
    Provider,
    ProviderEvent,
    ProviderEventKey,
)
from core.settings import Settings

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SETTINGS = Settings(public_base_url="https://nudge.example.com")


def add_message(db: Database, key: str) -> int:
    with db.session() as session:
        customer = Customer(external_id=f"c-{key}", email=f"{key}@example.com")
        session.add(customer)
        session.flush()
        message = Message(
            message_key=key,
            idempotency_key=f"spring:{customer.id}:email",
            campaign_key="spring",
            customer_id=customer.id,
            channel=Channel.EMAIL,
            address=f"{key}@example.com",
            provider=Provider.SENDGRID,
            status=MessageStatus.SENT,
        )
        session.add(message)
        session.flush()
        return message.id


def delivered(sg_event_id: str, message_key: str, **fields: Any) -> dict[str, Any]:
    return {
        "event": "delivered",
        "sg_event_id": sg_event_id,
        "message_key": message_key,
        "email": f"{message_key}@example.com",
        "timestamp": 1_795_000_000,
        **fields,
    }


def store(db: Database, received_at: datetime, *items: dict[str, Any]) -> StoreResult:
    with db.session() as session:
        return store_events(session, parse_sendgrid(json.dumps(list(items)).encode()), received_at=received_at)


def process(db: Database) -> None:
    with db.session() as session:
        process_pending(session, SETTINGS, NOW, None)


def linked(db: Database) -> list[tuple[int, str, OutcomeKind]]:
    """(message id, provider event id, kind) of every outcome joined to its event by the foreign key."""
    with db.session() as session:
        query = select(Outcome.message_id, ProviderEvent.event_id, Outcome.kind).join(ProviderEvent)
        return [tuple(row) for row in session.execute(query.order_by(Outcome.id))]


def test_a_retry_in_a_later_month_is_stored_once_by_its_id_or_its_fallback_key(db: Database) -> None:
    first = store(db, datetime(2026, 10, 31, 23, 59, tzinfo=UTC), delivered("e-1", "mail-1"))

    same_id = store(db, datetime(2026, 11, 1, 0, 1, tzinfo=UTC), delivered("e-1", "mail-1"))
    new_id = store(db, datetime(2026, 12, 2, tzinfo=UTC), delivered("e-1-retried", "mail-1"))

    assert (len(first.stored), first.duplicates) == (1, 0)
    assert (same_id.stored, same_id.duplicates) == ([], 1)
    assert (new_id.stored, new_id.duplicates) == ([], 1)
    with db.session() as session:
        assert list(session.scalars(select(ProviderEvent.id))) == first.stored
        assert list(session.scalars(select(ProviderEventKey.event_id))) == ["e-1"]


def test_a_stored_event_lands_in_its_month_s_partition(postgres_db: Database) -> None:
    store(postgres_db, datetime(2024, 3, 9, tzinfo=UTC), delivered("e-1", "mail-1"))

    with postgres_db.session() as session:
        stored_in = session.scalar(text("SELECT tableoid::regclass::text FROM provider_events"))
    assert stored_in == "partitions.provider_events_p2024_03"


def test_an_outcome_points_at_its_event_by_id_and_received_at(db: Database) -> None:
    message_id = add_message(db, "mail-1")
    stored = store(db, NOW, delivered("e-1", "mail-1")).stored

    process(db)

    with db.session() as session:
        outcome = session.scalars(select(Outcome)).one()
        assert (outcome.event_id, outcome.event_received_at) == (stored[0], NOW)
    assert linked(db) == [(message_id, "e-1", OutcomeKind.DELIVERED)]


def test_retention_drops_old_events_and_their_keys_and_keeps_their_outcomes_unlinked(db: Database) -> None:
    old_message, new_message = add_message(db, "mail-old"), add_message(db, "mail-new")
    store(db, datetime(2025, 9, 30, 23, tzinfo=UTC), delivered("e-old", "mail-old"))
    store(db, NOW - timedelta(days=1), delivered("e-new", "mail-new"))
    process(db)
    with db.session() as session:
        partitions.ensure_partitions(session, NOW)

    with db.session() as session:
        result = partitions.apply_retention(session, NOW, retention_months=13)
        names = partitions.list_partitions(session, "provider_events")

    with db.session() as session:
        outcomes = session.execute(select(Outcome.message_id, Outcome.event_id).order_by(Outcome.message_id)).all()
        keys = list(session.scalars(select(ProviderEventKey.event_id)))
        events = list(session.scalars(select(ProviderEvent.event_id)))
    assert result.deleted_rows["provider_event_keys"] == 1
    assert (keys, events) == (["e-new"], ["e-new"])
    assert [message for message, _ in outcomes] == [old_message, new_message]
    assert outcomes[0].event_id is None
    assert linked(db) == [(new_message, "e-new", OutcomeKind.DELIVERED)]
    if db.engine.dialect.name == "postgresql":
        assert "provider_events_p2025_09" in result.dropped_partitions
        assert "provider_events_p2025_09" not in names
        assert "provider_events_p2026_11" in names
        assert all(name < "provider_events_p2025_10" for name in result.dropped_partitions if "provider" in name)
    assert len(store(db, NOW, delivered("e-old", "mail-old")).stored) == 1  # past retention: new again
