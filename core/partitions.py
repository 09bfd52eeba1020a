"""Monthly partitions and the retention policy of the time-keyed tables.

On PostgreSQL each table in ``PARTITIONED`` is range-partitioned by month on its date or time column (a
``timestamptz`` in UTC months); the partitions are named ``partitions.<table>_pYYYY_MM`` and made by the
database function ``nudge_ensure_month_partition`` (migrations 0009, 0010). ``ensure_partitions`` creates the
current month's and ``MONTHS_AHEAD`` more, so inserts rarely wait on DDL; a writer ensures the month it writes
first (``ensure_month``: one cheap statement when it exists), so a missed maintenance run or an older date
never fails an insert. ``apply_retention`` drops whole partitions that ended before the cutoff — instant, no
dead rows, no vacuum. SQLite (the embedded default) has no partitions: the same cutoff deletes rows.

The logs ``events`` and ``provider_events`` keep their idempotency keys in unpartitioned tables (``KEY_TABLES``:
a key unique for ever cannot contain the month); retention deletes the keys received before the same cutoff, on
every backend, so a replay older than the retention window is stored again.

The cutoff is the first day of the month ``NUDGE_DATA_RETENTION_MONTHS`` months before the current one: with
13 months, on 2026-11-21 everything before 2025-10-01 goes, so a year-on-year comparison always has its month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import Column, DateTime, delete, select, text
from sqlalchemy.orm import Session

from core.clock import as_utc
from core.models import Base
from core.models.base import UTCDateTime

# Table → the date or time column it is partitioned by. Only tables whose every unique key holds that column
# belong here; a key that must be unique for ever lives in a key table (docs/OPERATIONS.md).
PARTITIONED: dict[str, str] = {"cost_entries": "day", "events": "received_at", "provider_events": "received_at"}
# Unpartitioned key table → its time column: the idempotency keys of a partitioned log, deleted past retention.
KEY_TABLES: dict[str, str] = {"event_keys": "received_at", "provider_event_keys": "received_at"}
# Partitioned table → (referencing table, its id column, its time column): foreign keys into the table. A
# partition still referenced cannot be detached, so retention clears those references first (the SET NULL that
# a row delete does on SQLite); the referencing rows stay.
REFERENCED_BY: dict[str, tuple[str, str, str]] = {"provider_events": ("outcomes", "event_id", "event_received_at")}
MONTHS_AHEAD = 3


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What ``apply_retention`` removed: the cutoff, dropped partitions (PostgreSQL), deleted rows (SQLite)."""

    cutoff: date
    dropped_partitions: list[str]
    deleted_rows: dict[str, int]


def month_start(day: date) -> date:
    """The first of ``day``'s month; for a ``datetime``, of its UTC month."""
    if isinstance(day, datetime):
        day = as_utc(day).date()
    return date(day.year, day.month, 1)


def add_months(day: date, months: int) -> date:
    """The first of the month ``months`` after (or before, if negative) ``day``'s month."""
    years, month_index = divmod(day.month - 1 + months, 12)
    return date(day.year + years, month_index + 1, 1)


def retention_cutoff(now: datetime, retention_months: int) -> date:
    """Rows dated before this day are past retention."""
    return add_months(as_utc(now).date(), -retention_months)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def ensure_month(session: Session, table_name: str, day: date) -> bool:
    """Make sure the partition holding ``day`` (a date, or a time: its UTC month) exists (PostgreSQL); ``True``
    when it was created now."""
    _check_partitioned(table_name)
    if not is_postgres(session):
        return False
    created = session.scalar(_ENSURE, {"parent": table_name, "month": month_start(day)})
    return bool(created)


_ENSURE = text("SELECT nudge_ensure_month_partition(:parent, :month)")


