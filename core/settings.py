"""The one settings class. Every knob is a ``NUDGE_*`` environment variable (or a line in ``.env``).

Defaults are the embedded ones: a SQLite file under ``NUDGE_DATA_DIR`` and nothing else to run.
Production sets ``NUDGE_DATABASE_URL`` to PostgreSQL and so on; the code paths are the same.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.db import Database


class Environment(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Nudge's configuration; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="NUDGE_", env_file=".env", extra="ignore")

    environment: Environment = Environment.EMBEDDED
    data_dir: Path = Field(default=Path("var"), description="Where embedded state (SQLite file, outbox) lives.")
    database_url: SecretStr = Field(
        default=SecretStr(""),
        description="SQLAlchemy URL; empty means the embedded SQLite file <data_dir>/nudge.db.",
    )
    database_echo: bool = False
    log_level: str = "INFO"

    api_host: str = "127.0.0.1"
    api_port: int = 8000

    intake_max_event_bytes: int = Field(
        default=32 * 1024, gt=0, description="Largest single /v1/identify or /v1/track body."
    )
    intake_max_batch_bytes: int = Field(default=500 * 1024, gt=0, description="Largest /v1/batch body.")
    intake_max_batch_events: int = Field(default=1000, gt=0, description="Most events in one /v1/batch call.")

    model_dir: Path | None = Field(default=None, description="Model artifacts; empty means <data_dir>/models.")
    ml_max_training_jobs_per_day: int = Field(default=20, gt=0, description="Hard limit: training runs per 24 h.")
    ml_max_backfill_days: int = Field(default=365, gt=0, description="Hard limit: span of one scoring backfill.")

    @model_validator(mode="after")
    def _embedded_database(self) -> Settings:
        if not self.database_url.get_secret_value():
            self.database_url = SecretStr(f"sqlite:///{(self.data_dir / 'nudge.db').resolve()}")
        return self

    @property
    def models_path(self) -> Path:
        """Where model artifacts are written: ``NUDGE_MODEL_DIR``, else ``<data_dir>/models``."""
        return self.model_dir or self.data_dir / "models"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_secret_value().startswith("sqlite")

    @property
    def migrates_on_start(self) -> bool:
        """Only the embedded SQLite file migrates on opening; other databases are migrated by ``nudge db upgrade``."""
        return self.environment is Environment.EMBEDDED and self.is_sqlite

    def open_database(self) -> Database:
        """The configured database (the URL, which may hold a password, stays out of logs and reprs)."""
        return Database.from_url(self.database_url.get_secret_value(), echo=self.database_echo)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
