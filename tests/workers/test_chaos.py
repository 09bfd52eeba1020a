"""Chaos: workers killed with SIGKILL again and again during a 10,000-recipient send; afterwards every recipient
has exactly one message at the provider — none lost, none doubled.

Everything is real but the provider: Redis, PostgreSQL, ``celery -A workers.app worker`` processes started as
production starts them, the API under uvicorn receiving SendGrid's signed event webhook, and the SendGrid fake,
which (like SendGrid) reports every message it accepts with a ``processed`` event — also when the worker that
sent it died before reading the answer. Kills land anywhere: before a batch's write-ahead commit (the task comes
back from Redis after the visibility timeout), between the write-ahead and the receipts (``campaigns.reconcile``
settles the row from the events, or sends it again when the provider never had it), or after.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr
from sqlalchemy import func, select

from channels.events import sendgrid_public_key
from core.db import Database
from core.models import Campaign, CampaignState, Message, MessageStatus
from core.settings import Settings
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.workload import (
    PUBLIC_URL,
    SIGNING_SECRET,
    populate,
    scheduled_campaign,
    start_worker,
    wait_ready,
    worker_env,
)
from tests.web.test_webhooks_sendgrid import signed
from tests.workers.conftest import url_of
from web.app import create_app
from web.serving import serving
from workers.app import RECONCILE_SENDS, START_SENDING, create_celery

RECIPIENTS = 10_000
KILLS = 6
REDIS_DB = 5  # its own database: no other test's worker takes these tasks
WINDOWS = {  # short windows so the test ends in minutes; each still far above a batch's real duration
    "NUDGE_SEND_BATCH_SIZE": "250",
    "NUDGE_SEND_IN_FLIGHT_SECONDS": "15",
    "NUDGE_SEND_RECONCILE_AFTER_SECONDS": "20",
    "NUDGE_CELERY_VISIBILITY_TIMEOUT_SECONDS": "12",
}
SETTLE_SECONDS = 420.0
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")


class ReportingSendGrid(FakeSendGrid):
    """The SendGrid fake that posts a signed ``processed`` event per accepted message to the event webhook, from
    a thread of its own, as SendGrid does — whether or not the sender is still there to read the answer."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        super().__init__()
        self.webhook_url = ""
        self._key = key
        self._reports: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._reporter = threading.Thread(target=self._report, daemon=True)
        self._reporter.start()

    def _respond(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        status, answer_headers, answer = super()._respond(path, headers, body)
        if status == 202:
            message_id = answer_headers["X-Message-Id"]
            personalizations = enumerate(body["personalizations"])
            self._reports.put([self._processed(message_id, index, p) for index, p in personalizations])
        return status, answer_headers, answer

    def _processed(self, message_id: str, index: int, personalization: dict[str, Any]) -> dict[str, Any]:
        return {
            "email": personalization["to"][0]["email"],
            "timestamp": int(time.time()),
            "event": "processed",
            "sg_event_id": f"evt-{next(self._ids)}",
            "sg_message_id": f"{message_id}.filter{index}",
            **personalization.get("custom_args", {}),
        }

    def _report(self) -> None:
        with httpx.Client(timeout=30) as client:
            while (events := self._reports.get()) is not None:
                body = json.dumps(events).encode() + b"\r\n"
                response = client.post(self.webhook_url, content=body, headers=signed(self._key, body))
                response.raise_for_status()

    def stop_reporting(self) -> None:
        self._reports.put(None)
        self._reporter.join(timeout=30)


@pytest.fixture
def api_url(postgres_db: Database, private_key: ec.EllipticCurvePrivateKey) -> Iterator[str]:
    """The API (webhooks) under uvicorn on a loopback port, on the test PostgreSQL."""
    settings = Settings(
        public_base_url=PUBLIC_URL,
        signing_secret=SecretStr(SIGNING_SECRET),
        sendgrid_webhook_public_key=sendgrid_public_key(private_key),
    )
    with serving(create_app(settings, postgres_db)) as url:
        yield url


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its pool children (its process group): no shutdown, no acknowledgement."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def state_and_counts(db: Database, campaign_id: int, key: str) -> tuple[CampaignState, dict[MessageStatus, int]]:
    with db.session() as session:
        state = session.scalars(select(Campaign.state).where(Campaign.id == campaign_id)).one()
        query = select(Message.status, func.count()).where(Message.campaign_key == key).group_by(Message.status)
        return state, {status: count for status, count in session.execute(query)}  # noqa: C416 (rows, not pairs)


def test_killed_workers_leave_every_recipient_exactly_one_message(
    postgres_db: Database,
    redis_url: str,
    api_url: str,
    private_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
) -> None:
    populate(postgres_db, RECIPIENTS)
    campaign_id, key = scheduled_campaign(postgres_db, "chaos", range(1, RECIPIENTS + 1))
    rng = random.Random(20261121)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with ReportingSendGrid(private_key) as fake:
        fake.webhook_url = f"{api_url}/webhooks/sendgrid"
        env = worker_env(f"{redis_url}/{REDIS_DB}", url_of(postgres_db), fake, tmp_path)
        env.update(WINDOWS, NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid_public_key(private_key))
        app = create_celery(Settings(redis_url=f"{redis_url}/{REDIS_DB}", celery_always_eager=False))
        names = (f"w{n}" for n in itertools.count(1))
        try:
            for name in itertools.islice(names, 2):
                processes[name] = start_worker(name, 1, env, tmp_path)
                wait_ready(name, processes[name], tmp_path / f"{name}.log")
            app.send_task(START_SENDING, args=[campaign_id])
            for _ in range(KILLS):
                time.sleep(rng.uniform(1.0, 4.0))
                victim = rng.choice(sorted(processes))
                kill(processes.pop(victim))
                name = next(names)
                processes[name] = start_worker(name, 1, env, tmp_path)
                wait_ready(name, processes[name], tmp_path / f"{name}.log")
            state, counts = _settle(app, postgres_db, campaign_id, key)
        finally:
            for process in processes.values():
                kill(process)
            app.close()
            fake.stop_reporting()
        received = Counter(delivery.to for delivery in fake.deliveries())

    assert (state, counts) == (CampaignState.SENT, {MessageStatus.SENT: RECIPIENTS})
    assert len(received) == RECIPIENTS, f"{RECIPIENTS - len(received)} recipients got nothing"
    assert max(received.values()) == 1, f"doubled: {[to for to, n in received.items() if n > 1][:10]}"


def _settle(app: Any, db: Database, campaign_id: int, key: str) -> tuple[CampaignState, dict[MessageStatus, int]]:
    """Run the reconcile task every few seconds (beat does it every minute) until the campaign is sent."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        state, counts = state_and_counts(db, campaign_id, key)
        if state is CampaignState.SENT or time.monotonic() > deadline:
            return state, counts
        app.send_task(RECONCILE_SENDS)
        time.sleep(3.0)
