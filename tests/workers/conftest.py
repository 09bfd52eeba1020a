"""What the worker tests share: a real Redis for the session, Celery apps built from settings on the test
database, and stand-ins for the campaigns services, so the tasks' plumbing is tested on its own."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from core.db import Database
from core.settings import Settings
from tests.support.redis import redis_server
from workers.app import NudgeCelery, celery_app, create_celery

MakeApp = Callable[..., NudgeCelery]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``redis://127.0.0.1:PORT`` of a real Redis server started for the session (no database number)."""
    with redis_server() as url:
        yield url


def url_of(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)


@contextmanager
def current(app: NudgeCelery) -> Iterator[NudgeCelery]:
    """Make ``app`` the one ``workers.tasks`` resolve to, in every thread; restore the process's app after."""
    app.set_default()
    app.set_current()
    try:
        yield app
    finally:
        celery_app.set_default()
        celery_app.set_current()
        app.forget_database()
        app.close()


@pytest.fixture
def make_app(sqlite_db: Database, tmp_path: Path) -> Iterator[MakeApp]:
    """Build a current Celery app on the test SQLite database with these settings."""
    with ExitStack() as stack:

        def make(**settings: Any) -> NudgeCelery:
            values = {"database_url": url_of(sqlite_db), "data_dir": tmp_path, **settings}
            return stack.enter_context(current(create_celery(Settings(**values))))

        yield make


@pytest.fixture
def eager_app(make_app: MakeApp) -> NudgeCelery:
    return make_app(celery_always_eager=True)


class StandIn:
    """A campaigns service module whose functions a test replaces by assignment, undone after the test."""

    def __init__(self, module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_monkeypatch", monkeypatch)

    def __setattr__(self, name: str, value: Any) -> None:
        self._monkeypatch.setattr(self._module, name, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], StandIn]:
    """Stand in for functions of ``campaigns.<name>`` (the tasks call them through the module)."""

    def make(name: str) -> StandIn:
        return StandIn(importlib.import_module(f"campaigns.{name}"), monkeypatch)

    return make
