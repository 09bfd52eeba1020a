"""The Celery app is configured from the settings, routes each task to its queue, and every task declares
its policy (CONVENTIONS §6) with exactly these values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import ServiceUnavailable
from core.settings import Settings
from workers import maintenance, tasks
from workers.app import (
    LONGEST_TASK_SECONDS,
    QUEUES,
    create_celery,
)

REDIS = "redis://cache.internal:6379/0"


def test_redis_is_broker_and_backend_when_configured_with_a_visibility_timeout_above_the_longest_task() -> None:
    app = create_celery(Settings(redis_url=REDIS))

    assert (app.conf.broker_url, app.conf.result_backend) == (REDIS, REDIS)
    assert app.conf.broker_transport_options == {"visibility_timeout": 6 * 60 * 60}
    assert Settings().celery_visibility_timeout_seconds > LONGEST_TASK_SECONDS
    assert app.conf.task_always_eager is False


def test_without_redis_the_sqlalchemy_transport_on_sqlite_files_in_the_data_dir(tmp_path: Path) -> None:
    app = create_celery(Settings(data_dir=tmp_path))

    assert app.conf.broker_url == f"sqla+sqlite:///{tmp_path.resolve() / 'celery.db'}"
    assert app.conf.result_backend == f"db+sqlite:///{tmp_path.resolve() / 'celery-results.db'}"
    assert "broker_transport_options" not in app.conf.changes
    assert app.conf.beat_schedule_filename == str(tmp_path / "celerybeat-schedule")


def test_eager_runs_tasks_in_the_caller_keeping_their_errors_in_the_result() -> None:
    app = create_celery(Settings(celery_always_eager=True))

    assert (app.conf.task_always_eager, app.conf.task_eager_propagates) == (True, False)


def test_json_only_late_acks_one_message_at_a_time_in_utc() -> None:
    conf = create_celery(Settings(redis_url=REDIS)).conf

    assert (conf.task_serializer, conf.result_serializer, conf.accept_content) == ("json", "json", ["json"])
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert (conf.timezone, conf.enable_utc) == ("UTC", True)
    assert [queue.name for queue in conf.task_queues] == ["sends", "triggers", "events", "default"]
    assert conf.task_default_queue == "default"
    assert conf.imports == ("workers.tasks", "workers.maintenance")


@pytest.mark.parametrize(
    ("name", "queue"),
    [
        ("nudge.campaigns.start_due", "sends"),
        ("nudge.campaigns.start_sending", "sends"),
        ("nudge.campaigns.send_batch", "sends"),
        ("nudge.campaigns.run_retention", "default"),
        ("nudge.triggers.check_cart", "triggers"),
        ("nudge.triggers.scan", "triggers"),
        ("nudge.events.process", "events"),
        ("nudge.anything.else", "default"),
    ],
)
def test_each_task_is_routed_to_its_queue(name: str, queue: str) -> None:
    app = create_celery(Settings(redis_url=REDIS))

    assert app.amqp.router.route({}, name)["queue"].name == queue
    assert queue in QUEUES


# name, queue, max_retries, retry_backoff_max, soft_time_limit, time_limit
POLICIES = {
    tasks.start_due: ("nudge.campaigns.start_due", "sends", 0, 600, 50, 55),
    tasks.start_sending: ("nudge.campaigns.start_sending", "sends", 5, 600, 120, 180),
    tasks.send_batch: ("nudge.campaigns.send_batch", "sends", 8, 600, 240, 300),
    tasks.reconcile_sends: ("nudge.campaigns.reconcile", "sends", 0, 600, 50, 55),
    tasks.run_retention: ("nudge.campaigns.run_retention", "default", 3, 600, 1500, 1800),
    tasks.check_cart: ("nudge.triggers.check_cart", "triggers", 5, 300, 30, 60),
    tasks.scan_carts: ("nudge.triggers.scan", "triggers", 0, 600, 50, 55),
    tasks.process_events: ("nudge.events.process", "events", 5, 120, 60, 90),
    maintenance.maintain_partitions: ("nudge.maintenance.partitions", "default", 0, 600, 300, 360),
    maintenance.book_infrastructure: ("nudge.maintenance.infrastructure", "default", 0, 600, 60, 90),
    maintenance.measure_drift: ("nudge.maintenance.drift", "default", 0, 600, 1500, 1800),
}


@pytest.mark.parametrize(("task", "policy"), POLICIES.items(), ids=[policy[0] for policy in POLICIES.values()])
def test_every_task_states_its_policy(task: object, policy: tuple[str, str, int, int, int, int]) -> None:
    app = create_celery(Settings(redis_url=REDIS))
    declared = app.tasks[policy[0]]

    assert (
        declared.name,
        app.amqp.router.route({}, declared.name)["queue"].name,
        declared.max_retries,
        declared.retry_backoff_max,
        declared.soft_time_limit,
        declared.time_limit,
    ) == policy
    assert (declared.acks_late, declared.retry_backoff, declared.retry_jitter) == (True, True, True)
    assert declared.autoretry_for == (ServiceUnavailable,)
    assert declared.time_limit <= LONGEST_TASK_SECONDS
    assert declared.soft_time_limit < declared.time_limit


def test_every_nudge_task_has_a_declared_policy() -> None:
    app = create_celery(Settings(redis_url=REDIS))

    assert sorted(name for name in app.tasks if name.startswith("nudge.")) == sorted(p[0] for p in POLICIES.values())


def test_a_far_deferral_wakes_before_the_visibility_timeout_and_a_near_one_at_its_instant() -> None:
    now = datetime(2026, 3, 1, 21, 0, tzinfo=UTC)

    settings = Settings(celery_visibility_timeout_seconds=6 * 60 * 60)

    assert tasks._bounded_eta(now + timedelta(hours=11), now, settings) == now + timedelta(hours=5)
    assert tasks._bounded_eta(datetime(2026, 3, 1, 22, 0), now, settings) == datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
