"""``/metrics``: refused without the token or an allowed network; with it, the numbers move when what they count
happens — HTTP requests, webhook signature failures, booked costs, budget use, queue depth, drift, capacity."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core import ledger
from core.clock import utcnow
from core.db import Database
from core.ledger import Cost
from core.models import Budget, BudgetScope, CostComponent, DriftMeasurement, LlmCall, ModelKind
from core.settings import Settings
from tests.support.redis import redis_server
from web.app import create_app

TOKEN = "metrics-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(make_client: object, tmp_path: Path) -> TestClient:
    return make_client(metrics_token=TOKEN, data_dir=tmp_path)  # type: ignore[operator]


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}])
def test_metrics_are_refused_without_the_token(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "nudge_" not in response.text


def test_with_no_token_configured_nobody_reads_metrics(make_client: object) -> None:
    client: TestClient = make_client()  # type: ignore[operator]

    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_an_allowed_network_reads_metrics_without_the_token(db: Database, tmp_path: Path) -> None:
    settings = Settings(metrics_allowed_networks=["10.0.0.0/8"], data_dir=tmp_path)
    app = create_app(settings, database=db)
    with TestClient(app, client=("10.1.2.3", 40000)) as inside, TestClient(app, client=("192.0.2.1", 40000)) as outside:
        assert inside.get("/metrics").status_code == 200
        assert outside.get("/metrics").status_code == 401


def test_http_requests_are_counted_and_timed_by_route_template(client: TestClient) -> None:
    before = scrape(client)
    client.get("/health/live")
    client.get("/u/some-secret-token")
    after = scrape(client)

    route = {"method": "GET", "route": "/health/live", "status": "200"}
    assert value(after, "nudge_http_requests_total", **route) - value(before, "nudge_http_requests_total", **route) == 1
    latency = {"method": "GET", "route": "/health/live"}
    count = "nudge_http_request_duration_seconds_count"
    assert value(after, count, **latency) - value(before, count, **latency) == 1
    labels = " ".join(str(key) for key in after)
    assert "some-secret-token" not in labels
    assert "/u/{token}" in labels


def test_a_webhook_with_a_bad_signature_is_counted_as_a_signature_failure(make_client: object, tmp_path: Path) -> None:
    client: TestClient = make_client(  # type: ignore[operator]
        metrics_token=TOKEN,
        data_dir=tmp_path,
        twilio_auth_token="twilio-secret",
        public_base_url="https://nudge.example.com",
    )
    failed = {"provider": "twilio", "result": "signature_failed"}
    before = value(scrape(client), "nudge_webhook_requests_total", **failed)

    response = client.post("/webhooks/twilio/status", data={"MessageSid": "SM1", "MessageStatus": "delivered"})

    assert response.status_code == 401
    assert value(scrape(client), "nudge_webhook_requests_total", **failed) - before == 1


def test_booked_costs_appear_by_component_and_campaign(client: TestClient, db: Database) -> None:
    now = utcnow()
    with db.session() as session:
        ledger.record_many(
            session,
            [
                Cost(CostComponent.EMAIL, "message:1", now, Decimal("0.25"), campaign_key="spring"),
                Cost(CostComponent.SMS, "message:2", now, Decimal("0.5"), campaign_key="spring"),
                Cost(CostComponent.LLM, "llm_call:1", now - timedelta(days=1), Decimal("2"), campaign_key="spring"),
            ],
        )

    samples = scrape(client)

    assert value(samples, "nudge_cost_today_usd", component="email") == 0.25
    assert value(samples, "nudge_cost_today_usd", component="sms") == 0.5
    assert value(samples, "nudge_cost_yesterday_usd", component="llm") == 2.0
    assert value(samples, "nudge_campaign_cost_usd", campaign="spring", component="email") == 0.25
    if now.day > 1:  # yesterday is this month too
        assert value(samples, "nudge_cost_month_to_date_usd", component="llm") == 2.0
    assert value(samples, "nudge_metrics_section_failed", section="costs") == 0


def test_budget_utilisation_follows_llm_spend(client: TestClient, db: Database) -> None:
    with db.session() as session:
        session.add(Budget(scope=BudgetScope.CAMPAIGN, campaign_key="spring", max_usd=Decimal("2")))
        session.add(
            LlmCall(
                campaign_key="spring",
                purpose="draft",
                provider="openai",
                model="gpt-4.1-mini",
                prompt_tokens=10,
                completion_tokens=10,
                cost=Decimal("1.5"),
                cached=False,
                cache_key="k",
                latency_ms=1,
            )
        )

    samples = scrape(client)

    assert value(samples, "nudge_budget_utilisation_ratio", budget="spring", scope="campaign", unit="usd") == 0.75
    assert value(samples, "nudge_budget_limit", budget="spring", scope="campaign", unit="usd") == 2.0


def test_the_latest_drift_of_each_model_is_exported(client: TestClient, db: Database) -> None:
    earlier, later = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    with db.session() as session:
        session.add_all(
            [
                DriftMeasurement(
                    kind=ModelKind.CHURN_CONTRACTUAL, version=1, feature="tenure", psi=0.05, measured_at=earlier
                ),
                DriftMeasurement(
                    kind=ModelKind.CHURN_CONTRACTUAL, version=1, feature="tenure", psi=0.31, measured_at=later
                ),
            ]
        )

    samples = scrape(client)

    assert value(samples, "nudge_model_drift_psi", model="churn_contractual", feature="tenure") == 0.31


def test_measured_capacity_comes_from_the_last_load_test(client: TestClient, tmp_path: Path) -> None:
    results = {
        "measured_at": "2026-11-21T12:00:00+00:00",
        "components": {"intake": {"per_second": {"events": 8291.0, "requests": 82.9}}},
    }
    (tmp_path / "capacity.json").write_text(json.dumps(results))

    samples = scrape(client)

    assert value(samples, "nudge_capacity_throughput_per_second", component="intake", unit="events") == 8291.0
    assert (
        value(samples, "nudge_capacity_measured_timestamp_seconds")
        == datetime(2026, 11, 21, 12, tzinfo=UTC).timestamp()
    )


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def test_queue_depth_is_read_from_redis_at_scrape_time(make_client: object, tmp_path: Path, redis_url: str) -> None:
    client: TestClient = make_client(metrics_token=TOKEN, data_dir=tmp_path, redis_url=f"{redis_url}/5")  # type: ignore[operator]
    broker = redis.Redis.from_url(f"{redis_url}/5")
    broker.flushdb()
    broker.rpush("sends", "a", "b")
    broker.rpush("sends\x06\x163", "c")  # Celery keeps priority 3 in a suffixed list
    broker.rpush("events", "d")

    samples = scrape(client)

    assert value(samples, "nudge_queue_depth", queue="sends") == 3
    assert value(samples, "nudge_queue_depth", queue="events") == 1
    assert value(samples, "nudge_queue_depth", queue="triggers") == 0
    broker.flushdb()


def test_no_label_names_a_customer(client: TestClient) -> None:
    response = client.get("/metrics", headers=BEARER)

    assert not re.search(r'(customer|address|email|phone)[a-z_]*="', response.text)
