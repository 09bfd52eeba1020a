"""What monitoring keeps between scrapes: the latest drift measured per production model.

Measuring drift builds a feature snapshot of the whole scored population, far too slow for a Prometheus
scrape; a daily task measures it (``workers.maintenance``) and ``/metrics`` reads the newest row per model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.models.base import Base, BigId, enum_column
from core.models.ml import ModelKind


class DriftMeasurement(Base):
    """One feature's PSI for one model version, as measured at one time."""

    __tablename__ = "drift_measurements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[ModelKind] = mapped_column(enum_column(ModelKind))
    version: Mapped[int]
    feature: Mapped[str] = mapped_column(String(64))
    psi: Mapped[float]
    measured_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index(None, "kind", "measured_at"),)
