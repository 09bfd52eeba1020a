"""promtool accepts the Prometheus configuration and the rules, and the rules' unit tests pass — among them,
an over-budget campaign fires the budget alert."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.deploy.conftest import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(arg) for arg in args], capture_output=True, text=True, check=False, timeout=120)


def test_promtool_accepts_the_configuration_with_its_rules(promtool: str, tmp_path: Path) -> None:
    # The config names files as the container sees them; point them at the repository and a stand-in token.
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    token = tmp_path / "metrics_token"
    token.write_text("token")
    config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yml")]
    config["scrape_configs"][0]["authorization"]["credentials_file"] = str(token)
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))

    result = _run(promtool, "check", "config", local)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", *sorted((PROMETHEUS / "rules").glob("*.yml")))

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass_including_the_over_budget_campaign(promtool: str) -> None:
    tests = yaml.safe_load((PROMETHEUS / "tests.yml").read_text())
    names = [case["name"] for case in tests["tests"]]

    result = _run(promtool, "test", "rules", PROMETHEUS / "tests.yml")

    assert "an over-budget campaign triggers the budget alerts" in names
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_rule_unit_test_fails(promtool: str, tmp_path: Path) -> None:
    # The unit tests can fail: expecting no alert for an exhausted budget must not pass.
    tests = yaml.safe_load((PROMETHEUS / "tests.yml").read_text())
    budget = tests["tests"][0]
    budget["alert_rule_test"][2]["exp_alerts"] = []
    tests["tests"] = [budget]
    tests["rule_files"] = [str(PROMETHEUS / "rules" / "nudge.yml")]
    broken = tmp_path / "tests.yml"
    broken.write_text(yaml.safe_dump(tests))

    result = _run(promtool, "test", "rules", broken)

    assert result.returncode != 0
    assert "NudgeBudgetExhausted" in result.stdout + result.stderr
