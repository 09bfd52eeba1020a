"""A campaign workload for tests and benchmarks that run real Celery workers: customers with consent, an
approved campaign, and worker processes started as production starts them, with SendGrid pointed at the fake."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agents.brand import import_brand
from audience.generated_contacts import FIRST_NAMES
from core.bulk import insert_rows
from core.clock import utcnow
from core.db import Database
from core.models import (
    Assignment,
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignVariant,
    Channel,
    Consent,
    ConsentBasis,
    ConsentPurpose,
    ConsentStatus,
    Customer,
)
from guardrails.report import Report
from nudge.commands.creative import SAMPLE_BRAND
from tests.campaigns.test_sending import email_content
from tests.campaigns.test_triggers import cart_content
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.redis import start_child, stop_child

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "https://fablewave.example.com"
SIGNING_SECRET = "w" * 32
WORKER_READY_SECONDS = 60.0


def populate(db: Database, count: int, *, unique_names: bool = False, now: datetime | None = None) -> None:
    """The sample brand's catalog and customers 1..count, each with an express e-mail marketing opt-in given 30
    days before ``now`` (default: the present)."""
    now = now or utcnow()
    with db.session() as session:
        import_brand(session, SAMPLE_BRAND, store=None)
        insert_rows(session, Customer, [_customer(n, now, unique_names) for n in range(1, count + 1)])
        insert_rows(session, Consent, [_consent(n, now) for n in range(1, count + 1)])


def _customer(n: int, now: datetime, unique_names: bool) -> dict[str, Any]:
    # First names as the demo's generated contacts have them (40 common names), or all different (the worst
    # case for the send path, which checks each distinct rendering once per batch); every tenth has none.
    name = f"Name{n}" if unique_names else FIRST_NAMES[n % len(FIRST_NAMES)]
    return {
        "external_id": f"c{n}",
        "email": f"customer{n}@example.com",
        "phone": None,
        "first_name": None if n % 10 == 0 else name,
        "last_name": None,
        "time_zone": "America/New_York",
        "country": "US",
        "region": "NY",
        "attributes": {},
        "contact_generated": True,
        "created_at": now,
        "updated_at": now,
    }


def _consent(n: int, now: datetime) -> dict[str, Any]:
    return {
        "customer_id": n,
        "channel": Channel.EMAIL,
        "status": ConsentStatus.GRANTED,
        "purpose": ConsentPurpose.MARKETING,
        "basis": ConsentBasis.EXPRESS,
        "source": "bench",
        "recorded_at": now - timedelta(days=30),
    }


def _campaign(key: str, kind: CampaignKind, state: CampaignState, now: datetime) -> Campaign:
    scheduled = now - timedelta(seconds=1) if state is CampaignState.SCHEDULED else None
    return Campaign(
        key=key,
        name=key,
        kind=kind,
        state=state,
        channel=Channel.EMAIL,
        salt="bench",
        scheduled_at=scheduled,
        created_by="bench",
    )


def _approved_variant(campaign_id: int, content: dict[str, Any], now: datetime) -> CampaignVariant:
    return CampaignVariant(
        campaign_id=campaign_id,
        segment="all",
        variant="v1",
        channel=Channel.EMAIL,
        content=content,
        report=Report(checked_at=now).model_dump(mode="json"),
        blocked=False,
        approved_at=now,
        approved_by="bench",
    )


def scheduled_campaign(db: Database, key: str, customer_ids: Sequence[int]) -> tuple[int, str]:
    """A retention campaign, approved and scheduled a second ago, with ``customer_ids`` in its one arm."""
    now = utcnow()
    with db.session() as session:
        row = _campaign(key, CampaignKind.RETENTION, CampaignState.SCHEDULED, now)
        session.add(row)
        session.flush()
        session.add(_approved_variant(row.id, email_content(), now))
        assignments = [
            {"campaign_id": row.id, "customer_id": n, "segment": "all", "arm": "v1", "bucket": n, "assigned_at": now}
            for n in customer_ids
        ]
        insert_rows(session, Assignment, assignments)
        return row.id, row.key


def trigger_campaign(db: Database, key: str) -> str:
    """The approved abandoned-cart campaign, with its approved ``{{cart_items}}`` variant (as the tests build it)."""
    now = utcnow()
    with db.session() as session:
        row = _campaign(key, CampaignKind.TRIGGER, CampaignState.APPROVED, now)
        session.add(row)
        session.flush()
        session.add(_approved_variant(row.id, cart_content(), now))
        return row.key


def worker_env(redis_url: str, db_url: str, fake: FakeSendGrid, data_dir: Path) -> dict[str, str]:
    """What a worker process is started with: Redis, the database, SendGrid pointed at the fake."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NUDGE_REDIS_URL": redis_url,
        "NUDGE_DATABASE_URL": db_url,
        "NUDGE_DATA_DIR": str(data_dir),
        "NUDGE_CELERY_ALWAYS_EAGER": "false",
        "NUDGE_EMAIL_PROVIDER": "sendgrid",
        "NUDGE_SENDGRID_API_KEY": fake.api_key,
        "NUDGE_SENDGRID_HOST": fake.host,
        "NUDGE_PUBLIC_BASE_URL": PUBLIC_URL,
        "NUDGE_SIGNING_SECRET": SIGNING_SECRET,
    }


@contextmanager
def celery_workers(
    specs: Sequence[tuple[str, int]], env: dict[str, str], logs: Path
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Start a ``celery -A workers.app worker`` process per (name, prefork children), each its own process group,
    wait until each is ready, and stop them, pool children included, whatever happens."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, children in specs:
            processes[name] = start_worker(name, children, env, logs)
        for name, process in processes.items():
            wait_ready(name, process, logs / f"{name}.log")
        yield processes
    finally:
        for process in processes.values():
            stop_child(process, grace=15)


def start_worker(name: str, children: int, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """``celery -A workers.app worker`` with ``children`` prefork children, logging to ``logs/<name>.log``."""
    args = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--pool=prefork"]
    args += [f"--concurrency={children}", f"--hostname={name}@localhost", "--loglevel=INFO"]
    args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return start_child(args, env=env, log=logs / f"{name}.log")


def wait_ready(name: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker {name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if " ready." in log.read_text():
            return
        time.sleep(0.1)
    raise RuntimeError(f"worker {name} not ready after {WORKER_READY_SECONDS} s:\n{log.read_text()[-3000:]}")
