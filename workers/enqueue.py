"""Enqueue after commit: a task is sent only once the transaction that made its work visible has committed.

A task sent before the commit can run before the rows it reads exist (or after they were rolled back); so
callers register the call on their session and it goes out from SQLAlchemy's ``after_commit`` event. A
rollback (or closing the session uncommitted) drops every call registered since the last commit. Calls carry
ids, never ORM objects, so logging them is safe.

Calls registered inside a savepoint that is later rolled back are still sent when the outer transaction
commits; a task body loads its rows by id and finds nothing to do, so this is safe, not exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from celery import Task
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

logger = logging.getLogger(__name__)

_PENDING = "nudge.workers.after_commit"


@dataclass(frozen=True, slots=True)
class _Call:
    task: Task[Any, Any]
    args: tuple[Any, ...]
    options: dict[str, Any]


def enqueue_after_commit(session: Session, task: Task[Any, Any], *args: Any, **options: Any) -> None:
    """Send ``task.apply_async(args, **options)`` when ``session`` commits; forget it if it rolls back.

    Parameters
    ----------
    session : Session
        The unit of work whose commit makes the task's input visible.
    task : Task
        The task to send (in eager mode it runs in the caller, after the commit).
    *args : Any
        JSON-serialisable arguments: ids and plain values, never ORM objects.
    **options : Any
        ``apply_async`` options such as ``eta`` or ``countdown``.
    """
    session.info.setdefault(_PENDING, []).append(_Call(task, args, options))


def pending(session: Session) -> list[str]:
    """The names of the tasks registered on ``session`` and not yet sent (for tests and logs)."""
    return [call.task.name for call in session.info.get(_PENDING, [])]


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    for call in session.info.pop(_PENDING, []):
        try:
            call.task.apply_async(call.args, **call.options)
        except Exception:
            # A process edge: the data is committed and an error raised here would break the session's scope
            # (its rollback fails after a commit). Celery has already retried the publish; record the loss.
            # Beat's backstops pick up provider events and carts; ids are in the log for anything else.
            logger.exception("enqueueing %s%r after commit failed", call.task.name, call.args)


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the list is already empty; any other end of the outermost transaction (rollback, close)
    # means the work was not committed, so neither are its tasks.
    if transaction.parent is None and (dropped := session.info.pop(_PENDING, [])):
        logger.info("transaction not committed: %d task(s) not enqueued", len(dropped))
