"""Benchmark: the full CDNOW sample (23,570 customers, 69,659 orders) into a fresh SQLite file and a fresh
PostgreSQL server, by both bulk paths, with wall time per backend.

- ``sample loader``: ``nudge import sample cdnow`` (customers with generated contacts, orders, consents);
- ``CSV import``: the same customers and orders as two CSV files through ``import_csv``, as a marketer
  would bring them (every value validated, then written), customers first.

Each run is one transaction, commit included. Not a test: it prints figures (``make bench``).

    .venv/bin/python bench/import_cdnow.py
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the repository's tests.support importable

from audience.generated_contacts import generate_contact  # noqa: E402
from audience.importer import ImportKind, import_csv  # noqa: E402
from audience.samples import SAMPLES_DIR, Sample, load_sample  # noqa: E402
from core import migrate  # noqa: E402
from core.db import Database  # noqa: E402
from tests.support.postgres import postgres_server  # noqa: E402

CDNOW = SAMPLES_DIR / Sample.CDNOW.file_name


def cdnow_as_csv() -> tuple[bytes, bytes]:
    """CDNOW as the two files a shop would export: customers (with contact columns) and orders."""
    lines = [line.split() for line in CDNOW.read_text().splitlines()[1:] if line.strip()]
    customers, orders = io.StringIO(), io.StringIO()
    customer_writer, order_writer = csv.writer(customers), csv.writer(orders)
    customer_writer.writerow(["external_id", "email", "phone", "first_name", "last_name", "time_zone", "country"])
    order_writer.writerow(["external_id", "customer_external_id", "amount", "currency", "quantity", "ordered_at"])
    seen: dict[str, int] = {}
    for customer, day, quantity, amount in lines:
        external_id = f"cdnow-{customer}"
        if external_id not in seen:
            contact = generate_contact(external_id)
            row = [contact.email, contact.phone or "", contact.first_name, contact.last_name, contact.time_zone]
            customer_writer.writerow([external_id, *row, contact.country])
        seen[external_id] = seen.get(external_id, 0) + 1
        ordered_at = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        order_writer.writerow([f"{external_id}-{seen[external_id]}", external_id, amount, "USD", quantity, ordered_at])
    return customers.getvalue().encode(), orders.getvalue().encode()


@contextmanager
def fresh_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="nudge-bench-") as directory:
        yield f"sqlite:///{directory}/nudge.db"


def timed(url: str, work: Callable[[Database], tuple[int, int]]) -> tuple[int, int, float]:
    database = Database.from_url(url)
    migrate.upgrade(database.engine)
    started = time.perf_counter()
    customers, orders = work(database)
    elapsed = time.perf_counter() - started
    database.dispose()
    return customers, orders, elapsed


def by_loader(database: Database) -> tuple[int, int]:
    with database.session() as session:
        summary = load_sample(session, Sample.CDNOW)
    return summary.customers, summary.orders


def by_csv(files: tuple[bytes, bytes]) -> Callable[[Database], tuple[int, int]]:
    def work(database: Database) -> tuple[int, int]:
        with database.session() as session:
            customers = import_csv(session, ImportKind.CUSTOMERS, files[0])
            orders = import_csv(session, ImportKind.ORDERS, files[1])
        return customers.created, orders.created

    return work


def main() -> None:
    files = cdnow_as_csv()
    print(f"CDNOW: {CDNOW} ({len(files[0]):,} + {len(files[1]):,} bytes as CSV)")
    print(f"{'backend':<11} {'path':<14} {'customers':>9} {'orders':>7} {'wall s':>7} {'orders/s':>9}")
    for backend, server in (("SQLite", fresh_sqlite), ("PostgreSQL", postgres_server)):
        for path, work in (("sample loader", by_loader), ("CSV import", by_csv(files))):
            with server() as url:
                customers, orders, elapsed = timed(url, work)
            print(f"{backend:<11} {path:<14} {customers:>9,} {orders:>7,} {elapsed:>7.2f} {orders / elapsed:>9,.0f}")


if __name__ == "__main__":
    main()
