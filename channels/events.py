"""Provider webhooks in: verify the signature, parse the payload, and store every event once.

The pipeline is that of CONVENTIONS §10: the web layer verifies (``verify_sendgrid``, ``verify_twilio``),
parses (``parse_sendgrid``, ``parse_twilio_status``, ``parse_twilio_inbound``) and stores
(``store_events``), answers 202, and ``channels.outcomes.process_pending`` turns the stored events into
outcomes later. Nothing here interprets an event.

Each event is stored once, whatever the provider repeats:

- ``event_id``: the provider's id — SendGrid's ``sg_event_id``; for Twilio ``MessageSid:MessageStatus``
  (a message goes through each status once) or ``MessageSid:inbound``.
- ``fallback_key``: sha256 of what identifies the event without its id. SendGrid is reported to give a
  retried event a new ``sg_event_id`` (reference §3.2), so the same message, address, event, second and
  URL count as the same event.

Both are unique per provider in ``provider_event_keys``; the insert there skips a row that collides on either
(``ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL), and only the keys inserted get their ``provider_events``
row (with the key's id), so replays, and the same event delivered twice at the same moment, store nothing new —
however much later they come, since the key table is not partitioned (``provider_events`` is, by month, on
PostgreSQL; retention deletes both, so dedupe holds for ``NUDGE_DATA_RETENTION_MONTHS``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid import EventWebhook  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import bindparam, column, func, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped, unused-ignore]

from core import partitions
from core.bulk import insert_for, table_of
from core.errors import BadRequest, Unauthorized
from core.models import Provider, ProviderEvent, ProviderEventKey

# The SendGrid custom arg carrying Message.message_key (SendGrid flattens custom_args into each event).
SENDGRID_MESSAGE_KEY_ARG = "message_key"
# The query parameter carrying Message.message_key on a Twilio StatusCallback URL.
TWILIO_MESSAGE_KEY_PARAM = "mk"
# Where Twilio posts status callbacks (web.webhooks serves it).
TWILIO_STATUS_PATH = "/webhooks/twilio/status"
# The ``kind`` stored for an inbound SMS (status callbacks store the MessageStatus).
INBOUND = "inbound"

_MAX_ID = 128  # ProviderEvent.event_id
_MAX_KEY = 64  # ProviderEvent.message_key, Message.message_key
_MAX_KIND = 32  # ProviderEvent.kind


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One provider event, ready to store.

    Attributes
    ----------
    provider : Provider
        Who sent it.
    event_id : str
        The provider's id for the event (see the module docstring).
    fallback_key : str
        sha256 (hex) of what identifies the event without its id.
    kind : str
        The provider's event name (``delivered``, ``click`` …), Twilio's status, or ``inbound``.
    message_key : str or None
        Our ``Message.message_key`` when the event carries it.
    payload : dict
        The event as received (SendGrid: the JSON object; Twilio: the form fields, one value each).
    """

    provider: Provider
    event_id: str
    fallback_key: str
    kind: str
    message_key: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What ``store_events`` did: the ``ProviderEvent`` ids stored now and how many were seen before."""

    stored: list[int]
    duplicates: int


# --- verification -------------------------------------------------------------------------------------------


def verify_sendgrid(
    raw_body: bytes, *, signature: str | None, timestamp: str | None, public_key: str, now: datetime, max_age: int
) -> None:
    """Check SendGrid's ECDSA signature over ``timestamp + raw_body`` and the timestamp's age.

    Parameters
    ----------
    raw_body : bytes
        The request body exactly as received (never re-serialised).
    signature, timestamp : str or None
        The ``X-Twilio-Email-Event-Webhook-Signature`` and ``-Timestamp`` headers.
    public_key : str
        The verification key: base64 SubjectPublicKeyInfo DER, as SendGrid shows it.
    now : datetime
        The current time.
    max_age : int
        Seconds a signed request stays acceptable, either way: older is a replay, newer a wrong clock.

    Raises
    ------
    Unauthorized
        Missing, malformed, stale or forged.
    """
    if not signature or not timestamp:
        raise Unauthorized("the SendGrid signature and timestamp headers are required")
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > max_age:
        raise Unauthorized(f"the SendGrid signature timestamp is not within {max_age} s of now")
    try:
        valid = _sendgrid_verifier(public_key).verify_signature(
            payload=raw_body.decode(), signature=signature, timestamp=timestamp
        )
    except (binascii.Error, ValueError):  # a signature that is not base64, a body that is not UTF-8
        valid = False
    if not valid:
        raise Unauthorized("the SendGrid signature does not match")


def sign_sendgrid(private_key: ec.EllipticCurvePrivateKey, raw_body: bytes, timestamp: str) -> str:
    """What SendGrid puts in the signature header: ECDSA (SHA-256) over ``timestamp + raw_body``, base64 DER.

    Nudge never signs for SendGrid in production; the demo's simulated provider and the tests do."""
    return base64.b64encode(private_key.sign(timestamp.encode() + raw_body, ec.ECDSA(hashes.SHA256()))).decode()


