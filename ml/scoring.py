"""Batch scoring: every customer, in chunks of customer ids, into ``predictions`` tagged with the model version.

A chunk is a half-open id range, so the same function can later run as one Celery task per chunk on
many workers. Re-scoring the same (version, as-of) replaces that chunk's rows, so a retried chunk
never duplicates. Writes go through ``core.bulk.insert_rows`` (``COPY`` on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.bulk import insert_rows
from core.clock import utcnow
from core.errors import BadRequest
from core.models import Customer, ModelKind, ModelStage, ModelVersion, Prediction

CHUNK_SIZE = 50_000

# Given a session, the as-of moment and a chunk's customer ids, return (customer_ids, values) to store.
ChunkScorer = Callable[[Session, datetime, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, slots=True)
class IdRange:
    """Customers with ``first <= id < stop``."""

    first: int
    stop: int


def id_ranges(session: Session, chunk_size: int = CHUNK_SIZE) -> Iterator[IdRange]:
    """Half-open ranges of customer ids holding about ``chunk_size`` customers each."""
    low, high = session.execute(select(func.min(Customer.id), func.max(Customer.id))).one()
    if low is None:
        return
    for first in range(low, high + 1, chunk_size):
        yield IdRange(first, min(first + chunk_size, high + 1))


def customer_ids_in(session: Session, ids: IdRange) -> np.ndarray:
    query = select(Customer.id).where(Customer.id >= ids.first, Customer.id < ids.stop).order_by(Customer.id)
    return np.fromiter(session.scalars(query), dtype=np.int64)


def score_chunk(session: Session, version: ModelVersion, as_of: datetime, ids: IdRange, scorer: ChunkScorer) -> int:
    """Score one id range and replace its stored predictions for (version, as_of); returns rows written."""
    customers, values = scorer(session, as_of, customer_ids_in(session, ids))
    if customers.shape != values.shape:
        raise ValueError("a scorer must return one value per customer")
    if not np.all(np.isfinite(values)):
        raise BadRequest(f"the {version.kind.value} model produced non-finite scores; refusing to store them")
    session.execute(
        delete(Prediction).where(
            Prediction.model_version_id == version.id,
            Prediction.as_of == as_of,
            Prediction.customer_id >= ids.first,
            Prediction.customer_id < ids.stop,
        )
    )
    now = utcnow()
    rows = [
        {
            "model_version_id": version.id,
            "customer_id": int(customer),
            "as_of": as_of,
            "value": float(value),
            "scored_at": now,
        }
        for customer, value in zip(customers.tolist(), values.tolist(), strict=True)
    ]
    insert_rows(session, Prediction, rows)
    return len(rows)


def latest_scores(session: Session, kind: ModelKind) -> pd.DataFrame:
    """The production model's newest scores: a frame indexed by customer_id with ``value`` and ``as_of``."""
    version_id = select(ModelVersion.id).where(ModelVersion.kind == kind, ModelVersion.stage == ModelStage.PRODUCTION)
    newest = (
        select(func.max(Prediction.as_of)).where(Prediction.model_version_id == version_id.scalar_subquery())
    ).scalar_subquery()
    query = select(Prediction.customer_id, Prediction.value, Prediction.as_of).where(
        Prediction.model_version_id == version_id.scalar_subquery(), Prediction.as_of == newest
    )
    frame = pd.DataFrame(session.execute(query).all(), columns=["customer_id", "value", "as_of"])
    if frame.empty:
        raise BadRequest(f"no {kind.value} scores from the production model: run `nudge score` first")
    return frame.set_index("customer_id")
