"""Every Grafana panel queries metrics Nudge exports (or recording rules built only from them), and the
provisioning points at the dashboards and the Prometheus datasource they use."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.core import Metric

import workers.metrics  # noqa: F401  (registers the worker task metrics)
from core.db import Database
from core.settings import Settings
from tests.deploy.conftest import DEPLOY
from tests.support.redis import redis_server
from web.metrics import DatabaseCollector

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
METRIC = re.compile(r"\bnudge[a-z0-9_:]*")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def _names(family: Metric) -> set[str]:
    return {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}


@pytest.fixture
def exported(sqlite_db: Database, tmp_path: Path, redis_url: str) -> set[str]:
    """Every metric name the API and the workers expose, from their real collectors."""
    (tmp_path / "capacity.json").write_text('{"measured_at": "2026-11-21T00:00:00+00:00", "components": {}}')
    settings = Settings(data_dir=tmp_path, redis_url=f"{redis_url}/6")
    names = {name for family in REGISTRY.collect() for name in _names(family) if name.startswith("nudge_")}
    names |= {name for family in DatabaseCollector(sqlite_db, settings).collect() for name in _names(family)}
    return names


def _recording_rules() -> dict[str, str]:
    rules: dict[str, str] = {}
    for path in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.update({rule["record"]: rule["expr"] for rule in group["rules"] if "record" in rule})
    return rules


def _queries(dashboard: dict[str, object]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:  # type: ignore[attr-defined]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def test_the_collectors_export_what_the_dashboards_are_built_on(exported: set[str]) -> None:
    assert {
        "nudge_cost_month_to_date_usd",
        "nudge_budget_utilisation_ratio",
        "nudge_queue_depth",
        "nudge_task_duration_seconds_bucket",
        "nudge_llm_tokens_total",
        "nudge_messages_total",
    } <= exported


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.stem for path in DASHBOARDS])
def test_every_panel_queries_metrics_the_app_exports(path: Path, exported: set[str]) -> None:
    dashboard = json.loads(path.read_text())
    recorded = _recording_rules()
    unknown = [
        (title, name)
        for title, expr in _queries(dashboard)
        for name in METRIC.findall(expr)
        if name not in exported and name not in recorded
    ]

    assert unknown == []


def test_every_recording_rule_is_built_from_exported_metrics(exported: set[str]) -> None:
    recorded = _recording_rules()
    unknown = {name for expr in recorded.values() for name in METRIC.findall(expr)} - exported - set(recorded)

    assert unknown == set()


def test_every_alert_names_metrics_the_app_exports(exported: set[str]) -> None:
    recorded = _recording_rules()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "nudge.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    unknown = {name for alert in alerts for name in METRIC.findall(alert["expr"])} - exported - set(recorded)

    assert len(alerts) >= 8
    assert unknown == set()


def test_the_two_dashboards_cover_cost_and_capacity() -> None:
    titles = {json.loads(path.read_text())["title"]: path for path in DASHBOARDS}
    cost = json.loads(titles["Nudge — Cost analysis"].read_text())
    capacity = json.loads(titles["Nudge — Capacity planning"].read_text())
    cost_queries = " ".join(expr for _, expr in _queries(cost))
    capacity_queries = " ".join(expr for _, expr in _queries(capacity))

    assert "nudge_campaign_cost_usd" in cost_queries
    assert "roi" in cost_queries
    for days in (30, 60, 90):
        assert f"predict_linear(nudge_database_bytes[7d], {days} * 86400)" in capacity_queries


def test_provisioning_points_at_the_dashboards_and_the_datasource_they_use() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    provider = yaml.safe_load((provisioning / "dashboards" / "nudge.yml").read_text())["providers"][0]
    used = {panel["datasource"]["uid"] for path in DASHBOARDS for panel in json.loads(path.read_text())["panels"]}

    assert used == {datasource["uid"]}
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
