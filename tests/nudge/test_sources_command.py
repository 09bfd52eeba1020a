"""``nudge sources``: the key is printed once at creation and never by ``list``."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from audience.sources import authenticate
from core.db import Database
from nudge.cli import app

runner = CliRunner()


def test_create_prints_a_working_key_once_with_a_warning(cli_db: Database) -> None:
    result = runner.invoke(app, ["sources", "create", "website"])

    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"created source 'website'\nwrite key: (\S+)\n", result.stdout)
    assert match is not None
    assert "shown only this once" in result.stderr
    with cli_db.session() as session:
        assert authenticate(session, match.group(1)).name == "website"


def test_list_shows_sources_and_their_state_but_never_a_key(cli_db: Database) -> None:
    key = runner.invoke(app, ["sources", "create", "website"]).stdout.split("write key: ")[1].strip()
    runner.invoke(app, ["sources", "create", "backend"])
    runner.invoke(app, ["sources", "revoke", "backend"])

    result = runner.invoke(app, ["sources", "list"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["backend", "website"]
    assert lines[0].split("\t")[2].startswith("revoked ")
    assert lines[1].split("\t")[2] == "active"
    assert key not in result.output


def test_a_taken_name_exits_1_with_the_reason(cli_db: Database) -> None:
    runner.invoke(app, ["sources", "create", "website"])

    result = runner.invoke(app, ["sources", "create", "website"])

    assert result.exit_code == 1
    assert result.stderr == "error: a source named 'website' already exists\n"


def test_revoking_an_unknown_source_exits_1(cli_db: Database) -> None:
    result = runner.invoke(app, ["sources", "revoke", "nope"])

    assert result.exit_code == 1
    assert result.stderr == "error: no source named 'nope'\n"
