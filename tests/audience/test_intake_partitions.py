"""Intake on a partitioned ``events`` log: a messageId is stored once for as long as its key is kept, whatever
month the replay comes in; a month without a partition gets one; retention forgets the keys it drops."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select, text

from audience.intake import IngestResult, ingest
from audience.schemas import parse_batch
from core import partitions
from core.db import Database
from core.models import Event, EventKey

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def ingest_tracks(db: Database, received_at: datetime, *message_ids: str) -> IngestResult:
    body = {"batch": [{"type": "track", "userId": "u-1", "messageId": m, "event": "Viewed"} for m in message_ids]}
    with db.session() as session:
        return ingest(
            session, parse_batch(json.dumps(body).encode(), max_events=100), source_id=None, received_at=received_at
        )


def stored(db: Database) -> list[tuple[str, datetime]]:
    with db.session() as session:
        return [tuple(row) for row in session.execute(select(Event.message_id, Event.received_at).order_by(Event.id))]


def keys(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(EventKey.message_id).order_by(EventKey.message_id)))


def test_a_replay_received_in_a_later_month_is_still_a_duplicate(db: Database) -> None:
    october = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
    ingest_tracks(db, october, "m-1")

    replay = ingest_tracks(db, datetime(2026, 11, 1, 0, 1, tzinfo=UTC), "m-1", "m-2")

    assert (replay.stored, replay.duplicates) == (1, 1)
    assert [message_id for message_id, _ in stored(db)] == ["m-1", "m-2"]
    assert stored(db)[0][1] == october
    assert keys(db) == ["m-1", "m-2"]


def test_a_call_received_in_a_month_without_a_partition_gets_one(postgres_db: Database) -> None:
    ingest_tracks(postgres_db, datetime(2024, 3, 9, 8, tzinfo=UTC), "m-1")

    with postgres_db.session() as session:
        stored_in = session.scalar(text("SELECT tableoid::regclass::text FROM events"))
    assert stored_in == "partitions.events_p2024_03"


def test_retention_drops_old_months_and_forgets_their_keys_so_an_old_replay_is_stored_again(db: Database) -> None:
    ingest_tracks(db, datetime(2025, 9, 30, 23, tzinfo=UTC), "old")
    ingest_tracks(db, datetime(2025, 10, 1, 0, tzinfo=UTC), "kept")
    with db.session() as session:
        partitions.ensure_partitions(session, NOW)

    with db.session() as session:
        result = partitions.apply_retention(session, NOW, retention_months=13)
        names = partitions.list_partitions(session, "events")

    assert result.deleted_rows["event_keys"] == 1
    assert keys(db) == ["kept"]
    assert [message_id for message_id, _ in stored(db)] == ["kept"]
    if db.engine.dialect.name == "postgresql":
        assert "events_p2025_09" in result.dropped_partitions
        assert "events_p2025_09" not in names
        assert {"events_p2025_10", "events_p2026_11"} <= set(names)
    assert ingest_tracks(db, NOW, "old", "kept").stored == 1  # past retention: new again; within: a duplicate
