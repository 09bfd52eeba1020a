"""Every audience query that more than one service needs. Bulk statements, one round trip per chunk.

The generic bulk helpers (``insert_rows``, ``chunks``, ``insert_for``) are in ``core.bulk``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.bulk import BATCH, among, chunks, insert_for, table_of
from core.clock import utcnow
from core.models import Base, Customer


def customer_ids(session: Session, external_ids: Iterable[str]) -> dict[str, int]:
    """Map external ids to customer ids, for those that exist."""
    wanted = list(set(external_ids))
    found: dict[str, int] = {}
    for chunk in chunks(wanted):
        rows = session.execute(select(Customer.external_id, Customer.id).where(among(Customer.external_id, chunk)))
        found.update(dict(rows.all()))
    return found


def upsert_customers(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert customers or update the columns given, keyed by ``external_id``; return their ids.

    Every row must carry ``external_id`` and the same set of keys. A row's ``attributes`` is merged
    into the stored attributes (new keys win), never replacing keys it does not mention.
    """
    if not rows:
        return {}
    columns = set(rows[0])
    if "external_id" not in columns or any(set(row) != columns for row in rows):
        raise ValueError("upsert_customers needs rows with external_id and identical keys")
    now = utcnow()
    statement = _customer_upsert(session, columns, now)
    # One compiled statement run as an executemany: a 1,000-row VALUES list per chunk spent most of its
    # time being compiled and re-parsed by the driver (23,570 customers took 4.6 s on SQLite, 7 s on PostgreSQL).
    for batch in chunks(rows, BATCH):
        session.execute(statement, [{"attributes": {}, **row, "created_at": now, "updated_at": now} for row in batch])
    return customer_ids(session, [row["external_id"] for row in rows])


def _customer_upsert(session: Session, columns: set[str], now: datetime) -> Any:
    statement = insert_for(session)(table_of(Customer))
    updates: dict[str, ColumnElement[Any] | Any] = {
        name: statement.excluded[name] for name in columns if name not in ("external_id", "attributes")
    }
    if "attributes" in columns:
        updates["attributes"] = _merged_attributes(session, statement.excluded.attributes)
    updates["updated_at"] = now
    return statement.on_conflict_do_update(index_elements=["external_id"], set_=updates)


def existing_external_ids(session: Session, model: type[Base], external_ids: Iterable[str]) -> set[str]:
    """Which of ``external_ids`` a table (orders, subscriptions, …) already holds."""
    column = table_of(model).c.external_id
    found: set[str] = set()
    for chunk in chunks(list(set(external_ids))):
        found.update(session.scalars(select(column).where(among(column, chunk))))
    return found


def _merged_attributes(session: Session, incoming: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return Customer.attributes.op("||")(incoming)
    return func.json_patch(Customer.attributes, incoming)
