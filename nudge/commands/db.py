"""``nudge db …``: schema migrations."""

from __future__ import annotations

import typer

from core import migrate
from nudge.commands.common import database

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the database schema (SQLite or PostgreSQL) to the newest revision."""
    db = database()
    migrate.upgrade(db.engine, revision)
    typer.echo(f"database at {revision} ({db.engine.url.render_as_string(hide_password=True)})")
    db.dispose()
