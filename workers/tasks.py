"""Thin Celery tasks: each opens its own unit of work, calls one service by name, and commits.

Every task states its policy on its decorator (CONVENTIONS §6): an explicit name, a queue, the errors worth
retrying (``TRANSIENT``) with exponential backoff and jitter, a bound on retries, soft and hard time limits,
and ``acks_late`` — safe because every body is idempotent: sends are keyed before the provider call
(``campaigns.sending``), events are claimed once (``channels.outcomes``), cart checks are recorded.

Arguments are ids; the logs name tasks and ids, never addresses, names or secrets. Follow-up tasks are sent
only after the unit of work commits (``workers.enqueue``), through ``self.app`` so they reach the same
broker as the task that sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from sqlalchemy.orm import Session

from campaigns import reconcile, sending, triggers
from campaigns.outcomes import process_events as process_outcomes
from channels.outcomes import BATCH
from core.bulk import chunks
from core.clock import as_utc, utcnow
from core.errors import ServiceUnavailable
from core.settings import Settings
from workers.app import (
    CHECK_CART,
    PROCESS_EVENTS,
    RECONCILE_SENDS,
    RUN_RETENTION,
    SCAN_CARTS,
    SEND_BATCH,
    START_DUE,
    START_SENDING,
    max_eta_seconds,
    runtime,
    settings_of,
)
from workers.enqueue import enqueue_after_commit

logger = logging.getLogger(__name__)

# Worth another try: the provider or a dependency is down or throttling (channels' RETRY receipts become
# ServiceUnavailable in the send service). Anything else is a bug or a refusal; retrying cannot fix it.
TRANSIENT: tuple[type[Exception], ...] = (ServiceUnavailable,)


def task_policy(*, soft: int, hard: int, max_retries: int, backoff_max: int = 600) -> dict[str, Any]:
    """The options every task declares; the values differ per task and are spelled out at each one. The queue
    is in ``workers.app.ROUTES``: Celery deprecates it as a task option."""
    return {
        "bind": True,
        "acks_late": True,
        "autoretry_for": TRANSIENT,
        "retry_backoff": True,
        "retry_backoff_max": backoff_max,
        "retry_jitter": True,
        "max_retries": max_retries,
        "soft_time_limit": soft,
        "time_limit": hard,
    }


@contextmanager
def _unit_of_work(task: Task[Any, Any]) -> Iterator[tuple[Session, Settings]]:
    settings, database = runtime(task)
    with database.session() as session:
        yield session, settings


# --- campaigns: sending ---------------------------------------------------------------------------------------


@shared_task(name=START_SENDING, **task_policy(soft=120, hard=180, max_retries=5))
def start_sending(self: Task[Any, Any], campaign_id: int) -> int:
    """Start a scheduled campaign's send and enqueue one ``send_batch`` per batch of recipients.

    Returns the number of batches enqueued.
    """
    with _unit_of_work(self) as (session, settings):
        batches = sending.start_sending(session, settings, campaign_id, utcnow())
        for customer_ids in batches:
            enqueue_after_commit(session, self.app.tasks[SEND_BATCH], campaign_id, customer_ids)
    logger.info("campaign %s: sending started, %d batch(es) enqueued", campaign_id, len(batches))
    return len(batches)


@shared_task(name=START_DUE, **task_policy(soft=50, hard=55, max_retries=0))
def start_due(self: Task[Any, Any]) -> list[int]:
    """Beat, every minute: enqueue ``start_sending`` for each scheduled campaign whose time has come.

    Not retried: the next minute's run is the retry. A campaign enqueued twice (a slow worker) is safe:
    ``start_sending`` on a campaign already sending returns what is left, and each message is sent once.
    Returns the campaign ids enqueued.
    """
    with _unit_of_work(self) as (session, _settings):
        due = sending.due_campaigns(session, utcnow())
        for campaign_id in due:
            enqueue_after_commit(session, self.app.tasks[START_SENDING], campaign_id)
    logger.info("campaigns due: %s", due)
    return due


@shared_task(name=SEND_BATCH, **task_policy(soft=240, hard=300, max_retries=8))
def send_batch(self: Task[Any, Any], campaign_id: int, customer_ids: list[int]) -> int:
    """Send one batch; re-enqueue every deferred recipient for the instant it may be sent (never dropped).

    Returns the number of recipients deferred.
    """
    with _unit_of_work(self) as (session, settings):
        now = utcnow()
        result = sending.send_batch(session, settings, campaign_id, customer_ids, now)
        deferred = result.deferred
        for instant, ids in deferred.items():
            eta = _bounded_eta(datetime.fromisoformat(instant), now, settings)
            enqueue_after_commit(session, self.app.tasks[SEND_BATCH], campaign_id, ids, eta=eta)
        sending.finish_if_done(session, campaign_id, now)
    held = sum(len(ids) for ids in deferred.values())
    logger.info("campaign %s: batch of %d done, %d deferred", campaign_id, len(customer_ids), held)
    return held


@shared_task(name=RECONCILE_SENDS, **task_policy(soft=50, hard=55, max_retries=0))
def reconcile_sends(self: Task[Any, Any]) -> int:
    """Beat, every minute: settle messages a dead worker left in flight and send again what never went out.

    Not retried: the next minute's run is the retry. Returns the number of messages sent again.
    """
    with _unit_of_work(self) as (session, settings):
        now = utcnow()
        result = reconcile.reconcile(session, settings, now)
        for campaign_id, customer_ids in result.resend.items():
            for batch in chunks(sorted(customer_ids), settings.send_batch_size):
                enqueue_after_commit(session, self.app.tasks[SEND_BATCH], campaign_id, list(batch))
        for cart_id in result.carts:
            enqueue_after_commit(session, self.app.tasks[CHECK_CART], cart_id)
        for campaign_id in result.finished - set(result.resend):
            sending.finish_if_done(session, campaign_id, now)
    resent = sum(len(ids) for ids in result.resend.values()) + len(result.carts)
    logger.info("reconciled: %d confirmed sent, %d to send again, %d unknown", result.confirmed, resent, result.unknown)
    return resent


def _bounded_eta(instant: datetime, now: datetime, settings: Settings) -> datetime:
    """``instant``, or sooner: a task held past the broker's visibility timeout would be delivered twice, so a
    far deferral wakes early, is checked again by the send service, and is deferred again."""
    return min(as_utc(instant), now + timedelta(seconds=max_eta_seconds(settings)))


# --- campaigns: scheduled retention -----------------------------------------------------------------------------


@shared_task(name=RUN_RETENTION, **task_policy(soft=25 * 60, hard=30 * 60, max_retries=3))
def run_retention(self: Task[Any, Any]) -> None:
    """The scheduled retention run (beat, on ``NUDGE_RETENTION_SCHEDULE``)."""
    # Imported here: the drafting stack behind it (LLM, embeddings) takes seconds to import, and only the
    # worker that runs this task should pay for it, not the API or every other task.
    from campaigns import scheduled

    with _unit_of_work(self) as (session, settings):
        scheduled.run_retention(session, settings, utcnow())
    logger.info("retention run done")


# --- triggers: abandoned carts ----------------------------------------------------------------------------------


@shared_task(name=CHECK_CART, **task_policy(soft=30, hard=60, max_retries=5, backoff_max=300))
def check_cart(self: Task[Any, Any], cart_id: int) -> None:
    """Check one cart once its wait is over: still abandoned, and allowed, means one message."""
    with _unit_of_work(self) as (session, settings):
        status = triggers.check_cart(session, settings, cart_id, utcnow())
    logger.info("cart %s checked: %s", cart_id, status)


@shared_task(name=SCAN_CARTS, **task_policy(soft=50, hard=55, max_retries=0))
def scan_carts(self: Task[Any, Any]) -> int:
    """The backstop (beat, every minute): check every cart whose wait is over and that no check has seen.

    Not retried: the next minute's scan is the retry.
    """
    with _unit_of_work(self) as (session, settings):
        checked = triggers.scan(session, settings, utcnow())
    logger.info("cart scan: %d checked", checked)
    return checked


# --- provider events --------------------------------------------------------------------------------------------


@shared_task(name=PROCESS_EVENTS, **task_policy(soft=60, hard=90, max_retries=5, backoff_max=120))
def process_events(self: Task[Any, Any]) -> int:
    """Process one batch of stored provider events; a full batch means more wait, so enqueue another run.

    Sent by the webhooks after they store new events, and by beat every minute as the backstop.
    Returns the number of events processed.
    """
    with _unit_of_work(self) as (session, settings):
        result = process_outcomes(session, settings, utcnow())
        if result.events >= BATCH:
            enqueue_after_commit(session, self.app.tasks[PROCESS_EVENTS])
    logger.info("provider events: %d processed, %d outcomes", result.events, result.outcomes)
    return result.events


def enqueue_event_processing(session: Session) -> None:
    """Enqueue ``nudge.events.process`` once ``session`` commits (the API's ``ScheduleProcessing``)."""
    enqueue_after_commit(session, process_events)


def enqueue_cart_check(session: Session, cart_id: int, due_at: datetime) -> None:
    """Enqueue ``nudge.triggers.check_cart`` for ``due_at`` once ``session`` commits (the API's ``ScheduleCartCheck``).

    The eta is bounded like a deferral's; a check that wakes early finds its cart not yet due and is checked
    again by the beat's scan."""
    eta = _bounded_eta(due_at, utcnow(), settings_of(check_cart))
    enqueue_after_commit(session, check_cart, cart_id, eta=eta)
