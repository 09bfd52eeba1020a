"""``nudge worker`` and ``nudge beat``: the Celery worker and the scheduler, on the configured broker.

Both check the database first, as ``nudge serve`` does: the embedded SQLite file is migrated, any other must
already be current. The worker consumes every queue unless told which (one worker per family of work scales
them apart: ``--queues sends``). Beat must run once per deployment.
"""

from __future__ import annotations

from typing import Annotated

import typer

from core.errors import ValidationFailed
from core.settings import get_settings
from nudge.commands.common import clean_errors, ready_database
from workers.app import QUEUES, celery_app
from workers.schedule import beat_schedule


def worker(
    queues: Annotated[str, typer.Option(help=f"Comma-separated queues to consume: {', '.join(QUEUES)}.")] = ",".join(
        QUEUES
    ),
    concurrency: Annotated[int | None, typer.Option(min=1, help="Worker processes [default: one per CPU].")] = None,
) -> None:
    """Run a Celery worker: campaign sends, abandoned-cart checks, provider events, scheduled runs."""
    settings = get_settings()
    with clean_errors():
        chosen = _queues(queues)
        ready_database(settings).dispose()
    argv = ["worker", f"--queues={','.join(chosen)}", f"--loglevel={settings.log_level.upper()}"]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    celery_app.worker_main(argv)


def beat() -> None:
    """Run the scheduler: the retention run on NUDGE_RETENTION_SCHEDULE, and the per-minute backstops."""
    settings = get_settings()
    with clean_errors():
        celery_app.conf.beat_schedule = beat_schedule(settings)
        ready_database(settings).dispose()
    celery_app.Beat(loglevel=settings.log_level.upper()).run()


def _queues(option: str) -> list[str]:
    chosen = [name.strip() for name in option.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if not chosen or unknown:
        raise ValidationFailed(f"unknown queue(s) {unknown or option!r}: choose from {', '.join(QUEUES)}")
    return chosen
