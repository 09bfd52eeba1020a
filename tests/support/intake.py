"""Helpers for intake tests: HTTP Basic headers, a write key, and a snapshot of what intake can write."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import select, text

from audience.sources import create_source
from core.db import Database
from core.models import Customer

WRITTEN_TABLES = ("customers", "events", "sources")


def basic_auth(write_key: str) -> dict[str, str]:
    """Segment's header: the write key as the Basic username, empty password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def new_write_key(db: Database, name: str = "website") -> str:
    with db.session() as session:
        return create_source(session, name).write_key


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row intake could write, to assert a refused call changed nothing."""
    with db.engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
            for table in WRITTEN_TABLES
        }


def customer(db: Database, external_id: str) -> Customer | None:
    with db.session() as session:
        return session.scalar(select(Customer).where(Customer.external_id == external_id))
