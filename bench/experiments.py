"""Seconds to the full experiment report of a campaign with 1,000,000 assigned customers and 3 arms.

Builds, in a fresh SQLite file (or the PostgreSQL database given with ``--postgres URL``, which must be
migrated and empty), one campaign with 1,000,000 customers assigned 10 % holdout / 45 % v1 / 45 % v2; every
treated customer has a message, 20 % of them an open and 3 % a click, a few a spam report; 8–9 % of each arm
orders in the 14-day window, 30 % ordered in the 90 days before; a few unsubscribe or text STOP. Then times
``campaigns.report.build_report`` — the SQL aggregation, the daily conversion series, the ledger's costs and
every statistic — and, separately, the aggregation alone and the statistics alone.

    .venv/bin/python bench/experiments.py                 # SQLite
    .venv/bin/python bench/experiments.py --postgres URL  # a migrated, empty PostgreSQL database
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402

from campaigns.report import build_report  # noqa: E402
from core import migrate  # noqa: E402
from core.bulk import insert_rows  # noqa: E402
from core.db import Database  # noqa: E402
from core.models import (  # noqa: E402
    Assignment,
    Campaign,
    Channel,
    Consent,
    ConsentStatus,
    Customer,
    Message,
    MessageStatus,
    Order,
    Outcome,
    OutcomeKind,
    Provider,
    ProviderEvent,
)
from core.settings import Settings  # noqa: E402
from experiments.analysis import analyze  # noqa: E402
from experiments.outcomes import CAMPAIGN_METRICS, Windows, arm_statistics  # noqa: E402
from tests.support.experiments import sent_campaign  # noqa: E402

CUSTOMERS = 1_000_000
START = datetime(2026, 10, 1, 9, tzinfo=UTC)
NOW = START + timedelta(days=20)
ARMS = np.array(["holdout", "v1", "v2"])
SHARES = [0.10, 0.45, 0.45]
CONVERSION = {"holdout": 0.080, "v1": 0.088, "v2": 0.084}
SETTINGS = Settings(global_holdout_fraction=0.0)
WINDOWS = Windows(timedelta(days=14), timedelta(days=90))


def build(database: Database, rng: np.random.Generator) -> int:
    """The campaign and its data; returns the campaign id."""
    with database.session() as session:
        campaign = sent_campaign(session, "bench", name="Benchmark", holdout_fraction=0.1, variants=("v1", "v2"))
        first = _customers(session)
        ids = np.arange(first, first + CUSTOMERS)
        arms = rng.choice(ARMS, size=CUSTOMERS, p=SHARES)
        insert_rows(session, Assignment, _assignments(campaign.id, ids, arms))
        insert_rows(session, Order, _orders(ids, arms, rng))
        _messages(session, ids[arms != "holdout"], rng)
        insert_rows(session, Consent, _withdrawals(ids, rng))
        return campaign.id


def _customers(session: Any) -> int:
    stamp = {"created_at": START, "updated_at": START, "attributes": {}, "contact_generated": True}
    insert_rows(session, Customer, [{"external_id": f"bench-{n}", **stamp} for n in range(CUSTOMERS)])
    first = session.scalar(select(Customer.id).where(Customer.external_id == "bench-0"))
    return int(first)


def _assignments(campaign_id: int, ids: np.ndarray, arms: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "campaign_id": campaign_id,
            "customer_id": int(c),
            "segment": "all",
            "arm": str(a),
            "bucket": 0,
            "assigned_at": START,
        }
        for c, a in zip(ids, arms, strict=True)
    ]


def _orders(ids: np.ndarray, arms: np.ndarray, rng: np.random.Generator) -> list[dict[str, Any]]:
    rate = np.vectorize(CONVERSION.get)(arms)
    buyers = ids[rng.random(CUSTOMERS) < rate]
    past = ids[rng.random(CUSTOMERS) < 0.30]
    rows = [_order(c, rng, START + timedelta(hours=float(rng.uniform(0, 14 * 24)))) for c in buyers]
    rows += [_order(c, rng, START - timedelta(hours=float(rng.uniform(1, 90 * 24)))) for c in past]
    return rows


def _order(customer_id: Any, rng: np.random.Generator, at: datetime) -> dict[str, Any]:
    amount = Decimal(str(round(float(rng.lognormal(3.5, 0.8)), 2)))
    stamp = {"created_at": at, "updated_at": at, "quantity": 1}
    return {"customer_id": int(customer_id), "amount": amount, "currency": "USD", "ordered_at": at, **stamp}


def _messages(session: Any, treated: np.ndarray, rng: np.random.Generator) -> None:
    stamp = {"created_at": START, "updated_at": START}
    messages = [
        {
            "message_key": f"b{c}",
            "idempotency_key": f"bench:{c}:email",
            "campaign_key": "bench",
            "customer_id": int(c),
            "channel": Channel.EMAIL,
            "address": f"{c}@example.com",
            "provider": Provider.OUTBOX,
            "status": MessageStatus.SENT,
            "attempts": 1,
            "sent_at": START,
            **stamp,
        }
        for c in treated
    ]
    insert_rows(session, Message, messages)
    first = int(session.scalar(select(Message.id).where(Message.message_key == f"b{treated[0]}")))
    message_ids = np.arange(first, first + len(treated))
    draws = rng.random(len(treated))
    kinds = [(OutcomeKind.OPEN, message_ids[draws < 0.20]), (OutcomeKind.CLICK, message_ids[draws < 0.03])]
    kinds.append((OutcomeKind.SPAM_REPORT, message_ids[draws > 0.9995]))
    events: list[dict[str, Any]] = []
    outcomes: list[tuple[int, OutcomeKind]] = []
    for kind, chosen in kinds:
        for message_id in chosen:
            key = f"{kind.value}:{message_id}"
            events.append(
                {
                    "provider": Provider.SENDGRID,
                    "event_id": key,
                    "fallback_key": key,
                    "kind": kind.value,
                    "payload": {},
                    "received_at": START,
                }
            )
            outcomes.append((int(message_id), kind))
    insert_rows(session, ProviderEvent, events)
    first_event = int(session.scalar(select(ProviderEvent.id).where(ProviderEvent.event_id == events[0]["event_id"])))
    rows = [
        {
            "message_id": m,
            "event_id": first_event + n,
            "kind": kind,
            "occurred_at": START + timedelta(hours=2),
            "data": {},
        }
        for n, (m, kind) in enumerate(outcomes)
    ]
    insert_rows(session, Outcome, rows)


def _withdrawals(ids: np.ndarray, rng: np.random.Generator) -> list[dict[str, Any]]:
    chosen = ids[rng.random(CUSTOMERS) < 0.004]
    channels = rng.choice([Channel.EMAIL, Channel.SMS], size=len(chosen), p=[0.7, 0.3])
    return [
        {
            "customer_id": int(c),
            "channel": channel,
            "status": ConsentStatus.WITHDRAWN,
            "purpose": "marketing",
            "basis": "express",
            "source": "bench",
            "recorded_at": START + timedelta(days=3),
        }
        for c, channel in zip(chosen, channels, strict=True)
    ]


def timed(label: str, work: Callable[[], Any], runs: int) -> Any:
    seconds, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - started)
    print(f"{label:<52} best {min(seconds):6.2f} s   runs: {', '.join(f'{s:.2f}' for s in seconds)}")
    return result


@contextmanager
def database_at(postgres: str | None) -> Iterator[Database]:
    with tempfile.TemporaryDirectory(prefix="nudge-bench-") as directory:
        database = Database.from_url(postgres or f"sqlite:///{directory}/nudge.db")
        migrate.upgrade(database.engine)
        try:
            yield database
        finally:
            database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a migrated, empty PostgreSQL database URL (default: a SQLite file)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with database_at(args.postgres) as database:
        started = time.perf_counter()
        campaign_id = build(database, np.random.default_rng(2026))
        with database.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        print(f"{database.engine.dialect.name}: built 1,000,000 assignments in {time.perf_counter() - started:.0f} s")
        with database.session() as session:
            campaign = session.get_one(Campaign, campaign_id)
            report = timed(
                "full report (aggregation + statistics)",
                lambda: build_report(session, campaign, SETTINGS, NOW),
                args.runs,
            )
            arms = timed(
                "aggregation alone (arm_statistics)", lambda: arm_statistics(session, campaign_id, WINDOWS), args.runs
            )
        timed("statistics alone (analyze)", lambda: analyze(arms, CAMPAIGN_METRICS, control="holdout"), args.runs)
    sizes = ", ".join(f"{arm.arm} {arm.n:,}" for arm in report.arms)
    print(f"arms: {sizes}; decision: {report.analysis.decision.status.value}")


if __name__ == "__main__":
    main()
