"""Benchmark: the review queue and draft review pages with 10,000 drafts in the database, over real HTTP.

Builds a fresh embedded SQLite database (or uses ``--database-url``) holding ``--campaigns`` e-mail
campaigns in review with ``--variants`` drafts each (10,000 drafts by default; every campaign's copy is its
own, so no cache sees the same draft twice by accident), signs a user in, and starts the server as
``nudge serve --workers N`` does (``--workers``, default 2: one per core of a small machine) on a loopback
port. Then it drives it with async httpx at ``--concurrency`` requests in flight:

- ``queue``: ``--requests`` GETs of queue pages (``/campaigns?page=N`` over every page);
- ``review``: ``--requests`` review pages (``/campaigns/<key>/review``) of distinct random campaigns;
- ``preview``: the e-mail previews those pages frame (``/campaigns/<key>/variants/<id>/preview``, one
  request per variant, as the browser loads them), each seen for the first time since the server started:
  the draft is compiled into templates, the cold case;
- ``again``: the same previews once more, from the server's preview cache (a reviewer coming back to a
  campaign, or reloading it).

Prints p50/p95/p99 latency and throughput. Not a test: it prints figures. Target: p95 < 100 ms.

    .venv/bin/python bench/web_pages.py [--campaigns 2500 --variants 4 --requests 500 --concurrency 8 --workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import migrate  # noqa: E402
from core.bulk import insert_for, table_of  # noqa: E402
from core.clock import utcnow  # noqa: E402
from core.models import Campaign, CampaignKind, CampaignState, CampaignVariant, Channel, Role  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.campaigns.test_sending import email_content  # noqa: E402
from tests.web.seeding import add_offer, plan  # noqa: E402
from web import accounts  # noqa: E402
from web.auth import SESSION_COOKIE, login_policy  # noqa: E402


def seed(settings: Settings, campaigns: int, variants: int) -> tuple[str, dict[str, list[int]]]:
    """The drafts, a reviewer and their session token, and each campaign's variant ids by its key."""
    database = settings.open_database()
    migrate.ensure_current(database.engine, upgrade_if_behind=True)
    now, content = utcnow(), email_content()
    with database.session() as session:
        add_offer(session)
        insert = insert_for(session)
        rows = [
            {
                "key": f"bench-{n}",
                "name": f"Bench campaign {n}",
                "kind": CampaignKind.RETENTION.value,
                "state": CampaignState.IN_REVIEW.value,
                "channel": Channel.EMAIL.value,
                "holdout_fraction": 0.1,
                "salt": "salt",
                "plan": plan(100),
                "created_by": "bench",
                "created_at": now,
                "updated_at": now,
            }
            for n in range(campaigns)
        ]
        for start in range(0, len(rows), 500):
            session.execute(insert(table_of(Campaign)).values(rows[start : start + 500]))
        ids = [row[0] for row in session.execute(Campaign.__table__.select().with_only_columns(Campaign.id))]
        drafts = [
            {
                "campaign_id": campaign_id,
                "segment": f"segment-{v // 2}",
                "variant": f"v{v % 2 + 1}",
                "channel": Channel.EMAIL.value,
                "content": {
                    **content,
                    "variant": f"v{v % 2 + 1}",
                    "subject": f"{content['subject']} ({campaign_id}.{v})",
                },
                "report": {"findings": [], "checked_at": now.isoformat(), "rules_version": "guardrails-1"},
                "blocked": False,
                "weight": 1.0,
                "created_at": now,
                "updated_at": now,
            }
            for campaign_id in ids
            for v in range(variants)
        ]
        for start in range(0, len(drafts), 500):
            session.execute(insert(table_of(CampaignVariant)).values(drafts[start : start + 500]))
        user = accounts.create_user(session, "bench", "bench-password", Role.APPROVER, now=now)
        token = accounts.open_session(session, user, login_policy(settings), now=now).token
        query = select(Campaign.key, CampaignVariant.id).join(Campaign, Campaign.id == CampaignVariant.campaign_id)
        variant_ids: dict[str, list[int]] = {}
        for key, variant_id in session.execute(query):
            variant_ids.setdefault(key, []).append(variant_id)
    database.dispose()
    print(f"seeded {campaigns:,} campaigns in review × {variants} drafts = {campaigns * variants:,} drafts")
    return token, variant_ids


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    """``nudge serve`` (the production entry point: its app, its ``--workers``) on ``port``."""
    command = [sys.executable, "-m", "nudge", "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, cwd=ROOT, env={**env, "NUDGE_LOG_LEVEL": "WARNING"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                time.sleep(2 if workers > 1 else 0)  # every worker process up, not only the first
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


async def measure(base: str, token: str, paths: list[str], concurrency: int) -> tuple[np.ndarray, float]:
    """Latency of each GET but the first (a warm-up) in seconds (all must answer 200), and the wall time."""
    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths[1:]:
        queue.put_nowait(path)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            path = queue.get_nowait()
            started = time.perf_counter()
            response = await client.get(path)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, cookies={SESSION_COOKIE: token}, limits=limits) as client:
        await client.get(paths[0])  # warm up
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return np.asarray(latencies), wall


def report(name: str, latencies: np.ndarray, wall: float) -> None:
    p50, p95, p99 = (np.percentile(latencies, q) * 1000 for q in (50, 95, 99))
    rate = len(latencies) / wall
    print(
        f"{name:7} {len(latencies):5} requests  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms  {rate:6.1f}/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaigns", type=int, default=2500)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="Server processes, as `nudge serve --workers`.")
    parser.add_argument("--database-url", default="", help="Default: a new SQLite file in a temporary directory.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "NUDGE_DATA_DIR": data_dir, "NUDGE_DATABASE_URL": args.database_url}
        settings = Settings(data_dir=Path(data_dir), database_url=args.database_url)
        token, variant_ids = seed(settings, args.campaigns, args.variants)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = start_server(env, port, args.workers)
        try:
            base, rng = f"http://127.0.0.1:{port}", random.Random(7)
            pages = -(-args.campaigns // 50)
            queue_paths = [f"/campaigns?page={n % pages + 1}" for n in range(args.requests + 1)]
            keys = rng.sample(range(args.campaigns), min(args.requests + 1, args.campaigns))  # + the warm-up
            review_paths = [f"/campaigns/bench-{n}/review" for n in keys]
            preview_paths = [
                f"/campaigns/bench-{n}/variants/{variant_id}/preview"
                for n in keys
                for variant_id in variant_ids[f"bench-{n}"]
            ]
            print(f"nudge serve --workers {args.workers} on {base}, {args.concurrency} requests in flight")
            report("queue", *asyncio.run(measure(base, token, queue_paths, args.concurrency)))
            report("review", *asyncio.run(measure(base, token, review_paths, args.concurrency)))
            report("preview", *asyncio.run(measure(base, token, preview_paths, args.concurrency)))
            report("again", *asyncio.run(measure(base, token, preview_paths, args.concurrency)))
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
