"""Monthly partitions of the cost ledger and the event logs on PostgreSQL — made ahead, made on demand, dropped
past retention — and the same retention as row deletion on SQLite. (The event logs' writers and their keys:
tests/audience/test_intake_partitions.py, tests/channels/test_events_partitions.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from core import ledger, partitions
from core.db import Database
from core.ledger import Cost
from core.models import CostComponent, CostEntry

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def _book(database: Database, *days: date) -> None:
    with database.session() as session:
        ledger.record_many(
            session,
            [
                Cost(CostComponent.EMAIL, f"message:{n}", datetime(d.year, d.month, d.day, tzinfo=UTC), Decimal("1"))
                for n, d in enumerate(days)
            ],
        )


def _days(database: Database) -> list[date]:
    with database.session() as session:
        return list(session.scalars(select(CostEntry.day).order_by(CostEntry.day)))


def test_the_current_month_and_three_ahead_are_created(postgres_db: Database) -> None:
    with postgres_db.session() as session:
        partitions.ensure_partitions(session, NOW)
        names = partitions.list_partitions(session, "cost_entries")
        again = partitions.ensure_partitions(session, NOW)

    assert {"cost_entries_p2026_11", "cost_entries_p2026_12", "cost_entries_p2027_01", "cost_entries_p2027_02"} <= set(
        names
    )
    assert again == []


def test_a_cost_in_a_month_without_a_partition_gets_one(postgres_db: Database) -> None:
    _book(postgres_db, date(2024, 3, 9))

    with postgres_db.session() as session:
        names = partitions.list_partitions(session, "cost_entries")
        stored_in = session.scalar(text("SELECT tableoid::regclass::text FROM cost_entries"))
    assert "cost_entries_p2024_03" in names
    assert stored_in == "partitions.cost_entries_p2024_03"
    assert _days(postgres_db) == [date(2024, 3, 9)]


def test_retention_drops_whole_partitions_that_ended_before_the_cutoff(postgres_db: Database) -> None:
    _book(postgres_db, date(2025, 9, 30), date(2025, 10, 1), date(2026, 11, 20))
    with postgres_db.session() as session:
        partitions.ensure_partitions(session, NOW)

    with postgres_db.session() as session:
        result = partitions.apply_retention(session, NOW, retention_months=13)
        names = partitions.list_partitions(session, "cost_entries")

    assert result.cutoff == date(2025, 10, 1)
    assert "cost_entries_p2025_09" in result.dropped_partitions
    assert all(name < "cost_entries_p2025_10" for name in result.dropped_partitions)  # earlier tests' months too
    assert "cost_entries_p2025_09" not in names
    assert "cost_entries_p2025_10" in names
    assert "cost_entries_p2026_11" in names
    assert _days(postgres_db) == [date(2025, 10, 1), date(2026, 11, 20)]


def test_the_same_source_is_still_booked_once_on_a_partitioned_table(postgres_db: Database) -> None:
    _book(postgres_db, date(2026, 11, 20))
    _book(postgres_db, date(2026, 11, 20))

    assert _days(postgres_db) == [date(2026, 11, 20)]


def test_sqlite_has_no_partitions_and_deletes_rows_past_retention(sqlite_db: Database) -> None:
    _book(sqlite_db, date(2025, 9, 30), date(2025, 10, 1))

    with sqlite_db.session() as session:
        assert partitions.ensure_partitions(session, NOW) == []
        result = partitions.apply_retention(session, NOW, retention_months=13)

    assert result.deleted_rows == {
        "cost_entries": 1,
        "events": 0,
        "provider_events": 0,
        "event_keys": 0,
        "provider_event_keys": 0,
    }
    assert _days(sqlite_db) == [date(2025, 10, 1)]


def test_retention_of_no_months_is_refused(sqlite_db: Database) -> None:
    with sqlite_db.session() as session, pytest.raises(ValueError, match="at least one month"):
        partitions.apply_retention(session, NOW, retention_months=0)


def test_the_event_logs_get_this_month_and_three_ahead_too(postgres_db: Database) -> None:
    with postgres_db.session() as session:
        partitions.ensure_partitions(session, NOW)
        names = {table: set(partitions.list_partitions(session, table)) for table in ("events", "provider_events")}

    for table, children in names.items():
        assert {f"{table}_p2026_11", f"{table}_p2026_12", f"{table}_p2027_01", f"{table}_p2027_02"} <= children


def test_a_time_partition_is_bounded_by_utc_midnights_whatever_the_session_time_zone(postgres_db: Database) -> None:
    with postgres_db.session() as session:
        session.execute(text("SET LOCAL TIME ZONE 'America/New_York'"))
        partitions.ensure_month(session, "events", datetime(2023, 5, 31, 23, 30, tzinfo=UTC))
        session.execute(text("SET LOCAL TIME ZONE 'UTC'"))
        bounds = session.scalar(
            text(
                "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = 'partitions.events_p2023_05'::regclass"
            )
        )

    assert bounds == "FOR VALUES FROM ('2023-05-01 00:00:00+00') TO ('2023-06-01 00:00:00+00')"


def test_the_month_of_a_time_is_its_utc_month() -> None:
    assert partitions.month_start(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == date(2026, 11, 1)
    assert partitions.month_start(date(2026, 11, 30)) == date(2026, 11, 1)
