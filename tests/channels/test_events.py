"""Webhook events in: signature checks with real keys, parsing, and storing each event exactly once."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from channels.events import (
    ParsedEvent,
    parse_sendgrid,
    parse_twilio_inbound,
    parse_twilio_status,
    sendgrid_key_is_valid,
    sendgrid_public_key,
    sign_sendgrid,
    store_events,
    twilio_status_callback_url,
    verify_sendgrid,
    verify_twilio,
)
from core.db import Database
from core.errors import BadRequest, Unauthorized
from core.models import Provider, ProviderEvent

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
RECEIVED_AT = NOW


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sendgrid_event(**fields: Any) -> dict[str, Any]:
    return {
        "email": "ann@example.com",
        "timestamp": 1_795_000_000,
        "event": "delivered",
        "sg_event_id": "ev-1",
        "sg_message_id": "msg-1.filter0001",
        "message_key": "mk-1",
        **fields,
    }


def stored_events(db: Database) -> list[ProviderEvent]:
    with db.session() as session:
        return list(session.scalars(select(ProviderEvent).order_by(ProviderEvent.event_id)))


def store(db: Database, events: list[ParsedEvent]) -> tuple[int, int]:
    with db.session() as session:
        result = store_events(session, events, received_at=RECEIVED_AT)
    return len(result.stored), result.duplicates


# --- SendGrid signatures ------------------------------------------------------------------------------------


def test_a_sendgrid_signature_made_with_the_key_verifies(private_key: ec.EllipticCurvePrivateKey) -> None:
    body, timestamp = b'[{"event":"open"}]\r\n', str(int(NOW.timestamp()))

    verify_sendgrid(
        body,
        signature=sign_sendgrid(private_key, body, timestamp),
        timestamp=timestamp,
        public_key=sendgrid_public_key(private_key),
        now=NOW,
        max_age=300,
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("body changed", "does not match"),
        ("other key", "does not match"),
        ("timestamp changed", "does not match"),
        ("no signature", "are required"),
        ("no timestamp", "are required"),
        ("not base64", "does not match"),
        ("stale", "not within 300 s"),
        ("future", "not within 300 s"),
        ("not a number", "not within 300 s"),
    ],
)
def test_a_sendgrid_request_not_signed_now_by_the_key_is_refused(
    private_key: ec.EllipticCurvePrivateKey, case: str, message: str
) -> None:
    body, timestamp = b'[{"event":"open"}]', str(int(NOW.timestamp()))
    request: dict[str, Any] = {"signature": sign_sendgrid(private_key, body, timestamp), "timestamp": timestamp}
    key = sendgrid_public_key(private_key)
    if case == "body changed":
        body = b'[{"event":"click"}]'
    elif case == "other key":
        key = sendgrid_public_key(ec.generate_private_key(ec.SECP256R1()))
    elif case == "timestamp changed":
        request["timestamp"] = str(int(NOW.timestamp()) - 1)
    elif case == "no signature":
        request["signature"] = None
    elif case == "no timestamp":
        request["timestamp"] = None
    elif case == "not base64":
        request["signature"] = "!!!"
    elif case in ("stale", "future"):
        moment = str(int(NOW.timestamp()) + (-301 if case == "stale" else 301))
        request = {"signature": sign_sendgrid(private_key, body, moment), "timestamp": moment}
    elif case == "not a number":
        request = {"signature": sign_sendgrid(private_key, body, "soon"), "timestamp": "soon"}

    with pytest.raises(Unauthorized, match=message):
        verify_sendgrid(body, **request, public_key=key, now=NOW, max_age=300)


def test_a_key_that_is_not_an_ec_public_key_is_not_valid(private_key: ec.EllipticCurvePrivateKey) -> None:
    assert sendgrid_key_is_valid(sendgrid_public_key(private_key))
    assert not sendgrid_key_is_valid("not a key")
    assert not sendgrid_key_is_valid(base64.b64encode(b"\x30\x03\x02\x01\x01").decode())


# --- Twilio signatures --------------------------------------------------------------------------------------


def test_twilios_documented_sample_request_verifies() -> None:
    """The known answer from the reference (§4.4): token 12345, this URL and these five fields."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }

    verify_twilio(url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "12345")


