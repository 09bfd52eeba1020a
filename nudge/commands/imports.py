"""``nudge import …``: customers, subscriptions and orders from CSV files (all or nothing), and the sample data sets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from audience.importer import ImportKind, ImportSummary, import_csv, parse_mapping
from audience.samples import Sample, SampleSummary, load_sample
from core.db import Database
from nudge.commands.common import clean_errors, ready_database

app = typer.Typer(
    help="Import customers, subscriptions and orders from CSV files, or load a sample data set.",
    no_args_is_help=True,
)

FileArgument = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file; its first row names the columns."),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        "-m",
        metavar="FIELD=COLUMN",
        help="Read FIELD from the column named COLUMN (repeatable); attributes.NAME=COLUMN keeps an extra column.",
    ),
]
EncodingOption = Annotated[
    str, typer.Option(help="The file's text encoding: utf-8 (a BOM is fine), cp1252, latin-1, …")
]
CurrencyOption = Annotated[str, typer.Option(help="ISO 4217 currency for rows whose currency is blank or missing.")]


@app.command()
def customers(file: FileArgument, map_: MapOption = None, encoding: EncodingOption = "utf-8") -> None:
    """Create or update customers by external_id.

    Columns: external_id (required), email, phone (E.164), first_name, last_name, time_zone (IANA), country
    (ISO 3166-1 alpha-2), region. A blank cell leaves the stored value as it is.
    """
    _import(ImportKind.CUSTOMERS, file, map_, encoding, "USD")


@app.command()
def subscriptions(
    file: FileArgument, map_: MapOption = None, encoding: EncodingOption = "utf-8", currency: CurrencyOption = "USD"
) -> None:
    """Add subscriptions of existing customers.

    Columns: customer_external_id, plan, monthly_charge, started_at (required); external_id, currency, ended_at.
    """
    _import(ImportKind.SUBSCRIPTIONS, file, map_, encoding, currency)


@app.command()
def orders(
    file: FileArgument, map_: MapOption = None, encoding: EncodingOption = "utf-8", currency: CurrencyOption = "USD"
) -> None:
    """Add orders of existing customers.

    Columns: customer_external_id, amount, ordered_at (required); external_id, currency, quantity (default 1).
    """
    _import(ImportKind.ORDERS, file, map_, encoding, currency)


@app.command()
def sample(
    name: Annotated[Sample, typer.Argument(help="Which data set: telco (subscriptions) or cdnow (orders).")],
    path: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Load this copy of the file instead of the one in data/samples/."
        ),
    ] = None,
) -> None:
    """Load a real sample data set, with generated contact details and consents (see data/samples/README.md)."""
    with clean_errors():
        db = ready_database()
        try:
            load_with_progress(db, name, path)
        finally:
            db.dispose()


def _import(kind: ImportKind, file: Path, pairs: list[str] | None, encoding: str, currency: str) -> None:
    with clean_errors():
        mapping = parse_mapping(pairs or [])
        db = ready_database()
        try:
            with db.session() as session:
                summary = import_csv(
                    session, kind, file.read_bytes(), mapping=mapping, encoding=encoding, currency=currency
                )
        finally:
            db.dispose()
    typer.echo(describe_import(summary, file.name))


def describe_import(summary: ImportSummary, file_name: str) -> str:
    noun = summary.kind.value if summary.rows != 1 else summary.kind.value.removesuffix("s")
    line = f"{file_name}: imported {summary.rows:,} {noun}"
    if summary.kind is ImportKind.CUSTOMERS:
        line += f" ({summary.created:,} new, {summary.updated:,} updated)"
    if summary.ignored_columns:
        line += f"\nignored columns (map them to keep them): {', '.join(summary.ignored_columns)}"
    return line


def load_with_progress(db: Database, sample: Sample, path: Path | None = None) -> SampleSummary:
    """Load a sample in its own transaction, naming each step as it starts: a load takes a few seconds."""
    typer.echo(f"Loading the {sample.label} sample:", nl=False)
    started = time.perf_counter()
    with db.session() as session:
        summary = load_sample(session, sample, path, on_step=lambda step: typer.echo(f" {step}…", nl=False))
    typer.echo(f" done in {time.perf_counter() - started:.1f} s")
    typer.echo(f"  {describe_sample(summary)}")
    return summary


def describe_sample(summary: SampleSummary) -> str:
    counts = [f"{summary.customers:,} customers"]
    counts += [
        f"{count:,} {name}"
        for name, count in (("subscriptions", summary.subscriptions), ("orders", summary.orders))
        if count
    ]
    counts.append(f"{summary.consents:,} consent records")
    return f"{', '.join(counts)} (contact details and consents generated)"
