"""Settings: embedded defaults with nothing configured, production by environment, secrets never shown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.settings import Environment, Settings

PASSWORD = "s3cret-Pa55word"


def test_embedded_default_is_a_sqlite_file_under_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUDGE_DATABASE_URL", raising=False)

    settings = Settings(data_dir=tmp_path)

    assert settings.environment is Environment.EMBEDDED
    assert settings.database_url.get_secret_value() == f"sqlite:///{tmp_path.resolve()}/nudge.db"
    assert settings.migrates_on_start


def test_production_is_configured_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_ENVIRONMENT", "production")
    monkeypatch.setenv("NUDGE_DATABASE_URL", f"postgresql+psycopg://nudge:{PASSWORD}@db:5432/nudge")

    settings = Settings()

    assert settings.environment is Environment.PRODUCTION
    assert not settings.is_sqlite
    assert not settings.migrates_on_start


def test_database_password_never_appears_in_reprs_or_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NUDGE_DATABASE_URL", f"postgresql+psycopg://nudge:{PASSWORD}@127.0.0.1:1/nudge")
    settings = Settings(database_echo=True)
    caplog.set_level(logging.DEBUG)

    database = settings.open_database()
    logging.getLogger("test").info("settings=%s database=%s engine=%r", settings, database.engine.url, database.engine)

    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.model_dump())
    assert PASSWORD not in caplog.text
    database.dispose()


def test_bad_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_INTAKE_MAX_BATCH_EVENTS", "0")

    with pytest.raises(ValueError, match="intake_max_batch_events"):
        Settings()
