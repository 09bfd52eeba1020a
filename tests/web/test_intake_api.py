"""The Segment-compatible intake API over HTTP: what identify, track and batch store and change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db import Database
from core.models import Event
from tests.support.intake import customer

RECEIVED_AT = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def events(db: Database) -> list[Event]:
    with db.session() as session:
        return list(session.scalars(select(Event).order_by(Event.message_id)))


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The server's clock reads RECEIVED_AT for every request."""
    monkeypatch.setattr("web.intake.utcnow", lambda: RECEIVED_AT)
    return RECEIVED_AT


def test_identify_creates_the_customer_with_normalised_fields(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    body = {
        "userId": "u-1",
        "messageId": "m-1",
        "traits": {
            "email": " Ann@Example.COM ",
            "phone": "+1 (555) 555-0123",
            "firstName": " Ann ",
            "last_name": "Lee",
            "address": {"country": "us", "state": "FL", "city": "Miami"},
            "plan": "pro",
        },
        "context": {"timezone": "America/New_York"},
    }

    response = client.post("/v1/identify", json=body, headers=auth)

    assert response.status_code == 200
    assert response.json() == {"success": True, "stored": 1, "duplicates": 0}
    stored = customer(db, "u-1")
    assert stored is not None
    assert (stored.email, stored.phone, stored.first_name, stored.last_name) == (
        "Ann@example.com",
        "+15555550123",
        "Ann",
        "Lee",
    )
    assert (stored.time_zone, stored.country, stored.region) == ("America/New_York", "US", "FL")
    assert stored.attributes == {"plan": "pro", "address": {"country": "US", "state": "FL", "city": "Miami"}}


def test_identify_updates_only_the_traits_it_names_and_merges_attributes(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    client.post(
        "/v1/identify",
        json={"userId": "u-1", "messageId": "m-1", "traits": {"email": "a@x.io", "firstName": "Ann", "plan": "free"}},
        headers=auth,
    )

    client.post(
        "/v1/identify",
        json={"userId": "u-1", "messageId": "m-2", "traits": {"email": "b@x.io", "seats": 3, "country": "ca"}},
        headers=auth,
    )

    stored = customer(db, "u-1")
    assert stored is not None
    assert (stored.email, stored.first_name, stored.country) == ("b@x.io", "Ann", "CA")
    assert stored.attributes == {"plan": "free", "seats": 3}


def test_a_reserved_trait_sent_as_null_clears_its_column(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    client.post(
        "/v1/identify", json={"userId": "u-1", "messageId": "m-1", "traits": {"phone": "+15555550123"}}, headers=auth
    )

    client.post("/v1/identify", json={"userId": "u-1", "messageId": "m-2", "traits": {"phone": None}}, headers=auth)

    stored = customer(db, "u-1")
    assert stored is not None
    assert stored.phone is None


def test_track_links_the_event_to_the_identified_customer(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    client.post("/v1/identify", json={"userId": "u-1", "messageId": "m-1", "traits": {"email": "a@x.io"}}, headers=auth)

    response = client.post(
        "/v1/track",
        json={"userId": "u-1", "messageId": "m-2", "event": "Order Completed", "properties": {"total": 42.5}},
        headers=auth,
    )

    assert response.json() == {"success": True, "stored": 1, "duplicates": 0}
    stored = customer(db, "u-1")
    assert stored is not None
    track = events(db)[1]
    assert (track.type, track.name, track.customer_id, track.properties) == (
        "track",
        "Order Completed",
        stored.id,
        {"total": 42.5},
    )


def test_track_for_an_unknown_user_creates_a_customer_with_only_its_id(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    client.post("/v1/track", json={"userId": "u-9", "messageId": "m-1", "event": "Signed Up"}, headers=auth)

    stored = customer(db, "u-9")
    assert stored is not None
    assert (stored.email, stored.phone, stored.first_name, stored.attributes) == (None, None, None, {})
    assert events(db)[0].customer_id == stored.id


def test_anonymous_track_is_stored_without_a_customer(client: TestClient, auth: dict[str, str], db: Database) -> None:
    response = client.post(
        "/v1/track", json={"anonymousId": "anon-1", "messageId": "m-1", "event": "Viewed Product"}, headers=auth
    )

    assert response.json() == {"success": True, "stored": 1, "duplicates": 0}
    [event] = events(db)
    assert (event.customer_id, event.user_id, event.anonymous_id) == (None, None, "anon-1")
    assert customer(db, "anon-1") is None


def test_a_replayed_identify_is_stored_once_and_its_traits_are_not_applied_again(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    first = {"userId": "u-1", "messageId": "m-1", "traits": {"email": "a@x.io"}}
    client.post("/v1/identify", json=first, headers=auth)
    client.post("/v1/identify", json={"userId": "u-1", "messageId": "m-2", "traits": {"email": "b@x.io"}}, headers=auth)

    replay = client.post("/v1/identify", json=first, headers=auth)

    assert replay.status_code == 200
    assert replay.json() == {"success": True, "stored": 0, "duplicates": 1}
    stored = customer(db, "u-1")
    assert stored is not None
    assert stored.email == "b@x.io"
    assert [event.message_id for event in events(db)] == ["m-1", "m-2"]


def test_a_batch_stores_a_repeated_message_id_once_and_applies_the_first(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    batch = [
        {"type": "identify", "userId": "u-1", "messageId": "m-1", "traits": {"email": "first@x.io"}},
        {"type": "track", "userId": "u-1", "messageId": "m-2", "event": "Opened"},
        {"type": "identify", "userId": "u-1", "messageId": "m-1", "traits": {"email": "second@x.io"}},
        {"type": "track", "userId": "u-1", "messageId": "m-2", "event": "Opened"},
    ]

    response = client.post("/v1/batch", json={"batch": batch}, headers=auth)

    assert response.json() == {"success": True, "stored": 2, "duplicates": 2}
    assert [(event.message_id, event.type) for event in events(db)] == [("m-1", "identify"), ("m-2", "track")]
    stored = customer(db, "u-1")
    assert stored is not None
    assert stored.email == "first@x.io"


def test_a_batch_applies_identify_traits_in_timestamp_order(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    batch = [
        {"type": "identify", "userId": "u-1", "messageId": "m-2", "timestamp": "2026-11-21T10:00:00Z",
         "traits": {"email": "newer@x.io"}},
        {"type": "identify", "userId": "u-1", "messageId": "m-1", "timestamp": "2026-11-21T09:00:00Z",
         "traits": {"email": "older@x.io", "firstName": "Ann"}},
    ]  # fmt: skip

    client.post("/v1/batch", json={"batch": batch}, headers=auth)

    stored = customer(db, "u-1")
    assert stored is not None
    assert (stored.email, stored.first_name) == ("newer@x.io", "Ann")


def test_a_replayed_batch_changes_nothing(client: TestClient, auth: dict[str, str], db: Database) -> None:
    batch = {"batch": [{"type": "identify", "userId": "u-1", "messageId": "m-1", "traits": {"email": "a@x.io"}}]}
    client.post("/v1/batch", json=batch, headers=auth)
    client.post("/v1/identify", json={"userId": "u-1", "messageId": "m-2", "traits": {"email": "b@x.io"}}, headers=auth)

    response = client.post("/v1/batch", json=batch, headers=auth)

    assert response.json() == {"success": True, "stored": 0, "duplicates": 1}
    stored = customer(db, "u-1")
    assert stored is not None
    assert stored.email == "b@x.io"


def test_the_client_clock_skew_is_corrected_with_sent_at(
    client: TestClient, auth: dict[str, str], db: Database, pinned_clock: datetime
) -> None:
    # The client's clock is 1 h 30 min behind; the event happened 5 s before the client sent it.
    call = {
        "anonymousId": "a-1",
        "messageId": "m-1",
        "event": "Clicked",
        "timestamp": "2026-11-21T10:29:55Z",
        "sentAt": "2026-11-21T10:30:00Z",
    }

    client.post("/v1/track", json=call, headers=auth)

    [event] = events(db)
    assert event.occurred_at == datetime(2026, 11, 21, 11, 59, 55, tzinfo=UTC)
    assert event.received_at == pinned_clock


def test_a_timestamp_without_sent_at_is_kept_and_a_missing_one_is_the_receipt_time(
    client: TestClient, auth: dict[str, str], db: Database, pinned_clock: datetime
) -> None:
    batch = [
        {
            "type": "track",
            "anonymousId": "a-1",
            "messageId": "m-1",
            "event": "A",
            "timestamp": "2026-11-20T08:00:00+02:00",
        },
        {"type": "track", "anonymousId": "a-1", "messageId": "m-2", "event": "B"},
    ]

    client.post("/v1/batch", json={"batch": batch}, headers=auth)

    assert [event.occurred_at for event in events(db)] == [datetime(2026, 11, 20, 6, 0, tzinfo=UTC), pinned_clock]


def test_batch_level_context_and_sent_at_apply_to_calls_without_their_own(
    client: TestClient, auth: dict[str, str], db: Database, pinned_clock: datetime
) -> None:
    body = {
        "batch": [
            {
                "type": "track",
                "anonymousId": "a-1",
                "messageId": "m-1",
                "event": "A",
                "timestamp": "2026-11-21T09:59:00Z",
            },
            {"type": "track", "anonymousId": "a-1", "messageId": "m-2", "event": "B", "context": {"ip": "10.0.0.2"}},
        ],
        "context": {"ip": "10.0.0.1", "library": {"name": "analytics-python"}},
        "sentAt": "2026-11-21T10:00:00Z",
        "writeKey": "ignored, as Segment ignores unknown fields",
    }

    client.post("/v1/batch", json=body, headers=auth)

    first, second = events(db)
    assert first.occurred_at == datetime(2026, 11, 21, 11, 59, tzinfo=UTC)
    assert first.context == {"ip": "10.0.0.1", "library": {"name": "analytics-python"}}
    assert second.context == {"ip": "10.0.0.2", "library": {"name": "analytics-python"}}


def test_an_event_records_its_source_and_stores_traits_normalised(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    client.post("/v1/identify", json={"userId": "u-1", "messageId": "m-1", "traits": {"email": "A@X.IO"}}, headers=auth)

    [event] = events(db)
    assert event.source_id is not None
    assert (event.type, event.name, event.user_id, event.properties) == ("identify", None, "u-1", {"email": "A@x.io"})


def test_a_call_without_message_id_is_stored_under_a_generated_one(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    call = {"anonymousId": "a-1", "event": "Clicked"}

    client.post("/v1/track", json=call, headers=auth)
    client.post("/v1/track", json=call, headers=auth)

    stored = events(db)
    assert len(stored) == 2
    assert len({event.message_id for event in stored}) == 2
