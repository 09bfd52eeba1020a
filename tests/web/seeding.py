"""Users, signed-in clients and a campaign waiting for review, for the web and browser tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from agents.schemas import Draft
from campaigns.guarding import review_draft
from core.db import Database
from core.models import (
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignVariant,
    Channel,
    CreativeItem,
    CreativeKind,
    Offer,
    OfferKind,
    Role,
)
from core.settings import Settings
from guardrails.repository import check_context
from tests.campaigns.test_sending import email_content
from web import accounts

PASSWORD = "correct-horse-battery"
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
BANNED = " Savings guaranteed, risk-free."


def add_user(db: Database, username: str, role: Role) -> None:
    with db.session() as session:
        accounts.create_user(session, username, PASSWORD, role, now=NOW)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign ``client`` in; the session's CSRF token."""
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form.text), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def add_offer(session: Session) -> None:
    session.add(
        Offer(
            code="LOYAL20",
            name="20% off the monthly bill for 3 months",
            kind=OfferKind.PERCENT_OFF,
            value=Decimal(20),
            currency="USD",
            terms="For 3 months.",
            valid_from=NOW - timedelta(days=30),
            valid_until=None,
            eligible_segments=[],
            unit_cost=Decimal("5"),
        )
    )
    session.flush()


def add_campaign_in_review(
    db: Database, key: str = "winter", *, treated: int = 100, state: CampaignState = CampaignState.IN_REVIEW
) -> int:
    """An e-mail campaign in review with one variant that passes the guardrails; its variant's id."""
    with db.session() as session:
        if session.get(Offer, 1) is None:
            add_offer(session)
        campaign = Campaign(
            key=key,
            name=f"Winter retention {key}",
            kind=CampaignKind.RETENTION,
            state=state,
            channel=Channel.EMAIL,
            salt="salt",
            plan=plan(treated),
            created_by="sam",
        )
        session.add(campaign)
        session.flush()
        content = email_content()
        report = review_draft(Draft.model_validate(content), check_context(session, Settings(), now=NOW))
        assert not report.blocked, report
        variant = CampaignVariant(
            campaign_id=campaign.id,
            segment="fiber-m2m",
            variant="v1",
            channel=Channel.EMAIL,
            content=content,
            report=report.model_dump(mode="json"),
            blocked=False,
        )
        session.add(variant)
        session.flush()
        return variant.id


def plan(treated: int) -> dict[str, Any]:
    mode = {"n": treated, "total_cost": treated * 2.5, "expected_profit": treated * 4.0, "roi": 1.6}
    assignment = {"assigned": treated, "holdout": 0, "not_reachable": 0, "segment_too_small": 0}
    return {"production": mode, "unconstrained": mode, "assignment": assignment}


def add_creative(db: Database, external_id: str, title: str, body: str, *, conversions: int = 0) -> None:
    """An e-mail campaign of the creative library."""
    with db.session() as session:
        session.add(
            CreativeItem(
                external_id=external_id,
                kind=CreativeKind.CAMPAIGN,
                channel=Channel.EMAIL,
                title=title,
                subject=title,
                body=body,
                tags=[],
                conversions=conversions,
            )
        )
