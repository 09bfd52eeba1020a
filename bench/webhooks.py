"""Webhook throughput: signed provider events in through HTTP, and stored events processed into outcomes.

For each database (SQLite file and a throwaway PostgreSQL, or ``--database-url``), seeds customers and sent
messages, then runs the real app (``web.app.create_app``) under uvicorn in a child process on loopback and
measures, from several concurrent HTTP clients:

1. **ingest** — SendGrid batches (``--batch-size`` events per POST, ECDSA-signed) and Twilio status callbacks
   (one per POST, HMAC-signed), with background processing switched off, so the figure is verify + parse +
   store + 202 alone;
2. **processing** — ``process_pending`` over what was stored, batch by batch, in this process;
3. **end to end** — a fresh set of SendGrid batches with background processing on, timed until every event
   is processed (what a deployment without Celery does).

The event mix is processed 30 %, delivered 30 %, open 25 %, click 10 %, deferred 2 %, hard bounce 2 %,
spam report 0.5 %, unsubscribe 0.5 %. Every figure is followed by a count check: stored events must equal
events sent, outcomes must equal events with an outcome.

    .venv/bin/python bench/webhooks.py [--database sqlite|postgres|both] [--batches 200] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

# The repository first: bench/channels.py would otherwise shadow the channels package.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.events import sendgrid_public_key  # noqa: E402
from channels.outbox import OutboxSmsSender  # noqa: E402
from channels.outcomes import BATCH, process_pending  # noqa: E402
from core import migrate  # noqa: E402
from core.bulk import insert_rows  # noqa: E402
from core.clock import utcnow  # noqa: E402
from core.db import Database  # noqa: E402
from core.models import Channel, Customer, Message, MessageStatus, Outcome, Provider, ProviderEvent  # noqa: E402
from core.settings import Settings  # noqa: E402
from web.webhooks import sendgrid_signed_headers  # noqa: E402

AUTH_TOKEN = "bench-auth-token"
MIX = [
    ("processed", 0.30),
    ("delivered", 0.30),
    ("open", 0.25),
    ("click", 0.10),
    ("deferred", 0.02),
    ("bounce", 0.02),
    ("spamreport", 0.005),
    ("unsubscribe", 0.005),
]


def main() -> None:
    args = _arguments()
    backends = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    key = ec.generate_private_key(ec.SECP256R1())
    for backend in backends:
        with _database_url(backend, args.database_url) as url:
            print(f"== {backend}")
            _run(url, key, args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--database-url", help="PostgreSQL URL; default: start a throwaway server")
    parser.add_argument("--batches", type=int, default=200, help="SendGrid POSTs per phase")
    parser.add_argument("--batch-size", type=int, default=100, help="events per SendGrid POST")
    parser.add_argument("--statuses", type=int, default=2000, help="Twilio status callbacks (one per POST)")
    parser.add_argument("--messages", type=int, default=20_000, help="sent messages the events refer to")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def _run(url: str, key: ec.EllipticCurvePrivateKey, args: argparse.Namespace) -> None:
    database = Database.from_url(url)
    migrate.upgrade(database.engine)
    _seed(database, args.messages)
    rng = random.Random(args.seed)
    public_key = sendgrid_public_key(key)
    with _server(url, public_key, process=False) as base_url:
        ingest = _sendgrid_bodies(rng, key, args, first_event=0)
        _ingest_report("ingest, SendGrid", *_post(base_url, ingest, args.clients), args.batch_size)
        statuses = _status_requests(base_url, args)
        _ingest_report("ingest, Twilio status", *_post(base_url, statuses, args.clients), 1)
    _check_stored(database, args.batches * args.batch_size + args.statuses)
    _process(database)
    with _server(url, public_key, process=True) as base_url:
        end_to_end = _sendgrid_bodies(rng, key, args, first_event=args.batches * args.batch_size)
        started = time.perf_counter()
        _post(base_url, end_to_end, args.clients)
        _wait_processed(database)
        elapsed = time.perf_counter() - started
    events = args.batches * args.batch_size
    print(f"end to end, SendGrid with background processing: {events / elapsed:,.0f} events/s ({elapsed:.2f} s)")
    database.dispose()


# --- data ---------------------------------------------------------------------------------------------------


def _seed(database: Database, count: int) -> None:
    now = utcnow()
    with database.session() as session:
        customers = [
            {"external_id": f"c{i}", "email": f"c{i}@example.com", "phone": f"+1555{i:07d}", "attributes": {}}
            | {"contact_generated": False}
            for i in range(count)
        ]
        insert_rows(session, Customer, [row | {"created_at": now, "updated_at": now} for row in customers])
        ids = dict(session.execute(select(Customer.external_id, Customer.id)).all())
        rows = [
            _message(i, ids[f"c{i}"], channel, now) for i in range(count) for channel in (Channel.EMAIL, Channel.SMS)
        ]
        insert_rows(session, Message, rows)


def _message(i: int, customer_id: int, channel: Channel, now: Any) -> dict[str, Any]:
    email = channel is Channel.EMAIL
    return {
        "message_key": f"{channel}-{i}",
        "idempotency_key": f"bench:{customer_id}:{channel}",
        "campaign_key": "bench",
        "customer_id": customer_id,
        "channel": channel,
        "address": f"c{i}@example.com" if email else f"+1555{i:07d}",
        "provider": Provider.SENDGRID if email else Provider.TWILIO,
        "provider_message_id": f"sg{i}" if email else f"SM{i:032d}",
        "status": MessageStatus.SENT,
        "attempts": 1,
        "sent_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _sendgrid_bodies(
    rng: random.Random, key: ec.EllipticCurvePrivateKey, args: argparse.Namespace, *, first_event: int
) -> list[tuple[str, bytes, dict[str, str]]]:
    """Signed requests, built before timing (signed now: they stay fresh for the default 300 s)."""
    kinds, weights = zip(*MIX, strict=True)
    requests = []
    for batch in range(args.batches):
        events = []
        for offset in range(args.batch_size):
            number, i = first_event + batch * args.batch_size + offset, rng.randrange(args.messages)
            events.append(_sendgrid_event(number, i, rng.choices(kinds, weights)[0]))
        body = json.dumps(events).encode() + b"\r\n"
        requests.append(("/webhooks/sendgrid", body, sendgrid_signed_headers(key, body, int(time.time()))))
    return requests


def _sendgrid_event(number: int, i: int, kind: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "email": f"c{i}@example.com",
        "timestamp": int(time.time()) - 60 + number % 60,
        "event": kind,
        "sg_event_id": f"ev{number:012d}",
        "sg_message_id": f"sg{i}.filter0001.{number}",
        "message_key": f"email-{i}",
        "smtp-id": f"<{i}@bench>",
        "category": ["bench"],
    }
    if kind == "click":
        event["url"] = f"https://fablewave.example.com/p/{number}"
    if kind == "bounce":
        event |= {"type": "bounce", "reason": "550 5.1.1 unknown user", "status": "5.1.1"}
    if kind == "open":
        event["sg_machine_open"] = number % 3 == 0
    return event


def _status_requests(base_url: str, args: argparse.Namespace) -> list[tuple[str, bytes, dict[str, str]]]:
    validator = RequestValidator(AUTH_TOKEN)
    requests = []
    for number in range(args.statuses):
        # Each (message, status) once: a repeat would be a duplicate, and the count check would fail.
        i, status = number % args.messages, ("sent", "delivered")[number // args.messages % 2]
        path = f"/webhooks/twilio/status?mk=sms-{i}"
        form = {"MessageSid": f"SM{i:032d}", "MessageStatus": status, "To": f"+1555{i:07d}"}
        form |= {"AccountSid": "AC" + "0" * 32, "SmsSid": f"SM{i:032d}", "ApiVersion": "2010-04-01"}
        signature = validator.compute_signature(base_url + path, form)
        headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
        requests.append((path, urlencode(form).encode(), headers))
    return requests


# --- the server ---------------------------------------------------------------------------------------------


@contextmanager
def _server(database_url: str, public_key: str, *, process: bool) -> Iterator[str]:
    """The real app under uvicorn in a child process on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_serve, args=(database_url, port, public_key, process), daemon=True)
    child.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, child)
        yield base_url
    finally:
        child.terminate()
        child.join(timeout=30)


