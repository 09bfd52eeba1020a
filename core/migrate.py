"""Run the Alembic migrations in ``migrations/`` against a database (both SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, ForeignKeyConstraint, UniqueConstraint, inspect

from core.errors import ServiceUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run again."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest migration (the readiness probe asks this)."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


def ensure_current(engine: Engine, *, upgrade_if_behind: bool) -> None:
    """Before serving: bring the schema up to date if allowed, else refuse unless it is current.

    Only the embedded SQLite file is upgraded on its own (``Settings.migrates_on_start``); a shared
    production database is migrated on purpose, by ``nudge db upgrade``, never as a side effect of starting.
    """
    if upgrade_if_behind:
        upgrade(engine)
    elif not is_current(engine):
        raise ServiceUnavailable("the database schema is not current: run `nudge db upgrade` first")


def schema_objects(connection: Connection) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """What autogenerate and the schema test leave out on PostgreSQL, which keeps two things its own way:

    - a foreign key into a partitioned table (outcomes → provider_events) gets an internal copy per partition, on
      the referencing table; reflection lists them beside the real one;
    - a unique constraint with the primary key's columns (provider_events' ``(id, received_at)``, the target of
      that foreign key, which SQLite needs) is dropped as redundant: the primary key enforces it.
    """
    inspector = inspect(connection)

    def include(item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if reflected and isinstance(item, ForeignKeyConstraint):
            return item.referred_table.schema != "partitions"
        if not reflected and compare_to is None and isinstance(item, UniqueConstraint):
            primary_key = inspector.get_pk_constraint(item.table.name)["constrained_columns"]
            return set(primary_key) != {column.name for column in item.columns}
        return True

    return include
