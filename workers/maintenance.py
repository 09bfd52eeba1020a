"""Daily upkeep on the beat: partitions and retention, the infrastructure cost estimate, and model drift.

- ``nudge.maintenance.partitions``: create the next months' partitions (PostgreSQL) and drop, or delete on SQLite,
  everything past ``NUDGE_DATA_RETENTION_MONTHS`` (``core.partitions``);
- ``nudge.maintenance.infrastructure``: book today's and yesterday's share of the stage's monthly infrastructure
  estimate (idempotent: a day is booked once however often this runs);
- ``nudge.maintenance.drift``: measure PSI for every churn model in production and keep it for ``/metrics``.

All three are safe to run at any time and any number of times.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task, shared_task

from core import ledger, partitions
from core.clock import utcnow
from core.errors import BadRequest, NotFound
from core.models import DriftMeasurement
from workers.app import BOOK_INFRASTRUCTURE, MAINTAIN_PARTITIONS, MEASURE_DRIFT, runtime
from workers.tasks import task_policy

logger = logging.getLogger(__name__)


# Not retried: each runs daily and the next run is the retry.
@shared_task(name=MAINTAIN_PARTITIONS, **task_policy(soft=300, hard=360, max_retries=0))
def maintain_partitions(self: Task[Any, Any]) -> dict[str, Any]:
    """Partitions ahead, retention behind; returns what was created and removed."""
    settings, database = runtime(self)
    now = utcnow()
    with database.session() as session:
        created = partitions.ensure_partitions(session, now)
        removed = partitions.apply_retention(session, now, settings.data_retention_months)
    logger.info(
        "partitions: created %s; retention before %s dropped %s, deleted %s",
        created,
        removed.cutoff,
        removed.dropped_partitions,
        removed.deleted_rows,
    )
    return {"created": created, "dropped": removed.dropped_partitions, "deleted": removed.deleted_rows}


@shared_task(name=BOOK_INFRASTRUCTURE, **task_policy(soft=60, hard=90, max_retries=0))
def book_infrastructure(self: Task[Any, Any]) -> int:
    """Book yesterday (in case a run was missed) and today; returns how many days were new."""
    settings, database = runtime(self)
    today = utcnow().date()
    with database.session() as session:
        booked = sum(ledger.record_infrastructure(session, settings, day) for day in (today - timedelta(days=1), today))
    logger.info("infrastructure: %d day(s) booked", booked)
    return booked


@shared_task(name=MEASURE_DRIFT, **task_policy(soft=25 * 60, hard=30 * 60, max_retries=0))
def measure_drift(self: Task[Any, Any]) -> int:
    """PSI of each production churn model's features now; returns how many models were measured."""
    # Imported here: the model stack (scikit-learn, pandas) doubles a worker's memory, and only the worker
    # that runs this daily task should carry it, not every send worker (as workers.tasks.run_retention does).
    from ml import registry, training
    from ml.monitoring import feature_drift

    _settings, database = runtime(self)
    now = utcnow()
    measured = 0
    for kind in training.FAMILIES:
        with database.session() as session:
            try:
                report = feature_drift(session, kind, now)
            except (NotFound, BadRequest) as error:  # no production model, or one without a profile: nothing to watch
                logger.info("drift of %s not measured: %s", kind.value, error)
                continue
            version = registry.production(session, kind).version
            session.add_all(
                DriftMeasurement(kind=kind, version=version, feature=item.feature, psi=item.psi, measured_at=now)
                for item in report.features
            )
            measured += 1
    return measured
