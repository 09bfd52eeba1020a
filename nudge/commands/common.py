"""What every command shares: the settings, the database, and turning a NudgeError into a clean exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from core.db import Database
from core.errors import NudgeError
from core.settings import Settings, get_settings


def database(settings: Settings | None = None) -> Database:
    settings = settings or get_settings()
    return Database.from_url(settings.database_url, echo=settings.database_echo)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Print an expected error as one readable message and exit 1, instead of a traceback."""
    try:
        yield
    except NudgeError as error:
        typer.secho(f"error: {error.message}", fg=typer.colors.RED, err=True)
        if isinstance(error.details, list):
            for detail in error.details:
                typer.echo(f"  {detail}", err=True)
        raise typer.Exit(code=1) from error
