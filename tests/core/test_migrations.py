"""The migrations build the same schema as the models, on both databases, and run down again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from core import migrate
from core.db import Database
from core.models import Base


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": migrate.schema_objects(connection)})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []
    assert migrate.is_current(db.engine)


def test_migrations_run_down_to_nothing_and_up_again(tmp_path: object, postgres_url: str) -> None:
    for url in (f"sqlite:///{tmp_path}/roundtrip.db", postgres_url.replace("/nudge", "/postgres")):
        database = Database.from_url(url)
        migrate.upgrade(database.engine)
        migrate.downgrade(database.engine, "base")
        assert set(inspect(database.engine).get_table_names()) == {"alembic_version"}
        migrate.upgrade(database.engine)
        assert migrate.is_current(database.engine)
        migrate.downgrade(database.engine, "base")
        database.dispose()
