"""``nudge sources …``: event sources and their write keys. A key is printed once, at creation, never again."""

from __future__ import annotations

import typer

from audience.sources import create_source, list_sources, revoke_source
from nudge.commands.common import unit_of_work

app = typer.Typer(help="Event sources and their write keys.", no_args_is_help=True)


@app.command()
def create(name: str = typer.Argument(..., help="A name for the sender, e.g. 'website' or 'backend'.")) -> None:
    """Create a source and print its new write key — the only time it is shown."""
    with unit_of_work() as session:
        new = create_source(session, name)
    typer.echo(f"created source {new.source.name!r}")
    typer.echo(f"write key: {new.write_key}")
    typer.secho(
        "Store this key now (e.g. in your secret manager): it is shown only this once; Nudge keeps only its hash.",
        fg=typer.colors.YELLOW,
        err=True,
    )


@app.command("list")
def list_() -> None:
    """List sources and whether they are active (write keys are never shown)."""
    with unit_of_work() as session:
        sources = list_sources(session)
    if not sources:
        typer.echo("no sources yet: nudge sources create NAME")
    for source in sources:
        status = f"revoked {source.revoked_at:%Y-%m-%d %H:%M} UTC" if source.revoked_at else "active"
        typer.echo(f"{source.name}\tcreated {source.created_at:%Y-%m-%d %H:%M} UTC\t{status}")


@app.command()
def revoke(name: str = typer.Argument(..., help="The source's name.")) -> None:
    """Revoke a source's write key: its calls are refused (401) from now on."""
    with unit_of_work() as session:
        source = revoke_source(session, name)
    typer.echo(f"revoked source {source.name!r}")
