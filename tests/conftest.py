"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL server.

The schema is built once per backend with the real migrations; after each test every table is
emptied, so code under test may commit the way it does in production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from core import migrate, partitions
from core.db import Database
from core.models import Base
from tests.support.demo import DemoRun, run_demo
from tests.support.postgres import postgres_server

BACKENDS = ["sqlite", "postgres"]
TEST_MONTHS_FROM, TEST_MONTHS = datetime(2026, 1, 1, tzinfo=UTC), 24


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session (or ``NUDGE_TEST_POSTGRES_URL`` if set)."""
    if url := os.environ.get("NUDGE_TEST_POSTGRES_URL"):
        yield url
        return
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``nudge demo`` run once per session on its own embedded data directory (minutes: it trains and drafts),
    shared by every test that reads what it made. The environment it ran in is restored afterwards."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return run_demo(tmp_path_factory.mktemp("demo") / "var", monkeypatch)


@pytest.fixture(scope="session")
def _sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("sqlite") / "nudge.db"
    database = Database.from_url(f"sqlite:///{path}")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def _postgres_database(postgres_url: str) -> Iterator[Database]:
    database = Database.from_url(postgres_url)
    migrate.upgrade(database.engine)
    with database.session() as session:
        # The migration partitions the months around today; tests also write rows dated in their own fixed
        # months through the ORM (the product's writers create a missing month themselves).
        partitions.ensure_partitions(session, TEST_MONTHS_FROM, months_ahead=TEST_MONTHS)
    yield database
    database.dispose()


def _empty_all_tables(database: Database) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated database, once on SQLite and once on PostgreSQL; emptied after the test."""
    database: Database = request.getfixturevalue(f"_{request.param}_database")
    yield database
    _empty_all_tables(database)


@pytest.fixture
def sqlite_db(_sqlite_database: Database) -> Iterator[Database]:
    yield _sqlite_database
    _empty_all_tables(_sqlite_database)


@pytest.fixture
def postgres_db(_postgres_database: Database) -> Iterator[Database]:
    yield _postgres_database
    _empty_all_tables(_postgres_database)