@pytest.mark.parametrize("case", ["field changed", "other url", "other token", "no signature"])
def test_a_twilio_request_not_signed_by_the_token_for_this_url_is_refused(case: str) -> None:
    url, params = (
        "https://nudge.example.com/webhooks/twilio/status?mk=k1",
        {"MessageSid": "SM1", "MessageStatus": "sent"},
    )
    signature: str | None = RequestValidator("token").compute_signature(url, params)
    token = "token"
    if case == "field changed":
        params = {**params, "MessageStatus": "delivered"}
    elif case == "other url":
        url = "http://10.0.0.5:8000/webhooks/twilio/status?mk=k1"
    elif case == "other token":
        token = "another"
    else:
        signature = None

    with pytest.raises(Unauthorized):
        verify_twilio(url, params, signature, token)


def test_the_status_callback_url_carries_the_message_key_escaped() -> None:
    url = twilio_status_callback_url("https://nudge.example.com/", "k 1&x")

    assert url == "https://nudge.example.com/webhooks/twilio/status?mk=k+1%26x"


# --- parsing ------------------------------------------------------------------------------------------------


def test_sendgrid_events_carry_their_id_our_message_key_and_a_content_key() -> None:
    body = json.dumps([sendgrid_event(), sendgrid_event(sg_event_id="ev-2", event="click", url="https://x.io/a")])

    first, second = parse_sendgrid(body.encode())

    assert (first.provider, first.event_id, first.kind, first.message_key) == (
        Provider.SENDGRID,
        "ev-1",
        "delivered",
        "mk-1",
    )
    assert (second.event_id, second.kind) == ("ev-2", "click")
    assert len(first.fallback_key) == 64
    assert first.fallback_key != second.fallback_key
    assert second.payload["url"] == "https://x.io/a"


def test_the_content_key_ignores_the_event_id_and_tells_clicks_on_different_urls_apart() -> None:
    original, retried, other_url = parse_sendgrid(
        json.dumps(
            [
                sendgrid_event(event="click", url="https://x.io/a"),
                sendgrid_event(event="click", url="https://x.io/a", sg_event_id="ev-retry"),
                sendgrid_event(event="click", url="https://x.io/b", sg_event_id="ev-3"),
            ]
        ).encode()
    )

    assert original.fallback_key == retried.fallback_key
    assert other_url.fallback_key != original.fallback_key


def test_a_sendgrid_event_without_an_id_is_keyed_by_its_content() -> None:
    event = sendgrid_event()
    del event["sg_event_id"]

    (parsed,) = parse_sendgrid(json.dumps([event]).encode())

    assert parsed.event_id == f"sha256:{parsed.fallback_key}"


@pytest.mark.parametrize(
    "body", [b"not json", b'{"event": "open"}', b'[{"email": "a@x.io"}]', b'["open"]', b'[{"event": ""}]']
)
def test_a_sendgrid_body_that_is_not_an_array_of_named_events_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_sendgrid(body)


def test_a_message_key_longer_than_ours_is_not_taken_as_one() -> None:
    (parsed,) = parse_sendgrid(json.dumps([sendgrid_event(message_key="k" * 65)]).encode())

    assert parsed.message_key is None


def test_twilio_events_are_keyed_by_sid_and_status() -> None:
    status = parse_twilio_status({"MessageSid": "SM1", "MessageStatus": "Delivered", "ErrorCode": ""}, "mk-9")
    inbound = parse_twilio_inbound({"MessageSid": "SM2", "From": "+15555550100", "Body": "STOP"})

    assert (status.event_id, status.kind, status.message_key) == ("SM1:delivered", "delivered", "mk-9")
    assert (inbound.event_id, inbound.kind, inbound.message_key) == ("SM2:inbound", "inbound", None)
    assert inbound.payload == {"MessageSid": "SM2", "From": "+15555550100", "Body": "STOP"}


