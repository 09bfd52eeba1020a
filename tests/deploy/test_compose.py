"""docker-compose.yml runs the whole production shape with health checks, and .env.example names every variable
the compose file requires."""

from __future__ import annotations

import re

import yaml

from core.settings import Settings
from tests.deploy.conftest import DEPLOY, ROOT

SERVICES = {"api", "worker", "beat", "postgres", "redis", "prometheus", "grafana"}


def _compose() -> dict[str, object]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_runs_with_a_health_check() -> None:
    services = _compose()["services"]

    assert set(services) >= SERVICES  # type: ignore[operator]
    assert [name for name in SERVICES if "healthcheck" not in services[name]] == []  # type: ignore[index]


def test_state_lives_in_named_volumes() -> None:
    compose = _compose()

    assert {"pgdata", "redisdata", "promdata", "grafanadata"} <= set(compose["volumes"])  # type: ignore[arg-type]


def test_prometheus_and_grafana_mount_the_deploy_files() -> None:
    services = _compose()["services"]
    mounts = [volume.split(":")[0] for name in ("prometheus", "grafana") for volume in services[name]["volumes"]]  # type: ignore[index]

    for mount in mounts:
        if mount.startswith("./"):
            assert (ROOT / mount).exists(), mount
    assert "./deploy/grafana/dashboards" in mounts


def test_the_env_example_holds_every_required_variable_and_only_real_settings() -> None:
    compose_text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", compose_text))
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    settings = {f"NUDGE_{name.upper()}" for name in Settings.model_fields}

    assert required <= set(example)
    assert {name for name in example if name.startswith("NUDGE_")} <= settings


def test_prometheus_scrapes_the_api_with_the_token_the_compose_file_hands_it() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    api = next(job for job in config["scrape_configs"] if job["job_name"] == "nudge-api")
    compose = _compose()

    assert api["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert compose["secrets"]["metrics_token"] == {"environment": "NUDGE_METRICS_TOKEN"}  # type: ignore[index]


def test_every_nudge_service_reads_the_env_file_and_shares_the_data_volume() -> None:
    services = _compose()["services"]
    nudge = {name: service for name, service in services.items() if service.get("image") == "nudge:latest"}  # type: ignore[union-attr]

    assert set(nudge) == {"migrate", "api", "worker", "beat"}
    assert all(service["env_file"] == ".env" for service in nudge.values())
    data_dir = nudge["api"]["environment"]["NUDGE_DATA_DIR"]
    assert all(f"nudgedata:{data_dir}" in nudge[name]["volumes"] for name in ("api", "worker", "beat"))
