"""The ``nudge`` command (also ``python -m nudge``)."""

from __future__ import annotations

import typer

from nudge.commands import db

app = typer.Typer(
    help="Nudge: marketing automation planned by models, drafted by LLM agents, approved by people.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db.app, name="db")


def main() -> None:
    app()
