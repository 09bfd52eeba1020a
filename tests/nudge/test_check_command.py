"""``nudge check``: saved drafts re-checked against the current catalog and brand rules; ``--rules`` lists them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from agents.brand import import_brand
from agents.layout import html_from_text
from agents.schemas import Draft, DraftSet, UsageSummary
from campaigns.drafting import ReviewedDrafts
from core import migrate
from core.db import Database
from core.models import Channel
from guardrails.report import Report
from guardrails.rules import RULES
from nudge.cli import app
from nudge.commands.creative import SAMPLE_BRAND
from tests.agents.drafting_fakes import brief
from tests.campaigns.test_drafting import BODY, LOYAL20

runner = CliRunner()
FOOTER = (
    "You are receiving this because you are a {{brand_name}} customer.\n"
    "{{brand_name}}, {{postal_address}}\nUnsubscribe: {{unsubscribe_url}}"
)


def saved(tmp_path: Path, body: str) -> Path:
    draft = Draft(
        body_text=f"{body}\n\n{FOOTER}",
        body_html=html_from_text(f"{body}\n\n{FOOTER}"),
        subject="A thank-you from us, {{first_name}}",
        preheader="Your offer: {{offer.name}}, code {{offer.code}}.",
        offer_codes=("LOYAL20",),
        variant="v1",
        angle="value",
        channel=Channel.EMAIL,
        attempts=1,
        usage=UsageSummary(),
    )
    draft_set = DraftSet(
        brief=brief(offers=(LOYAL20,), campaign_key="retention-2026-11"),
        drafts=(draft,),
        prompt_version="drafting-2",
        retrieval_query="q",
        retrieved_ids=(),
    )
    stale = Report(checked_at=datetime(2026, 1, 1, tzinfo=UTC))  # what was stored: re-checked, not trusted
    return ReviewedDrafts(draft_set=draft_set, reports={"v1": stale}).save(tmp_path / "drafts")


def with_brand(cli_db: Database) -> None:
    migrate.upgrade(cli_db.engine)
    with cli_db.session() as session:
        import_brand(session, SAMPLE_BRAND, store=None)


def test_a_clean_saved_draft_passes_and_the_command_exits_zero(cli_db: Database, tmp_path: Path) -> None:
    with_brand(cli_db)

    result = runner.invoke(app, ["check", str(saved(tmp_path, BODY))])

    assert result.exit_code == 0, result.output
    assert result.stdout == ("retention-2026-11 v1:\n  guardrails: passes (0 blocking, 0 warnings; guardrails-1)\n")


def test_a_draft_with_a_banned_claim_is_reported_with_its_rule_and_exits_one(cli_db: Database, tmp_path: Path) -> None:
    with_brand(cli_db)
    risky = BODY.replace("As a thank-you,", "Savings are guaranteed:")

    result = runner.invoke(app, ["check", str(saved(tmp_path, risky))])

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1] == "  guardrails: BLOCKED (2 blocking, 0 warnings; guardrails-1)"  # in the text and the HTML
    assert re.match(r"^    block content\.banned_claim \[body_text\]: .*'guaranteed'", lines[2])
    assert re.match(r"^    block content\.banned_claim \[body_html\]: .*'guaranteed'", lines[3])


def test_rules_lists_every_rule_once(cli_db: Database) -> None:
    result = runner.invoke(app, ["check", "--rules"])

    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == [rule.id for rule in RULES]


def test_a_file_that_is_not_a_draft_file_is_a_clear_error(cli_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text("[]")

    result = runner.invoke(app, ["check", str(path)])

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path} is not a saved draft file: ")
