"""Monthly partitions and the retention policy of the time-keyed tables.

On PostgreSQL each table in ``PARTITIONED`` is range-partitioned by month on its date column; the partitions
are named ``partitions.<table>_pYYYY_MM`` and made by the database function ``nudge_ensure_month_partition``
(migration 0009). ``ensure_partitions`` creates the current month's and ``MONTHS_AHEAD`` more, so inserts
never wait on DDL; a writer that books an older or later month first ensures its partition (``ensure_month``).
``apply_retention`` drops whole partitions that ended before the cutoff — instant, no dead rows, no vacuum.
SQLite (the embedded default) has no partitions: the same cutoff deletes rows.

The cutoff is the first day of the month ``NUDGE_DATA_RETENTION_MONTHS`` months before the current one: with
13 months, on 2026-11-21 everything before 2025-10-01 goes, so a year-on-year comparison always has its month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, column, delete, select, table, text
from sqlalchemy.orm import Session

from core.clock import as_utc

# Table → the date column it is partitioned by. Only tables whose every unique key can hold that column without
# weakening it belong here (docs/OPERATIONS.md: why events and messages are not partitioned yet).
PARTITIONED: dict[str, str] = {"cost_entries": "day"}
MONTHS_AHEAD = 3


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What ``apply_retention`` removed: the cutoff, dropped partitions (PostgreSQL), deleted rows (SQLite)."""

    cutoff: date
    dropped_partitions: list[str]
    deleted_rows: dict[str, int]


def month_start(day: date) -> date:
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
    """Make sure the partition holding ``day`` exists (PostgreSQL); ``True`` when it was created now."""
    _check_partitioned(table_name)
    if not is_postgres(session):
        return False
    created = session.scalar(
        text("SELECT nudge_ensure_month_partition(:parent, :month)").bindparams(parent=table_name, month=day)
    )
    return bool(created)


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
    """Drop (PostgreSQL) or delete (SQLite) everything dated before the retention cutoff; the caller commits."""
    if retention_months < 1:
        raise ValueError("retention must keep at least one month")
    cutoff = retention_cutoff(now, retention_months)
    dropped: list[str] = []
    deleted: dict[str, int] = {}
    for table_name, key in PARTITIONED.items():
        if is_postgres(session):
            query = text("SELECT nudge_drop_month_partitions_before(:parent, :cutoff)")
            dropped += session.scalars(query.bindparams(parent=table_name, cutoff=cutoff))
        else:
            target = table(table_name, column(key, Date))
            result = session.execute(delete(target).where(target.c[key] < cutoff))
            deleted[table_name] = result.rowcount  # type: ignore[attr-defined]
    return RetentionResult(cutoff=cutoff, dropped_partitions=dropped, deleted_rows=deleted)


def oldest_day(session: Session, table_name: str) -> date | None:
    """The oldest date held by ``table_name`` (for reports)."""
    key = PARTITIONED[table_name]
    target = table(table_name, column(key, Date))
    value = session.scalar(select(target.c[key]).order_by(target.c[key]).limit(1))
    return value if isinstance(value, date) or value is None else date.fromisoformat(str(value))


def _check_partitioned(table_name: str) -> None:
    if table_name not in PARTITIONED:
        raise ValueError(f"{table_name} is not a partitioned table: choose from {', '.join(PARTITIONED)}")