def _serve(database_url: str, port: int, public_key: str, process: bool) -> None:
    import uvicorn

    import web.webhooks
    from web.app import create_app

    if not process:  # measure verify + parse + store alone
        web.webhooks.schedule_processing = lambda *args: None
    settings = Settings(
        database_url=database_url,
        public_base_url=f"http://127.0.0.1:{port}",
        sendgrid_webhook_public_key=public_key,
        twilio_auth_token=AUTH_TOKEN,
    )
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait_ready(base_url: str, child: multiprocessing.process.BaseProcess) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not child.is_alive():
            raise SystemExit(f"the server exited with {child.exitcode}")
        try:
            if httpx.get(f"{base_url}/health/live").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not start in 60 s")


def _post(
    base_url: str, requests: list[tuple[str, bytes, dict[str, str]]], clients: int
) -> tuple[float, list[float], int]:
    """POST every request from ``clients`` threads; elapsed seconds, latencies, and requests answered 2xx."""
    pending = iter(requests)
    lock = threading.Lock()
    latencies: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            while True:
                with lock:
                    request = next(pending, None)
                if request is None:
                    return
                path, body, headers = request
                started = time.perf_counter()
                http.post(path, content=body, headers=headers).raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, len(latencies)


# --- processing and checks ----------------------------------------------------------------------------------


