"""The files a newcomer reads first stay true: the README's configuration table and docker-compose
name exactly the settings that exist, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _setting_names() -> set[str]:
    return {f"NUDGE_{name.upper()}" for name in Settings.model_fields}


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(NUDGE_[A-Z_]+)` \|", readme, flags=re.MULTILINE))

    assert documented == _setting_names()


def test_docker_compose_only_sets_real_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    used = {
        name
        for service in compose["services"].values()
        for name in (service.get("environment") or {})
        if name.startswith("NUDGE_")
    }

    assert used
    assert used <= _setting_names()
    assert {"postgres", "redis", "api"} <= set(compose["services"])
    assert all("healthcheck" in compose["services"][name] for name in ("postgres", "redis", "api"))


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()

    assert "make test" in readme
    assert "make demo" in readme
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)
