"""The intake service: idempotent on messageId, a fixed number of statements per batch, never commits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from audience.intake import ingest, occurred_at
from audience.schemas import Message, Track, parse_batch
from core.db import Database
from core.models import Customer, Event

RECEIVED_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def calls(*messages: dict[str, Any]) -> list[Message]:
    return parse_batch(json.dumps({"batch": list(messages)}).encode(), max_events=10_000)


def mixed_batch(size: int) -> list[Message]:
    """Identify and track calls for size // 4 users, with one set of traits."""
    users = max(size // 4, 1)
    return calls(
        *(
            {
                "type": "identify",
                "userId": f"u-{n}",
                "messageId": f"i-{n}",
                "traits": {"email": f"u{n}@x.io", "plan": "pro"},
            }
            if n < users
            else {"type": "track", "userId": f"u-{n % users}", "messageId": f"t-{n}", "event": "Viewed"}
            for n in range(size)
        )
    )


@contextmanager
def counted_statements(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_occurred_at_corrects_the_client_clock_by_sent_at() -> None:
    [call] = calls(
        {
            "type": "track",
            "anonymousId": "a",
            "event": "e",
            "timestamp": "2026-11-21T10:00:00Z",
            "sentAt": "2026-11-21T10:00:30Z",
        }
    )

    assert occurred_at(call, RECEIVED_AT) == RECEIVED_AT - timedelta(seconds=30)


def test_the_statements_per_batch_do_not_grow_with_its_size(db: Database) -> None:
    with db.session() as session, counted_statements(db) as small:
        ingest(session, mixed_batch(8), source_id=None, received_at=RECEIVED_AT)
    with db.session() as session, counted_statements(db) as large:
        ingest(session, mixed_batch(800), source_id=None, received_at=RECEIVED_AT)

    assert len(large) == len(small)


def test_ingest_counts_calls_stored_and_duplicates_from_before_or_within_the_batch(db: Database) -> None:
    def track(message_id: str) -> dict[str, Any]:
        return {"type": "track", "anonymousId": "a", "messageId": message_id, "event": "Viewed"}

    with db.session() as session:
        first = ingest(session, calls(track("m-1"), track("m-2")), source_id=None, received_at=RECEIVED_AT)
    with db.session() as session:
        again = ingest(
            session, calls(track("m-2"), track("m-3"), track("m-3")), source_id=None, received_at=RECEIVED_AT
        )

    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (1, 2)
    with db.session() as session:
        assert list(session.scalars(select(Event.message_id).order_by(Event.message_id))) == ["m-1", "m-2", "m-3"]


def test_ingest_never_commits(db: Database) -> None:
    session = db.sessionmaker()
    ingest(session, mixed_batch(8), source_id=None, received_at=RECEIVED_AT)
    session.rollback()
    session.close()

    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 0
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_an_anonymous_identify_is_stored_but_changes_no_customer(db: Database) -> None:
    with db.session() as session:
        result = ingest(
            session,
            calls({"type": "identify", "anonymousId": "a", "messageId": "m", "traits": {"email": "a@x.io"}}),
            source_id=None,
            received_at=RECEIVED_AT,
        )

    assert (result.stored, result.duplicates) == (1, 0)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


@pytest.mark.parametrize("null_trait", [{"plan": None}, {}])
def test_a_null_custom_trait_leaves_the_attribute_as_it_was(db: Database, null_trait: dict[str, Any]) -> None:
    with db.session() as session:
        ingest(
            session,
            calls({"type": "identify", "userId": "u", "messageId": "m-1", "traits": {"plan": "pro"}}),
            source_id=None,
            received_at=RECEIVED_AT,
        )
        ingest(
            session,
            calls({"type": "identify", "userId": "u", "messageId": "m-2", "traits": {**null_trait, "seats": 2}}),
            source_id=None,
            received_at=RECEIVED_AT,
        )

    with db.session() as session:
        assert session.scalar(select(Customer.attributes)) == {"plan": "pro", "seats": 2}


def test_track_properties_are_stored_as_sent(db: Database) -> None:
    properties = {"total": 19.99, "items": [{"sku": "A-1", "qty": 2}], "coupon": None}
    track: Track = Track.model_validate(
        {"anonymousId": "a", "messageId": "m", "event": "Order Completed", "properties": properties}
    )

    with db.session() as session:
        ingest(session, [track], source_id=None, received_at=RECEIVED_AT)

    with db.session() as session:
        assert session.scalar(select(Event.properties)) == properties
