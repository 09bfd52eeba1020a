"""``nudge campaign``: a campaign created, planned, drafted, reviewed and scheduled from the command line, with
every action in the audit trail under its actor; refused actions exit 1 with the reason and change nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from core import migrate
from core.db import Database
from core.models import AuditEntry, Campaign, CampaignState
from nudge.cli import app
from tests.campaigns.test_service import SMS_ONLY, SUBSCRIBERS, reviewed, scored_customers

runner = CliRunner()
TIME = re.compile(r"^  \d{4}-\d{2}-\d{2} \d{2}:\d{2} ")


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["campaign", *args])


@pytest.fixture
def scored(cli_db: Database) -> Database:
    migrate.upgrade(cli_db.engine)
    scored_customers(cli_db)
    return cli_db


def created(db: Database) -> None:
    result = invoke(
        "create", "winter", "--name", "Winter retention", "--budget", "1000", "--holdout", "0.2", "--as", "ana"
    )
    assert (result.exit_code, result.stdout) == (0, "winter: draft\n"), result.output
    with db.session() as session:  # random in production; pinned so the arms below are exact
        session.execute(update(Campaign).values(salt="pinned"))


def test_a_campaign_goes_from_creation_to_scheduled_with_every_step_audited(
    scored: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    created(scored)
    monkeypatch.setattr("nudge.commands.campaign.campaign_briefs", lambda db, campaign, **options: ["brief"])
    monkeypatch.setattr("nudge.commands.campaign.draft_briefs", lambda db, settings, briefs: [reviewed()])

    steps = [
        ("plan", "winter", "--as", "ana"),
        ("draft", "winter", "--as", "ana"),
        ("submit", "winter", "--as", "ana"),
        ("approve", "winter", "--as", "bo"),
        ("schedule", "winter", "--at", "2099-01-31T09:00", "--as", "bo"),
    ]
    results = [invoke(*step) for step in steps]

    assert [result.exit_code for result in results] == [0] * 5, [result.output for result in results]
    assert results[0].stdout == (
        f"winter: planned; {SUBSCRIBERS - SMS_ONLY} assigned (9 held out, 3 in the global holdout), "
        f"{SMS_ONLY} not reachable on the channel, 3 in segments too small to draft for\n"
    )
    assert [result.stdout for result in results[2:]] == [
        "winter: in_review\n",
        "winter: approved\n",
        "winter: scheduled\n",
    ]
    status = invoke("status", "winter")
    lines = [TIME.sub("  ", line) for line in status.stdout.splitlines()]
    assert lines == [
        "winter (Winter retention): scheduled, retention, email",
        "  scheduled at 2099-01-31T09:00:00+00:00",
        "  arms: global_holdout 3, holdout 9, v1 12, v2 12",
        "  subscribers_month_to_month/v1: guardrails passes, approved by bo",
        "  subscribers_month_to_month/v2: guardrails passes, approved by bo",
        "  messages: none",
        "  ana create — → draft",
        "  ana plan draft → planned",
        "  ana draft planned → drafted",
        "  ana submit drafted → in_review",
        "  bo approve in_review → approved",
        "  bo schedule approved → scheduled",
    ]
    listed = invoke("list")
    assert listed.stdout.split() == ["winter", "retention", "scheduled", "email", "Winter", "retention"]


def test_an_action_the_state_does_not_allow_exits_one_with_the_reason_and_changes_nothing(scored: Database) -> None:
    created(scored)

    result = invoke("approve", "winter", "--as", "bo")

    assert result.exit_code == 1
    assert result.stderr == "error: cannot approve campaign 'winter': it is draft; allowed: plan, cancel\n"
    with scored.session() as session:
        assert session.scalars(select(Campaign.state)).one() is CampaignState.DRAFT
        assert session.scalars(select(AuditEntry.action)).all() == ["create"]


def test_reject_needs_a_comment_and_records_it(scored: Database) -> None:
    created(scored)
    with scored.session() as session:
        session.execute(update(Campaign).values(state=CampaignState.IN_REVIEW))

    missing = invoke("reject", "winter", "--as", "bo")
    blank = invoke("reject", "winter", "--as", "bo", "--comment", " ")
    done = invoke("reject", "winter", "--as", "bo", "--comment", "wrong season")

    assert missing.exit_code == 2  # typer: a missing required option
    assert (blank.exit_code, blank.stderr) == (1, "error: reject needs a comment saying why\n")
    assert (done.exit_code, done.stdout) == (0, "winter: rejected\n")
    with scored.session() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert entry is not None
        assert (entry.actor, entry.action, entry.comment) == ("bo", "reject", "wrong season")


def test_an_unknown_campaign_is_a_clear_error(scored: Database) -> None:
    result = invoke("status", "nope")

    assert (result.exit_code, result.stderr) == (1, "error: no campaign 'nope'\n")


def test_a_time_that_is_not_iso_8601_is_refused(scored: Database) -> None:
    created(scored)

    result = invoke("schedule", "winter", "--at", "tomorrow")

    assert result.exit_code == 1
    assert result.stderr == "error: --at 'tomorrow' is not an ISO 8601 time, such as 2026-11-30T09:00\n"


def test_sending_a_campaign_that_is_not_scheduled_is_refused_and_nothing_is_enqueued(
    scored: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    created(scored)
    enqueued: list[tuple[Any, ...]] = []
    monkeypatch.setattr("nudge.commands.campaign.enqueue_after_commit", lambda *args: enqueued.append(args))

    result = invoke("send", "winter", "--as", "bo")

    assert result.exit_code == 1
    assert result.stderr == "error: cannot start campaign 'winter': it is draft; allowed: plan, cancel\n"
    assert enqueued == []


def test_sending_a_scheduled_campaign_starts_it_and_enqueues_the_workers_start(
    scored: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    created(scored)
    with scored.session() as session:
        session.execute(update(Campaign).values(state=CampaignState.SCHEDULED))
        campaign_id = session.scalars(select(Campaign.id)).one()
    enqueued: list[tuple[Any, ...]] = []
    monkeypatch.setattr("nudge.commands.campaign.enqueue_after_commit", lambda *args: enqueued.append(args))

    result = invoke("send", "winter", "--as", "bo")

    assert (result.exit_code, result.stdout) == (0, "winter: sending\n")
    assert [(task.name, campaign) for _, task, campaign in enqueued] == [("nudge.campaigns.start_sending", campaign_id)]
