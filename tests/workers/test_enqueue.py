"""enqueue_after_commit: a task goes out when the transaction commits, never when it rolls back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from celery import Task
from sqlalchemy import func, select

from core.db import Database
from core.models import Customer
from workers.enqueue import enqueue_after_commit, pending


class Recording:
    """Stands in for a Celery task: records what would have been sent, and whether the row was visible then."""

    def __init__(self, name: str, database: Database | None = None, fail: bool = False) -> None:
        self.name = name
        self.database = database
        self.fail = fail
        self.sent: list[tuple[tuple[Any, ...], dict[str, Any], int | None]] = []

    def apply_async(self, args: tuple[Any, ...], **options: Any) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.sent.append((args, options, self._customers()))

    def _customers(self) -> int | None:
        if self.database is None:
            return None
        with self.database.session() as session:
            return session.scalar(select(func.count()).select_from(Customer))

    def task(self) -> Task[Any, Any]:
        return cast(Task[Any, Any], self)


def test_a_task_is_sent_once_the_transaction_commits_and_sees_what_it_committed(sqlite_db: Database) -> None:
    recording = Recording("nudge.test.record", sqlite_db)
    eta = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    with sqlite_db.session() as session:
        session.add(Customer(external_id="ann"))
        session.flush()
        enqueue_after_commit(session, recording.task(), 7, [1, 2], eta=eta)
        enqueue_after_commit(session, recording.task(), 8, [3])
        assert recording.sent == []
        assert pending(session) == ["nudge.test.record", "nudge.test.record"]

    assert recording.sent == [((7, [1, 2]), {"eta": eta}, 1), ((8, [3]), {}, 1)]


def test_a_rollback_drops_the_tasks_and_a_later_commit_does_not_send_them(sqlite_db: Database) -> None:
    recording = Recording("nudge.test.record")
    session = sqlite_db.sessionmaker()
    try:
        session.add(Customer(external_id="ann"))
        session.flush()
        enqueue_after_commit(session, recording.task(), 1)
        session.rollback()
        session.add(Customer(external_id="bob"))
        session.commit()
    finally:
        session.close()

    assert recording.sent == []


def test_a_failing_unit_of_work_sends_nothing(sqlite_db: Database) -> None:
    recording = Recording("nudge.test.record")

    def work() -> None:
        with sqlite_db.session() as session:
            enqueue_after_commit(session, recording.task(), 1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        work()

    assert recording.sent == []


def test_a_session_closed_without_committing_sends_nothing(sqlite_db: Database) -> None:
    recording = Recording("nudge.test.record")
    session = sqlite_db.sessionmaker()
    session.add(Customer(external_id="ann"))
    session.flush()
    enqueue_after_commit(session, recording.task(), 1)
    session.close()

    session.commit()  # the same session, reused: nothing of the closed transaction may go out
    assert recording.sent == []


def test_a_failed_send_after_commit_is_logged_with_its_ids_and_the_others_still_go_out(
    sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    broken, recording = Recording("nudge.test.broken", fail=True), Recording("nudge.test.record")

    with sqlite_db.session() as session:
        session.add(Customer(external_id="ann"))
        enqueue_after_commit(session, broken.task(), 41)
        enqueue_after_commit(session, recording.task(), 42)

    assert recording.sent == [((42,), {}, None)]
    assert [record.getMessage() for record in caplog.records] == [
        "enqueueing nudge.test.broken(41,) after commit failed"
    ]
    with sqlite_db.session() as session:  # the data stays committed
        assert session.scalar(select(func.count()).select_from(Customer)) == 1
