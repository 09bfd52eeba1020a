"""A brand folder (offers, guidelines, creative) is imported together: every problem of every file is reported
at once, and nothing is written unless all of it is good."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agents.brand import import_brand
from agents.sanitize import Stripped
from agents.vectorstore import LocalVectorStore
from core.db import Database
from core.errors import ValidationFailed
from core.models import CreativeItem, CreativeKind, Offer
from nudge.commands.creative import SAMPLE_BRAND
from tests.support.embeddings import KeywordEmbeddings


def counts(db: Database) -> tuple[int, int, int]:
    with db.session() as session:
        offers = session.scalar(select(func.count()).select_from(Offer)) or 0
        by_kind = dict(session.execute(select(CreativeItem.kind, func.count()).group_by(CreativeItem.kind)).all())
    return offers, by_kind.get(CreativeKind.GUIDELINE, 0), sum(by_kind.values())


def test_the_sample_brand_imports_whole_and_reports_what_it_sanitised(db: Database) -> None:
    store = LocalVectorStore(KeywordEmbeddings())

    with db.session() as session:
        summary = import_brand(session, SAMPLE_BRAND, store=store)

    assert summary.offers is not None
    assert (summary.offers.offers, summary.offers.created) == (12, 12)
    assert [(part.file, part.items, part.created, part.indexed) for part in summary.creative] == [
        ("guidelines.json", 6, 6, 6),
        ("creative.json", 67, 67, 67),
    ]
    assert [(entry.external_id, entry.field, entry.stripped) for entry in summary.creative[1].sanitized] == [
        ("em-jazz-weekend-listening", "body", Stripped(html_comments=1)),
        ("sms-fiber-hidden-text", "body", Stripped(zero_width=2, bidi_controls=1, tag_characters=68)),
    ]
    assert counts(db) == (12, 6, 73)
    assert len(store.store) == 73


def write(folder: Path, name: str, key: str, items: list[object]) -> None:
    (folder / name).write_text(json.dumps({key: items}))


def test_problems_in_every_file_are_reported_together_and_nothing_is_written(db: Database, tmp_path: Path) -> None:
    shutil.copytree(SAMPLE_BRAND, tmp_path, dirs_exist_ok=True)
    offers = json.loads((SAMPLE_BRAND / "offers.json").read_text())["offers"]
    write(tmp_path, "offers.json", "offers", [*offers, {**offers[0], "value": "0"}])
    guidelines = json.loads((SAMPLE_BRAND / "guidelines.json").read_text())["creative"]
    write(tmp_path, "guidelines.json", "creative", [*guidelines, {**guidelines[0], "external_id": "em-back-in-stock"}])
    creative = json.loads((SAMPLE_BRAND / "creative.json").read_text())["creative"]
    write(tmp_path, "creative.json", "creative", [{**creative[0], "channel": "pigeon"}, *creative[1:]])
    store = LocalVectorStore(KeywordEmbeddings())

    with db.session() as session, pytest.raises(ValidationFailed) as error:
        import_brand(session, tmp_path, store=store)

    assert error.value.message == "4 problems in creative.json, offers.json; nothing was imported"
    assert [(d["file"], d["row"], d["column"], d["reason"], d["value"]) for d in error.value.details] == [
        ("creative.json", 1, "channel", "Input should be 'email' or 'sms'", "pigeon"),
        ("creative.json", 34, "external_id", "duplicate: also in guidelines.json", "em-back-in-stock"),
        ("offers.json", 13, "value", "a percent_off value is a percentage in (0, 100]", "0"),
        ("offers.json", 13, "code", "duplicate: also item 1", "LOYAL20"),
    ]
    assert counts(db) == (0, 0, 0)
    assert store.store == {}


def test_a_folder_without_brand_files_is_refused(db: Database, tmp_path: Path) -> None:
    with db.session() as session, pytest.raises(ValidationFailed) as error:
        import_brand(session, tmp_path)

    assert error.value.message == f"{tmp_path} holds none of offers.json, guidelines.json, creative.json"
