"""The workspace with HTMX and without: a save answers with the re-checked card (or a redirect without htmx),
the library's search box gets its results alone, an error reaches the page's error box, the e-mail preview
is its own locked-down document, and what the pages cache is read again when it changes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db import Database
from core.errors import ValidationFailed
from core.models import AuditEntry, CampaignVariant, Role
from guardrails.context import BrandRules
from tests.web.conftest import MakeClient
from tests.web.seeding import BANNED, add_campaign_in_review, add_creative, add_user, sign_in

HTMX = {"HX-Request": "true"}
BRAND_RULES = Path(__file__).resolve().parents[2] / "data" / "samples" / "brand" / "rules.json"


def body_of(db: Database, variant_id: int) -> str:
    with db.session() as session:
        return str(session.get_one(CampaignVariant, variant_id).content["body_text"])


def edits(db: Database) -> int:
    with db.session() as session:
        return len(session.scalars(select(AuditEntry).where(AuditEntry.action == "edit")).all())


def test_an_htmx_save_answers_with_the_rechecked_card_and_the_review_actions(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.APPROVER)
    variant_id = add_campaign_in_review(db)
    csrf = sign_in(client, "ana")
    body = body_of(db, variant_id)

    response = client.post(
        f"/campaigns/winter/variants/{variant_id}",
        data={"body_text": body + BANNED},
        headers={**HTMX, "X-CSRF-Token": csrf},
    )

    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<article class="variant" id="variant-{variant_id}"')
    assert "<html" not in response.text
    assert '<span class="badge bad">blocked</span>' in response.text
    assert 'role="status">Saved. The guardrails checked the new copy: see the report below.</p>' in response.text
    assert "<mark" in response.text
    assert '<div id="approval" hx-swap-oob="true">' in response.text
    assert body_of(db, variant_id) == body + BANNED
    assert edits(db) == 1


def test_the_same_save_without_htmx_redirects_back_to_the_review_page(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.MARKETER)
    variant_id = add_campaign_in_review(db)
    csrf = sign_in(client, "ana")

    response = client.post(
        f"/campaigns/winter/variants/{variant_id}",
        data={"csrf_token": csrf, "body_text": body_of(db, variant_id) + BANNED},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/campaigns/winter/review?done=edited#variant-{variant_id}"


def test_an_htmx_save_without_the_csrf_token_is_refused_into_the_error_box(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.APPROVER)
    variant_id = add_campaign_in_review(db)
    sign_in(client, "ana")
    body = body_of(db, variant_id)

    response = client.post(f"/campaigns/winter/variants/{variant_id}", data={"body_text": "x"}, headers=HTMX)

    assert response.status_code == 403
    assert response.headers["HX-Retarget"] == "#request-error"
    assert response.headers["HX-Reswap"] == "innerHTML"
    assert response.text.lstrip().startswith('<div class="error" role="alert">')
    assert "security token is missing or out of date" in response.text
    assert body_of(db, variant_id) == body
    assert edits(db) == 0


def test_an_invalid_htmx_save_names_the_problem_and_stores_nothing(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.APPROVER)
    variant_id = add_campaign_in_review(db)
    csrf = sign_in(client, "ana")
    body = body_of(db, variant_id)

    response = client.post(
        f"/campaigns/winter/variants/{variant_id}",
        data={"subject": "x" * 500},
        headers={**HTMX, "X-CSRF-Token": csrf},
    )

    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#request-error"
    assert "the edited copy is not a valid draft" in response.text
    assert "<li>subject: String should have at most 78 characters</li>" in response.text
    assert body_of(db, variant_id) == body
    assert edits(db) == 0


def test_an_htmx_request_without_a_session_is_sent_to_the_login_page(client: TestClient, db: Database) -> None:
    add_campaign_in_review(db)

    response = client.get("/library?q=x", headers=HTMX, follow_redirects=False)

    assert (response.status_code, response.headers["HX-Redirect"]) == (401, "/login?next=%2Flibrary%3Fq%3Dx")


def test_the_library_search_box_gets_the_results_alone_and_the_url_the_whole_page(
    client: TestClient, db: Database
) -> None:
    add_user(db, "vic", Role.VIEWER)
    add_creative(db, "cr-fiber", "Fiber upgrade thank-you", "Thanks for choosing fiber.")
    add_creative(db, "cr-winter", "Winter roaming pass", "Stay connected abroad this winter.")
    sign_in(client, "vic")

    typed = client.get("/library?q=roaming", headers=HTMX)
    restored = client.get("/library?q=roaming", headers={**HTMX, "HX-History-Restore-Request": "true"})
    plain = client.get("/library?q=roaming")

    assert "<html" not in typed.text
    assert re.findall(r'id="creative-([^"]+)"', typed.text) == ["cr-winter"]
    assert 'role="status">1 item matching “roaming”</p>' in typed.text
    for page in (restored, plain):
        assert "<html" in page.text
        assert 'hx-get="/library"' in page.text
        assert re.findall(r'id="creative-([^"]+)"', page.text) == ["cr-winter"]


def test_the_review_page_frames_the_email_preview_and_loads_htmx_from_our_own_origin(
    client: TestClient, db: Database
) -> None:
    add_user(db, "vic", Role.VIEWER)
    variant_id = add_campaign_in_review(db)
    sign_in(client, "vic")

    page = client.get("/campaigns/winter/review")

    policy = page.headers["Content-Security-Policy"]
    assert "style-src 'self';" in policy
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert f'<iframe class="preview" sandbox src="/campaigns/winter/variants/{variant_id}/preview"' in page.text
    assert "srcdoc" not in page.text
    assert '<script src="/static/htmx.min.js" defer></script>' in page.text
    assert '"includeIndicatorStyles": false' in page.text
    assert "<script>" not in page.text
    assert "https://" not in re.sub(r"<iframe[^>]*>", "", page.text.split("<main", 1)[0])  # nothing from a CDN


def test_the_email_preview_is_the_rendered_email_under_its_own_policy(client: TestClient, db: Database) -> None:
    add_user(db, "vic", Role.VIEWER)
    variant_id = add_campaign_in_review(db)
    sign_in(client, "vic")

    preview = client.get(f"/campaigns/winter/variants/{variant_id}/preview")

    assert preview.status_code == 200
    assert preview.headers["Content-Security-Policy"] == (
        "default-src 'none'; img-src data: https:; style-src 'unsafe-inline'; frame-ancestors 'self'; "
        "form-action 'none'; base-uri 'none'; sandbox"
    )
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert preview.headers["Cache-Control"] == "no-store"
    assert "<strong>Subject:</strong> A thank-you from us, Alex</div>" in preview.text
    assert "<strong>From:</strong> Fablewave &lt;hello@fablewave.example.com&gt;</div>" in preview.text
    assert "Hi Alex, thank you for staying with Fablewave." in preview.text
    assert "{{" not in preview.text


def test_a_preview_of_another_campaigns_variant_is_not_found(client: TestClient, db: Database) -> None:
    add_user(db, "vic", Role.VIEWER)
    variant_id = add_campaign_in_review(db)
    add_campaign_in_review(db, "spring")
    sign_in(client, "vic")

    response = client.get(f"/campaigns/spring/variants/{variant_id}/preview")

    assert response.status_code == 404


def test_htmx_is_served_from_static_with_the_recorded_checksum(client: TestClient) -> None:
    readme = (Path(__file__).resolve().parents[2] / "web" / "static" / "README.md").read_text(encoding="utf-8")
    recorded = re.search(r"`htmx\.min\.js` .*\| `([0-9a-f]{64})` \|", readme)
    assert recorded, "web/static/README.md does not record htmx.min.js's sha256"

    response = client.get("/static/htmx.min.js")

    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == recorded.group(1)


def test_the_brand_rules_are_read_again_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    shutil.copy(BRAND_RULES, path)
    first = BrandRules.cached(path)
    rules = json.loads(path.read_text(encoding="utf-8"))
    stat = path.stat()

    path.write_text(json.dumps({**rules, "brand_name": "Renamed"}), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later modification, whatever the clock
    second = BrandRules.cached(path)
    path.write_text("{not json", encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000))

    assert BrandRules.cached(BRAND_RULES) is BrandRules.cached(BRAND_RULES)
    assert (first.brand_name, second.brand_name) == ("Fablewave", "Renamed")
    with pytest.raises(ValidationFailed, match="cannot read the brand rules"):
        BrandRules.cached(path)  # not the cached rules of the file as it was


def test_a_changed_rules_file_changes_the_preview(make_client: MakeClient, db: Database, tmp_path: Path) -> None:
    rules_path = tmp_path / "rules.json"
    shutil.copy(BRAND_RULES, rules_path)
    client = make_client(brand_rules_path=rules_path)
    add_user(db, "vic", Role.VIEWER)
    variant_id = add_campaign_in_review(db)
    sign_in(client, "vic")
    url = f"/campaigns/winter/variants/{variant_id}/preview"
    before = client.get(url).text
    rules = json.loads(rules_path.read_text(encoding="utf-8"))
    stat = rules_path.stat()

    rules_path.write_text(json.dumps({**rules, "brand_name": "Renamed"}), encoding="utf-8")
    os.utime(rules_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = client.get(url).text

    assert "thank you for staying with Fablewave." in before
    assert "thank you for staying with Renamed." in after
