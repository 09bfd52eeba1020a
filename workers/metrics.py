"""Task metrics of Celery workers, served by each worker on its own port (``NUDGE_WORKER_METRICS_PORT``).

Why a port per worker: workers are separate processes, often on other machines, that the API cannot see into;
Prometheus discovers and scrapes each one (``deploy/prometheus/prometheus.yml``). Queue depth is not measured
here but by the API at scrape time, straight from Redis (``web.metrics``): it is one number for the broker,
not one per worker.

A prefork worker runs tasks in child processes. Start it with ``PROMETHEUS_MULTIPROC_DIR`` pointing at an empty
directory (the compose file does): every child then writes its counts there and the parent's HTTP server sums
them. The directory is emptied when the worker starts, as prometheus-client requires.

Exported: ``nudge_tasks_total{task, state}``, ``nudge_task_duration_seconds{task}`` (run time, the busy time that
worker utilisation is computed from), ``nudge_task_queue_wait_seconds{task}`` (from publish, or from its ETA, to
start) and ``nudge_worker_concurrency`` (processes that can run tasks); plus ``core.telemetry``'s messages and
LLM tokens, counted where the tasks do the work.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Task
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_init, worker_process_shutdown
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server

from core.clock import as_utc
from core.settings import Settings

logger = logging.getLogger(__name__)

PUBLISHED_AT = "nudge_published_at"  # a message header: when the task was sent (epoch seconds)
BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)

TASKS = Counter("nudge_tasks", "Celery tasks finished, by task name and state.", ["task", "state"])
TASK_DURATION = Histogram("nudge_task_duration_seconds", "Celery task run time.", ["task"], buckets=BUCKETS)
QUEUE_WAIT = Histogram(
    "nudge_task_queue_wait_seconds",
    "From publish (or the task's ETA) to the start of the run.",
    ["task"],
    buckets=BUCKETS,
)
CONCURRENCY = Gauge("nudge_worker_concurrency", "Processes this worker runs tasks in.", multiprocess_mode="max")

_started: dict[str, float] = {}


@before_task_publish.connect(dispatch_uid="nudge-metrics-publish")
def _stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers[PUBLISHED_AT] = time.time()


@task_prerun.connect(dispatch_uid="nudge-metrics-prerun")
def _start(task_id: str, task: Task[Any, Any], **_: Any) -> None:
    now = time.time()
    _started[task_id] = time.perf_counter()
    ready_at = _ready_at(task)
    if ready_at is not None:
        QUEUE_WAIT.labels(task.name).observe(max(now - ready_at, 0.0))


def _ready_at(task: Task[Any, Any]) -> float | None:
    """When the task could first run: its ETA if it had one, else when it was published."""
    published = getattr(task.request, PUBLISHED_AT, None)
    if published is None:
        published = (task.request.headers or {}).get(PUBLISHED_AT) if task.request.headers else None
    eta: Any = task.request.eta  # an ISO string in the message, a datetime once parsed
    if isinstance(eta, str):
        eta = datetime.fromisoformat(eta)
    eta_seconds = as_utc(eta).timestamp() if isinstance(eta, datetime) else None
    candidates = [float(value) for value in (published, eta_seconds) if value is not None]
    return max(candidates) if candidates else None


@task_postrun.connect(dispatch_uid="nudge-metrics-postrun")
def _finish(task_id: str, task: Task[Any, Any], state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    TASKS.labels(task.name, state or "UNKNOWN").inc()
    if started is not None:
        TASK_DURATION.labels(task.name).observe(time.perf_counter() - started)


@worker_init.connect(dispatch_uid="nudge-metrics-worker-init")
def _serve(sender: Any = None, **_: Any) -> None:
    settings: Settings | None = getattr(getattr(sender, "app", None), "settings", None)
    if settings is None or settings.worker_metrics_port is None:
        return
    CONCURRENCY.set(getattr(sender, "concurrency", 1) or 1)
    serve(settings.worker_metrics_port)


def serve(port: int) -> None:
    """Serve this worker's metrics (every child's, in multi-process mode) on ``port``."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # prometheus-client's own switch
    registry = REGISTRY
    if directory:
        _empty(Path(directory))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, registry=registry)
    logger.info("worker metrics on port %d%s", port, " (multi-process)" if directory else "")


def _empty(directory: Path) -> None:
    # Counts left by a previous run would be added to this one's.
    directory.mkdir(parents=True, exist_ok=True)
    for child in directory.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


@worker_process_shutdown.connect(dispatch_uid="nudge-metrics-child-exit")
def _child_exit(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


def connect() -> None:
    """The handlers above are connected when this module is imported (each once, by ``dispatch_uid``);
    ``workers.app`` calls this so that the dependency is visible where the app is built."""
