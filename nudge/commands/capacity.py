"""``nudge capacity``: measured throughput, current volumes and growth, and the limits they imply; and
``nudge capacity partitions``: create the coming months' partitions and apply the retention policy now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from sqlalchemy import func, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session

from core import ledger, partitions
from core.clock import utcnow
from core.models import Base, CostEntry, Customer, Event, Message, Order, ProviderEvent
from core.settings import get_settings
from nudge.commands.common import unit_of_work
from web.metrics import read_capacity

app = typer.Typer(
    help="Capacity: throughput, volumes, growth and limits (the default); partitions.", invoke_without_command=True
)

GROWTH_DAYS = 30
SECONDS_PER_DAY = 86_400
# (table, time column, the load-test component and unit that bounds it)
FLOWS: list[tuple[type[Base], InstrumentedAttribute[Any], str, str]] = [
    (Event, Event.received_at, "intake", "events"),
    (ProviderEvent, ProviderEvent.received_at, "webhooks", "events"),
    (Message, Message.created_at, "sends", "messages"),
]


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    total: int
    per_day: float  # average over the last GROWTH_DAYS days
    busiest_day: int
    capacity_per_second: float | None

    @property
    def capacity_per_day(self) -> float | None:
        return None if self.capacity_per_second is None else self.capacity_per_second * SECONDS_PER_DAY


@app.callback()
def report(ctx: typer.Context) -> None:
    """Print what the last load test measured, what the database holds and how fast it grows, and the limits."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    results = read_capacity(settings)
    now = utcnow()
    with unit_of_work(settings) as session:
        flows = [
            _flow(session, model, column, results, component, unit, now) for model, column, component, unit in FLOWS
        ]
        size = _database_bytes(session)
        month = ledger.totals_by_component(session, partitions.month_start(now.date()), now.date() + timedelta(days=1))
        customers = session.scalar(select(func.count(Customer.id))) or 0
        orders = session.scalar(select(func.count(Order.id))) or 0
        ledger_rows = session.scalar(select(func.count(CostEntry.id))) or 0
    _print_measured(results, settings.capacity_results_file)
    typer.echo(
        f"\nvolumes: {customers:,} customers, {orders:,} orders, {ledger_rows:,} cost entries; database {_bytes(size)}"
    )
    typer.echo(
        f"cost this month: ${sum(month.values()):,.2f} ("
        + ", ".join(f"{c.value} ${a:,.2f}" for c, a in month.items())
        + ")"
    )
    typer.echo(f"\n{'flow':<10} {'stored':>12} {'per day':>12} {'busiest day':>12} {'limit/day':>14} {'headroom':>10}")
    for flow in flows:
        _print_flow(flow)
    typer.echo(_limits_text(flows, size))


def _flow(
    session: Session,
    model: type[Base],
    column: InstrumentedAttribute[Any],
    results: dict[str, Any],
    component: str,
    unit: str,
    now: datetime,
) -> Flow:
    since = now - timedelta(days=GROWTH_DAYS)
    total = session.scalar(select(func.count()).select_from(model)) or 0
    moments = session.scalars(select(column).where(column >= since))
    per_day: dict[str, int] = {}
    for moment in moments:
        per_day[moment.date().isoformat()] = per_day.get(moment.date().isoformat(), 0) + 1
    measured = results.get("components", {}).get(component, {}).get("per_second", {}).get(unit)
    return Flow(
        name=component,
        total=int(total),
        per_day=sum(per_day.values()) / GROWTH_DAYS,
        busiest_day=max(per_day.values(), default=0),
        capacity_per_second=float(measured) if measured is not None else None,
    )


def _database_bytes(session: Session) -> int:
    if session.get_bind().dialect.name == "postgresql":
        return int(session.scalar(text("SELECT pg_database_size(current_database())")) or 0)
    return int(session.scalar(text("PRAGMA page_count")) or 0) * int(session.scalar(text("PRAGMA page_size")) or 0)


def _print_measured(results: dict[str, Any], path: Any) -> None:
    if not results:
        typer.echo(f"no load test results in {path}: run `.venv/bin/python bench/load.py` on this machine")
        return
    typer.echo(
        f"measured by bench/load.py at {results['measured_at']} ({results.get('machine', {}).get('cpus', '?')} CPUs):"
    )
    for component, figures in results.get("components", {}).items():
        rates = ", ".join(f"{rate:,.0f} {unit}/s" for unit, rate in figures.get("per_second", {}).items())
        latency = figures.get("latency_ms")
        tail = f"; p95 {latency['p95']} ms a request" if latency else ""
        typer.echo(f"  {component:<10} {rates}{tail}")


def _print_flow(flow: Flow) -> None:
    limit = flow.capacity_per_day
    headroom = f"{limit / flow.busiest_day:,.0f}×" if limit and flow.busiest_day else "—"
    limit_text = f"{limit:,.0f}" if limit is not None else "not measured"
    columns = f"{flow.total:>12,} {flow.per_day:>12,.0f} {flow.busiest_day:>12,} {limit_text:>14} {headroom:>10}"
    typer.echo(f"{flow.name:<10} {columns}")


def _limits_text(flows: list[Flow], size: int) -> str:
    lines = ["\nlimits:"]
    for flow in flows:
        if flow.capacity_per_second is None:
            continue
        seconds_for_million = 1_000_000 / flow.capacity_per_second
        lines.append(
            f"  {flow.name}: at most {flow.capacity_per_second:,.0f}/s sustained on this machine, "
            f"{flow.capacity_per_day or 0:,.0f} a day; a million takes {seconds_for_million / 60:,.1f} min"
        )
    stored = sum(flow.total for flow in flows)
    daily = sum(flow.per_day for flow in flows)
    if stored and daily:
        per_row = size / stored  # the whole database over its three busiest tables: a rough upper bound per row
        forecast = ", ".join(f"{days} d {_bytes(size + daily * days * per_row)}" for days in (30, 60, 90))
        lines.append(
            f"  storage: {_bytes(size)} now, {daily:,.0f} event and message rows a day; linear forecast {forecast}"
        )
    lines.append(
        "  beyond these: more API processes or machines (intake, webhooks), more workers (sends) — README › Scaling"
    )
    return "\n".join(lines)


def _bytes(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"


@app.command("partitions")
def maintain_partitions(
    retention: Annotated[bool, typer.Option(help="Also drop (SQLite: delete) what is past retention.")] = True,
) -> None:
    """Create this month's and the next months' partitions (PostgreSQL) and apply NUDGE_DATA_RETENTION_MONTHS."""
    settings = get_settings()
    now = utcnow()
    with unit_of_work(settings) as session:
        created = partitions.ensure_partitions(session, now)
        removed = partitions.apply_retention(session, now, settings.data_retention_months) if retention else None
        names = {table: partitions.list_partitions(session, table) for table in partitions.PARTITIONED}
    typer.echo(f"created: {', '.join(created) or 'nothing (all present, or SQLite)'}")
    if removed is not None:
        dropped, deleted = removed.dropped_partitions or "none", removed.deleted_rows or "none"
        typer.echo(f"retention: before {removed.cutoff}; dropped {dropped}; deleted {deleted}")
    for table, children in names.items():
        typer.echo(f"{table}: {len(children)} partition(s) {', '.join(children)}")
