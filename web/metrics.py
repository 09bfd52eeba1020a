"""``GET /metrics``: Prometheus exposition of the API process and of the database, behind a token.

What is exported, and from where:

- **this process** (counted as things happen): HTTP requests and their latency by route template
  (``HttpMetrics`` middleware), webhook requests by provider and result (signature failures are the 401s),
  LLM tokens and messages by channel and status (``core.telemetry``, counted by whichever process did the work);
- **the database, at scrape time** (``DatabaseCollector``, cheap aggregate queries on indexed columns): cost by
  component today, yesterday, on average and month to date; cost per campaign this month; budget utilisation;
  revenue from contacted customers and the infrastructure share of it; webhook events waiting to be processed;
  abandoned-cart trigger delay; the latest drift (PSI) per model and feature; database size;
- **Redis, at scrape time**: the depth of each Celery queue (the broker is shared, so any API process can read it);
- **the last load test** (``bench/load.py`` writes ``NUDGE_CAPACITY_RESULTS_PATH``): measured throughput, which the
  Prometheus rules turn into capacity headroom against the observed rates.

Celery workers are other processes: each serves its own task metrics on ``NUDGE_WORKER_METRICS_PORT``
(``workers.metrics``). With several processes behind one port (``nudge serve --workers N``, a prefork worker),
set ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's own variable) to an empty directory and the counts of every
process are summed at scrape time.

Labels are closed sets — routes, channels, statuses, models, features, queues, budgets and campaign keys (a
campaign is a handful of rows, not a customer) — never a customer id or an address.

Access: ``Authorization: Bearer <NUDGE_METRICS_TOKEN>``, or a client address inside
``NUDGE_METRICS_ALLOWED_NETWORKS``; anything else gets 401 and nothing is collected.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import redis
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import ledger
from core.clock import utcnow
from core.db import Database
from core.errors import Unauthorized
from core.models import CostComponent, CostEntry, DriftMeasurement, ProviderEvent, TriggerCheck
from core.partitions import month_start
from core.settings import Settings
from guardrails.budgets import BudgetStatus, Utilisation, budget_statuses

logger = logging.getLogger(__name__)

router = APIRouter(tags=["metrics"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUEUES = ("sends", "triggers", "events", "default")  # workers.app.QUEUES (web may not import workers)
# Celery's Redis transport keeps priorities 3, 6 and 9 of a queue in lists suffixed with this separator.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
COST_AVERAGE_DAYS = 28
TRIGGER_WINDOW = timedelta(hours=1)
TRIGGER_SAMPLE = 10_000
WEBHOOK_PREFIX = "/webhooks/"

HTTP_REQUESTS = Counter(
    "nudge_http_requests", "HTTP requests answered, by route template.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "nudge_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WEBHOOK_REQUESTS = Counter(
    "nudge_webhook_requests",
    "Provider webhook requests by provider and result (signature_failed: refused with 401).",
    ["provider", "result"],
)


# --- access -----------------------------------------------------------------------------------------------------


def allowed(request: Request, settings: Settings) -> bool:
    """Whether ``request`` carries the metrics token or comes from an allowed network."""
    token = settings.metrics_token.get_secret_value()
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode()):
        return True
    return _from_allowed_network(request, settings)


def _from_allowed_network(request: Request, settings: Settings) -> bool:
    if not settings.metrics_allowed_networks or request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:  # not an IP address (a test client, a Unix socket)
        return False
    return any(address in network for network in settings.metrics_allowed_networks)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The exposition, or 401 without the token (nothing is queried for a refused request)."""
    settings: Settings = request.app.state.settings
    if not allowed(request, settings):
        refusal = Unauthorized("send the metrics token: Authorization: Bearer <NUDGE_METRICS_TOKEN>")
        return JSONResponse(refusal.to_dict(), status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProcessMetrics())
    registry.register(DatabaseCollector(request.app.state.database, settings))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)


