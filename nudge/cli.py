"""The ``nudge`` command (also ``python -m nudge``)."""

from __future__ import annotations

import typer

from core.settings import get_settings
from nudge.commands import (
    budgets,
    campaign,
    capacity,
    check,
    creative,
    db,
    demo,
    draft,
    imports,
    modelling,
    models,
    outbox,
    plan,
    report,
    serve,
    sources,
    users,
    worker,
)
from workers.app import celery_app

app = typer.Typer(
    help="Nudge: marketing automation planned by models, drafted by LLM agents, approved by people.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _with_current_settings() -> None:
    """Tasks a command runs or sends use the command's settings (and so its database), read now."""
    celery_app.configure(get_settings())


app.add_typer(db.app, name="db")
app.add_typer(imports.app, name="import")
app.command("demo")(demo.demo)
app.add_typer(sources.app, name="sources")
app.add_typer(users.app, name="users")
app.command("serve")(serve.serve)
app.add_typer(models.app, name="models")
app.command("train")(modelling.train)
app.command("score")(modelling.score)
app.command("drift")(modelling.drift)
app.command("plan")(plan.plan)
app.add_typer(creative.app, name="creative")
app.command("draft")(draft.draft)
app.add_typer(budgets.app, name="budgets")
app.add_typer(capacity.app, name="capacity")
app.command("check")(check.check)
app.add_typer(outbox.app, name="outbox")
app.add_typer(campaign.app, name="campaign")
app.add_typer(report.app, name="report")
app.command("worker")(worker.worker)
app.command("beat")(worker.beat)


def main() -> None:
    app()