def ensure_partitions(session: Session, now: datetime, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create this month's partition and ``months_ahead`` more for every partitioned table; the names created."""
    this_month = month_start(as_utc(now).date())
    created = []
    for table_name in PARTITIONED:
        for offset in range(months_ahead + 1):
            month = add_months(this_month, offset)
            if ensure_month(session, table_name, month):
                created.append(partition_name(table_name, month))
    return created


def partition_name(table_name: str, month: date) -> str:
    return f"{table_name}_p{month:%Y_%m}"


def list_partitions(session: Session, table_name: str) -> list[str]:
    """The partitions of ``table_name``, oldest first (empty on SQLite)."""
    _check_partitioned(table_name)
    if not is_postgres(session):
        return []
    query = text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:parent AS regclass) ORDER BY c.relname"
    )
    return list(session.scalars(query.bindparams(parent=table_name)))


def apply_retention(session: Session, now: datetime, retention_months: int) -> RetentionResult:
    """Drop (PostgreSQL) or delete (SQLite) everything dated before the retention cutoff, then delete the
    idempotency keys received before it (both backends); the caller commits.

    The logs go first: a key is deleted only once its row is gone, so a key never goes missing for a stored row.
    """
    if retention_months < 1:
        raise ValueError("retention must keep at least one month")
    cutoff = retention_cutoff(now, retention_months)
    dropped: list[str] = []
    deleted: dict[str, int] = {}
    for table_name in PARTITIONED:
        if is_postgres(session):
            _release_references(session, table_name, cutoff)
            query = text("SELECT nudge_drop_month_partitions_before(:parent, :cutoff)")
            dropped += session.scalars(query.bindparams(parent=table_name, cutoff=cutoff))
        else:
            deleted[table_name] = _delete_before(session, table_name, PARTITIONED[table_name], cutoff)
    for table_name, key in KEY_TABLES.items():
        deleted[table_name] = _delete_before(session, table_name, key, cutoff)
    return RetentionResult(cutoff=cutoff, dropped_partitions=dropped, deleted_rows=deleted)


def _release_references(session: Session, table_name: str, cutoff: date) -> None:
    """Set to NULL the foreign keys that point at rows of ``table_name`` before ``cutoff`` (PostgreSQL).

    Found through the referencing table's unique id index and the old partitions alone (pruned), so a day with
    nothing to drop costs next to nothing."""
    if table_name not in REFERENCED_BY:
        return
    referencing, id_column, time_column = REFERENCED_BY[table_name]
    target = _column(table_name, PARTITIONED[table_name])
    old = select(target.table.c.id).where(target < datetime.combine(cutoff, time(), tzinfo=UTC))
    child = Base.metadata.tables[referencing]
    release = child.update().where(child.c[id_column].in_(old)).values({id_column: None, time_column: None})
    session.execute(release)


def _delete_before(session: Session, table_name: str, key: str, cutoff: date) -> int:
    """Delete the rows of ``table_name`` whose ``key`` (a date, or a time in UTC) is before ``cutoff``."""
    target = _column(table_name, key)
    bound = datetime.combine(cutoff, time(), tzinfo=UTC) if _is_time(target) else cutoff
    result = session.execute(delete(target.table).where(target < bound))
    return int(result.rowcount)  # type: ignore[attr-defined]


def oldest_day(session: Session, table_name: str) -> date | None:
    """The oldest date (for a time column, UTC date) held by ``table_name`` (for reports)."""
    target = _column(table_name, PARTITIONED[table_name])
    value = session.scalar(select(target).order_by(target).limit(1))
    if isinstance(value, datetime):
        return as_utc(value).date()
    return value if isinstance(value, date) or value is None else date.fromisoformat(str(value))


def _column(table_name: str, key: str) -> Column[object]:
    return Base.metadata.tables[table_name].c[key]


def _is_time(target: Column[object]) -> bool:
    return isinstance(target.type, DateTime | UTCDateTime)


def _check_partitioned(table_name: str) -> None:
    if table_name not in PARTITIONED:
        raise ValueError(f"{table_name} is not a partitioned table: choose from {', '.join(PARTITIONED)}")
