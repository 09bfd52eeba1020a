"""Batch scoring end to end, through the database: features as of a date, predict, write ``predictions``.

Loads both real samples into a fresh SQLite file and a fresh PostgreSQL, trains and promotes the three
models (as the demo does), then times ``ml.jobs.run_scoring`` for each (best of 3; a re-score replaces
the same rows) and prints customers/s. Not a test: it prints figures (``make bench``).

    .venv/bin/python bench/scoring.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audience.samples import CDNOW_END, TELCO_SNAPSHOT, Sample, load_sample  # noqa: E402
from core import migrate  # noqa: E402
from core.db import Database  # noqa: E402
from core.models import ModelKind  # noqa: E402
from core.settings import Settings  # noqa: E402
from ml import jobs, registry  # noqa: E402
from tests.support.postgres import postgres_server  # noqa: E402

MODELS = (
    (ModelKind.CHURN_CONTRACTUAL, datetime(2026, 9, 1, tzinfo=UTC), TELCO_SNAPSHOT),
    (ModelKind.CHURN_NONCONTRACTUAL, datetime(1998, 4, 1, tzinfo=UTC), CDNOW_END),
    (ModelKind.CLV, CDNOW_END, CDNOW_END),
)


@contextmanager
def databases(directory: Path) -> Iterator[Iterator[tuple[str, str]]]:
    with postgres_server() as postgres:
        yield iter((("SQLite", f"sqlite:///{directory}/nudge.db"), ("PostgreSQL", postgres)))


def bench(name: str, url: str, directory: Path) -> None:
    database = Database.from_url(url)
    migrate.upgrade(database.engine)
    with database.session() as session:
        for sample in Sample:
            load_sample(session, sample)
    settings = Settings(data_dir=directory / name)
    for kind, trained_as_of, scored_as_of in MODELS:
        started = time.perf_counter()
        trained = jobs.run_training(database, settings, kind, as_of=trained_as_of)
        training = time.perf_counter() - started
        with database.session() as session:
            registry.promote(session, kind, trained.version.version)
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            scored = jobs.run_scoring(database, kind, as_of=scored_as_of)
            timings.append(time.perf_counter() - started)
        best = min(timings)
        print(
            f"{name:<11} {kind.value:<21} train {training:5.2f} s   score {scored.customers:>6,} customers "
            f"in {best:5.2f} s = {scored.customers / best:>8,.0f} customers/s"
        )
    database.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="nudge-bench-") as temporary, databases(Path(temporary)) as found:
        for name, url in found:
            bench(name, url, Path(temporary))


if __name__ == "__main__":
    main()
