"""Load test: intake and webhook endpoints against a real uvicorn server, and the send pipeline; writes the figures
``nudge capacity`` and ``/metrics`` read (``NUDGE_CAPACITY_RESULTS_PATH``, default ``<data_dir>/capacity.json``).

Everything runs on one throwaway PostgreSQL (or ``--database-url``), migrated first:

- **intake**: ``nudge serve --workers N`` in a subprocess; ``--clients`` asyncio clients (httpx) post pre-built
  ``/v1/batch`` bodies of ``--batch-size`` events as fast as the server answers;
- **webhooks**: the app under uvicorn in a child process, storing only (processing is the workers' job);
  clients post signed SendGrid batches of ``--batch-size`` events;
- **sends**: ``campaigns.sending.send_batch`` in this process, batch by batch, into the local outbox (on a second
  throwaway PostgreSQL: ``bench/send_pipeline.py``'s customers are numbered from 1).

Printed and saved per component: requests/s and events (or messages)/s, latency p50/p95/p99 per request, and how
many were acknowledged. Figures are for this machine only; the load generator shares its cores with the server.

    .venv/bin/python bench/load.py [--requests 300] [--batch-size 100] [--clients 8] [--workers 2] [--sends 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]  # the sibling benchmarks and tests.support are not installed

import intake as intake_bench  # noqa: E402
import send_pipeline  # noqa: E402
import webhooks as webhooks_bench  # noqa: E402

from audience.sources import create_source  # noqa: E402
from channels.events import sendgrid_public_key  # noqa: E402
from core import migrate  # noqa: E402
from core.db import Database  # noqa: E402
from core.settings import get_settings  # noqa: E402

Request = tuple[str, bytes, dict[str, str]]


def main() -> None:
    args = _arguments()
    # The servers run in production mode, which refuses to start without these; the values are the bench's own.
    os.environ.setdefault("NUDGE_PUBLIC_BASE_URL", "https://load.example.com")
    os.environ.setdefault("NUDGE_SIGNING_SECRET", "load-test-signing-secret-" + "0" * 16)
    results: dict[str, Any] = {}
    with intake_bench._database_url(args.database_url) as url:
        database = Database.from_url(url)
        migrate.upgrade(database.engine)
        results["intake"] = _intake(url, database, args)
        results["webhooks"] = _webhooks(url, database, args)
        database.dispose()
    with send_pipeline.postgres_database() as sends_database:  # its customers are numbered from 1: a fresh database
        migrate.upgrade(sends_database.engine)
        results["sends"] = _sends(sends_database, args)
    _save(args, results)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL URL; default: start a throwaway server")
    parser.add_argument("--requests", type=int, default=300, help="POSTs per endpoint")
    parser.add_argument("--batch-size", type=int, default=100, help="events per POST")
    parser.add_argument("--clients", type=int, default=8, help="concurrent asyncio clients")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes for intake")
    parser.add_argument("--sends", type=int, default=5000, help="messages through the send pipeline")
    parser.add_argument("--output", type=Path, help="default: NUDGE_CAPACITY_RESULTS_PATH or <data_dir>/capacity.json")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


# --- the load generator -------------------------------------------------------------------------------------------


async def _hammer(base_url: str, requests: Sequence[Request], clients: int) -> tuple[float, list[float], int]:
    """Post every request from ``clients`` concurrent connections; seconds, latencies and non-2xx answers."""
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    failures = [0]

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            path, body, headers = queue.get_nowait()
            started = time.perf_counter()
            response = await http.post(path, content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            failures[0] += not response.is_success

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, failures[0]


def _figures(
    name: str, unit: str, elapsed: float, latencies: list[float], failures: int, per_request: int
) -> dict[str, Any]:
    count = len(latencies)
    cuts = statistics.quantiles(latencies, n=100) if count > 1 else latencies * 99
    figures = {
        "per_second": {"requests": round(count / elapsed, 1), unit: round(count * per_request / elapsed, 1)},
        "latency_ms": {
            "p50": round(cuts[49] * 1000, 1),
            "p95": round(cuts[94] * 1000, 1),
            "p99": round(cuts[98] * 1000, 1),
        },
        "requests": count,
        "failed": failures,
        f"{unit}_per_request": per_request,
    }
    print(
        f"{name}: {figures['per_second'][unit]:,.0f} {unit}/s, {figures['per_second']['requests']:,.1f} requests/s; "
        f"p50 {figures['latency_ms']['p50']} ms, p95 {figures['latency_ms']['p95']} ms, "
        f"p99 {figures['latency_ms']['p99']} ms; {failures} of {count} failed"
    )
    return figures


# --- the three components -----------------------------------------------------------------------------------------


def _intake(url: str, database: Database, args: argparse.Namespace) -> dict[str, Any]:
    with database.session() as session:
        write_key = create_source(session, f"load-{uuid.uuid4().hex[:8]}").write_key
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    bodies = intake_bench._batches(args.requests + 5, args.batch_size, 20_000, seed=args.seed)
    requests = [("/v1/batch", body, headers) for body in bodies]
    with intake_bench._server(url, args.workers) as base_url:
        asyncio.run(_hammer(base_url, requests[:5], 1))  # warm up
        elapsed, latencies, failures = asyncio.run(_hammer(base_url, requests[5:], args.clients))
    return _figures("intake /v1/batch", "events", elapsed, latencies, failures, args.batch_size)


def _webhooks(url: str, database: Database, args: argparse.Namespace) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    options = argparse.Namespace(batches=args.requests, batch_size=args.batch_size, messages=20_000)
    webhooks_bench._seed(database, options.messages)
    requests = webhooks_bench._sendgrid_bodies(random.Random(args.seed), key, options, first_event=0)
    with webhooks_bench._server(url, sendgrid_public_key(key), process=False) as base_url:
        elapsed, latencies, failures = asyncio.run(_hammer(base_url, requests, args.clients))
    return _figures("webhooks /webhooks/sendgrid", "events", elapsed, latencies, failures, args.batch_size)


def _sends(database: Database, args: argparse.Namespace) -> dict[str, Any]:
    send_pipeline.populate(database, args.sends)
    campaign_id = send_pipeline.campaign(database, f"load-{uuid.uuid4().hex[:8]}", args.sends)
    seconds = send_pipeline.send_all(database, campaign_id, args.sends, lambda session: None, send_pipeline.NOW)
    rate = args.sends / seconds
    print(f"sends (send_batch into the outbox): {rate:,.0f} messages/s ({args.sends:,} in {seconds:.1f} s)")
    return {"per_second": {"messages": round(rate, 1)}, "messages": args.sends}


def _save(args: argparse.Namespace, components: dict[str, Any]) -> None:
    path: Path = args.output or get_settings().capacity_results_file
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": _cpus(), "python": platform.python_version(), "platform": platform.platform()},
        "options": {key: value for key, value in vars(args).items() if key not in {"database_url", "output"}},
        "components": components,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path}")


def _cpus() -> int:
    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
