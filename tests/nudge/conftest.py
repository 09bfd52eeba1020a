"""What the command tests share: the database a command opens, from ``NUDGE_DATABASE_URL``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.db import Database
from core.settings import get_settings


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The database the commands use: a fresh SQLite file, which they migrate on opening."""
    url = f"sqlite:///{tmp_path / 'nudge.db'}"
    monkeypatch.setenv("NUDGE_DATABASE_URL", url)
    get_settings.cache_clear()
    database = Database.from_url(url)
    yield database
    database.dispose()
    get_settings.cache_clear()
