"""The tasks' plumbing, eager and in-process: each opens its own unit of work, calls its service by name with
ids, commits, and enqueues its follow-ups only after that commit. The campaigns services are stood in for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import Database
from core.errors import Conflict, ServiceUnavailable
from core.models import Customer, OutcomeKind
from core.settings import Settings
from tests.workers import conftest
from tests.workers.conftest import MakeApp
from tests.workers.events import add_message, outcomes, sendgrid_event, store, unprocessed
from workers import tasks
from workers.app import NudgeCelery, max_eta_seconds

StandIn = Callable[[str], conftest.StandIn]
Calls = list[tuple[Any, ...]]


def customers(database: Database) -> list[str]:
    with database.session() as session:
        return list(session.scalars(select(Customer.external_id).order_by(Customer.external_id)))


@pytest.fixture
def sending(stand_in: StandIn) -> tuple[conftest.StandIn, Calls]:
    """campaigns.sending: two batches to send; every call recorded (with its session's settings)."""
    calls: Calls = []
    module = stand_in("sending")

    def start_sending(session: Session, settings: Settings, campaign_id: int, now: datetime) -> list[list[int]]:
        calls.append(("start", campaign_id, now.tzinfo))
        session.add(Customer(external_id=f"started-{campaign_id}"))  # proves the task's unit of work commits
        return [[1, 2], [3]]

    def send_batch(session: Session, settings: Settings, campaign_id: int, ids: list[int], now: datetime) -> Any:
        calls.append(("batch", campaign_id, ids))
        return SimpleNamespace(deferred={})

    def finish_if_done(session: Session, campaign_id: int, now: datetime) -> None:
        calls.append(("finish", campaign_id))

    module.start_sending, module.send_batch, module.finish_if_done = start_sending, send_batch, finish_if_done
    return module, calls


def test_start_sending_commits_then_runs_one_send_batch_per_batch(
    eager_app: NudgeCelery, sending: tuple[conftest.StandIn, Calls], sqlite_db: Database
) -> None:
    _, calls = sending

    assert tasks.start_sending.delay(7).get() == 2

    assert calls == [
        ("start", 7, UTC),
        ("batch", 7, [1, 2]),
        ("finish", 7),
        ("batch", 7, [3]),
        ("finish", 7),
    ]
    assert customers(sqlite_db) == ["started-7"]


def test_start_due_enqueues_start_sending_for_each_due_campaign_after_commit(
    eager_app: NudgeCelery, sending: tuple[conftest.StandIn, Calls]
) -> None:
    module, calls = sending
    module.due_campaigns = lambda session, now: [7, 9]

    assert tasks.start_due.delay().get() == [7, 9]

    assert [call for call in calls if call[0] == "start"] == [("start", 7, UTC), ("start", 9, UTC)]
    assert calls.count(("finish", 7)) == 2


def test_deferred_recipients_are_reenqueued_for_their_instant_after_commit(
    eager_app: NudgeCelery, sending: tuple[conftest.StandIn, Calls], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, calls = sending
    soon = datetime.now(UTC) + timedelta(hours=1)
    late = datetime.now(UTC) + timedelta(days=2)
    enqueued: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def defer_once(session: Session, settings: Settings, campaign_id: int, ids: list[int], now: datetime) -> Any:
        calls.append(("batch", campaign_id, ids))
        first = len(calls) == 1
        return SimpleNamespace(deferred={soon.isoformat(): [2], late.isoformat(): [3]} if first else {})

    def record(session: Session, task: Any, *args: Any, **options: Any) -> None:
        enqueued.append((task.name, args, options))

    module.send_batch = defer_once
    monkeypatch.setattr(tasks, "enqueue_after_commit", record)

    assert tasks.send_batch.delay(7, [1, 2, 3]).get() == 2

    (first, second) = enqueued
    assert first == ("nudge.campaigns.send_batch", (7, [2]), {"eta": soon})
    assert second[:2] == ("nudge.campaigns.send_batch", (7, [3]))
    # two days is past the visibility timeout: it wakes at the bound and is deferred again then
    assert datetime.now(UTC) < second[2]["eta"] <= datetime.now(UTC) + timedelta(seconds=max_eta_seconds(Settings()))
    assert calls == [("batch", 7, [1, 2, 3]), ("finish", 7)]


def test_a_transient_error_is_retried_and_the_retry_succeeds(
    eager_app: NudgeCelery, sending: tuple[conftest.StandIn, Calls]
) -> None:
    module, calls = sending

    def unavailable_once(session: Session, settings: Settings, campaign_id: int, ids: list[int], now: Any) -> Any:
        calls.append(("batch", campaign_id, ids))
        if len(calls) == 1:
            raise ServiceUnavailable("SendGrid answered 503")
        return SimpleNamespace(deferred={})

    module.send_batch = unavailable_once

    assert tasks.send_batch.delay(7, [1]).get() == 0
    assert calls == [("batch", 7, [1]), ("batch", 7, [1]), ("finish", 7)]


def test_any_other_error_is_not_retried_and_rolls_the_unit_of_work_back(
    eager_app: NudgeCelery, sending: tuple[conftest.StandIn, Calls], sqlite_db: Database
) -> None:
    module, calls = sending

    def conflict(session: Session, settings: Settings, campaign_id: int, now: datetime) -> list[list[int]]:
        calls.append(("start", campaign_id))
        session.add(Customer(external_id="never"))
        raise Conflict("campaign 7 is not scheduled")

    module.start_sending = conflict

    result = tasks.start_sending.delay(7)

    with pytest.raises(Conflict, match="campaign 7 is not scheduled"):
        result.get()

    assert calls == [("start", 7)]
    assert customers(sqlite_db) == []


def test_trigger_and_retention_tasks_call_their_services_with_ids_and_the_apps_settings(
    eager_app: NudgeCelery, stand_in: StandIn
) -> None:
    calls: Calls = []
    triggers, scheduled = stand_in("triggers"), stand_in("scheduled")
    triggers.check_cart = lambda session, settings, cart_id, now: calls.append(("check", cart_id, settings))
    triggers.scan = lambda session, settings, now: calls.append(("scan", settings)) or 4
    scheduled.run_retention = lambda session, settings, now: calls.append(("retention", settings))

    tasks.check_cart.delay(31)
    assert tasks.scan_carts.delay().get() == 4
    tasks.run_retention.delay()

    settings = eager_app.settings
    assert calls == [("check", 31, settings), ("scan", settings), ("retention", settings)]


def test_events_stored_in_a_committed_session_are_processed_into_outcomes(
    eager_app: NudgeCelery, sqlite_db: Database
) -> None:
    message_id = add_message(sqlite_db)

    with sqlite_db.session() as session:
        assert store(session, sendgrid_event("delivered", "d1"), sendgrid_event("open", "o1")) == 2
        tasks.enqueue_event_processing(session)
        assert outcomes(sqlite_db) == []  # not before the commit

    assert outcomes(sqlite_db) == [(message_id, "d1", OutcomeKind.DELIVERED), (message_id, "o1", OutcomeKind.OPEN)]
    assert unprocessed(sqlite_db) == 0


def test_events_of_a_rolled_back_session_are_neither_stored_nor_processed(
    eager_app: NudgeCelery, sqlite_db: Database
) -> None:
    add_message(sqlite_db)

    def request() -> None:
        with sqlite_db.session() as session:
            store(session, sendgrid_event("delivered", "d1"))
            tasks.enqueue_event_processing(session)
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError, match="the request failed"):
        request()

    assert (outcomes(sqlite_db), unprocessed(sqlite_db)) == ([], 0)


def test_a_full_batch_of_events_enqueues_the_next_run(
    eager_app: NudgeCelery, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_id = add_message(sqlite_db)
    monkeypatch.setattr(tasks, "BATCH", 2)  # process_pending's own batch stays 500; the task decides by this
    with sqlite_db.session() as session:
        assert store(session, *(sendgrid_event("open", f"o{i}", second=i) for i in range(3))) == 3
    runs: list[int] = []
    monkeypatch.setattr("campaigns.outcomes.process_pending", _limited(runs, limit=2))

    assert tasks.process_events.delay().get() == 2

    assert runs == [2, 1]  # the second run was enqueued after the first committed, and took the rest
    assert len(outcomes(sqlite_db)) == 3
    assert {row[0] for row in outcomes(sqlite_db)} == {message_id}


def _limited(runs: list[int], *, limit: int) -> Callable[..., Any]:
    from channels.outcomes import process_pending

    def run(*args: Any, **kwargs: Any) -> Any:
        result = process_pending(*args, **kwargs, limit=limit)
        runs.append(result.events)
        return result

    return run


def test_the_apps_database_is_opened_once_per_process_and_forgotten_after_fork(make_app: MakeApp) -> None:
    app = make_app()
    first = app.database

    assert app.database is first
    app.forget_database()
    assert app.database is not first
