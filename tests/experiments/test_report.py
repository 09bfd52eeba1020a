"""The campaign report on a small campaign: the expected split from the variants' weights, costs from the
ledger, incrementality and ROI from the measured data; and ``nudge report campaign`` prints it and writes plots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from campaigns.report import build_report, find_campaign
from core import ledger, migrate
from core.db import Database
from core.errors import Conflict, NotFound
from core.ledger import Cost
from core.models import (
    Assignment,
    Campaign,
    CampaignKind,
    Channel,
    CostComponent,
    Customer,
    Order,
)
from core.settings import Settings, get_settings
from experiments.analysis import Status
from nudge.cli import app
from tests.support.experiments import sent_campaign

START = datetime(2026, 10, 1, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 9, tzinfo=UTC)
ARMS = {"holdout": (200, 6), "v1": (400, 40), "v2": (400, 14)}  # customers and converters per arm
SETTINGS = Settings(global_holdout_fraction=0.0, roi_margin=0.5)


def small_campaign(db: Database) -> int:
    """ "winter": 1,000 customers, 20 % held out, two variants of equal weight; $60 an order, some pre-period
    orders; $30 of e-mail and $2 of LLM drafting booked in the ledger."""
    with db.session() as session:
        campaign = sent_campaign(session, "winter", name="Winter retention", segment="loyal", variants=("v1", "v2"))
        customers = [Customer(external_id=f"c{i}") for i in range(sum(n for n, _ in ARMS.values()))]
        session.add_all(customers)
        session.flush()
        ids = iter(customer.id for customer in customers)
        assignments, orders = [], []
        for arm, (size, converters) in ARMS.items():
            for index in range(size):
                customer_id = next(ids)
                assignments.append(
                    {
                        "campaign_id": campaign.id,
                        "customer_id": customer_id,
                        "segment": "loyal",
                        "arm": arm,
                        "bucket": 0,
                        "assigned_at": START,
                    }
                )
                if index < converters:
                    orders.append(_order(customer_id, "60.00", START + timedelta(days=2)))
                if index % 4 == 0:
                    orders.append(_order(customer_id, "20.00", START - timedelta(days=30)))
        session.execute(insert(Assignment), assignments)
        session.execute(insert(Order), orders)
        ledger.record_many(
            session,
            [
                Cost(CostComponent.EMAIL, f"message:{n}", START, Decimal("0.0375"), campaign_key="winter")
                for n in range(800)
            ]
            + [Cost(CostComponent.LLM, "llm_call:1", START, Decimal("2.00"), campaign_key="winter")],
        )
        return campaign.id


def _order(customer_id: int, amount: str, at: datetime) -> dict[str, object]:
    return {"customer_id": customer_id, "amount": Decimal(amount), "currency": "USD", "ordered_at": at}


def test_the_report_compares_both_variants_with_the_holdout_and_measures_incremental_revenue_and_roi(
    db: Database,
) -> None:
    campaign_id = small_campaign(db)

    with db.session() as session:
        report = build_report(session, find_campaign(session, str(campaign_id)), SETTINGS, NOW)

    analysis = report.analysis
    assert analysis is not None
    assert (report.control, analysis.treatments) == ("holdout", ("v1", "v2"))
    assert analysis.srm is not None
    assert analysis.srm.expected == {"holdout": 200.0, "v1": 400.0, "v2": 400.0}
    assert not analysis.srm.flagged
    assert analysis.decision.status is Status.WINNER
    assert analysis.decision.winner == "v1"
    conversions, revenue, cuped = report.incrementality
    assert conversions.estimate == pytest.approx((54 / 800 - 6 / 200) * 800)  # 30 more converters than held-out rate
    assert revenue.estimate == pytest.approx((54 * 60 / 800 - 6 * 60 / 200) * 800)
    assert cuped.method.startswith("incremental total vs holdout, CUPED")
    assert report.roi is not None
    assert report.roi.costs == {"llm": 2.0, "email": 30.0, "sms": 0.0, "offer": 0.0, "infrastructure": 0.0}
    assert report.roi.roi == pytest.approx((cuped.estimate * 0.5 - 32.0) / 32.0)
    assert report.daily_conversions["v1"][2] == 40


def test_a_campaign_without_assignments_has_no_report_yet(db: Database) -> None:
    small_campaign(db)
    with db.session() as session:
        empty = Campaign(
            key="empty",
            name="e",
            kind=CampaignKind.RETENTION,
            channel=Channel.EMAIL,
            budget=None,
            salt="s",
            plan={},
            created_by="t",
        )
        session.add(empty)
        session.flush()

        with pytest.raises(Conflict, match=r"^campaign 'empty' has no assignments yet: plan it first$"):
            build_report(session, empty, SETTINGS, NOW)
        empty.kind = CampaignKind.TRIGGER  # sends per cart: there is nothing to plan, and nothing to compare
        with pytest.raises(Conflict, match=r"^campaign 'empty' is a trigger: each cart gets the approved template"):
            build_report(session, empty, SETTINGS, NOW)
        with pytest.raises(NotFound, match=r"^no campaign with key or id 'nope'$"):
            find_campaign(session, "nope")


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'nudge.db'}"
    monkeypatch.setenv("NUDGE_DATABASE_URL", url)
    monkeypatch.setenv("NUDGE_GLOBAL_HOLDOUT_FRACTION", "0")
    get_settings.cache_clear()
    database = Database.from_url(url)
    migrate.upgrade(database.engine)
    yield database
    database.dispose()
    get_settings.cache_clear()


def test_the_report_command_prints_the_report_and_writes_the_plots(cli_db: Database, tmp_path: Path) -> None:
    small_campaign(cli_db)

    result = CliRunner().invoke(app, ["report", "campaign", "winter", "--plots", str(tmp_path / "plots")])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("campaign winter — Winter retention (sent), as of ")
    assert "decision: v1 wins" in lines
    assert any(line.startswith("sample ratio: chi² 0.00, df 2, p 1 → ok") for line in lines)
    assert any("[two-proportion z-test (pooled), Newcombe hybrid-score CI]" in line for line in lines)
    assert any(
        line.strip().startswith("costs: $32.00 (email $30.00, llm $2.00) from the cost ledger") for line in lines
    )
    assert lines[-2:] == [f"wrote {tmp_path / 'plots' / name}" for name in ("lift.png", "cumulative_conversions.png")]
    assert all(
        (tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG"
        for name in ("lift.png", "cumulative_conversions.png")
    )


def test_an_unknown_campaign_exits_1_with_the_reason(cli_db: Database) -> None:
    result = CliRunner().invoke(app, ["report", "campaign", "nope"])

    assert (result.exit_code, result.stderr) == (1, "error: no campaign with key or id 'nope'\n")