def sendgrid_public_key(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key of ``private_key`` as SendGrid's settings show it: base64 SubjectPublicKeyInfo DER."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sendgrid_key_is_valid(public_key: str) -> bool:
    """Whether ``public_key`` loads as an EC public key (a configuration check; never raises)."""
    try:
        return isinstance(_sendgrid_verifier(public_key).public_key, ec.EllipticCurvePublicKey)
    except ValueError:
        return False


@lru_cache(maxsize=4)
def _sendgrid_verifier(public_key: str) -> EventWebhook:
    # Loading the key parses PEM; once per key is enough.
    return EventWebhook(public_key=public_key)


def verify_twilio(url: str, params: Any, signature: str | None, auth_token: str) -> None:
    """Check ``X-Twilio-Signature``: HMAC-SHA1 with the Auth Token over ``url`` and the sorted form fields.

    Parameters
    ----------
    url : str
        The URL exactly as Twilio requested it, query string included. Behind a proxy this is the public
        URL, not the one this server sees (the caller builds it from ``public_base_url``).
    params : mapping
        The form fields: a multi-dict with ``getlist`` (repeated fields are all signed) or a plain dict.
    signature : str or None
        The header's value.
    auth_token : str
        The account's Auth Token.

    Raises
    ------
    Unauthorized
        Missing or not matching.
    """
    if not signature or not RequestValidator(auth_token).validate(url, params, signature):
        raise Unauthorized("the Twilio signature does not match")


# --- parsing ------------------------------------------------------------------------------------------------


def parse_sendgrid(raw_body: bytes) -> list[ParsedEvent]:
    """SendGrid's batch: a JSON array of event objects, each with a string ``event``.

    Raises
    ------
    BadRequest
        Not JSON, not an array, or an item without an event name.
    """
    try:
        items = json.loads(raw_body)
    except ValueError:
        raise BadRequest("the SendGrid body is not JSON") from None
    if not isinstance(items, list):
        raise BadRequest("the SendGrid body is not a JSON array of events")
    return [_sendgrid_event(index, item) for index, item in enumerate(items)]


def _sendgrid_event(index: int, item: Any) -> ParsedEvent:
    if not isinstance(item, dict) or not isinstance(item.get("event"), str) or not item["event"]:
        raise BadRequest(f"SendGrid event {index} is not an object with an event name")
    fallback = _sha256(
        _text(item.get("sg_message_id")) or _text(item.get(SENDGRID_MESSAGE_KEY_ARG)),
        _text(item.get("email")),
        item["event"],
        _text(item.get("timestamp")),
        _text(item.get("url")),
    )
    event_id = _text(item.get("sg_event_id"))
    return ParsedEvent(
        provider=Provider.SENDGRID,
        # An event without an id (never seen, but not excluded) is still stored once, by its content.
        event_id=event_id[:_MAX_ID] if event_id else f"sha256:{fallback}",
        fallback_key=fallback,
        kind=item["event"][:_MAX_KIND],
        message_key=_key(item.get(SENDGRID_MESSAGE_KEY_ARG)),
        payload=item,
    )


def twilio_status_callback_url(public_base_url: str, message_key: str) -> str:
    """The StatusCallback URL for a text: Twilio's callbacks for it come back carrying ``message_key``."""
    query = urlencode({TWILIO_MESSAGE_KEY_PARAM: message_key})
    return f"{public_base_url.rstrip('/')}{TWILIO_STATUS_PATH}?{query}"


def parse_twilio_status(form: Mapping[str, str], message_key: str | None) -> ParsedEvent:
    """A status callback: ``MessageSid`` and ``MessageStatus`` (and ``ErrorCode`` when it failed).

    Parameters
    ----------
    form : mapping of str to str
        The form fields, one value each.
    message_key : str or None
        The ``mk`` query parameter of the StatusCallback URL.

    Raises
    ------
    BadRequest
        Without a message SID or a status.
    """
    sid, status = form.get("MessageSid") or form.get("SmsSid"), form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        raise BadRequest("a Twilio status callback needs MessageSid and MessageStatus")
    return _twilio_event(sid, status.lower(), _key(message_key), form)


def parse_twilio_inbound(form: Mapping[str, str]) -> ParsedEvent:
    """An incoming SMS: ``MessageSid``, ``From``, ``To``, ``Body``.

    Raises
    ------
    BadRequest
        Without a message SID or a sender.
    """
    sid = form.get("MessageSid") or form.get("SmsSid")
    if not sid or not form.get("From"):
        raise BadRequest("an incoming Twilio message needs MessageSid and From")
    return _twilio_event(sid, INBOUND, None, form)


def _twilio_event(sid: str, kind: str, message_key: str | None, form: Mapping[str, str]) -> ParsedEvent:
    return ParsedEvent(
        provider=Provider.TWILIO,
        event_id=f"{sid}:{kind}"[:_MAX_ID],
        fallback_key=_sha256(sid, kind),
        kind=kind[:_MAX_KIND],
        message_key=message_key,
        payload=dict(form),
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _key(value: Any) -> str | None:
    # A key longer than ours cannot be one of ours; keep the event, without the link.
    text = _text(value)
    return text if 0 < len(text) <= _MAX_KEY else None


def _sha256(*parts: str) -> str:
    # A unit separator between parts, so ("ab", "c") and ("a", "bc") differ.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# --- storing ------------------------------------------------------------------------------------------------


def store_events(session: Session, events: Sequence[ParsedEvent], *, received_at: datetime) -> StoreResult:
    """Insert the events not stored before; return the new rows' ids and the number skipped.

    Parameters
    ----------
    session : Session
        The caller's unit of work (not committed here).
    events : sequence of ParsedEvent
        One provider's batch; repeats inside it count as duplicates.
    received_at : datetime
        When the request arrived.

    Returns
    -------
    StoreResult
    """
    unique = _first_of_each(events)
    if not unique:
        return StoreResult(stored=[], duplicates=len(events))
    # One order on the unique indexes, so two deliveries of overlapping batches do not deadlock.
    unique.sort(key=lambda event: event.event_id)
    rows = [_row(event) for event in unique]
    if session.get_bind().dialect.name == "postgresql":
        partitions.ensure_month(session, "provider_events", received_at)
        stored = sorted(session.scalars(_POSTGRESQL_INSERT, {"events": rows, "received_at": received_at}))
    else:
        stored = _insert_sqlite(session, rows, received_at)
    return StoreResult(stored=stored, duplicates=len(events) - len(stored))


def _insert_sqlite(session: Session, rows: list[dict[str, Any]], received_at: datetime) -> list[int]:
    """The keys with ``ON CONFLICT DO NOTHING``, then the events of the keys inserted, with their ids (SQLite
    has no INSERT in a WITH clause: two statements)."""
    returning = insert_for(session)(_KEYS).on_conflict_do_nothing().returning(_KEYS.c.provider, _KEYS.c.event_id)
    key_rows = [{name: row[name] for name in _KEY_COLUMNS} | {"received_at": received_at} for row in rows]
    inserted = {(Provider(provider).value, event_id) for provider, event_id in session.execute(returning, key_rows)}
    new = [row | {"received_at": received_at} for row in rows if (row["provider"], row["event_id"]) in inserted]
    if not new:
        return []
    return sorted(session.scalars(insert(_EVENTS).returning(_EVENTS.c.id), new))


def _postgresql_insert() -> Any:
    """``WITH event AS (… jsonb_to_recordset(:events)), new_key AS (INSERT INTO provider_event_keys … ON
    CONFLICT DO NOTHING RETURNING provider, event_id) INSERT INTO provider_events SELECT … FROM event JOIN new_key
    RETURNING id``: one statement and one JSON parameter per batch (as ``audience.intake`` stores calls). A
    concurrent delivery of the same event waits on the key's index entry and, once the first commits, inserts
    neither key nor event."""
    columns = [column(name, _EVENTS.c[name].type) for name in _PER_EVENT]
    records = func.jsonb_to_recordset(bindparam("events", type_=JSONB)).table_valued(*columns)
    event = select(*records.render_derived(name="record", with_types=True).c).cte("event")
    received_at = bindparam("received_at", type_=_EVENTS.c.received_at.type)
    new_key = (
        postgresql.insert(_KEYS)
        .from_select([*_KEY_COLUMNS, "received_at"], select(*(event.c[name] for name in _KEY_COLUMNS), received_at))
        .on_conflict_do_nothing()
        .returning(_KEYS.c.provider, _KEYS.c.event_id)
        .cte("new_key")
    )
    matched = (new_key.c.provider == event.c.provider) & (new_key.c.event_id == event.c.event_id)
    new_events = select(*(event.c[name] for name in _PER_EVENT), received_at).join_from(event, new_key, matched)
    statement = postgresql.insert(_EVENTS).from_select([*_PER_EVENT, "received_at"], new_events)
    return statement.returning(_EVENTS.c.id)


_EVENTS = table_of(ProviderEvent)
_KEYS = table_of(ProviderEventKey)
_KEY_COLUMNS = ("provider", "event_id", "fallback_key")
_PER_EVENT = (*_KEY_COLUMNS, "kind", "message_key", "payload")
_POSTGRESQL_INSERT = _postgresql_insert()


def _first_of_each(events: Sequence[ParsedEvent]) -> list[ParsedEvent]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for event in events:
        keys = {("id", event.event_id), ("fallback", event.fallback_key)}
        if not keys & seen:
            unique.append(event)
        seen |= keys
    return unique


def _row(event: ParsedEvent) -> dict[str, Any]:
    # The provider as its value: the row also travels as JSON (PostgreSQL).
    return {
        "provider": event.provider.value,
        "event_id": event.event_id,
        "fallback_key": event.fallback_key,
        "kind": event.kind,
        "message_key": event.message_key,
        "payload": event.payload,
    }
