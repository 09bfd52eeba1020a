"""Parsing Segment calls: what is accepted, normalised, defaulted and refused (no database needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from audience.schemas import Identify, Track, parse_batch, parse_message
from core.errors import BadRequest, PayloadTooLarge


def test_a_timestamp_without_a_zone_is_taken_as_utc() -> None:
    call = parse_message(b'{"anonymousId": "a", "event": "e", "timestamp": "2026-11-21T08:00:00"}', Track)

    assert call.timestamp == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def test_unknown_fields_are_ignored_and_message_id_is_optional() -> None:
    call = parse_message(b'{"userId": "u", "event": "e", "writeKey": "k", "channel": "server"}', Track)

    assert (call.user_id, call.event, call.message_id) == ("u", "e", None)
    assert "writeKey" not in call.model_dump(by_alias=True)


def test_names_and_regions_are_trimmed_and_ids_are_kept_exactly() -> None:
    body = b'{"userId": " u ", "traits": {"firstName": " Ann ", "state": " FL ", "address": {"state": " NY "}}}'

    call = parse_message(body, Identify)

    assert (call.user_id, call.traits.first_name, call.traits.state) == (" u ", "Ann", "FL")
    assert call.traits.address is not None
    assert call.traits.address.state == "NY"


def test_an_identify_body_sent_to_track_is_refused() -> None:
    with pytest.raises(BadRequest) as refused:
        parse_message(b'{"type": "identify", "userId": "u"}', Track)

    assert refused.value.details == [
        {"path": "type", "message": "Input should be 'track'"},
        {"path": "event", "message": "Field required"},
    ]


def test_a_batch_over_the_event_limit_is_refused_before_its_calls_are_validated() -> None:
    with pytest.raises(PayloadTooLarge) as refused:
        parse_batch(b'{"batch": [1, 2, 3]}', max_events=2)

    assert refused.value.message == "a batch holds at most 2 events; this one has 3"


def test_batch_context_and_sent_at_fill_in_what_a_call_lacks() -> None:
    body = b"""{"batch": [
        {"type": "track", "anonymousId": "a", "event": "e", "context": {"ip": "own"}},
        {"type": "track", "anonymousId": "a", "event": "e", "sentAt": "2026-11-21T09:00:00Z"}],
      "context": {"ip": "shared", "locale": "en-US"}, "sentAt": "2026-11-21T10:00:00Z"}"""

    first, second = parse_batch(body, max_events=10)

    assert first.context.as_json() == {"ip": "own", "locale": "en-US"}
    assert second.context.as_json() == {"ip": "shared", "locale": "en-US"}
    assert (first.sent_at, second.sent_at) == (
        datetime(2026, 11, 21, 10, tzinfo=UTC),
        datetime(2026, 11, 21, 9, tzinfo=UTC),
    )


def test_an_empty_batch_is_valid() -> None:
    assert parse_batch(b'{"batch": []}', max_events=10) == []


def test_integrations_must_be_an_object() -> None:
    with pytest.raises(BadRequest) as refused:
        parse_message(b'{"userId": "u", "event": "e", "integrations": []}', Track)

    assert refused.value.details == [{"path": "integrations", "message": "Input should be an object"}]
