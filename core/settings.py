"""The one settings class. Every knob is a ``NUDGE_*`` environment variable (or a line in ``.env``).

Defaults are the embedded ones: a SQLite file under ``NUDGE_DATA_DIR`` and nothing else to run.
Production sets ``NUDGE_DATABASE_URL`` to PostgreSQL and so on; the code paths are the same.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.db import Database


class Environment(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


class LlmProvider(StrEnum):
    OPENAI = "openai"
    OPENAI_COMPATIBLE = "openai_compatible"
    LOCAL = "local"


class EmbeddingsProvider(StrEnum):
    LOCAL = "local"
    OPENAI = "openai"


class VectorStoreKind(StrEnum):
    LOCAL = "local"
    PINECONE = "pinecone"


class TokenPrice(BaseModel):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


# OpenAI standard-tier list prices (USD per 1M tokens); the local model costs nothing per token.
DEFAULT_TOKEN_PRICES = {
    "gpt-4.1": TokenPrice(input=2.00, output=8.00),
    "gpt-4.1-mini": TokenPrice(input=0.40, output=1.60),
    "gpt-4.1-nano": TokenPrice(input=0.10, output=0.40),
    "gpt-4o-mini": TokenPrice(input=0.15, output=0.60),
    "text-embedding-3-small": TokenPrice(input=0.02, output=0.0),
}


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

    llm: LlmProvider = Field(default=LlmProvider.LOCAL, description="Who drafts: openai, openai_compatible, local.")
    llm_model: str = Field(default="gpt-4.1-mini", description="Primary chat model (openai, openai_compatible).")
    llm_fallback_model: str = Field(default="gpt-4.1-nano", description="Cheaper model tried when the primary fails.")
    llm_base_url: str = Field(default="", description="An OpenAI-compatible server (vLLM, Ollama, llama.cpp).")
    openai_api_key: SecretStr = Field(default=SecretStr(""), description="OpenAI key (or the compatible server's).")
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, description="Retries on transient errors (network, 429, 5xx).")
    local_model_path: Path | None = Field(default=None, description="GGUF file; empty: the bundled Gemma 3 270M.")
    token_prices: dict[str, TokenPrice] = Field(default_factory=lambda: dict(DEFAULT_TOKEN_PRICES))

    embeddings: EmbeddingsProvider = EmbeddingsProvider.LOCAL
    embedding_model: str = Field(default="text-embedding-3-small", description="OpenAI embedding model.")
    vector_store: VectorStoreKind = VectorStoreKind.LOCAL
    pinecone_api_key: SecretStr = SecretStr("")
    pinecone_index: str = "nudge-creative"
    pinecone_host: str = Field(default="", description="The index host; empty: looked up by name.")
    pinecone_namespace: str = Field(default="default", description="One namespace per brand or tenant.")

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
