"""The experiment page shows a campaign's report with the method beside every number, and its plots."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.db import Database
from core.models import Role
from tests.experiments.test_report import SETTINGS, small_campaign
from tests.web.conftest import MakeClient
from tests.web.seeding import add_user, sign_in


@pytest.fixture
def viewer(make_client: MakeClient, db: Database) -> TestClient:
    client = make_client(**SETTINGS.model_dump(include={"global_holdout_fraction", "roi_margin"}))
    add_user(db, "vic", Role.VIEWER)
    sign_in(client, "vic")
    return client


def test_the_report_names_the_method_of_every_number(viewer: TestClient, db: Database) -> None:
    small_campaign(db)

    page = viewer.get("/experiments/winter")

    assert page.status_code == 200
    html = page.text
    assert "Experiment: Winter retention" in html
    assert "intention to treat" in html
    assert "Sample ratio: χ²" in html
    assert "Welch" in html
    assert "always-valid" in html
    assert "Holm" in html
    assert "chance to win" in html.lower()
    assert 'id="decision"' in html
    assert 'id="roi"' in html
    assert html.count('class="method"') >= 10


@pytest.mark.parametrize("plot", ["lift", "cumulative"])
def test_the_plots_are_png_images(viewer: TestClient, db: Database, plot: str) -> None:
    small_campaign(db)

    response = viewer.get(f"/experiments/winter/{plot}.png")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


def test_an_unknown_campaign_is_a_404_and_the_page_needs_a_session(viewer: TestClient, client: TestClient) -> None:
    assert viewer.get("/experiments/nope").status_code == 404
    assert client.get("/experiments/winter", follow_redirects=False).status_code == 303