@pytest.mark.parametrize("form", [{"MessageSid": "SM1"}, {"MessageStatus": "sent"}])
def test_a_status_callback_without_sid_or_status_is_a_bad_request(form: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        parse_twilio_status(form, None)


def test_an_inbound_message_without_a_sender_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        parse_twilio_inbound({"MessageSid": "SM1", "Body": "STOP"})


# --- storing ------------------------------------------------------------------------------------------------


def test_each_event_is_stored_once_however_often_it_is_delivered(db: Database) -> None:
    events = parse_sendgrid(json.dumps([sendgrid_event(), sendgrid_event(sg_event_id="ev-2", event="open")]).encode())

    first = store(db, events)
    replays = [store(db, events) for _ in range(9)]

    assert first == (2, 0)
    assert replays == [(0, 2)] * 9
    stored = stored_events(db)
    assert [(event.event_id, event.kind, event.message_key) for event in stored] == [
        ("ev-1", "delivered", "mk-1"),
        ("ev-2", "open", "mk-1"),
    ]
    assert all(event.processed_at is None and event.received_at == RECEIVED_AT for event in stored)


def test_a_retried_event_with_a_new_id_but_the_same_content_is_stored_once(db: Database) -> None:
    (original,) = parse_sendgrid(json.dumps([sendgrid_event()]).encode())
    (retried,) = parse_sendgrid(json.dumps([sendgrid_event(sg_event_id="ev-new")]).encode())

    assert store(db, [original]) == (1, 0)
    assert store(db, [retried]) == (0, 1)
    assert [event.event_id for event in stored_events(db)] == ["ev-1"]


def test_repeats_inside_one_batch_count_as_duplicates(db: Database) -> None:
    events = parse_sendgrid(
        json.dumps([sendgrid_event(), sendgrid_event(), sendgrid_event(sg_event_id="ev-x")]).encode()
    )

    assert store(db, events) == (1, 2)


def test_the_store_returns_the_ids_of_the_rows_it_wrote(db: Database) -> None:
    events = parse_sendgrid(json.dumps([sendgrid_event(), sendgrid_event(sg_event_id="ev-2", event="open")]).encode())

    with db.session() as session:
        result = store_events(session, events, received_at=RECEIVED_AT)

    assert result.stored == sorted(event.id for event in stored_events(db))


def test_the_same_twilio_status_twice_is_stored_once_and_the_next_status_is_new(db: Database) -> None:
    sent = parse_twilio_status({"MessageSid": "SM1", "MessageStatus": "sent"}, "mk-1")
    delivered = parse_twilio_status({"MessageSid": "SM1", "MessageStatus": "delivered"}, "mk-1")

    assert store(db, [sent]) == (1, 0)
    assert store(db, [sent, delivered]) == (1, 1)
    assert [event.event_id for event in stored_events(db)] == ["SM1:delivered", "SM1:sent"]


def test_two_concurrent_deliveries_of_one_event_store_it_once(db: Database) -> None:
    """The second insert waits for the first transaction and then skips the row: no error, nothing new."""
    (event,) = parse_sendgrid(json.dumps([sendgrid_event()]).encode())
    second: list[tuple[int, int]] = []

    with db.session() as session:
        assert len(store_events(session, [event], received_at=RECEIVED_AT).stored) == 1
        thread = threading.Thread(target=lambda: second.append(store(db, [event])))
        thread.start()
        thread.join(timeout=0.5)  # blocked on the first transaction's row (PostgreSQL) or write lock (SQLite)
        assert thread.is_alive()
    thread.join(timeout=30)

    assert second == [(0, 1)]
    assert len(stored_events(db)) == 1


def test_a_received_time_is_kept_as_given(db: Database) -> None:
    (event,) = parse_sendgrid(json.dumps([sendgrid_event()]).encode())
    later = RECEIVED_AT + timedelta(minutes=5)

    with db.session() as session:
        store_events(session, [event], received_at=later)

    assert stored_events(db)[0].received_at == later
