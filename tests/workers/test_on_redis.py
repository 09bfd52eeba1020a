"""On a real Redis: a separate ``celery -A workers.app worker`` process processes what the webhook route
enqueued after its commit, and an in-process worker retries a transient failure and runs follow-ups that
were enqueued after commit. The worker is stopped, with its pool children, whatever the test's outcome."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from celery.contrib.testing.worker import start_worker
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.events import sendgrid_public_key
from core.db import Database
from core.errors import ServiceUnavailable
from core.models import Customer, OutcomeKind
from core.settings import Settings
from tests.support.redis import start_child, stop_child
from tests.web.test_webhooks_sendgrid import body_of, signed
from tests.workers import conftest
from tests.workers.conftest import MakeApp, url_of
from tests.workers.events import add_message, outcomes, sendgrid_event
from web.app import create_app
from workers import tasks
from workers.app import NudgeCelery

ROOT = Path(__file__).resolve().parents[2]
# Each worker gets its own Redis database, so one never takes the other's messages.
PROCESS_DB, THREAD_DB = 1, 2
WAIT_SECONDS = 30.0
T = TypeVar("T")
# Celery's Redis result backend calls redis-py's deprecated setex; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {WAIT_SECONDS} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def worker_process(
    redis_url: str, _sqlite_database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """``celery -A workers.app worker`` (prefork, one child) on the test Redis and SQLite; yields its log."""
    root = tmp_path_factory.mktemp("worker")
    env = {
        **os.environ,
        "NUDGE_REDIS_URL": f"{redis_url}/{PROCESS_DB}",
        "NUDGE_DATABASE_URL": url_of(_sqlite_database),
        "NUDGE_DATA_DIR": str(root),
        "NUDGE_CELERY_ALWAYS_EAGER": "false",
    }
    args = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--pool=prefork", "--concurrency=1"]
    args += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname=test@localhost"]
    log = root / "worker.log"
    process = start_child([*args, "--loglevel=INFO"], env=env, log=log)
    try:
        wait_for(lambda: log.read_text() if process.poll() is None else "exited", _ready, "worker start")
        yield log
    finally:
        stop_child(process, grace=15)


def _ready(log: str) -> bool:
    if log == "exited":
        raise AssertionError("the worker process exited before it was ready")
    return " ready." in log


def test_a_webhook_enqueues_processing_after_commit_and_the_worker_process_writes_the_outcomes(
    worker_process: Path, make_app: MakeApp, redis_url: str, sqlite_db: Database
) -> None:
    make_app(redis_url=f"{redis_url}/{PROCESS_DB}")  # the API's producer: the same broker as the worker
    key = ec.generate_private_key(ec.SECP256R1())
    settings = Settings(database_url=url_of(sqlite_db), sendgrid_webhook_public_key=sendgrid_public_key(key))
    app = create_app(settings, database=sqlite_db, schedule_processing=tasks.enqueue_event_processing)
    message_id = add_message(sqlite_db)
    body = body_of(sendgrid_event("delivered", "d1"), sendgrid_event("open", "o1", second=1))

    with TestClient(app) as client:
        response = client.post("/webhooks/sendgrid", content=body, headers=signed(key, body))

    assert (response.status_code, response.json()) == (202, {"stored": 2, "duplicates": 0})
    found = wait_for(lambda: outcomes(sqlite_db), lambda rows: len(rows) == 2, "outcomes")
    assert found == [(message_id, "d1", OutcomeKind.DELIVERED), (message_id, "o1", OutcomeKind.OPEN)]
    assert "nudge.events.process" in worker_process.read_text()


# --- an in-process worker on Redis: retries and follow-ups --------------------------------------------------


@pytest.fixture
def redis_app(make_app: MakeApp, redis_url: str) -> Iterator[NudgeCelery]:
    app = make_app(redis_url=f"{redis_url}/{THREAD_DB}")
    # The test worker sets the root logger to ERROR: later tests' caplog needs it back.
    root_level = logging.getLogger().level
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=15):
            yield app
    finally:
        logging.getLogger().setLevel(root_level)


@pytest.fixture
def sending(stand_in: Callable[[str], conftest.StandIn]) -> tuple[conftest.StandIn, list[tuple[Any, ...]]]:
    """campaigns.sending: batch [1, 2] then [3]; each batch sent writes one customer row; calls recorded."""
    calls: list[tuple[Any, ...]] = []
    module = stand_in("sending")

    def start_sending(session: Session, settings: Settings, campaign_id: int, now: datetime) -> list[list[int]]:
        calls.append(("start", campaign_id))
        return [[1, 2], [3]]

    def send_batch(session: Session, settings: Settings, campaign_id: int, ids: list[int], now: datetime) -> Any:
        calls.append(("batch", campaign_id, ids))
        session.add(Customer(external_id=f"sent-{campaign_id}-{ids[0]}"))
        return SimpleNamespace(deferred={})

    def finish_if_done(session: Session, campaign_id: int, now: datetime) -> None:
        calls.append(("finish", campaign_id))

    module.start_sending, module.send_batch, module.finish_if_done = start_sending, send_batch, finish_if_done
    return module, calls


def sent(database: Database) -> list[str]:
    with database.session() as session:
        return list(session.scalars(select(Customer.external_id).order_by(Customer.external_id)))


def test_batches_enqueued_after_start_sending_commits_run_on_the_worker_and_write(
    redis_app: NudgeCelery, sending: tuple[conftest.StandIn, list[tuple[Any, ...]]], sqlite_db: Database
) -> None:
    _, calls = sending

    tasks.start_sending.delay(7)

    assert wait_for(lambda: sent(sqlite_db), lambda rows: len(rows) == 2, "sent") == ["sent-7-1", "sent-7-3"]
    wait_for(lambda: calls.count(("finish", 7)), lambda n: n == 2, "finish")
    assert sorted(call for call in calls if call[0] == "batch") == [("batch", 7, [1, 2]), ("batch", 7, [3])]
    assert calls[0] == ("start", 7)


def test_a_send_that_meets_service_unavailable_is_retried_through_redis_and_then_succeeds(
    redis_app: NudgeCelery, sending: tuple[conftest.StandIn, list[tuple[Any, ...]]], sqlite_db: Database
) -> None:
    module, calls = sending
    send_batch = module.send_batch

    def unavailable_once(session: Session, settings: Settings, campaign_id: int, ids: list[int], now: Any) -> Any:
        if not calls:
            calls.append(("refused", campaign_id, ids))
            session.add(Customer(external_id="rolled-back"))
            raise ServiceUnavailable("SendGrid answered 503")
        return send_batch(session, settings, campaign_id, ids, now)

    module.send_batch = unavailable_once

    result = tasks.send_batch.delay(7, [1])

    assert result.get(timeout=WAIT_SECONDS) == 0
    assert calls == [("refused", 7, [1]), ("batch", 7, [1]), ("finish", 7)]
    assert sent(sqlite_db) == ["sent-7-1"]  # the refused attempt's row was rolled back