class ProcessMetrics(Collector):
    """This process's counters, or every process's when ``PROMETHEUS_MULTIPROC_DIR`` is set."""

    def collect(self) -> Iterable[Metric]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # prometheus-client's own switch, read where it reads it
            yield from MultiProcessCollector(CollectorRegistry()).collect()  # type: ignore[no-untyped-call]
        else:
            yield from REGISTRY.collect()


# --- HTTP middleware --------------------------------------------------------------------------------------------


class HttpMetrics:
    """Count and time every HTTP request by its route template (``/u/{token}``, never the token itself)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            observe(scope["method"], route_of(scope), status, time.perf_counter() - started)


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def observe(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)
    if route.startswith(WEBHOOK_PREFIX):
        provider = route.removeprefix(WEBHOOK_PREFIX).split("/")[0]
        WEBHOOK_REQUESTS.labels(provider, webhook_result(status)).inc()


def webhook_result(status: int) -> str:
    if status == 401:
        return "signature_failed"
    if status < 300:
        return "accepted"
    return "rejected" if status < 500 else "error"


def install(app: FastAPI) -> None:
    """Add the HTTP middleware and the ``/metrics`` route to ``app``."""
    app.add_middleware(HttpMetrics)
    app.include_router(router)


# --- the database, Redis and the last load test, at scrape time --------------------------------------------------


class DatabaseCollector(Collector):
    """Gauges read at scrape time with a few aggregate queries; a failing section is logged and counted, and the
    others are still exported."""

    def __init__(self, database: Database, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._settings = settings
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        failed = GaugeMetricFamily(
            "nudge_metrics_section_failed", "1 when a section of the scrape failed.", labels=["section"]
        )
        sections: list[tuple[str, Callable[[Session, datetime], list[Metric]]]] = [
            ("costs", self._costs),
            ("campaigns", self._campaign_costs),
            ("budgets", self._budgets),
            ("revenue", self._revenue),
            ("webhooks", self._webhook_backlog),
            ("triggers", self._trigger_delay),
            ("drift", self._drift),
            ("storage", self._storage),
        ]
        with self._database.session() as session:
            for name, section in sections:
                yield from self._safely(name, failed, lambda section=section: section(session, now))  # type: ignore[misc]
        yield from self._safely("queues", failed, self._queues)
        yield from self._safely("capacity", failed, self._capacity)
        yield failed

    @staticmethod
    def _safely(name: str, failed: GaugeMetricFamily, section: Callable[[], list[Metric]]) -> list[Metric]:
        # The scrape is a process edge: one failing query must not hide every other metric.
        try:
            families = section()
        except Exception:
            logger.exception("metrics section %s failed", name)
            failed.add_metric([name], 1)
            return []
        failed.add_metric([name], 0)
        return families

    def _costs(self, session: Session, now: datetime) -> list[Metric]:
        today = now.date()
        yesterday = today - timedelta(days=1)
        spans = {
            "nudge_cost_today_usd": ("Costs booked for today (UTC), by component.", today, today + timedelta(days=1)),
            "nudge_cost_yesterday_usd": ("Costs booked for yesterday (UTC), by component.", yesterday, today),
            "nudge_cost_month_to_date_usd": (
                "Costs booked this month (UTC), by component.",
                month_start(today),
                today + timedelta(days=1),
            ),
        }
        families: list[Metric] = []
        for name, (documentation, start, end) in spans.items():
            families.append(_by_component(name, documentation, ledger.totals_by_component(session, start, end)))
        average_start = yesterday - timedelta(days=COST_AVERAGE_DAYS)
        totals = ledger.totals_by_component(session, average_start, yesterday)
        average = {component: amount / COST_AVERAGE_DAYS for component, amount in totals.items()}
        families.append(
            _by_component(
                "nudge_cost_daily_average_usd",
                f"Average daily cost over the {COST_AVERAGE_DAYS} days before yesterday, by component (the trend).",
                average,
            )
        )
        return families

    def _campaign_costs(self, session: Session, now: datetime) -> list[Metric]:
        family = GaugeMetricFamily(
            "nudge_campaign_cost_usd",
            "Costs of each campaign booked this month, by component.",
            labels=["campaign", "component"],
        )
        query = (
            select(CostEntry.campaign_key, CostEntry.component, func.sum(CostEntry.amount))
            .where(CostEntry.day >= month_start(now.date()), CostEntry.campaign_key.is_not(None))
            .group_by(CostEntry.campaign_key, CostEntry.component)
        )
        for campaign, component, amount in session.execute(query):
            family.add_metric([str(campaign), component.value], float(amount or 0))
        return [family]

    def _budgets(self, session: Session, now: datetime) -> list[Metric]:
        used = GaugeMetricFamily(
            "nudge_budget_used", "Spent under each LLM budget.", labels=["budget", "scope", "unit"]
        )
        limit = GaugeMetricFamily("nudge_budget_limit", "Each LLM budget's limit.", labels=["budget", "scope", "unit"])
        ratio = GaugeMetricFamily(
            "nudge_budget_utilisation_ratio",
            "Used over limit of each LLM budget (1 = exhausted).",
            labels=["budget", "scope", "unit"],
        )
        for status in budget_statuses(session, self._settings, now=now):
            for unit, use in _units(status):
                labels = [_budget_name(status), status.limits.scope.value, unit]
                used.add_metric(labels, float(use.used))
                if use.limit is not None and use.fraction is not None:
                    limit.add_metric(labels, float(use.limit))
                    ratio.add_metric(labels, use.fraction)
        return [used, limit, ratio]

    def _revenue(self, session: Session, now: datetime) -> list[Metric]:
        start, end = month_start(now.date()), now.date() + timedelta(days=1)
        share = ledger.infrastructure_share(session, self._settings, start, end)
        revenue = GaugeMetricFamily(
            "nudge_contacted_revenue_month_to_date_usd",
            f"Revenue this month from customers contacted within {ledger.DEFAULT_ATTRIBUTION_DAYS} days of ordering.",
            value=float(share.revenue),
        )
        ratio = GaugeMetricFamily(
            "nudge_infrastructure_revenue_share",
            "Infrastructure cost over contacted revenue, this month (inf without revenue).",
        )
        ratio.add_metric(
            [], share.share if share.share is not None else (float("inf") if share.infrastructure else 0.0)
        )
        limit = GaugeMetricFamily(
            "nudge_infrastructure_revenue_share_limit", "NUDGE_INFRASTRUCTURE_MAX_REVENUE_SHARE.", value=share.limit
        )
        return [revenue, ratio, limit]

    def _webhook_backlog(self, session: Session, now: datetime) -> list[Metric]:
        waiting = session.scalar(select(func.count(ProviderEvent.id)).where(ProviderEvent.processed_at.is_(None)))
        oldest = session.scalar(select(func.min(ProviderEvent.received_at)).where(ProviderEvent.processed_at.is_(None)))
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        return [
            GaugeMetricFamily(
                "nudge_webhook_events_pending", "Stored webhook events not processed yet.", value=float(waiting or 0)
            ),
            GaugeMetricFamily(
                "nudge_webhook_events_oldest_pending_seconds", "Age of the oldest unprocessed event.", value=age
            ),
        ]

    def _trigger_delay(self, session: Session, now: datetime) -> list[Metric]:
        """Abandoned-cart checks resolved in the last hour: how long after their window each was made."""
        query = (
            select(TriggerCheck.due_at, TriggerCheck.resolved_at)
            .where(TriggerCheck.due_at >= now - TRIGGER_WINDOW, TriggerCheck.resolved_at.is_not(None))
            .limit(TRIGGER_SAMPLE)
        )
        delays = sorted(
            max((resolved - due).total_seconds(), 0.0)
            for due, resolved in session.execute(query)
            if resolved is not None
        )
        family = GaugeMetricFamily(
            "nudge_trigger_delay_seconds",
            "Abandoned-cart check delay after the window, last hour.",
            labels=["quantile"],
        )
        for quantile in (0.5, 0.99, 1.0):
            if delays:
                family.add_metric([str(quantile)], delays[min(int(quantile * len(delays)), len(delays) - 1)])
        return [
            family,
            GaugeMetricFamily("nudge_trigger_checks_last_hour", "Resolved checks in the sample.", value=len(delays)),
        ]

    def _drift(self, session: Session, now: datetime) -> list[Metric]:
        latest = (
            select(DriftMeasurement.kind, func.max(DriftMeasurement.measured_at).label("at"))
            .group_by(DriftMeasurement.kind)
            .subquery()
        )
        query = select(DriftMeasurement).join(
            latest, (DriftMeasurement.kind == latest.c.kind) & (DriftMeasurement.measured_at == latest.c.at)
        )
        psi = GaugeMetricFamily(
            "nudge_model_drift_psi", "Latest PSI of each production model's features.", labels=["model", "feature"]
        )
        age = GaugeMetricFamily(
            "nudge_model_drift_age_seconds", "Time since drift was last measured.", labels=["model"]
        )
        for row in session.scalars(query):
            psi.add_metric([row.kind.value, row.feature], row.psi)
            age.add_metric([row.kind.value], (now - row.measured_at).total_seconds())
        return [psi, age]

    def _storage(self, session: Session, now: datetime) -> list[Metric]:
        size = GaugeMetricFamily("nudge_database_bytes", "Size of the database on disk.")
        if session.get_bind().dialect.name == "postgresql":
            size.add_metric([], float(session.scalar(text("SELECT pg_database_size(current_database())")) or 0))
        else:
            pages = session.scalar(text("PRAGMA page_count")) or 0
            size.add_metric([], float(pages * (session.scalar(text("PRAGMA page_size")) or 0)))
        return [size]

    def _queues(self) -> list[Metric]:
        """Celery's queues in Redis (absent embedded: the SQLite broker's queue is one process's business)."""
        if not self._settings.redis_url:
            return []
        client = redis.Redis.from_url(self._settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            depth = GaugeMetricFamily("nudge_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"])
            for queue in QUEUES:
                depth.add_metric([queue], float(sum(int(client.llen(queue + suffix)) for suffix in PRIORITY_SUFFIXES)))
            reserved = GaugeMetricFamily(
                "nudge_queue_reserved_tasks", "Tasks workers hold unacknowledged (running, or waiting for their ETA)."
            )
            reserved.add_metric([], float(client.hlen("unacked")))
        finally:
            client.close()
        return [depth, reserved]

    def _capacity(self) -> list[Metric]:
        family = GaugeMetricFamily(
            "nudge_capacity_throughput_per_second",
            "Throughput measured by the last load test (bench/load.py), by component and unit.",
            labels=["component", "unit"],
        )
        measured = GaugeMetricFamily("nudge_capacity_measured_timestamp_seconds", "When the last load test ran.")
        results = read_capacity(self._settings)
        for component, figures in results.get("components", {}).items():
            for unit, rate in figures.get("per_second", {}).items():
                family.add_metric([component, unit], float(rate))
        if "measured_at" in results:
            measured.add_metric([], datetime.fromisoformat(results["measured_at"]).timestamp())
        return [family, measured]


def read_capacity(settings: Settings) -> dict[str, Any]:
    """The last load test's results, or an empty dict when none was run here."""
    path = settings.capacity_results_file
    if not path.exists():
        return {}
    results: dict[str, Any] = json.loads(path.read_text())
    return results


def _by_component(name: str, documentation: str, amounts: dict[CostComponent, Decimal]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["component"])
    for component, amount in amounts.items():
        family.add_metric([component.value], float(amount))
    return family


def _units(status: BudgetStatus) -> list[tuple[str, Utilisation[Any]]]:
    return [("usd", status.usd), ("tokens", status.tokens), ("calls", status.calls)]


def _budget_name(status: BudgetStatus) -> str:
    return status.limits.campaign_key or status.limits.scope.value
