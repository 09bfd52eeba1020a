"""What every command shares: the settings, the database, and turning a NudgeError into a clean exit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import typer
from sqlalchemy.orm import Session

from core import migrate
from core.db import Database
from core.errors import NudgeError
from core.settings import Settings, get_settings


def database(settings: Settings | None = None) -> Database:
    return (settings or get_settings()).open_database()


@contextmanager
def clean_errors() -> Iterator[None]:
    """Print an expected error as one readable message and exit 1, instead of a traceback."""
    try:
        yield
    except NudgeError as error:
        typer.secho(f"error: {error.message}", fg=typer.colors.RED, err=True)
        if isinstance(error.details, list):
            for detail in error.details:
                typer.echo(f"  {describe(detail)}", err=True)
        raise typer.Exit(code=1) from error


def describe(detail: Any) -> str:
    """One line for one item of an error's ``details``: an import problem reads
    ``row 3, column 'amount': not a number (value: 'abc')``; anything else is printed as it is."""
    if not isinstance(detail, Mapping) or "reason" not in detail:
        return str(detail)
    where = [f"row {detail['row']}" if detail.get("row") else "file"]
    if detail.get("column"):
        where.append(f"column {detail['column']!r}")
    value = f" (value: {detail['value']!r})" if detail.get("value") is not None else ""
    return f"{', '.join(where)}: {detail['reason']}{value}"


def ready_database(settings: Settings | None = None) -> Database:
    """The database, at the current schema: the embedded SQLite file is migrated here, any other database must
    already be (``nudge db upgrade``), else ``ServiceUnavailable`` — use inside ``clean_errors()``."""
    settings = settings or get_settings()
    db = database(settings)
    try:
        migrate.ensure_current(db.engine, upgrade_if_behind=settings.migrates_on_start)
    except BaseException:
        db.dispose()
        raise
    return db


@contextmanager
def unit_of_work(settings: Settings | None = None) -> Iterator[Session]:
    """A session on the (migrated) database that commits when the command's work succeeds; expected
    errors print cleanly and exit 1."""
    with clean_errors():
        db = ready_database(settings)
        try:
            with db.session() as session:
                yield session
        finally:
            db.dispose()
