"""Slices of the real sample files, loaded into a test database."""

from __future__ import annotations

from pathlib import Path

from audience.samples import SAMPLES_DIR, Sample, load_sample
from core.db import Database


def slice_of(sample: Sample, lines: int, directory: Path) -> Path:
    """The header (if any) and the first ``lines`` records of a real sample file, byte for byte."""
    rows = (SAMPLES_DIR / sample.file_name).read_bytes().splitlines(keepends=True)
    path = directory / sample.file_name
    path.write_bytes(b"".join(rows[: lines + 1]))
    return path


def load_slices(db: Database, directory: Path, *, telco: int = 0, cdnow: int = 0) -> None:
    with db.session() as session:
        if telco:
            load_sample(session, Sample.TELCO, slice_of(Sample.TELCO, telco, directory))
        if cdnow:
            load_sample(session, Sample.CDNOW, slice_of(Sample.CDNOW, cdnow, directory))
