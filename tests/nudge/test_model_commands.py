"""``nudge train|score|plan|models|drift`` turn every bad state into one clear line and exit code 1."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core.db import Database
from nudge.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["score"], "error: no churn_contractual model in production: train one (`nudge train churn_contractual`)"),
        (["plan", "--budget", "100"], "error: no churn scores from a production model"),
        (["models", "promote", "clv", "2"], "error: no clv model version 2 (see `nudge models list`)"),
        (["models", "rollback", "clv"], "error: no clv model in production"),
        (["drift", "churn_contractual"], "error: no churn_contractual model in production"),
        (
            ["train", "churn_contractual", "--as-of", "2999-01-01"],
            "error: the label window ends 2999-01-31T00:00:00+00:00, in the future: churn there is not known yet",
        ),
        (
            ["train", "churn_contractual", "--as-of", "2026-09-01"],
            "error: no subscription was active at 2026-09-01T00:00:00+00:00: too little history to label churn",
        ),
    ],
)
def test_bad_states_are_one_clear_error(cli_db: Database, arguments: list[str], message: str) -> None:
    result = runner.invoke(app, arguments)

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(message), result.stderr


def test_a_negative_budget_is_refused_by_the_command_line(cli_db: Database) -> None:
    result = runner.invoke(app, ["plan", "--budget", "-5"])

    assert result.exit_code == 2
    assert "Invalid value for '--budget': Input should be greater than or equal to 0" in result.output


def test_listing_an_empty_registry_says_how_to_start(cli_db: Database) -> None:
    result = runner.invoke(app, ["models", "list"])

    assert result.exit_code == 0
    assert result.stdout == "no models yet: `nudge train churn_contractual|churn_noncontractual|clv --as-of DATE`\n"
