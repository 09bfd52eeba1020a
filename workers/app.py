"""The Celery app, built from the settings (``celery -A workers.app worker``).

Production: Redis is the broker and the result backend (``NUDGE_REDIS_URL``). Embedded: Celery's SQLAlchemy
transport on a SQLite file under ``NUDGE_DATA_DIR``, or, with ``NUDGE_CELERY_ALWAYS_EAGER``, no broker at all:
tasks run in the caller. The same task code runs in all three.

Each app carries its ``Settings`` and opens one ``Database`` per process, lazily, so a prefork child never
uses a connection its parent opened; tasks reach both through ``task.app`` (see ``runtime``).
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from kombu import Queue

from core.db import Database
from core.settings import Settings, get_settings
from workers import metrics as task_metrics

SENDS, TRIGGERS, EVENTS, DEFAULT = "sends", "triggers", "events", "default"
QUEUES = (SENDS, TRIGGERS, EVENTS, DEFAULT)

START_DUE = "nudge.campaigns.start_due"
START_SENDING = "nudge.campaigns.start_sending"
SEND_BATCH = "nudge.campaigns.send_batch"
RECONCILE_SENDS = "nudge.campaigns.reconcile"
RUN_RETENTION = "nudge.campaigns.run_retention"
CHECK_CART = "nudge.triggers.check_cart"
SCAN_CARTS = "nudge.triggers.scan"
PROCESS_EVENTS = "nudge.events.process"
MAINTAIN_PARTITIONS = "nudge.maintenance.partitions"
BOOK_INFRASTRUCTURE = "nudge.maintenance.infrastructure"
MEASURE_DRIFT = "nudge.maintenance.drift"

# Each task's queue, so a worker can be started for one family of work (``nudge worker --queues sends``).
# Routes live here, not on the task decorators: Celery 5.7 deprecates the ``queue`` task attribute (no effect
# in 6.0). A task not listed goes to ``default``.
ROUTES = {
    START_DUE: {"queue": SENDS},
    START_SENDING: {"queue": SENDS},
    SEND_BATCH: {"queue": SENDS},
    RECONCILE_SENDS: {"queue": SENDS},
    RUN_RETENTION: {"queue": DEFAULT},
    CHECK_CART: {"queue": TRIGGERS},
    SCAN_CARTS: {"queue": TRIGGERS},
    PROCESS_EVENTS: {"queue": EVENTS},
}
# The longest hard time limit of any task (workers.tasks: the retention run).
LONGEST_TASK_SECONDS = 30 * 60
RESULT_EXPIRES_SECONDS = 24 * 60 * 60


class NudgeCelery(Celery):
    """A Celery app that carries Nudge's settings and a per-process database."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__("nudge", **options)
        self.settings = settings
        self._database: Database | None = None

    @property
    def database(self) -> Database:
        """The database of this process, opened on first use."""
        if self._database is None:
            self._database = self.settings.open_database()
        return self._database

    def configure(self, settings: Settings) -> None:
        """Follow ``settings`` from now on (broker, eagerness, database): each ``nudge`` command calls it with the
        settings it runs with, so tasks it runs or sends use the same database as the command."""
        self.settings = settings
        self.conf.update(_config(settings))
        self.forget_database()

    def forget_database(self) -> None:
        """Drop the database (and its pooled connections) so the next use opens a fresh one."""
        if self._database is not None:
            self._database.dispose()
            self._database = None


def create_celery(settings: Settings, *, set_as_current: bool = False) -> NudgeCelery:
    """A Celery app configured from ``settings``.

    Parameters
    ----------
    settings : Settings
        ``redis_url`` (empty: the SQLAlchemy transport on SQLite), ``celery_eager``, ``data_dir``.
    set_as_current : bool
        Make it the app that ``workers.tasks`` resolve to (the process's app does; tests choose).

    Returns
    -------
    NudgeCelery
        The configured app; ``workers.tasks`` is imported by its workers.
    """
    app = NudgeCelery(settings, set_as_current=set_as_current)
    app.conf.update(_config(settings))
    return app


def _config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.celery_broker_url,
        "result_backend": settings.celery_result_backend,
        "result_expires": RESULT_EXPIRES_SECONDS,
        "imports": ("workers.tasks", "workers.maintenance"),
        "task_always_eager": settings.celery_eager,
        # Eager runs a task as a worker would, in the caller: transient errors are retried (at once: eager has
        # no countdown), a failure is logged and kept in the result, whose .get() raises it. Propagating would
        # break retries (Celery raises Retry instead) and the after-commit sends of the caller's other tasks.
        "task_eager_propagates": False,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Every task is idempotent: redelivering one a worker lost is safe; losing it is not.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_queues": tuple(Queue(name) for name in QUEUES),
        "task_default_queue": DEFAULT,
        "task_routes": ROUTES,
        "timezone": "UTC",
        "enable_utc": True,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "beat_schedule_filename": str(settings.data_dir / "celerybeat-schedule"),
    }
    if settings.redis_url:
        timeout = {"visibility_timeout": settings.celery_visibility_timeout_seconds}
        config["broker_transport_options"] = config["result_backend_transport_options"] = timeout
    return config


def max_eta_seconds(settings: Settings) -> int:
    """How far ahead a task may be scheduled.

    Redis gives an unacknowledged message to another worker after the visibility timeout. With acks_late that
    is how a task a dead worker held comes back; but it also covers a task a live worker holds for its ETA, so
    a task is never scheduled further ahead than this (a later deferral re-checks and defers again). The
    timeout should exceed the longest task (``LONGEST_TASK_SECONDS``); a task running longer is delivered
    twice, which idempotent tasks survive, at the cost of the work.
    """
    return settings.celery_visibility_timeout_seconds * 5 // 6


def runtime(task: Task[Any, Any]) -> tuple[Settings, Database]:
    """The settings and database of the app ``task`` runs in."""
    return settings_of(task), _app_of(task).database


def settings_of(task: Task[Any, Any]) -> Settings:
    """The settings of the app ``task`` runs in (opens no database)."""
    return _app_of(task).settings


def _app_of(task: Task[Any, Any]) -> NudgeCelery:
    app = task.app
    if not isinstance(app, NudgeCelery):
        raise TypeError(f"task {task.name} runs in an app not built by workers.app.create_celery")
    return app


@worker_process_init.connect
def _fresh_database_after_fork(**_: Any) -> None:
    # A forked child inherits its parent's pooled connections; sharing them corrupts both sides' sessions.
    celery_app.forget_database()


task_metrics.connect()  # task counts, run time and queue wait; each worker serves them on its port
celery_app = create_celery(get_settings(), set_as_current=True)
celery_app.set_default()
