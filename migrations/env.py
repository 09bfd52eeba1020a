"""Alembic environment: the engine comes from the caller (``core.migrate``) or from the settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from core.migrate import schema_objects
from core.models import Base
from core.settings import get_settings


def _engine() -> Engine:
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    return get_settings().open_database().engine


def run_migrations() -> None:
    engine = _engine()
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
            compare_type=True,
            include_object=schema_objects(connection),  # PostgreSQL's own copies for partitioned tables
        )
        context.run_migrations()


run_migrations()
