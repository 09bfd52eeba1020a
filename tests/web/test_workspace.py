"""The review workspace over HTTP: sign-in and lockout, CSRF, roles, editing with guardrails, approval with
escalation, and API tokens."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from core.clock import utcnow
from core.db import Database
from core.models import AuditEntry, Campaign, CampaignState, CampaignVariant, Role
from tests.web.conftest import MakeClient
from tests.web.seeding import BANNED, PASSWORD, add_campaign_in_review, add_user, csrf_of, sign_in
from web import accounts


def state_of(db: Database, key: str = "winter") -> CampaignState:
    with db.session() as session:
        return session.scalars(select(Campaign.state).where(Campaign.key == key)).one()


def actions(db: Database) -> list[tuple[str, str]]:
    with db.session() as session:
        return [(e.actor, e.action) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_a_page_without_a_session_redirects_to_the_login_form(client: TestClient) -> None:
    response = client.get("/campaigns?state=all", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fcampaigns%3Fstate%3Dall"


def test_a_wrong_password_is_refused_and_enough_of_them_lock_out_the_right_one(
    make_client: MakeClient, db: Database
) -> None:
    client = make_client(login_max_failures=3)
    add_user(db, "ana", Role.APPROVER)

    for _ in range(3):
        form = client.get("/login")
        data = {"username": "ana", "password": "wrong password", "csrf_token": csrf_of(form.text)}
        assert client.post("/login", data=data).status_code == 401
    form = client.get("/login")
    locked = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": csrf_of(form.text)})

    assert locked.status_code == 401
    assert "too many failed logins: the account is locked until" in locked.text
    assert "nudge_session" not in client.cookies


def test_a_login_post_without_the_forms_token_is_refused(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.APPROVER)

    response = client.post("/login", data={"username": "ana", "password": PASSWORD})

    assert response.status_code == 403
    assert "nudge_session" not in client.cookies


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.APPROVER)
    add_campaign_in_review(db)
    sign_in(client, "ana")

    response = client.post("/campaigns/winter/approve", data={"comment": "ok"})
    forged = client.post("/campaigns/winter/approve", data={"comment": "ok", "csrf_token": "forged"})

    assert (response.status_code, forged.status_code) == (403, 403)
    assert "security token is missing or out of date" in response.text
    assert state_of(db) is CampaignState.IN_REVIEW
    assert actions(db) == []


def test_the_csrf_token_is_accepted_in_the_htmx_header(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.APPROVER)
    add_campaign_in_review(db)
    csrf = sign_in(client, "ana")

    response = client.post("/campaigns/winter/approve", headers={"X-CSRF-Token": csrf}, follow_redirects=False)

    assert response.status_code == 303
    assert state_of(db) is CampaignState.APPROVED


def test_a_marketer_cannot_approve(client: TestClient, db: Database) -> None:
    add_user(db, "sam", Role.MARKETER)
    add_campaign_in_review(db)
    csrf = sign_in(client, "sam")

    review = client.get("/campaigns/winter/review")
    response = client.post("/campaigns/winter/approve", data={"csrf_token": csrf})

    assert ">Approve</button>" not in review.text
    assert response.status_code == 403
    assert "this needs the approver role; sam is a marketer" in response.text
    assert state_of(db) is CampaignState.IN_REVIEW


def test_an_edit_that_breaks_a_rule_blocks_approval_until_it_is_fixed(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.APPROVER)
    variant_id = add_campaign_in_review(db)
    csrf = sign_in(client, "ana")
    with db.session() as session:
        body = session.get_one(CampaignVariant, variant_id).content["body_text"]
    url = f"/campaigns/winter/variants/{variant_id}"

    client.post(url, data={"csrf_token": csrf, "body_text": body + BANNED})
    refused = client.post("/campaigns/winter/approve", data={"csrf_token": csrf})
    page = client.get("/campaigns/winter/review")
    client.post(url, data={"csrf_token": csrf, "body_text": body})
    approved = client.post("/campaigns/winter/approve", data={"csrf_token": csrf}, follow_redirects=False)

    assert refused.status_code == 409
    assert "blocked by their guardrail reports: fiber-m2m/v1" in refused.text
    assert "<mark" in page.text
    assert "blocked</span>" in page.text
    assert approved.status_code == 303
    assert state_of(db) is CampaignState.APPROVED
    assert actions(db) == [("ana", "edit"), ("ana", "edit"), ("ana", "approve")]


def test_a_large_campaign_waits_for_a_second_different_approver(make_client: MakeClient, db: Database) -> None:
    add_user(db, "ana", Role.APPROVER)
    add_user(db, "ben", Role.APPROVER)
    add_campaign_in_review(db, treated=500)
    ana, ben = make_client(escalation_audience_size=100), make_client(escalation_audience_size=100)
    ana_csrf, ben_csrf = sign_in(ana, "ana"), sign_in(ben, "ben")

    first = ana.post("/campaigns/winter/approve", data={"csrf_token": ana_csrf})
    again = ana.post("/campaigns/winter/approve", data={"csrf_token": ana_csrf})
    assert state_of(db) is CampaignState.IN_REVIEW
    second = ben.post("/campaigns/winter/approve", data={"csrf_token": ben_csrf})

    assert "needs a second approver" in first.text
    assert again.status_code == 409
    assert "needs a second approver other than ana: it treats 500 customers, more than 100" in again.text
    assert second.status_code == 200
    assert state_of(db) is CampaignState.APPROVED
    assert actions(db) == [("ana", "approval"), ("ben", "approve")]


def test_an_api_token_acts_with_its_owners_role_until_revoked(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.APPROVER)
    add_campaign_in_review(db)
    with db.session() as session:
        new = accounts.create_api_token(session, accounts.get_user(session, "ana"), "ci", now=utcnow())
    auth = {"Authorization": f"Bearer {new.secret}"}

    listed = client.get("/api/campaigns", headers=auth)
    approved = client.post("/api/campaigns/winter/approve", json={"comment": "fine"}, headers=auth)
    with db.session() as session:
        accounts.revoke_api_token(session, new.token.id, now=utcnow())
    revoked = client.get("/api/campaigns", headers=auth)

    assert [row["key"] for row in listed.json()] == ["winter"]
    assert approved.json() == {"key": "winter", "state": "approved", "approved": True}
    assert revoked.status_code == 401
    assert client.get("/api/campaigns", headers={"Authorization": "Bearer nudge_unknown"}).status_code == 401


def test_signing_out_ends_the_session(client: TestClient, db: Database) -> None:
    add_user(db, "ana", Role.VIEWER)
    csrf = sign_in(client, "ana")
    cookie = client.cookies["nudge_session"]

    client.post("/logout", data={"csrf_token": csrf})
    client.cookies.set("nudge_session", cookie)

    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_token_and_password_never_appear_in_the_database(db: Database) -> None:
    add_user(db, "ana", Role.ADMIN)
    with db.session() as session:
        new = accounts.create_api_token(session, accounts.get_user(session, "ana"), "ci", now=utcnow())
        user = accounts.get_user(session, "ana")

        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert new.secret not in new.token.token_hash
