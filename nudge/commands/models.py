"""``nudge models …``: the model registry — list versions, promote one to production, roll back."""

from __future__ import annotations

from typing import Annotated

import typer

from core.models import ModelKind, ModelVersion
from ml import registry
from nudge.commands.common import unit_of_work

app = typer.Typer(help="Trained model versions: list, promote, roll back.", no_args_is_help=True)


@app.command("list")
def list_(kind: Annotated[ModelKind | None, typer.Argument(help="Only this kind.")] = None) -> None:
    """Every version with its stage, training window and headline metrics."""
    with unit_of_work() as session:
        versions = registry.list_versions(session, kind)
        lines = [describe(version) for version in versions]
    typer.echo(
        "\n".join(lines)
        if lines
        else "no models yet: `nudge train churn_contractual|churn_noncontractual|clv --as-of DATE`"
    )


@app.command()
def promote(kind: ModelKind, version: int) -> None:
    """Put a version in production; the current production version is archived."""
    with unit_of_work() as session:
        promoted = registry.promote(session, kind, version)
        line = describe(promoted)
    typer.echo(f"promoted: {line}")


@app.command()
def rollback(kind: ModelKind) -> None:
    """Archive the production version and restore the previous one."""
    with unit_of_work() as session:
        restored = registry.rollback(session, kind)
        line = describe(restored)
    typer.echo(f"rolled back to: {line}")


def describe(version: ModelVersion) -> str:
    metrics = ", ".join(f"{name} {value:.4f}" for name, value in version.metrics.items() if isinstance(value, float))
    window = ", ".join(f"{name} {value}" for name, value in version.training_window.items())
    return (
        f"{version.kind.value} v{version.version}  {version.stage.value:<10}  "
        f"trained {version.created_at:%Y-%m-%d %H:%M}  [{window}]  {metrics}"
    )
