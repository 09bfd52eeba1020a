"""``nudge import …`` and ``nudge demo`` on an embedded SQLite file: a summary on success; on failure every
problem, exit code 1 and nothing written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audience import samples
from audience.samples import Sample
from core.db import Database
from core.models import Assignment, Customer, Message, MessageStatus, Order, OutboxMessage, Outcome
from nudge.cli import app
from tests.support.demo import DemoRun, run_demo

runner = CliRunner()


def count(db: Database, model: type[Customer] | type[Order]) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_customers_prints_a_summary(cli_db: Database, tmp_path: Path) -> None:
    file = write(tmp_path / "people.csv", "ID,E-mail,notes", "c-1,ann@example.com,x", "c-2,bo@example.com,y")

    result = runner.invoke(app, ["import", "customers", str(file), "--map", "external_id=ID", "-m", "email=E-mail"])

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "people.csv: imported 2 customers (2 new, 0 updated)\nignored columns (map them to keep them): notes\n"
    )
    assert count(cli_db, Customer) == 2


def test_import_orders_that_fail_lists_every_problem_exits_1_and_writes_nothing(
    cli_db: Database, tmp_path: Path
) -> None:
    runner.invoke(app, ["import", "customers", str(write(tmp_path / "c.csv", "external_id", "c-1"))])
    file = write(
        tmp_path / "orders.csv",
        "customer_external_id,amount,ordered_at",
        "c-1,10,2024-01-01",
        "c-1,ten,2024-01-01",
        "c-9,5,yesterday",
    )

    result = runner.invoke(app, ["import", "orders", str(file)])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: 3 problems in the file; nothing was imported\n"
        "  row 3, column 'amount': not a number (use digits and a '.', no currency sign or thousands separator)"
        " (value: 'ten')\n"
        "  row 4, column 'customer_external_id': no customer with this external id (import customers first)"
        " (value: 'c-9')\n"
        "  row 4, column 'ordered_at': not a date or time in ISO 8601 (e.g. 2024-03-31 or 2024-03-31T14:05:00+02:00)"
        " (value: 'yesterday')\n"
    )
    assert count(cli_db, Order) == 0


@pytest.mark.usefixtures("cli_db")
def test_import_with_a_malformed_mapping_exits_1(tmp_path: Path) -> None:
    file = write(tmp_path / "c.csv", "external_id", "c-1")

    result = runner.invoke(app, ["import", "customers", str(file), "--map", "email"])

    assert result.exit_code == 1
    assert result.stderr == "error: a mapping is field=Column, got 'email'\n"
    assert not (tmp_path / "nudge.db").exists()  # refused before the database was opened


def test_import_sample_loads_a_file_once(cli_db: Database, tmp_path: Path) -> None:
    source = samples.SAMPLES_DIR / Sample.CDNOW.file_name
    file = tmp_path / "cdnow.txt"
    file.write_bytes(b"".join(source.read_bytes().splitlines(keepends=True)[:4]))

    first = runner.invoke(app, ["import", "sample", "cdnow", "--path", str(file)])
    again = runner.invoke(app, ["import", "sample", "cdnow", "--path", str(file)])

    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("Loading the CDNOW sample: reading… customers… orders… consents… done in ")
    assert first.stdout.endswith(
        "  2 customers, 3 orders, 4 consent records (contact details and consents generated)\n"
    )
    assert again.exit_code == 1
    assert again.stderr == "error: the CDNOW sample is already loaded (customers cdnow-…); nothing was written\n"
    assert (count(cli_db, Customer), count(cli_db, Order)) == (2, 3)


def test_demo_runs_the_loop_on_the_real_samples_then_reuses_what_it_made(
    demo_run: DemoRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = demo_run  # the session's one run (tests/conftest.py): the browser tour reads the same database
    data_dir = first.data_dir

    second = run_demo(data_dir, monkeypatch)

    assert first.exit_code == 0, first.output
    assert "Loading the IBM Telco churn sample: reading… customers… subscriptions… consents… done in" in first.stdout
    assert "Loading the CDNOW sample: reading… customers… orders… consents… done in" in first.stdout
    assert "churn_contractual: trained v1 as of 2026-09-01 and promoted it; ROC-AUC 0.850, Brier 0.133" in first.stdout
    assert "churn_noncontractual: trained v1 as of 1998-04-01 and promoted it; ROC-AUC 0.840" in first.stdout
    assert second.exit_code == 0, second.output
    lines = second.stdout.splitlines()
    assert lines[1:4] == [
        "  schema up to date",
        "The IBM Telco churn sample is already loaded: skipping it",
        "The CDNOW sample is already loaded: skipping it",
    ]
    assert "  customers       30,613 (30,613 with generated contact details)" in lines
    assert "churn_contractual: v1 already in production; not retraining" in lines
    assert "  scored 5,174 customers as of 2026-10-01" in lines
    sections, first_sections = _sections(second.stdout), _sections(first.stdout)
    plan, first_plan = sections["plan"], first_sections["plan"]
    # Scoring again as of the same dates ranks the same customers; the simulated unsubscribes of the first run
    # can only take customers out of reach.
    assert plan[0] == first_plan[0]
    assert "  production stopped by: max_budget (ranking ev_per_cost)" in plan
    assert (data_dir / "plans" / "profit_curve.png").stat().st_size > 10_000
    assert first_sections["brand"][1] == "  offers.json: 12 offers (12 new, 0 updated, 0 unchanged)"
    assert sections["brand"][1] == "  offers.json: 12 offers (0 new, 0 updated, 12 unchanged)"
    # The first run plans, drafts, approves as the sample marketer and sends to the outbox; the second only reports.
    first_campaign, campaign = first_sections["campaign"], sections["campaign"]
    assert first_campaign[0] == "Campaign demo-retention: the plan above, 10% of its targets held out to measure lift"
    assert re.fullmatch(r"  v1 attempt 1: \d+ tokens written in [\d.]+ s", first_campaign[2])  # progress, call by call
    heading = "demo-retention / subscribers_month_to_month: 656 customers, email, offers "
    assert any(line.startswith(heading) for line in first_campaign)
    assert any(line.startswith("    guardrails: passes") for line in first_campaign)  # at least one variant passed
    saved = data_dir / "drafts" / "demo-retention-subscribers_month_to_month.json"
    assert f"  saved: {saved} (`nudge check` re-checks it)" in first_campaign
    assert (
        "Approval: sam.rivera (sample marketer, demo) reviews the drafts and their guardrail reports "
        "(the demo does this for you)" in first_campaign
    )
    assert campaign[0] == "Campaign demo-retention already exists (sent): not drafting or sending it again"
    status = campaign[1:]
    assert status == first_campaign[first_campaign.index(status[0]) :]
    assert status[0] == "demo-retention (Demo retention): sent, retention, email"
    assert re.fullmatch(r"  arms: global_holdout \d+, holdout \d+(, v\d [\d,]+)+", status[2])
    with _session(first) as session:
        retention = Message.campaign_key == "demo-retention"
        sent = session.scalars(select(func.count()).where(retention, Message.status == MessageStatus.SENT)).one()
        outbox = session.scalars(
            select(func.count())
            .select_from(OutboxMessage)
            .join(Message, Message.id == OutboxMessage.message_id)
            .where(retention)
        ).one()
        holdout = session.scalars(select(func.count()).select_from(Assignment).where(Assignment.arm == "holdout")).one()
        held_out_messages = session.scalars(
            select(func.count())
            .select_from(Message)
            .join(Assignment, Assignment.customer_id == Message.customer_id)
            .where(retention, Assignment.arm.in_(["holdout", "global_holdout"]))
        ).one()
        simulated_orders = session.scalars(
            select(func.count()).select_from(Order).where(Order.external_id.like("demo-sim-order-%"))
        ).one()
        outcomes = session.scalars(
            select(func.count()).select_from(Outcome).join(Message, Message.id == Outcome.message_id).where(retention)
        ).one()
    assert sent == outbox > 0
    assert f"  messages: sent {sent:,}" in status
    assert holdout > 0
    assert held_out_messages == 0  # the holdouts get nothing
    # Simulated outcomes, labelled so, come back through the signed webhook and the intake, once.
    first_outcomes, outcomes_again = first_sections["outcomes"], sections["outcomes"]
    assert first_outcomes[0].startswith("Outcomes — SIMULATED, not real behaviour: drawn from the ground truth in ")
    stored = re.fullmatch(
        r"  sent back over HTTP: \d+ signed POST /webhooks/sendgrid \(([\d,]+) events stored and processed\), "
        r"1 POST /v1/batch \((\d+) orders stored\); 0 duplicates of an earlier run",
        first_outcomes[2],
    )
    assert stored is not None, first_outcomes
    events, orders = int(stored[1].replace(",", "")), int(stored[2])
    assert events >= 2 * sent  # processed and delivered for every e-mail, then opens and clicks
    assert outcomes == events
    assert orders == simulated_orders > 0
    assert outcomes_again[2].endswith(f"(0 orders stored); {events + orders:,} duplicates of an earlier run")
    # The report is set beside the truth it should recover, and beside the real Hillstrom experiment.
    experiment = first_sections["experiment"]
    recovered = re.fullmatch(
        r"  against the simulation's ground truth: (\d) of (\d) true values inside the 95 % intervals", experiment[2]
    )
    assert recovered is not None, experiment
    assert int(recovered[2]) >= 4  # conversion and revenue per customer, incremental both, ROI
    assert any(line.startswith("  ROI ") for line in experiment)
    assert first_sections["hillstrom"][1].startswith("  Mens E-Mail    Visited    18.28% vs 10.62% effect +7.66 pp")
    # The abandoned-cart template is drafted and approved once; the sample carts go through the intake once.
    first_carts, carts = first_sections["carts"], sections["carts"]
    assert first_carts[0].startswith("Abandoned-cart template demo-abandoned-cart: drafted once with the local model")
    assert "  Product Added: 24 stored, 0 seen before" in first_carts
    assert "  Order Completed: 4 stored, 0 seen before" in first_carts
    assert "    4 cancelled (order placed)" in first_carts
    assert "    2 waiting" in first_carts
    assert any(re.fullmatch(r"   +\d+ sent", line) for line in first_carts)
    assert any(line.startswith("  one reminder, as it went to the outbox") for line in first_carts)
    assert "    Still in your cart:" in first_carts
    assert carts[0] == "Abandoned-cart template demo-abandoned-cart: approved already"
    assert "  Product Added: 0 stored, 24 seen before" in carts
    # Costs by component, the LLM budgets with drafting's calls counted against the campaign, one HTML page.
    costs = first_sections["costs"]
    assert re.fullmatch(r"Cost ledger today: \$[\d,.]+ — llm \$0\.00, email \$\d+\.\d\d, .*", costs[0])
    retention_budget = next(line for line in costs if line.startswith("  campaign 'demo-retention'"))
    assert not re.search(r"  0 of 200", retention_budget)  # drafting's calls count against the campaign
    report = data_dir / "demo" / "report.html"
    assert first_sections["report"] == [f"The run on one page: {report.resolve()} (open it in a browser)"]
    html = report.read_text()
    assert html.count('src="data:image/png;base64,') == 4  # profit curve, reliability, lift, costs
    assert "simulated outcomes" in html
    assert "Hillstrom" in html
    assert "sign in as" not in html  # the password is printed, never written to the file
    assert re.search(r"sign in as demo / \S{16}\n", second.stdout)


@contextmanager
def _session(run: DemoRun) -> Iterator[Session]:
    """A session on the demo's database, on an engine of its own that is disposed afterwards."""
    database = run.open_database()
    try:
        with database.session() as session:
            yield session
    finally:
        database.dispose()


SECTIONS = {
    "plan": "Retention plan under a $5,000 budget",
    "brand": "The sample brand's offers",
    "campaign": "Campaign demo-retention",
    "outcomes": "Outcomes — SIMULATED",
    "experiment": "Experiment report of demo-retention",
    "hillstrom": "Beside it, the real Hillstrom",
    "carts": "Abandoned-cart template",
    "costs": "Cost ledger today",
    "report": "The run on one page",
    "login": "The web UI: ",
}


def _sections(stdout: str) -> dict[str, list[str]]:
    """The demo's sections in the order it prints them, each from its heading to the next, blank lines left out."""
    lines = stdout.splitlines()
    starts = [next(i for i, line in enumerate(lines) if line.startswith(head)) for head in SECTIONS.values()]
    ends = [*starts[1:], len(lines)]
    return {
        name: [line for line in lines[start:end] if line]
        for name, start, end in zip(SECTIONS, starts, ends, strict=True)
    }
