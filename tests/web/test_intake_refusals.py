"""Refused intake calls: exact 400/401/413 bodies, and nothing written for any of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from audience.sources import revoke_source
from core.db import Database
from tests.support.intake import basic_auth, snapshot
from tests.web.conftest import MakeClient

CHALLENGE = 'Basic realm="nudge"'


def invalid(*details: tuple[str, str]) -> dict[str, Any]:
    return {
        "error": "bad_request",
        "message": "invalid request body",
        "details": [{"path": path, "message": message} for path, message in details],
    }


BAD_CALLS = [
    pytest.param(
        "/v1/identify",
        {"traits": {"email": "a@x.io"}},
        invalid(("", "userId or anonymousId is required")),
        id="identify-without-user-or-anonymous-id",
    ),
    pytest.param(
        "/v1/track",
        {"userId": "u-1"},
        invalid(("event", "Field required")),
        id="track-without-event",
    ),
    pytest.param(
        "/v1/track",
        {"userId": 42, "event": ["Clicked"], "properties": "none", "context": 1},
        invalid(
            ("userId", "Input should be a valid string"),
            ("context", "Input should be an object"),
            ("event", "Input should be a valid string"),
            ("properties", "Input should be an object"),
        ),
        id="wrong-types",
    ),
    pytest.param(
        "/v1/track",
        {"userId": "u" * 129, "event": "e" * 201},
        invalid(
            ("userId", "String should have at most 128 characters"),
            ("event", "String should have at most 200 characters"),
        ),
        id="over-column-lengths",
    ),
    pytest.param(
        "/v1/identify",
        {"userId": "u-1", "traits": {"email": "not-an-address", "phone": "555-0123", "address": {"country": "USA"}}},
        invalid(
            ("traits.email", "not an e-mail address: 'not-an-address'"),
            ("traits.phone", "not an E.164 phone number (+ and 8-15 digits): '555-0123'"),
            ("traits.address.country", "not an ISO 3166-1 alpha-2 country code: 'USA'"),
        ),
        id="bad-traits",
    ),
    pytest.param(
        "/v1/identify",
        {"userId": "u-1", "context": {"timezone": "Mars/Olympus"}, "traits": {"firstName": "A", "first_name": "B"}},
        invalid(
            ("context.timezone", "not an IANA time zone: 'Mars/Olympus'"),
            ("traits", "give firstName or first_name, not both"),
        ),
        id="bad-time-zone-and-both-spellings",
    ),
    pytest.param(
        "/v1/track",
        {"userId": "u-1", "event": "Clicked", "timestamp": "yesterday", "sentAt": 1700000000},
        invalid(
            ("timestamp", "must be an ISO 8601 date-time string such as 2026-11-21T08:00:00Z"),
            ("sentAt", "must be an ISO 8601 date-time string such as 2026-11-21T08:00:00Z"),
        ),
        id="bad-timestamps",
    ),
    pytest.param(
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "u-1", "event": "ok"},
                {"type": "page", "userId": "u-1"},
                {"event": "x"},
            ]
        },
        invalid(
            ("batch.1", "type must be 'identify' or 'track', not 'page'"),
            ("batch.2", "type is required: 'identify' or 'track'"),
        ),
        id="unknown-and-missing-type-in-batch",
    ),
    pytest.param(
        "/v1/batch",
        {"batch": [{"type": "identify", "userId": "u-1"}, {"type": "track", "anonymousId": "a"}, {"type": "identify"}]},
        invalid(("batch.1.event", "Field required"), ("batch.2", "userId or anonymousId is required")),
        id="bad-calls-in-batch",
    ),
    pytest.param("/v1/batch", {"events": []}, invalid(("batch", "Field required")), id="batch-without-batch"),
    pytest.param(
        "/v1/track",
        {"userId": "u-1", "event": "Clicked", "properties": {"note": "a\u0000b"}},
        invalid(("", r"strings may not contain \u0000")),
        id="nul-character",
    ),
    pytest.param("/v1/track", [], invalid(("", "Input should be an object")), id="body-not-an-object"),
]


@pytest.mark.parametrize(("path", "body", "expected"), BAD_CALLS)
def test_an_invalid_call_is_refused_with_every_field_error_and_nothing_is_written(
    client: TestClient, auth: dict[str, str], db: Database, path: str, body: Any, expected: dict[str, Any]
) -> None:
    before = snapshot(db)

    response = client.post(path, json=body, headers=auth)

    assert response.status_code == 400
    assert response.json() == expected
    assert snapshot(db) == before


@pytest.mark.parametrize("path", ["/v1/identify", "/v1/track", "/v1/batch"])
def test_malformed_json_is_refused(client: TestClient, auth: dict[str, str], db: Database, path: str) -> None:
    before = snapshot(db)

    response = client.post(path, content=b'{"userId": "u-1",', headers=auth)

    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request",
        "message": "malformed JSON",
        "details": [{"path": "", "message": "Invalid JSON: EOF while parsing a value at line 1 column 17"}],
    }
    assert snapshot(db) == before


def test_a_batch_with_one_invalid_call_stores_none_of_them(
    client: TestClient, auth: dict[str, str], db: Database
) -> None:
    before = snapshot(db)
    batch = [{"type": "track", "userId": "u-1", "messageId": "m-1", "event": "ok"}, {"type": "track", "userId": "u-2"}]

    response = client.post("/v1/batch", json={"batch": batch}, headers=auth)

    assert response.status_code == 400
    assert snapshot(db) == before


# --- 401 -----------------------------------------------------------------------------------------------------------

MISSING_KEY = {"error": "unauthorized", "message": "a write key is required: send it as the HTTP Basic username"}
BAD_KEY = {"error": "unauthorized", "message": "invalid or revoked write key"}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, MISSING_KEY, id="no-header"),
        pytest.param({"Authorization": "Bearer abc"}, MISSING_KEY, id="not-basic"),
        pytest.param(basic_auth(""), MISSING_KEY, id="empty-username"),
        pytest.param(
            {"Authorization": "Basic %%%"},
            {"error": "unauthorized", "message": "malformed HTTP Basic credentials"},
            id="not-base64",
        ),
        pytest.param(basic_auth("wrong-key"), BAD_KEY, id="wrong-key"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/identify", "/v1/track", "/v1/batch"])
def test_a_call_without_a_valid_write_key_is_refused_and_nothing_is_written(
    client: TestClient, db: Database, write_key: str, path: str, headers: dict[str, str], expected: dict[str, str]
) -> None:
    before = snapshot(db)

    response = client.post(path, json=_valid_body(path), headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert response.json() == expected
    assert snapshot(db) == before


def test_a_revoked_write_key_is_refused_and_nothing_is_written(
    client: TestClient, db: Database, write_key: str, auth: dict[str, str]
) -> None:
    with db.session() as session:
        revoke_source(session, "website")
    before = snapshot(db)

    response = client.post("/v1/track", json=_valid_body("/v1/track"), headers=auth)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert response.json() == BAD_KEY
    assert snapshot(db) == before


def test_the_key_is_checked_before_the_body_so_a_bad_body_without_a_key_is_a_401(
    client: TestClient, write_key: str
) -> None:
    response = client.post("/v1/track", content=b"{not json")

    assert response.status_code == 401


def _valid_body(path: str) -> dict[str, Any]:
    track = {"userId": "u-1", "messageId": "m-1", "event": "Clicked"}
    return {"/v1/identify": {"userId": "u-1", "messageId": "m-1"}, "/v1/track": track}.get(
        path, {"batch": [{"type": "track", **track}]}
    )


# --- 413 -----------------------------------------------------------------------------------------------------------

LIMITS = {"intake_max_event_bytes": 200, "intake_max_batch_bytes": 1000, "intake_max_batch_events": 3}


@pytest.fixture
def small(make_client: MakeClient) -> TestClient:
    return make_client(**LIMITS)


def _too_large(limit: int) -> dict[str, str]:
    return {"error": "payload_too_large", "message": f"the request body is larger than the limit of {limit} bytes"}


def _padded(path: str, size: int) -> bytes:
    """A valid call (or batch) padded with a property to exactly ``size`` bytes."""

    def body(pad: str) -> bytes:
        call = {"userId": "u-1", "messageId": "m-1", "event": "Clicked", "properties": {"pad": pad}}
        return json.dumps({"batch": [{"type": "track", **call}]} if path == "/v1/batch" else call).encode()

    encoded = body("x" * (size - len(body(""))))
    assert len(encoded) == size
    return encoded


def _chunks(body: bytes) -> Iterator[bytes]:
    """A generator body: httpx sends it chunked, without Content-Length."""
    for start in range(0, len(body), 64):
        yield body[start : start + 64]


@pytest.mark.parametrize(("path", "limit"), [("/v1/track", 200), ("/v1/batch", 1000)])
def test_a_body_at_the_limit_is_accepted(small: TestClient, auth: dict[str, str], path: str, limit: int) -> None:
    response = small.post(path, content=_padded(path, limit), headers=auth)

    assert response.status_code == 200


@pytest.mark.parametrize(("path", "limit"), [("/v1/identify", 200), ("/v1/track", 200), ("/v1/batch", 1000)])
def test_a_body_over_the_limit_by_content_length_is_refused(
    small: TestClient, auth: dict[str, str], db: Database, path: str, limit: int
) -> None:
    before = snapshot(db)

    response = small.post(path, content=_padded(path, limit + 1), headers=auth)

    assert response.status_code == 413
    assert response.json() == _too_large(limit)
    assert snapshot(db) == before


@pytest.mark.parametrize(("path", "limit"), [("/v1/track", 200), ("/v1/batch", 1000)])
def test_a_chunked_body_over_the_limit_is_refused(
    small: TestClient, auth: dict[str, str], db: Database, path: str, limit: int
) -> None:
    before = snapshot(db)

    response = small.post(path, content=_chunks(_padded(path, limit + 1)), headers=auth)

    assert response.status_code == 413
    assert response.json() == _too_large(limit)
    assert snapshot(db) == before


def test_a_batch_with_too_many_events_is_refused_before_its_calls_are_validated(
    small: TestClient, auth: dict[str, str], db: Database
) -> None:
    before = snapshot(db)
    batch = [{"type": "track", "anonymousId": "a", "event": "e"}] * 3 + [{"type": "nonsense"}]

    response = small.post("/v1/batch", json={"batch": batch}, headers=auth)

    assert response.status_code == 413
    assert response.json() == {
        "error": "payload_too_large",
        "message": "a batch holds at most 3 events; this one has 4",
    }
    assert snapshot(db) == before


def test_a_single_call_is_limited_by_the_event_size_not_the_batch_size(small: TestClient, auth: dict[str, str]) -> None:
    response = small.post("/v1/track", content=_padded("/v1/track", 500), headers=auth)

    assert response.status_code == 413
