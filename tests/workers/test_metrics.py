"""Worker metrics move when tasks run: a finished task is counted by name and state and its run time observed;
the maintenance tasks book infrastructure and keep partitions, idempotently."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select

from core.clock import utcnow
from core.db import Database
from core.models import CostComponent, CostEntry
from core.settings import InfrastructureStage
from tests.support.redis import free_port
from tests.workers.conftest import MakeApp
from workers import maintenance
from workers.app import NudgeCelery
from workers.metrics import TASK_DURATION, TASKS, serve
from workers.tasks import scan_carts


def test_a_finished_task_is_counted_and_timed(eager_app: NudgeCelery) -> None:
    name = "nudge.triggers.scan"
    done_before = TASKS.labels(name, "SUCCESS")._value.get()
    timed_before = TASK_DURATION.labels(name)._sum.get()
    count_before = _count(name)

    scan_carts.delay().get()

    assert TASKS.labels(name, "SUCCESS")._value.get() - done_before == 1
    assert _count(name) - count_before == 1
    assert TASK_DURATION.labels(name)._sum.get() >= timed_before


def _count(name: str) -> float:
    return next(
        sample.value
        for family in TASK_DURATION.collect()
        for sample in family.samples
        if sample.name.endswith("_count") and sample.labels["task"] == name
    )


def test_a_worker_serves_its_metrics_on_its_port(eager_app: NudgeCelery) -> None:
    port = free_port()
    scan_carts.delay().get()

    serve(port)
    body = httpx.get(f"http://127.0.0.1:{port}/metrics").text

    assert 'nudge_tasks_total{state="SUCCESS",task="nudge.triggers.scan"}' in body


def test_infrastructure_is_booked_once_a_day_however_often_the_task_runs(
    make_app: MakeApp, sqlite_db: Database
) -> None:
    make_app(
        celery_always_eager=True,
        infrastructure_stage=InfrastructureStage.CLUSTER,
        infrastructure_monthly_usd={InfrastructureStage.CLUSTER: Decimal("3100")},
    )

    first = maintenance.book_infrastructure.delay().get()
    second = maintenance.book_infrastructure.delay().get()

    with sqlite_db.session() as session:
        entries = list(session.scalars(select(CostEntry).order_by(CostEntry.day)))
    today = utcnow().date()
    assert (first, second) == (2, 0)
    assert [entry.day for entry in entries] == [today - timedelta(days=1), today]
    assert {entry.component for entry in entries} == {CostComponent.INFRASTRUCTURE}


def test_partition_maintenance_runs_on_sqlite_as_row_retention(eager_app: NudgeCelery) -> None:
    result = maintenance.maintain_partitions.delay().get()

    deleted = {"cost_entries": 0, "events": 0, "provider_events": 0, "event_keys": 0, "provider_event_keys": 0}
    assert result == {"created": [], "dropped": [], "deleted": deleted}
