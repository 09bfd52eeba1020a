"""``nudge capacity`` reports the last load test's throughput against what the database receives, and the limits
that implies; without a load test it says how to run one."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core import migrate
from core.clock import utcnow
from core.db import Database
from core.models import Channel, Customer, Message, MessageStatus, Provider
from core.settings import get_settings
from nudge.cli import app

runner = CliRunner()


@pytest.fixture
def results(cli_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "capacity.json"
    monkeypatch.setenv("NUDGE_CAPACITY_RESULTS_PATH", str(path))
    get_settings.cache_clear()
    migrate.upgrade(cli_db.engine)
    return path


def test_the_report_shows_measured_throughput_volumes_and_limits(results: Path, cli_db: Database) -> None:
    results.write_text(
        json.dumps(
            {
                "measured_at": "2026-11-21T12:00:00+00:00",
                "machine": {"cpus": 2},
                "components": {"sends": {"per_second": {"messages": 500.0}}},
            }
        )
    )
    now = utcnow()
    with cli_db.session() as session:
        customer = Customer(external_id="c-1")
        session.add(customer)
        session.flush()
        session.add_all(
            Message(
                message_key=f"k{n}",
                idempotency_key=f"spring:{n}",
                campaign_key="spring",
                customer_id=customer.id,
                channel=Channel.EMAIL,
                address="a@example.com",
                provider=Provider.OUTBOX,
                status=MessageStatus.SENT,
                created_at=now - timedelta(hours=n),
            )
            for n in range(3)
        )

    result = runner.invoke(app, ["capacity"])

    assert result.exit_code == 0, result.output
    assert "sends      500 messages/s" in result.output
    assert "sends at most" not in result.output
    assert "sends: at most 500/s sustained on this machine, 43,200,000 a day; a million takes 33.3 min" in result.output
    [row] = [
        line
        for line in result.output.splitlines()
        if line.startswith("sends ") and "not measured" not in line and "/s" not in line
    ]
    assert row.split()[1] == "3"  # stored


def test_without_a_load_test_the_report_says_how_to_run_one(results: Path) -> None:
    result = runner.invoke(app, ["capacity"])

    assert result.exit_code == 0, result.output
    assert "bench/load.py" in result.output
    assert "not measured" in result.output


def test_partitions_applies_retention(results: Path) -> None:
    result = runner.invoke(app, ["capacity", "partitions"])

    assert result.exit_code == 0, result.output
    assert "retention: before" in result.output
