"""``nudge creative import|search`` on an embedded SQLite file and a local vector store (keyword embeddings stand
in for the model, so the commands run in milliseconds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from core.db import Database
from core.models import CreativeItem, Offer
from core.settings import get_settings
from nudge.cli import app
from nudge.commands.creative import SAMPLE_BRAND
from tests.support.embeddings import KeywordEmbeddings

runner = CliRunner()

SAMPLE_IMPORT = """\
offers.json: 12 offers (12 new, 0 updated, 0 unchanged)
guidelines.json: 6 items (6 new, 0 updated, 0 unchanged)
creative.json: 67 items (67 new, 0 updated, 0 unchanged)
indexed 73 items in the local vector store (namespace 'default')
sanitised 2 fields (invisible text removed before storing):
  creative.json em-jazz-weekend-listening body: removed 1 HTML comment
  creative.json sms-fiber-hidden-text body: removed 2 zero-width characters, 1 bidi control, 68 invisible tag characters
"""


@pytest.fixture
def data_dir(cli_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr("nudge.commands.creative.embeddings_for", lambda settings: KeywordEmbeddings())
    get_settings.cache_clear()
    return tmp_path / "var"


def counts(db: Database) -> tuple[int, int]:
    with db.session() as session:
        offers = session.scalar(select(func.count()).select_from(Offer)) or 0
        items = session.scalar(select(func.count()).select_from(CreativeItem)) or 0
    return offers, items


def test_import_loads_the_sample_brand_and_reports_what_it_sanitised(cli_db: Database, data_dir: Path) -> None:
    result = runner.invoke(app, ["creative", "import"])

    assert result.exit_code == 0, result.output
    assert result.stdout == SAMPLE_IMPORT
    assert counts(cli_db) == (12, 73)
    assert (data_dir / "vectors" / "default.json").is_file()


def test_a_second_import_changes_and_indexes_nothing_unless_asked_to_reindex(cli_db: Database, data_dir: Path) -> None:
    runner.invoke(app, ["creative", "import"])

    again = runner.invoke(app, ["creative", "import", str(SAMPLE_BRAND)])
    reindexed = runner.invoke(app, ["creative", "import", "--reindex"])

    assert again.stdout.splitlines()[:4] == [
        "offers.json: 12 offers (0 new, 0 updated, 12 unchanged)",
        "guidelines.json: 6 items (0 new, 0 updated, 6 unchanged)",
        "creative.json: 67 items (0 new, 0 updated, 67 unchanged)",
        "indexed 0 items in the local vector store (namespace 'default')",
    ]
    assert reindexed.stdout.splitlines()[3] == "indexed 73 items in the local vector store (namespace 'default')"
    assert counts(cli_db) == (12, 73)


def test_a_bad_brand_folder_lists_every_problem_by_file_and_writes_nothing(
    cli_db: Database, data_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "brand"
    shutil.copytree(SAMPLE_BRAND, folder)
    offers = json.loads((folder / "offers.json").read_text())
    offers["offers"][2]["kind"] = "bogo"
    (folder / "offers.json").write_text(json.dumps(offers))
    (folder / "creative.json").write_text('{"creative": [{"external_id": "x", "kind": "campaign"}]}')

    result = runner.invoke(app, ["creative", "import", str(folder)])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: 3 problems in creative.json, offers.json; nothing was imported\n"
        "  creative.json, item 1, field 'title': Field required\n"
        "  creative.json, item 1, field 'body': Field required\n"
        "  offers.json, item 3, field 'kind': Input should be 'percent_off', 'amount_off', 'free_months', "
        "'free_shipping' or 'gift' (value: 'bogo')\n"
    )
    assert counts(cli_db) == (0, 0)
    assert not (data_dir / "vectors" / "default.json").exists()


def test_search_prints_scores_and_filters_by_channel(cli_db: Database, data_dir: Path) -> None:
    runner.invoke(app, ["creative", "import"])

    result = runner.invoke(app, ["creative", "search", "free shipping on vinyl records", "--channel", "sms", "-k", "3"])

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["id", "score", "similarity", "performance", "title"]
    assert len(rows) == 3
    assert rows[0].split()[0] == "sms-vinyl-free-shipping"
    assert rows[0].endswith("SMS free shipping on vinyl")
    assert all(row.startswith("sms-") for row in rows)
    scores = [float(row.split()[1]) for row in rows]
    assert scores == sorted(scores, reverse=True)


def test_search_before_any_import_says_what_to_do(cli_db: Database, data_dir: Path) -> None:
    result = runner.invoke(app, ["creative", "search", "anything"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "no creative found: import some with `nudge creative import`\n"
