"""``nudge worker`` and ``nudge beat`` check the database, then run Celery's worker and beat on the
configured app; a bad queue name or retention cron fails before anything starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core import migrate
from core.db import Database
from core.settings import get_settings
from nudge.asgi import create_app
from nudge.cli import app
from nudge.commands import worker
from workers.tasks import enqueue_event_processing

runner = CliRunner()


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'nudge.db'}"
    monkeypatch.setenv("NUDGE_DATABASE_URL", url)
    get_settings.cache_clear()
    database = Database.from_url(url)
    yield database
    database.dispose()
    get_settings.cache_clear()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What would have been started: the worker's argv, or beat's options and schedule."""
    runs: list[Any] = []
    monkeypatch.setattr(worker.celery_app, "worker_main", runs.append)

    class Beat:
        def __init__(self, **options: Any) -> None:
            runs.append(("beat", options, sorted(worker.celery_app.conf.beat_schedule)))

        def run(self) -> None:
            pass

    monkeypatch.setattr(worker.celery_app, "Beat", Beat)
    monkeypatch.setitem(worker.celery_app.conf, "beat_schedule", {})
    return runs


def test_worker_migrates_the_embedded_database_then_consumes_every_queue(cli_db: Database, started: list[Any]) -> None:
    result = runner.invoke(app, ["worker"])

    assert result.exit_code == 0, result.output
    assert started == [["worker", "--queues=sends,triggers,events,default", "--loglevel=INFO"]]
    assert migrate.is_current(cli_db.engine)


def test_worker_takes_the_queues_and_concurrency_it_is_given(cli_db: Database, started: list[Any]) -> None:
    result = runner.invoke(app, ["worker", "--queues", "sends, triggers", "--concurrency", "4"])

    assert result.exit_code == 0, result.output
    assert started == [["worker", "--queues=sends,triggers", "--loglevel=INFO", "--concurrency=4"]]


def test_worker_refuses_an_unknown_queue_and_starts_nothing(cli_db: Database, started: list[Any]) -> None:
    result = runner.invoke(app, ["worker", "--queues", "sends,emails"])

    assert result.exit_code == 1
    assert result.stderr == "error: unknown queue(s) ['emails']: choose from sends, triggers, events, default\n"
    assert started == []


def test_beat_runs_with_the_schedule_built_from_the_settings(cli_db: Database, started: list[Any]) -> None:
    result = runner.invoke(app, ["beat"])

    assert result.exit_code == 0, result.output
    assert started == [
        (
            "beat",
            {"loglevel": "INFO"},
            [
                "abandoned-cart-scan",
                "infrastructure-cost",
                "model-drift",
                "partitions-and-retention",
                "provider-events",
                "reconcile-sends",
                "retention",
                "start-due-campaigns",
            ],
        )
    ]


def test_beat_refuses_an_invalid_retention_cron_with_one_clear_line(
    cli_db: Database, started: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUDGE_RETENTION_SCHEDULE", "0 25 * * *")
    get_settings.cache_clear()

    result = runner.invoke(app, ["beat"])

    assert result.exit_code == 1
    assert result.stderr == (
        "error: NUDGE_RETENTION_SCHEDULE '0 25 * * *' is not a valid cron: Invalid end range: 25 > 23.\n"
    )
    assert started == []


def test_the_served_app_processes_webhook_events_through_the_celery_task(cli_db: Database) -> None:
    app = create_app()

    assert app.state.schedule_processing is enqueue_event_processing
    app.state.database.dispose()
