"""Event intake throughput: events/s through HTTP ``POST /v1/batch`` into PostgreSQL, on loopback.

Starts a throwaway PostgreSQL (or uses ``--database-url``), migrates it, creates a source, runs
``nudge serve`` in a subprocess the way production would (no reload, ``--workers``), then posts
pre-built batches (identify/track mix) from several concurrent clients and prints events/s,
request latency p50/p95, and the number of events stored, which must equal the number sent.

    .venv/bin/python bench/intake.py [--batches 400] [--batch-size 100] [--clients 4] [--workers 2]

Two workers by default on a 2-core machine: a worker runs its Python (validation, SQLAlchemy) on one core
at most, and here PostgreSQL and the clients share the same two cores. Measured with ``--batches 1000``:
1 worker 6,386 events/s, 2 workers 8,620, 3 workers 8,807 — a third worker is within noise and costs
another process and its connection pool.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from audience.sources import create_source
from core import migrate
from core.db import Database
from core.models import Event

ROOT = Path(__file__).resolve().parent.parent
EVENT_NAMES = ["Product Viewed", "Product Added", "Cart Viewed", "Checkout Started", "Order Completed", "Email Opened"]
TIME_ZONES = ["America/New_York", "America/Chicago", "Europe/London", "Europe/Berlin", "Asia/Tokyo"]


def main() -> None:
    args = _arguments()
    with _database_url(args.database_url) as url:
        database = Database.from_url(url)
        migrate.upgrade(database.engine)
        with database.session() as session:
            new = create_source(session, f"bench-{uuid.uuid4().hex[:8]}")
        source_id = new.source.id
        bodies = _batches(args.batches, args.batch_size, args.users, seed=args.seed)
        with _server(url, args.workers) as base_url:
            _post(base_url, new.write_key, bodies[:5], clients=1)  # warm up connections and caches
            started = time.perf_counter()
            latencies, acknowledged = _post(base_url, new.write_key, bodies[5:], clients=args.clients)
            elapsed = time.perf_counter() - started
        with database.session() as session:
            stored = session.scalar(select(func.count()).select_from(Event).where(Event.source_id == source_id))
        database.dispose()
    _report(args, elapsed, latencies, acknowledged, stored, sent=len(bodies) * args.batch_size)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL URL; default: start a throwaway server")
    parser.add_argument("--batches", type=int, default=400, help="batches to post, 5 of them warm-up")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--users", type=int, default=20_000, help="distinct userIds the calls draw from")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


@contextmanager
def _database_url(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, str(ROOT))  # tests.support is not an installed package
    from tests.support.postgres import postgres_server

    with postgres_server() as started:
        yield started


def _batches(count: int, size: int, users: int, *, seed: int) -> list[bytes]:
    """JSON bodies built before timing: 20 % identify, 10 % anonymous track, 70 % track; unique messageIds."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [
        json.dumps(
            {
                "batch": [_call(rng, users, now) for _ in range(size)],
                "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
                "sentAt": _iso(now),
            }
        ).encode()
        for _ in range(count)
    ]


def _call(rng: random.Random, users: int, now: datetime) -> dict[str, Any]:
    user = rng.randrange(users)
    common = {
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "timestamp": _iso(now - timedelta(seconds=rng.uniform(0, 30))),
        "context": {"ip": f"10.0.{user % 256}.{user // 256 % 256}", "userAgent": "Mozilla/5.0 (bench)"},
    }
    roll = rng.random()
    if roll < 0.2:
        traits: dict[str, Any] = {"email": f"user{user}@example.com", "firstName": "Ann", "lastName": f"Lee{user}"}
        if rng.random() < 0.5:
            traits |= {"phone": f"+1555{user:07d}", "plan": rng.choice(["free", "pro"])}
        common["context"] |= {"timezone": rng.choice(TIME_ZONES)}
        return {"type": "identify", "userId": f"user-{user}", "traits": traits, **common}
    identity = {"anonymousId": f"anon-{user}"} if roll < 0.3 else {"userId": f"user-{user}"}
    properties = {"product_id": f"sku-{rng.randrange(500)}", "price": round(rng.uniform(5, 200), 2), "currency": "USD"}
    return {"type": "track", "event": rng.choice(EVENT_NAMES), "properties": properties, **identity, **common}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@contextmanager
def _server(database_url: str, workers: int) -> Iterator[str]:
    """``nudge serve`` on a free loopback port, in production mode (it refuses an unmigrated database)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "NUDGE_DATABASE_URL": database_url,
        "NUDGE_ENVIRONMENT": "production",
        "NUDGE_LOG_LEVEL": "warning",
    }
    command = [
        sys.executable,
        "-m",
        "nudge",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, server)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_ready(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"nudge serve exited with {server.returncode}")
        try:
            if httpx.get(f"{base_url}/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("nudge serve did not become ready in 60 s")


def _post(base_url: str, write_key: str, bodies: list[bytes], *, clients: int) -> tuple[list[float], int]:
    """Post every body from ``clients`` threads (one keep-alive connection each); return latencies and events."""
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    pending = iter(bodies)
    lock = threading.Lock()
    latencies: list[float] = []
    acknowledged = [0]

    def client() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
            while True:
                with lock:
                    body = next(pending, None)
                if body is None:
                    return
                started = time.perf_counter()
                response = http.post("/v1/batch", content=body)
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                answer = response.json()
                with lock:
                    latencies.append(elapsed)
                    acknowledged[0] += answer["stored"] + answer["duplicates"]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, acknowledged[0]


def _report(
    args: argparse.Namespace, elapsed: float, latencies: list[float], acknowledged: int, stored: int | None, sent: int
) -> None:
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"batches: {len(latencies)} timed (+5 warm-up) of {args.batch_size} events; {args.clients} clients, "
          f"{args.workers} uvicorn workers, PostgreSQL on 127.0.0.1")  # fmt: skip
    print(f"throughput: {acknowledged / elapsed:,.0f} events/s ({acknowledged:,} events in {elapsed:.2f} s)")
    print(f"latency per batch request: p50 {quantiles[49] * 1000:.1f} ms, p95 {quantiles[94] * 1000:.1f} ms")
    print(f"stored: {stored:,} of {sent:,} sent")
    if stored != sent:
        raise SystemExit("stored count differs from events sent")


if __name__ == "__main__":
    main()
