"""The one settings class. Every knob is a ``NUDGE_*`` environment variable (or a line in ``.env``).

Defaults are the embedded ones: a SQLite file under ``NUDGE_DATA_DIR`` and nothing else to run.
Production sets ``NUDGE_DATABASE_URL`` to PostgreSQL and so on; the code paths are the same.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
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


# The sample brand's rules: the embedded default, and what `make demo` checks drafts against.
SAMPLE_BRAND_RULES = Path(__file__).resolve().parent.parent / "data" / "samples" / "brand" / "rules.json"


class EmailProvider(StrEnum):
    OUTBOX = "outbox"
    SENDGRID = "sendgrid"


class SmsProvider(StrEnum):
    OUTBOX = "outbox"
    TWILIO = "twilio"


class InfrastructureStage(StrEnum):
    """The deployment stages the infrastructure estimate follows (README: going to production)."""

    SINGLE_VPS = "single_vps"
    MANAGED = "managed"
    CLUSTER = "cluster"


# A rough monthly bill per stage (USD): one VPS; managed PostgreSQL + Redis + 2 app hosts; a small cluster.
DEFAULT_INFRASTRUCTURE_MONTHLY_USD = {
    InfrastructureStage.SINGLE_VPS: Decimal("40"),
    InfrastructureStage.MANAGED: Decimal("450"),
    InfrastructureStage.CLUSTER: Decimal("3000"),
}


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
    llm_budget_usd_per_day: Decimal | None = Field(
        default=Decimal("10"), ge=0, description="Default LLM spend limit per UTC day; empty: no limit."
    )
    llm_budget_usd_per_month: Decimal | None = Field(
        default=Decimal("100"), ge=0, description="Default LLM spend limit per UTC month; empty: no limit."
    )
    llm_budget_tokens_per_day: int | None = Field(default=None, ge=0, description="Default tokens per UTC day.")
    llm_budget_tokens_per_month: int | None = Field(default=None, ge=0, description="Default tokens per UTC month.")
    llm_max_calls_per_campaign: int = Field(
        default=200, gt=0, description="Hard limit: LLM calls (cache misses) one campaign may make."
    )

    embeddings: EmbeddingsProvider = EmbeddingsProvider.LOCAL
    embedding_model: str = Field(default="text-embedding-3-small", description="OpenAI embedding model.")
    vector_store: VectorStoreKind = VectorStoreKind.LOCAL
    pinecone_api_key: SecretStr = SecretStr("")
    pinecone_index: str = "nudge-creative"
    pinecone_host: str = Field(default="", description="The index host; empty: looked up by name.")
    pinecone_namespace: str = Field(default="default", description="One namespace per brand or tenant.")

    # Send-time checks (guardrails.sendtime): per customer and channel, commercial messages only. The law's
    # limits (US 08:00–21:00, Florida 08:00–20:00 and 3 texts per 24 h) apply whatever is set here.
    send_email_max_per_day: int = Field(default=1, ge=1, description="Marketing e-mails per customer in any 24 h.")
    send_email_max_per_week: int = Field(default=4, ge=1, description="Marketing e-mails per customer in any 7 days.")
    send_sms_max_per_day: int = Field(default=1, ge=1, description="Marketing texts per customer in any 24 h.")
    send_sms_max_per_week: int = Field(default=4, ge=1, description="Marketing texts per customer in any 7 days.")
    send_sms_window_start: time = Field(default=time(8), description="Texts go out from this local time on.")
    send_sms_window_end: time = Field(default=time(21), description="… and before this local time.")
    send_email_quiet_hours: bool = Field(default=False, description="Hold marketing e-mail to the SMS hours too.")

    # Guardrails on every draft and rendered message (guardrails.service).
    brand_rules_path: Path = Field(
        default=SAMPLE_BRAND_RULES, description="The brand's rules.json (sender, postal address, claims, links)."
    )
    sms_max_segments: int = Field(default=2, ge=1, le=10, description="Hard limit: segments one SMS may take.")
    sms_segment_price_usd: Decimal = Field(default=Decimal("0.0083"), ge=0, description="Price of one SMS segment.")

    # Channels (channels/): who sends, and the webhooks that come back. The embedded default sends nothing: every
    # message goes to the local outbox. Selecting sendgrid or twilio without their settings fails at start.
    email_provider: EmailProvider = Field(default=EmailProvider.OUTBOX, description="outbox or sendgrid.")
    sms_provider: SmsProvider = Field(default=SmsProvider.OUTBOX, description="outbox or twilio.")
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", description="Where this API is reached from outside: links and callbacks."
    )
    signing_secret: SecretStr = Field(
        default=SecretStr(""), description="Signs unsubscribe links; empty (embedded only): kept in <data_dir>."
    )
    sendgrid_api_key: SecretStr = SecretStr("")
    sendgrid_host: str = Field(default="https://api.sendgrid.com", description="The API host (a gateway, a fake).")
    sendgrid_sandbox: bool = Field(default=False, description="SendGrid validates but delivers nothing.")
    sendgrid_unsubscribe_group_id: int | None = Field(default=None, description="The ASM unsubscribe group.")
    sendgrid_webhook_public_key: str = Field(default="", description="The Event Webhook's ECDSA verification key.")
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_messaging_service_sid: str = Field(default="", description="The Messaging Service that sends (MG…).")
    webhook_max_age_seconds: int = Field(default=300, gt=0, description="Older signed events are refused.")

    # Workers (workers/): Celery on Redis in production; embedded, Celery's SQLAlchemy transport on a SQLite file.
    redis_url: str = Field(default="", description="Redis for Celery's broker and results; empty: embedded.")
    celery_always_eager: bool | None = Field(
        default=None, description="Run tasks in the caller; empty: yes without Redis (one process does it all)."
    )
    send_batch_size: int = Field(default=500, ge=1, le=1000, description="Recipients per send task.")
    send_in_flight_seconds: int = Field(
        default=600,
        ge=1,
        description="A message still pending this long after its write-ahead lost its worker (above the 300 s "
        "send task limit): it is reconciled.",
    )
    send_reconcile_after_seconds: int = Field(
        default=7200,
        ge=1,
        description="With no provider event naming it by then, a message lost in a crash is sent again.",
    )
    celery_visibility_timeout_seconds: int = Field(
        default=6 * 60 * 60,
        ge=10,
        description="Redis gives a task a dead worker held to another worker after this long.",
    )
    retention_schedule: str = Field(
        default="0 9 1 * *", description="Cron (UTC) of the scheduled retention plan: monthly, 1st at 09:00."
    )
    cart_trigger_window_minutes: int = Field(default=60, ge=1, description="Abandoned-cart wait before the check.")
    cart_trigger_cooldown_days: int = Field(
        default=7, ge=0, description="At most one abandoned-cart message per customer in this many days."
    )

    # Throughput, not per customer (guardrails.ratelimit): every triggered send of this process shares it.
    triggered_send_max_per_second: float = Field(
        default=10.0, gt=0, description="Hard limit: real-time (triggered) sends per second, bursts up to 1 s worth."
    )

    # Experiments (experiments/, campaigns.report): the global holdout, attribution and ROI.
    global_holdout_fraction: float = Field(
        default=0.05, ge=0, lt=1, description="Share of all customers who get no marketing at all; 0 disables."
    )
    global_holdout_salt: str = Field(
        default="nudge-global-holdout-1", min_length=1, description="Hashes customers into the global holdout."
    )
    attribution_window_days: float = Field(
        default=14, gt=0, description="Orders this many days after assignment count as the campaign's outcome."
    )
    pre_period_days: float = Field(
        default=90, gt=0, description="Revenue this many days before assignment is CUPED's covariate."
    )
    roi_margin: float = Field(default=0.30, ge=0, le=1, description="Share of incremental revenue that is profit.")

    # Cost and capacity (core.ledger, web.metrics, workers.metrics, core.partitions).
    email_price_usd: Decimal = Field(default=Decimal("0.001"), ge=0, description="What one e-mail costs to send.")
    infrastructure_stage: InfrastructureStage = Field(
        default=InfrastructureStage.SINGLE_VPS, description="Which deployment stage's monthly estimate is booked."
    )
    infrastructure_monthly_usd: dict[InfrastructureStage, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_INFRASTRUCTURE_MONTHLY_USD),
        description="Estimated monthly infrastructure cost per stage (JSON), booked a day at a time.",
    )
    infrastructure_max_revenue_share: float = Field(
        default=0.20, gt=0, le=1, description="Infrastructure cost above this share of attributed revenue is flagged."
    )
    metrics_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token Prometheus sends to /metrics; empty: networks only."
    )
    metrics_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list, description="Networks that may read /metrics without the token (JSON list of CIDRs)."
    )
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Each Celery worker serves its metrics on this port; empty: none."
    )
    data_retention_months: int = Field(
        default=13, ge=1, description="Cost ledger and event partitions (rows on SQLite) older than this are dropped."
    )
    capacity_results_path: Path | None = Field(
        default=None, description="Where bench/load.py writes measured throughput; empty: <data_dir>/capacity.json."
    )

    # The web UI (web/): login sessions, password guessing, and when a campaign needs a second approver.
    session_ttl_minutes: int = Field(default=480, gt=0, description="A login lasts this long, then signs out.")
    login_max_failures: int = Field(default=5, gt=0, description="Failed logins in a row before the account locks.")
    login_lockout_minutes: int = Field(default=15, gt=0, description="How long a locked account refuses logins.")
    escalation_audience_size: int | None = Field(
        default=10_000, ge=0, description="Campaigns sending to more customers need a second approver; empty: never."
    )
    escalation_spend_usd: Decimal | None = Field(
        default=Decimal("5000"), ge=0, description="Campaigns expected to cost more need a second approver."
    )

    @field_validator(
        "llm_budget_usd_per_day",
        "llm_budget_usd_per_month",
        "llm_budget_tokens_per_day",
        "llm_budget_tokens_per_month",
        "escalation_audience_size",
        "escalation_spend_usd",
        mode="before",
    )
    @classmethod
    def _empty_is_no_limit(cls, value: object) -> object:
        # `NUDGE_LLM_BUDGET_USD_PER_DAY=` (set to nothing) turns a default limit off instead of failing to parse.
        return None if value == "" else value

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
    def celery_broker_url(self) -> str:
        """Redis when configured, else Celery's SQLAlchemy transport on ``<data_dir>/celery.db``."""
        return self.redis_url or f"sqla+sqlite:///{(self.data_dir / 'celery.db').resolve()}"

    @property
    def capacity_results_file(self) -> Path:
        """``NUDGE_CAPACITY_RESULTS_PATH``, else ``<data_dir>/capacity.json``."""
        return self.capacity_results_path or self.data_dir / "capacity.json"

    @property
    def celery_eager(self) -> bool:
        """Whether tasks run in the caller: as set, else when there is no Redis (the embedded default)."""
        return self.celery_always_eager if self.celery_always_eager is not None else not self.redis_url

    @property
    def celery_result_backend(self) -> str:
        return self.redis_url or f"db+sqlite:///{(self.data_dir / 'celery-results.db').resolve()}"

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
