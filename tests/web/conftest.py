"""An app on the test database (SQLite and PostgreSQL, via ``db``), its client, and a write key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.db import Database
from core.settings import Settings
from tests.support.intake import basic_auth, new_write_key
from web.app import create_app

MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(db: Database) -> Iterator[MakeClient]:
    """A client for an app on ``db`` with these settings (e.g. smaller intake limits)."""
    with ExitStack() as stack:

        def make(**settings: Any) -> TestClient:
            return stack.enter_context(TestClient(create_app(Settings(**settings), database=db)))

        yield make


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


@pytest.fixture
def write_key(db: Database) -> str:
    return new_write_key(db)


@pytest.fixture
def auth(write_key: str) -> dict[str, str]:
    return basic_auth(write_key)
