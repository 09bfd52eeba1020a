"""Segment-spec event intake: store ``identify`` and ``track`` calls once per ``messageId``, apply identify traits.

One ``ingest`` call is a fixed handful of bulk statements whatever the batch size — never one per event:

1. look up the customers the calls name by ``userId``; on PostgreSQL, lock the ones this call may write
   (see ``_lock_customers``); create the missing ones (``external_id`` only), so every event with a
   ``userId`` links to its customer — anonymous-only events keep ``customer_id`` NULL;
2. insert the calls' ``messageId`` into ``event_keys`` with ``ON CONFLICT (message_id) DO NOTHING``, and the
   events of the keys inserted, returning their ``messageId``: which calls are new (``_insert_events``). The
   key table, unpartitioned, makes a replay a duplicate whenever it comes, while ``events`` is partitioned by
   month on PostgreSQL (``core.partitions``);
3. update customers from the identify calls stored just now, folded in timestamp order, one upsert per
   distinct set of traits given (usually one or two) — so a replayed call is stored once and changes nothing.

Traits of later requests win over earlier ones whatever their timestamps: the customer row keeps no
per-field times to compare against.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import uuid4

from sqlalchemy import Table, bindparam, column, func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from audience import commerce
from audience.commerce import CommerceChanges
from audience.repository import customer_ids, upsert_customers
from audience.schemas import Identify, Message, Track
from core import partitions
from core.bulk import insert_for
from core.models import Event, EventKey, EventType

_EVENTS = cast(Table, Event.__table__)
_EVENT_KEYS = cast(Table, EventKey.__table__)

# Reserved traits and the customer column each sets; address.country/state and context.timezone are handled apart.
_TRAIT_COLUMNS = {
    "email": "email",
    "phone": "phone",
    "first_name": "first_name",
    "last_name": "last_name",
    "timezone": "time_zone",
    "country": "country",
    "state": "region",
}
_ADDRESS_COLUMNS = {"country": "country", "state": "region"}
# The event columns that differ per call; received_at and source_id are the same for the whole batch.
_PER_CALL = (
    "message_id",
    "type",
    "name",
    "customer_id",
    "user_id",
    "anonymous_id",
    "properties",
    "context",
    "occurred_at",
)


@dataclass(frozen=True)
class IngestResult:
    stored: int
    """Calls stored by this ingest."""
    duplicates: int
    """Calls not stored: their messageId was stored before or came earlier in the same batch."""
    commerce: CommerceChanges = field(default_factory=CommerceChanges)
    """Carts and orders the new e-commerce events changed (``audience.commerce``)."""


@dataclass(frozen=True)
class _Call:
    message: Message
    message_id: str
    occurred_at: datetime


def ingest(
    session: Session, messages: Sequence[Message], *, source_id: int | None, received_at: datetime
) -> IngestResult:
    """Store the calls not stored before and apply the traits of the new identify calls. Never commits."""
    calls = _unique(_call(message, received_at) for message in messages)
    customers = _ensure_customers(session, calls)
    stored = _insert_events(session, calls, customers, source_id=source_id, received_at=received_at)
    new_calls = [call for call in calls if call.message_id in stored]
    _apply_traits(session, new_calls)
    changes = commerce.apply(session, _commerce_events(new_calls, customers))
    return IngestResult(stored=len(stored), duplicates=len(messages) - len(stored), commerce=changes)


def _commerce_events(calls: Iterable[_Call], customers: dict[str, int]) -> list[commerce.CommerceEvent]:
    """The new e-commerce track calls of identified customers."""
    events = []
    for call in calls:
        message = call.message
        if isinstance(message, Track) and message.event in commerce.COMMERCE_EVENTS and message.user_id:
            customer = customers[message.user_id]
            events.append(commerce.CommerceEvent(customer, message.event, message.properties, call.occurred_at))
    return events


def occurred_at(message: Message, received_at: datetime) -> datetime:
    """Segment's clock-skew correction: the client's clock is off by ``sentAt - receivedAt``, so
    ``receivedAt - (sentAt - timestamp)``; without ``sentAt`` the timestamp as sent; without one, ``receivedAt``."""
    if message.timestamp is None:
        return received_at
    if message.sent_at is None:
        return message.timestamp
    return received_at - (message.sent_at - message.timestamp)


def _call(message: Message, received_at: datetime) -> _Call:
    # A generated id is unique, so such a call is never recognised as a replay.
    return _Call(message, message.message_id or str(uuid4()), occurred_at(message, received_at))


def _unique(calls: Iterable[_Call]) -> list[_Call]:
    """The first call of each messageId, in batch order."""
    first: dict[str, _Call] = {}
    for call in calls:
        first.setdefault(call.message_id, call)
    return list(first.values())


def _ensure_customers(session: Session, calls: list[_Call]) -> dict[str, int]:
    """The ids of the customers the calls name, creating the missing ones (``external_id`` only)."""
    named = {call.message.user_id for call in calls if call.message.user_id}
    found = customer_ids(session, named)
    missing = named - found.keys()
    identified = {call.message.user_id for call in calls if isinstance(call.message, Identify) and call.message.user_id}
    _lock_customers(session, missing | identified)
    return found | upsert_customers(session, [{"external_id": external_id} for external_id in sorted(missing)])


def _lock_customers(session: Session, external_ids: set[str]) -> None:
    """On PostgreSQL, take a transaction-scoped advisory lock per customer this ingest may write, in one
    sorted pass, before writing any. Creating customers and then updating them from traits are separate
    statements, so two batches sharing customers could otherwise each hold a row the other waits for:
    with 300 users and 8 clients, bench/intake.py hit 7 deadlocks in 400 batches. SQLite has one writer."""
    keys = sorted({_lock_key(external_id) for external_id in external_ids})
    if keys and session.get_bind().dialect.name == "postgresql":
        session.execute(_ADVISORY_LOCKS, {"space": _CUSTOMER_LOCK_SPACE, "keys": keys})


def _lock_key(external_id: str) -> int:
    # 32 bits for pg_advisory_xact_lock(int4, int4); a collision only makes two customers share a lock.
    return int.from_bytes(hashlib.blake2b(external_id.encode(), digest_size=4).digest(), "big", signed=True)


# pg_advisory_xact_lock(int4, int4): the first number keeps these apart from other advisory locks.
_CUSTOMER_LOCK_SPACE = 1
_ADVISORY_LOCKS = text("SELECT pg_advisory_xact_lock(:space, key) FROM unnest(CAST(:keys AS integer[])) AS key")


def _insert_events(
    session: Session, calls: list[_Call], customers: dict[str, int], *, source_id: int | None, received_at: datetime
) -> set[str]:
    """Insert the keys, and the events of the keys new now; return those messageIds (the others were stored
    before). PostgreSQL: one statement; SQLite, which has no INSERT in a WITH clause: two."""
    if not calls:
        return set()
    rows = [_event_row(call, customers) for call in calls]
    rows.sort(key=lambda row: row["message_id"])  # one lock order on the key index, as for customers
    shared = {"source_id": source_id, "received_at": received_at}
    if session.get_bind().dialect.name == "postgresql":
        partitions.ensure_month(session, "events", received_at)
        calls_json = [row | {"occurred_at": row["occurred_at"].isoformat()} for row in rows]
        return set(session.scalars(_POSTGRESQL_INSERT, {"calls": calls_json, **shared}))
    keys = insert_for(session)(_EVENT_KEYS).on_conflict_do_nothing(index_elements=["message_id"])
    key_rows = [{"message_id": row["message_id"], "received_at": received_at} for row in rows]
    new = set(session.scalars(keys.returning(_EVENT_KEYS.c.message_id), key_rows))
    if new:
        session.execute(insert(_EVENTS), [row | shared for row in rows if row["message_id"] in new])
    return new


def _postgresql_insert() -> Any:
    """``WITH call AS (… jsonb_to_recordset(:calls)), new_key AS (INSERT INTO event_keys … ON CONFLICT DO
    NOTHING RETURNING message_id) INSERT INTO events SELECT … FROM call JOIN new_key RETURNING message_id``.

    The whole batch travels as one JSON document. Measured with bench/intake.py: a multi-row VALUES list
    (1,100 parameters per 100 events) was re-parsed by the driver for every batch, and ``unnest`` of one array
    per column spent as long escaping the arrays; one JSON parameter cut the worker's time per batch from
    5.5 ms to 1.4 ms. A concurrent batch with the same messageId waits on the key's index entry and, once the
    first commits, inserts neither key nor event.
    """
    columns = [column(name, _EVENTS.c[name].type) for name in _PER_CALL]
    records = func.jsonb_to_recordset(bindparam("calls", type_=JSONB)).table_valued(*columns)
    call = select(*records.render_derived(name="record", with_types=True).c).cte("call")
    received_at = bindparam("received_at", type_=_EVENTS.c.received_at.type)
    source_id = bindparam("source_id", type_=_EVENTS.c.source_id.type)
    new_key = (
        postgresql.insert(_EVENT_KEYS)
        .from_select(["message_id", "received_at"], select(call.c.message_id, received_at))
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(_EVENT_KEYS.c.message_id)
        .cte("new_key")
    )
    new_calls = select(*(call.c[name] for name in _PER_CALL), received_at, source_id).join_from(
        call, new_key, call.c.message_id == new_key.c.message_id
    )
    statement = postgresql.insert(_EVENTS).from_select([*_PER_CALL, "received_at", "source_id"], new_calls)
    return statement.returning(_EVENTS.c.message_id)


_POSTGRESQL_INSERT = _postgresql_insert()


def _event_row(call: _Call, customers: dict[str, int]) -> dict[str, Any]:
    message = call.message
    return {
        "message_id": call.message_id,
        "type": EventType(message.type),
        "name": message.event if isinstance(message, Track) else None,
        "customer_id": customers.get(message.user_id) if message.user_id else None,
        "user_id": message.user_id,
        "anonymous_id": message.anonymous_id,
        "properties": message.properties if isinstance(message, Track) else message.traits.as_json(),
        "context": message.context.as_json(),
        "occurred_at": call.occurred_at,
    }


def _apply_traits(session: Session, new_calls: list[_Call]) -> None:
    """Fold the new identify calls per customer in timestamp order, then upsert each set of columns at once."""
    folded: dict[str, dict[str, Any]] = {}
    identifies = [call for call in new_calls if isinstance(call.message, Identify) and call.message.user_id]
    for call in sorted(identifies, key=lambda call: call.occurred_at):  # stable: batch order breaks ties
        identify = cast(Identify, call.message)
        row = folded.setdefault(cast(str, identify.user_id), {"external_id": identify.user_id})
        row.update(_customer_columns(identify))
        if attributes := _custom_traits(identify):
            row["attributes"] = row.get("attributes", {}) | attributes
    # upsert_customers takes rows with one set of keys; a batch usually has one or two such sets. Several
    # statements cannot deadlock: every customer written here is already locked by _lock_customers.
    by_keys: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for external_id in sorted(folded):
        row = folded[external_id]
        if len(row) > 1:
            by_keys[frozenset(row)].append(row)
    for rows in by_keys.values():
        upsert_customers(session, rows)


def _customer_columns(identify: Identify) -> dict[str, Any]:
    """The customer columns an identify call sets. A reserved trait sent as null clears its column."""
    traits, given = identify.traits, identify.traits.model_fields_set
    columns = {name: getattr(traits, trait) for trait, name in _TRAIT_COLUMNS.items() if trait in given}
    if traits.address is not None:  # the Segment spec's place for country and state wins over top-level ones
        address = traits.address
        columns |= {
            name: getattr(address, key) for key, name in _ADDRESS_COLUMNS.items() if key in address.model_fields_set
        }
    if "timezone" not in given and "timezone" in identify.context.model_fields_set:
        columns["time_zone"] = identify.context.timezone
    return columns


def _custom_traits(identify: Identify) -> dict[str, Any]:
    """The traits kept in ``customer.attributes``: every unreserved one, plus the whole ``address``.

    Nulls are left out: SQLite's merge would delete the key and PostgreSQL's would store null, so
    neither is promised; a custom trait cannot be removed through identify.
    """
    traits = identify.traits
    attributes = {key: value for key, value in (traits.model_extra or {}).items() if value is not None}
    if traits.address is not None:
        attributes["address"] = traits.address.as_json()
    return attributes
