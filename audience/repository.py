"""Every audience query that more than one service needs. Bulk statements, one round trip per chunk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.models import Customer

# SQLite allows 32,766 bound parameters per statement; stay well under for wide rows.
CHUNK = 1000


def chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def insert_for(session: Session) -> Any:
    """The dialect's ``insert`` (both have ``on_conflict_do_*``)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def customer_ids(session: Session, external_ids: Iterable[str]) -> dict[str, int]:
    """Map external ids to customer ids, for those that exist."""
    wanted = list(set(external_ids))
    found: dict[str, int] = {}
    for chunk in chunks(wanted):
        rows = session.execute(select(Customer.external_id, Customer.id).where(Customer.external_id.in_(chunk)))
        found.update(dict(rows.tuples().all()))
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
    insert = insert_for(session)
    ids: dict[str, int] = {}
    now = utcnow()
    for chunk in chunks(rows):
        values = [{"attributes": {}, **row, "created_at": now, "updated_at": now} for row in chunk]
        statement = insert(Customer).values(values)
        updates: dict[str, ColumnElement[Any] | Any] = {
            name: statement.excluded[name] for name in columns if name not in ("external_id", "attributes")
        }
        if "attributes" in columns:
            updates["attributes"] = _merged_attributes(session, statement.excluded.attributes)
        updates["updated_at"] = now
        statement = statement.on_conflict_do_update(index_elements=["external_id"], set_=updates)
        result = session.execute(statement.returning(Customer.external_id, Customer.id))
        ids.update(dict(result.tuples().all()))
    return ids


def _merged_attributes(session: Session, incoming: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return Customer.attributes.op("||")(incoming)
    return func.json_patch(Customer.attributes, incoming)
