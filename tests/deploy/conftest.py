"""The deploy/ files: Prometheus configuration, rules and their unit tests (promtool), Grafana dashboards."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's promtool; only a developer machine without it may skip, never CI."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: install Debian's `prometheus` package (scripts/system-deps.sh)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found
