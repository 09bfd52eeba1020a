"""Messages per second through ``campaigns.sending.send_batch``: checks, render, re-check, write-ahead commit, send,
record — one process, no Celery.

A campaign of N assigned customers (e-mail, consent, New York time, one approved variant from a finished draft)
is built in a temporary database, then sent in batches of ``send_batch_size`` (500), one session per batch as a
task would: once into the local outbox, once through ``SendGridSender`` (the real SDK) into the loopback fake of
SendGrid's Mail Send (``tests/support/fake_sendgrid.py``), each a fresh campaign. SQLite always; PostgreSQL too
with ``--postgres`` (a throwaway server from Debian's binaries). Not a test: it prints figures (``make bench``).

    .venv/bin/python bench/send_pipeline.py [N] [--postgres]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from campaigns.sending import BatchResult, send_batch  # noqa: E402
from channels.ports import EmailSender  # noqa: E402
from channels.sendgrid import SendGridSender  # noqa: E402
from core import migrate  # noqa: E402
from core.bulk import insert_rows  # noqa: E402
from core.db import Database  # noqa: E402
from core.models import (  # noqa: E402
    Assignment,
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignVariant,
    Channel,
)
from core.settings import Settings  # noqa: E402
from guardrails.report import Report  # noqa: E402
from tests.campaigns.test_sending import email_content  # noqa: E402
from tests.support.fake_sendgrid import FakeSendGrid  # noqa: E402
from tests.support.postgres import postgres_server  # noqa: E402
from tests.support.workload import populate  # noqa: E402

CUSTOMERS = 5_000
NOW = datetime(2026, 11, 18, 16, 0, tzinfo=UTC)  # 11:00 in New York: inside every window
SETTINGS = Settings(public_base_url="https://fablewave.example.com", signing_secret=SecretStr("b" * 32))


def campaign(db: Database, key: str, count: int) -> int:
    """A campaign in ``sending`` with one approved variant and every customer assigned to it."""
    with db.session() as session:
        row = Campaign(
            key=key,
            name=key,
            kind=CampaignKind.RETENTION,
            state=CampaignState.SENDING,
            channel=Channel.EMAIL,
            salt="bench",
            created_by="bench",
        )
        session.add(row)
        session.flush()
        session.add(
            CampaignVariant(
                campaign_id=row.id,
                segment="all",
                variant="v1",
                channel=Channel.EMAIL,
                content=email_content(),
                report=Report(checked_at=NOW).model_dump(mode="json"),
                blocked=False,
                approved_at=NOW,
                approved_by="bench",
            )
        )
        assignments = [
            {"campaign_id": row.id, "customer_id": n, "segment": "all", "arm": "v1", "bucket": n, "assigned_at": NOW}
            for n in range(1, count + 1)
        ]
        insert_rows(session, Assignment, assignments)
        return row.id


def send_all(
    db: Database, campaign_id: int, count: int, sender: Callable[[Any], EmailSender | None], now: datetime
) -> float:
    """Seconds to send every customer, a batch per session; checks that every one was sent."""
    size = SETTINGS.send_batch_size
    sent = 0
    started = time.perf_counter()
    for start in range(1, count + 1, size):
        with db.session() as session:
            result: BatchResult = send_batch(
                session,
                SETTINGS,
                campaign_id,
                list(range(start, min(start + size, count + 1))),
                now,
                email_sender=sender(session),
            )
        sent += result.sent
    seconds = time.perf_counter() - started
    assert sent == count, f"sent {sent} of {count}"
    return seconds


def run(name: str, db: Database, count: int) -> None:
    migrate.upgrade(db.engine)
    populate(db, count, unique_names=True, now=NOW)
    outbox = send_all(db, campaign(db, "bench-outbox", count), count, lambda session: None, NOW)
    print(f"{name}: send_batch into the outbox: {count / outbox:,.0f} messages/s ({count:,} in {outbox:.1f} s)")
    with FakeSendGrid() as fake:
        sendgrid = SendGridSender(fake.api_key, host=fake.host)
        # A day later: the first campaign's e-mails fill everyone's daily cap until then.
        seconds = send_all(
            db, campaign(db, "bench-sendgrid", count), count, lambda _: sendgrid, NOW + timedelta(days=1)
        )
        requests = len(fake.requests)
    print(
        f"{name}: send_batch through SendGridSender into the fake: {count / seconds:,.0f} messages/s "
        f"({count:,} in {seconds:.1f} s, {requests} requests)"
    )


@contextmanager
def sqlite_database() -> Iterator[Database]:
    with tempfile.TemporaryDirectory(prefix="nudge-bench-") as directory:
        db = Database.from_url(f"sqlite:///{directory}/nudge.db")
        try:
            yield db
        finally:
            db.dispose()


@contextmanager
def postgres_database() -> Iterator[Database]:
    with postgres_server() as url:
        db = Database.from_url(url)
        try:
            yield db
        finally:
            db.dispose()


def main() -> None:
    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    count = int(numbers[0]) if numbers else CUSTOMERS
    with sqlite_database() as db:
        run("SQLite", db, count)
    if "--postgres" in sys.argv:
        with postgres_database() as db:
            run("PostgreSQL", db, count)


if __name__ == "__main__":
    main()
