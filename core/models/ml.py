"""Model registry, training runs and predictions: which model scored whom, with what, as of when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.models.base import Base, BigId, enum_column


class ModelKind(StrEnum):
    """Contractual churn ends a subscription; non-contractual churn is the absence of orders; CLV is BG/NBD +
    Gamma-Gamma revenue over a horizon (contractual CLV needs no model: it follows from the churn hazard)."""

    CHURN_CONTRACTUAL = "churn_contractual"
    CHURN_NONCONTRACTUAL = "churn_noncontractual"
    CLV = "clv"


class ModelStage(StrEnum):
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ModelVersion(Base):
    """A trained model artifact: version n of a kind, in one stage; at most one production version per kind."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[ModelKind] = mapped_column(enum_column(ModelKind))
    version: Mapped[int]
    stage: Mapped[ModelStage] = mapped_column(enum_column(ModelStage), default=ModelStage.STAGING)
    artifact_path: Mapped[str] = mapped_column(String(500))
    config_hash: Mapped[str] = mapped_column(String(64))
    code_version: Mapped[str] = mapped_column(String(32))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    training_window: Mapped[dict[str, Any]] = mapped_column(default=dict, comment="as_of, horizon, history span")
    feature_profile: Mapped[dict[str, Any]] = mapped_column(default=dict, comment="Training distributions for PSI.")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stage_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("kind", "version"),
        Index(None, "kind", "stage"),
        # The database itself guarantees at most one production version per kind, even under concurrent promotes.
        Index(
            "uq_model_versions_one_production",
            "kind",
            unique=True,
            postgresql_where=text("stage = 'production'"),
            sqlite_where=text("stage = 'production'"),
        ),
    )


class TrainingRun(Base):
    """Every training attempt, kept so the hard limit on training jobs per period can be enforced."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[ModelKind] = mapped_column(enum_column(ModelKind))
    status: Mapped[RunStatus] = mapped_column(enum_column(RunStatus), default=RunStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "kind", "started_at"),)


class Prediction(Base):
    """One model's score for one customer as of one moment (churn: probability; CLV: discounted value)."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    as_of: Mapped[datetime]
    value: Mapped[float] = mapped_column(Float)
    scored_at: Mapped[datetime] = mapped_column(default=utcnow)

    model_version: Mapped[ModelVersion] = relationship(lazy="raise")

    __table_args__ = (
        UniqueConstraint("model_version_id", "as_of", "customer_id"),
        Index(None, "customer_id", "as_of"),
    )