def _process(database: Database) -> None:
    settings = Settings()
    started, events = time.perf_counter(), 0
    while True:
        with database.session() as session:
            result = process_pending(session, settings, utcnow(), OutboxSmsSender(session))
        events += result.events
        if result.events < BATCH:
            break
    elapsed = time.perf_counter() - started
    with database.session() as session:
        outcomes = session.scalar(select(func.count()).select_from(Outcome))
    print(f"processing: {events / elapsed:,.0f} events/s ({events:,} events, {outcomes:,} outcomes, {elapsed:.2f} s)")
    if outcomes != events:  # every kind in the mix, and both Twilio statuses, has an outcome
        raise SystemExit("outcomes differ from events processed")


def _wait_processed(database: Database) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with database.session() as session:
            if not session.scalar(select(func.count()).where(ProviderEvent.processed_at.is_(None))):
                return
        time.sleep(0.05)
    raise SystemExit("events were still pending after 600 s")


def _check_stored(database: Database, sent: int) -> None:
    with database.session() as session:
        stored = session.scalar(select(func.count()).select_from(ProviderEvent))
    print(f"stored: {stored:,} of {sent:,} sent")
    if stored != sent:
        raise SystemExit("stored count differs from events sent")


def _ingest_report(name: str, elapsed: float, latencies: list[float], requests: int, per_request: int) -> None:
    quantiles = statistics.quantiles(latencies, n=100)
    events = requests * per_request
    print(
        f"{name}: {events / elapsed:,.0f} events/s, {requests / elapsed:,.0f} requests/s "
        f"({events:,} events in {elapsed:.2f} s); latency p50 {quantiles[49] * 1000:.1f} ms, "
        f"p95 {quantiles[94] * 1000:.1f} ms"
    )


@contextmanager
def _database_url(backend: str, url: str | None) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/bench.db"
        return
    if url:
        yield url
        return
    from tests.support.postgres import postgres_server

    with postgres_server() as started:
        yield started


if __name__ == "__main__":
    main()
