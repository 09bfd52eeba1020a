"""``nudge demo``: from nothing to a database holding the real sample data, then what is in it.

A plain sequence of steps, each printing what it does, so later features add theirs in order.
"""

from __future__ import annotations

from decimal import Decimal

import typer

from audience.samples import Sample, is_loaded
from audience.summary import AudienceSummary, summarize
from core import migrate
from core.db import Database
from core.models import Channel, ConsentStatus
from core.settings import get_settings
from nudge.commands.common import clean_errors, database
from nudge.commands.imports import load_with_progress


def demo() -> None:
    """Create or upgrade the database, load the sample data sets (skipping those already loaded), print a summary."""
    db = database()
    try:
        with clean_errors():
            upgrade_schema(db)
            for sample in Sample:
                load_sample_once(db, sample)
            show_summary(db)
        settings = get_settings()
        url = f"http://{settings.api_host}:{settings.api_port}"
        typer.echo(f"\nNext: `make serve` starts the API on {url} (docs at {url}/docs).")
    finally:
        db.dispose()


def upgrade_schema(db: Database) -> None:
    typer.echo(f"Database: {db.engine.url.render_as_string(hide_password=True)}")
    migrate.upgrade(db.engine)
    typer.echo("  schema up to date")


def load_sample_once(db: Database, sample: Sample) -> None:
    with db.session() as session:
        loaded = is_loaded(session, sample)
    if loaded:
        typer.echo(f"The {sample.label} sample is already loaded: skipping it")
        return
    load_with_progress(db, sample)


def show_summary(db: Database) -> None:
    with db.session() as session:
        summary = summarize(session)
    typer.echo("In the database:")
    for label, text in summary_lines(summary):
        typer.echo(f"  {label:<15} {text}")


def summary_lines(summary: AudienceSummary) -> list[tuple[str, str]]:
    span = (
        f" ({summary.first_order:%Y-%m-%d} to {summary.last_order:%Y-%m-%d})"
        if summary.first_order and summary.last_order
        else ""
    )
    subscriptions = summary.active_subscriptions + summary.ended_subscriptions
    lines = [
        ("customers", f"{summary.customers:,} ({summary.generated_contacts:,} with generated contact details)"),
        (
            "subscriptions",
            f"{subscriptions:,} ({summary.active_subscriptions:,} active, {summary.ended_subscriptions:,} ended;"
            f" monthly recurring {_money(summary.monthly_recurring)})",
        ),
        ("orders", f"{summary.orders:,}{span}"),
        ("revenue", _money(summary.revenue)),
    ]
    for channel, label in ((Channel.EMAIL, "e-mail consent"), (Channel.SMS, "SMS consent")):
        counts = summary.consents.get(channel, {})
        granted, withdrawn = counts.get(ConsentStatus.GRANTED, 0), counts.get(ConsentStatus.WITHDRAWN, 0)
        lines.append((label, f"{granted:,} customers granted, {withdrawn:,} withdrawn"))
    return lines


def _money(totals: dict[str, Decimal]) -> str:
    return ", ".join(f"{currency} {amount:,.2f}" for currency, amount in totals.items()) or "none"
