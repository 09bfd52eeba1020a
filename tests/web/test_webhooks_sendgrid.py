"""``POST /webhooks/sendgrid`` over HTTP, signed for real with an ECDSA P-256 key made for the test."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from channels.events import sendgrid_public_key
from core.db import Database
from core.models import (
    Channel,
    Outcome,
    OutcomeKind,
    ProviderEvent,
    Suppression,
    SuppressionReason,
)
from tests.web.conftest import MakeClient
from tests.workers.events import EMAIL, add_message
from web.webhooks import sendgrid_signed_headers

URL = "/webhooks/sendgrid"
WRITTEN = ("provider_events", "outcomes", "suppressions", "consents", "messages")


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def signed(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    return sendgrid_signed_headers(key, body, int(time.time()) if timestamp is None else timestamp)


def body_of(*events: dict[str, Any]) -> bytes:
    # SendGrid appends CRLF; the signature covers it, so it must be kept as received.
    return json.dumps(list(events)).encode() + b"\r\n"


def event(name: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": EMAIL,
        "timestamp": 1_795_000_000,
        "event": name,
        "sg_event_id": event_id,
        "sg_message_id": "sgm1.filter0001",
        "message_key": "mail-1",
        **fields,
    }


@pytest.fixture
def client(make_client: MakeClient, private_key: ec.EllipticCurvePrivateKey) -> TestClient:
    return make_client(sendgrid_webhook_public_key=sendgrid_public_key(private_key))


@pytest.fixture
def message_id(db: Database) -> int:
    return add_message(db)


def post(client: TestClient, key: ec.EllipticCurvePrivateKey, *events: dict[str, Any]) -> Any:
    body = body_of(*events)
    return client.post(URL, content=body, headers=signed(key, body))


def outcomes(db: Database) -> list[tuple[int, str, OutcomeKind]]:
    with db.session() as session:
        query = select(Outcome.message_id, ProviderEvent.event_id, Outcome.kind).join(ProviderEvent)
        return sorted((message_id, event_id, kind) for message_id, event_id, kind in session.execute(query))


def row_counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as connection:
        return {table: connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0 for table in WRITTEN}


# --- accepted -----------------------------------------------------------------------------------------------


def test_a_signed_batch_is_stored_answered_202_and_processed(
    client: TestClient, private_key: ec.EllipticCurvePrivateKey, db: Database, message_id: int
) -> None:
    response = post(client, private_key, event("processed", "p"), event("delivered", "d"))

    assert response.status_code == 202
    assert response.json() == {"stored": 2, "duplicates": 0}
    assert outcomes(db) == [(message_id, "d", OutcomeKind.DELIVERED), (message_id, "p", OutcomeKind.PROCESSED)]
    with db.session() as session:
        assert session.scalar(select(ProviderEvent.id).where(ProviderEvent.processed_at.is_(None))) is None


def test_the_same_webhook_replayed_ten_times_yields_one_outcome_per_event(
    client: TestClient, private_key: ec.EllipticCurvePrivateKey, db: Database, message_id: int
) -> None:
    events = (event("delivered", "d"), event("open", "o"))

    answers = [post(client, private_key, *events).json() for _ in range(10)]

    assert answers == [{"stored": 2, "duplicates": 0}] + [{"stored": 0, "duplicates": 2}] * 9
    assert outcomes(db) == [(message_id, "d", OutcomeKind.DELIVERED), (message_id, "o", OutcomeKind.OPEN)]


def test_events_out_of_order_each_yield_one_outcome(
    client: TestClient, private_key: ec.EllipticCurvePrivateKey, db: Database, message_id: int
) -> None:
    for name, event_id in [("delivered", "2"), ("click", "4"), ("processed", "1"), ("open", "3"), ("click", "4")]:
        post(client, private_key, event(name, event_id, url="https://x.io/a" if name == "click" else None))

    assert outcomes(db) == [
        (message_id, "1", OutcomeKind.PROCESSED),
        (message_id, "2", OutcomeKind.DELIVERED),
        (message_id, "3", OutcomeKind.OPEN),
        (message_id, "4", OutcomeKind.CLICK),
    ]


def test_a_retried_event_under_a_new_id_with_the_same_content_is_stored_once(
    client: TestClient, private_key: ec.EllipticCurvePrivateKey, db: Database, message_id: int
) -> None:
    first = post(client, private_key, event("delivered", "d-1"))
    retried = post(client, private_key, event("delivered", "d-2"))

    assert (first.json(), retried.json()) == ({"stored": 1, "duplicates": 0}, {"stored": 0, "duplicates": 1})
    assert outcomes(db) == [(message_id, "d-1", OutcomeKind.DELIVERED)]


@pytest.mark.parametrize(
    ("name", "fields", "reason"),
    [
        ("bounce", {"type": "bounce", "reason": "550 5.1.1 unknown user"}, SuppressionReason.BOUNCED),
        ("spamreport", {}, SuppressionReason.COMPLAINED),
        ("unsubscribe", {}, SuppressionReason.UNSUBSCRIBED),
    ],
)
def test_bounce_spamreport_and_unsubscribe_suppress_before_the_next_request(
    client: TestClient,
    private_key: ec.EllipticCurvePrivateKey,
    db: Database,
    message_id: int,
    name: str,
    fields: dict[str, Any],
    reason: SuppressionReason,
) -> None:
    post(client, private_key, event(name, "e", **fields))

    with db.session() as session:
        rows = session.execute(select(Suppression.channel, Suppression.address, Suppression.reason)).all()
    assert [tuple(row) for row in rows] == [(Channel.EMAIL, EMAIL, reason)]


def test_an_event_for_an_unknown_message_is_stored_and_processed_without_an_outcome(
    client: TestClient, private_key: ec.EllipticCurvePrivateKey, db: Database
) -> None:
    response = post(client, private_key, event("delivered", "d", message_key="nobody", sg_message_id="x.filter"))

    assert response.json() == {"stored": 1, "duplicates": 0}
    with db.session() as session:
        (stored,) = session.scalars(select(ProviderEvent)).all()
        assert (stored.event_id, stored.message_key, stored.processed_at is not None) == ("d", "nobody", True)
    assert outcomes(db) == []


def test_processing_runs_after_the_response_through_the_one_scheduling_seam(
    client: TestClient, private_key: ec.EllipticCurvePrivateKey, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduled: list[object] = []
    monkeypatch.setattr("web.webhooks.schedule_processing", lambda *args: scheduled.append(args))

    post(client, private_key, event("delivered", "d"))
    post(client, private_key, event("delivered", "d"))

    assert len(scheduled) == 1  # a replay stores nothing, so nothing is scheduled
    with db.session() as session:
        assert session.scalars(select(ProviderEvent.processed_at)).all() == [None]


# --- refused ------------------------------------------------------------------------------------------------


def refused_headers(case: str, key: ec.EllipticCurvePrivateKey, body: bytes) -> dict[str, str]:
    if case == "unsigned":
        return {"Content-Type": "application/json"}
    if case == "wrong key":
        return signed(ec.generate_private_key(ec.SECP256R1()), body)
    if case == "forged":
        return signed(key, body.replace(b"delivered", b"processed"))
    if case == "stale":
        return signed(key, body, timestamp=int(time.time()) - 301)
    if case == "future":
        return signed(key, body, timestamp=int(time.time()) + 301)
    headers = signed(key, body)
    headers["X-Twilio-Email-Event-Webhook-Signature"] = "not base64!"
    return headers


@pytest.mark.parametrize("case", ["unsigned", "wrong key", "forged", "stale", "future", "garbage signature"])
def test_a_request_not_signed_now_by_sendgrid_is_refused_401_and_stores_nothing(
    client: TestClient, private_key: ec.EllipticCurvePrivateKey, db: Database, case: str
) -> None:
    body = body_of(event("delivered", "d"), event("bounce", "b", type="bounce"))

    response = client.post(URL, content=body, headers=refused_headers(case, private_key, body))

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert row_counts(db) == dict.fromkeys(WRITTEN, 0)


@pytest.mark.parametrize("key", ["", "not-a-key"])
def test_without_a_valid_verification_key_the_webhook_answers_503_and_stores_nothing(
    make_client: MakeClient, private_key: ec.EllipticCurvePrivateKey, db: Database, key: str
) -> None:
    client = make_client(sendgrid_webhook_public_key=key)

    response = post(client, private_key, event("delivered", "d"))

    assert response.status_code == 503
    assert "NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY" in response.json()["message"]
    assert row_counts(db) == dict.fromkeys(WRITTEN, 0)


def test_a_body_over_the_limit_is_refused_413_before_it_is_read(
    client: TestClient, private_key: ec.EllipticCurvePrivateKey, db: Database
) -> None:
    body = body_of(*[event("open", f"o{i}", padding="x" * 1000) for i in range(1100)])

    response = client.post(URL, content=body, headers=signed(private_key, body))

    assert response.status_code == 413
    assert row_counts(db) == dict.fromkeys(WRITTEN, 0)


@pytest.mark.parametrize("body", [b'{"event": "open"}', b"[1, 2]", b"not json"])
def test_a_signed_body_that_is_not_an_array_of_events_is_refused_400(
    client: TestClient, private_key: ec.EllipticCurvePrivateKey, db: Database, body: bytes
) -> None:
    response = client.post(URL, content=body, headers=signed(private_key, body))

    assert response.status_code == 400
    assert row_counts(db) == dict.fromkeys(WRITTEN, 0)
