"""A brand folder in one go: ``offers.json`` (the offer catalog), ``guidelines.json`` and ``creative.json`` (the
creative library), all checked before anything is written, then written together or not at all.

Every problem in every file is reported at once (not file by file). A file that is absent is skipped,
but a folder with none of them is an error. The sample brand is ``data/samples/brand``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langchain_core.vectorstores import VectorStore
from sqlalchemy.orm import Session

from agents.catalog import OfferImportSummary, parse_offers, write_offers
from agents.creative import CreativeImportSummary, ParsedCreative, parse_creative, write_creative
from agents.files import Problem, raise_problems, shown
from core.errors import ValidationFailed

OFFERS_FILE = "offers.json"
CREATIVE_FILES = ("guidelines.json", "creative.json")


@dataclass(frozen=True, slots=True)
class BrandImportSummary:
    offers: OfferImportSummary | None
    creative: tuple[CreativeImportSummary, ...]


def import_brand(session: Session, folder: Path, *, store: VectorStore | None = None) -> BrandImportSummary:
    """Import the brand files in ``folder``; ``ValidationFailed`` lists every problem of every file. Never commits."""
    present = {path.name: path.read_bytes() for path in _brand_files(folder)}
    offers, problems = parse_offers(present[OFFERS_FILE], OFFERS_FILE) if OFFERS_FILE in present else ([], [])
    creative = {name: parse_creative(present[name], name) for name in CREATIVE_FILES if name in present}
    problems += [problem for parsed in creative.values() for problem in parsed.problems]
    problems += _shared_ids(creative)
    raise_problems(problems)
    offer_summary = write_offers(session, offers, OFFERS_FILE) if OFFERS_FILE in present else None
    summaries = tuple(write_creative(session, parsed, name, store) for name, parsed in creative.items())
    return BrandImportSummary(offer_summary, summaries)


def _brand_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ValidationFailed(f"{folder} is not a folder")
    found = [folder / name for name in (OFFERS_FILE, *CREATIVE_FILES) if (folder / name).is_file()]
    if not found:
        raise ValidationFailed(f"{folder} holds none of {OFFERS_FILE}, {', '.join(CREATIVE_FILES)}")
    return found


def _shared_ids(creative: dict[str, ParsedCreative]) -> list[Problem]:
    """An external id in two files would make one file silently overwrite the other's item."""
    first: dict[str, str] = {}
    problems: list[Problem] = []
    for name, parsed in creative.items():
        for number, row in zip(parsed.numbers, parsed.rows, strict=True):
            if row.external_id in first and first[row.external_id] != name:
                reason = f"duplicate: also in {first[row.external_id]}"
                problems.append(Problem(name, number, "external_id", reason, shown(row.external_id)))
            first.setdefault(row.external_id, name)
    return problems
