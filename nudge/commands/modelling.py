"""``nudge train``, ``nudge score`` and ``nudge drift``: the model lifecycle from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.db import Database
from core.models import ModelKind
from core.settings import Settings, get_settings
from ml import jobs
from ml.drift import DriftStatus
from ml.monitoring import feature_drift
from nudge.commands.common import clean_errors, ready_database, unit_of_work

AsOf = Annotated[
    datetime | None,
    typer.Option("--as-of", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"], help="UTC moment [default: now]."),
]


def moment(value: datetime | None) -> datetime:
    """A CLI date as a UTC moment; none means now."""
    return datetime.now(UTC) if value is None else value.replace(tzinfo=UTC)


def train(
    kind: Annotated[ModelKind, typer.Argument(help="What to train.")],
    as_of: AsOf = None,
    horizon: Annotated[int | None, typer.Option(help="Churn label window in days [30 contractual, 90 not].")] = None,
) -> None:
    """Train a model as of a date (labels need the window after it), save it and register it in staging."""
    settings = get_settings()
    with clean_errors():
        db = ready_database(settings)
        try:
            with _spinner(f"training {kind.value}"):
                trained = jobs.run_training(db, settings, kind, as_of=moment(as_of), horizon_days=horizon)
        finally:
            db.dispose()
    version = trained.version
    typer.echo(f"trained {kind.value} v{version.version} (staging), artifact {version.artifact_path}")
    for name, value in version.metrics.items():
        typer.echo(f"  {name:<34} {value:.4f}" if isinstance(value, float) else f"  {name:<34} {value}")
    if trained.plot:
        typer.echo(f"  reliability diagram: {trained.plot}")
    typer.echo(f"promote it with: nudge models promote {kind.value} {version.version}")


def score(
    kinds: Annotated[list[ModelKind] | None, typer.Argument(help="Which production models [default: all].")] = None,
    as_of: AsOf = None,
    backfill_days: Annotated[int, typer.Option(help="Also re-score every 7 days back this far.")] = 0,
) -> None:
    """Score every customer with the production models into the predictions table."""
    settings = get_settings()
    with clean_errors():
        db = ready_database(settings)
        try:
            for kind in kinds or list(ModelKind):
                _score_kind(db, settings, kind, moment(as_of), backfill_days)
        finally:
            db.dispose()


def _score_kind(db: Database, settings: Settings, kind: ModelKind, as_of: datetime, backfill: int) -> None:
    with Progress(
        TextColumn(f"scoring {kind.value}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task("chunks", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if backfill:
            first = as_of - timedelta(days=backfill)
            results = jobs.run_backfill(db, settings, kind, first=first, last=as_of, progress=progress)
        else:
            results = [jobs.run_scoring(db, kind, as_of=as_of, progress=progress)]
    for result in results:
        typer.echo(
            f"scored {result.customers:,} customers with {kind.value} v{result.version} as of {result.as_of:%Y-%m-%d}"
        )


def drift(
    kind: Annotated[ModelKind, typer.Argument(help="A churn model kind.")] = ModelKind.CHURN_CONTRACTUAL,
    as_of: AsOf = None,
) -> None:
    """Population stability (PSI) of the production model's features now against its training data."""
    with unit_of_work() as session:
        report = feature_drift(session, kind, moment(as_of))
    marks = {DriftStatus.STABLE: " ", DriftStatus.WARN: "!", DriftStatus.ALERT: "!!"}
    for result in report.features:
        typer.echo(f"  {marks[result.status]:<2} {result.feature:<36} PSI {result.psi:7.4f}  {result.status.value}")
    verdict = "retrain recommended" if report.retrain_recommended else "no retrain needed"
    typer.echo(f"{kind.value}: {verdict} — {report.reason}")


@contextmanager
def _spinner(label: str) -> Iterator[None]:
    with Progress(TextColumn(label), BarColumn(), TimeElapsedColumn(), transient=True) as bar:
        bar.add_task(label, total=None)
        yield
