"""Pydantic models for the Segment HTTP Tracking API: ``identify``, ``track`` and ``batch``.

Field names are Segment's camelCase (``userId``, ``messageId``, ``sentAt`` …). Validation is strict
about what Nudge stores and lenient about what it does not, as Segment is:

- Lengths match the ``events`` and ``customers`` columns, so nothing is truncated or refused by the database.
- Timestamps are ISO 8601 strings; one without a zone is taken to be UTC.
- Reserved traits (``email``, ``phone``, ``firstName``/``first_name``, ``lastName``/``last_name``, ``timezone``,
  ``country``, ``state``, ``address.country``, ``address.state``) and ``context.timezone`` are validated and
  normalised with ``core.contact``; every other trait, property and context key is kept as sent.
- Unknown top-level fields (``writeKey``, ``originalTimestamp``, ``channel``, ``receivedAt`` …) are ignored, as
  Segment ignores them; ``receivedAt`` is always the server's clock.
- ``messageId`` is optional as in Segment, and a missing one is generated, but only a client-supplied
  ``messageId`` makes a retried call idempotent.
- A batch holds only ``identify`` and ``track`` calls; any other ``type`` (``page``, ``screen``, ``group``,
  ``alias``) refuses the whole batch, so nothing is silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.clock import as_utc
from core.contact import normalize_country, normalize_email, normalize_phone, validate_time_zone
from core.errors import BadRequest, NudgeError, PayloadTooLarge, field_errors

MESSAGE_TYPES = ("identify", "track")


def _contact(normalise: Callable[[str], str]) -> Callable[[str], str]:
    """Turn a ``core.contact`` normaliser's ``BadRequest`` into a field error, so it carries its path."""

    def validate(value: str) -> str:
        try:
            return normalise(value)
        except NudgeError as error:
            raise PydanticCustomError("contact", "{reason}", {"reason": error.message}) from error

    return validate


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise PydanticCustomError("timestamp", "must be an ISO 8601 date-time string such as 2026-11-21T08:00:00Z")


Timestamp = Annotated[datetime, PlainValidator(_timestamp), WithJsonSchema({"type": "string", "format": "date-time"})]
Email = Annotated[str, AfterValidator(_contact(normalize_email))]
Phone = Annotated[str, AfterValidator(_contact(normalize_phone))]
TimeZone = Annotated[str, AfterValidator(_contact(validate_time_zone))]
Country = Annotated[str, AfterValidator(_contact(normalize_country))]
# Lengths are the columns': events.message_id/user_id/anonymous_id and customers.external_id, events.name,
# customers.first_name/last_name, customers.region. Ids and names are kept exactly as sent; names and regions trimmed.
Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
EventName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
JsonObject = dict[str, Any]


class _Open(BaseModel):
    """An object that keeps the keys it does not name (traits, context, address)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def as_json(self) -> JsonObject:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class Address(_Open):
    """Segment's ``address`` trait; ``country`` and ``state`` become customer columns."""

    country: Country | None = None
    state: Region | None = None


class Traits(_Open):
    """Identify traits. Reserved ones are validated and become customer columns; the rest are kept as sent."""

    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = Field(
        None, validation_alias=AliasChoices("firstName", "first_name"), serialization_alias="firstName"
    )
    last_name: Name | None = Field(
        None, validation_alias=AliasChoices("lastName", "last_name"), serialization_alias="lastName"
    )
    timezone: TimeZone | None = None
    country: Country | None = None
    state: Region | None = None
    address: Address | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        """With both spellings given, one would silently land in attributes; refuse instead."""
        if isinstance(data, Mapping):
            for camel, snake in (("firstName", "first_name"), ("lastName", "last_name")):
                if camel in data and snake in data:
                    raise PydanticCustomError("spelling", f"give {camel} or {snake}, not both")
        return data


class Context(_Open):
    """Segment's ``context``; ``timezone`` (an IANA name) is the customer's time zone on identify."""

    timezone: TimeZone | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message_id: Id | None = Field(
        None,
        alias="messageId",
        description="Idempotency key: a call replayed with the same messageId is stored once. "
        "Optional as in Segment, but without it a retried call is stored twice.",
    )
    user_id: Id | None = Field(None, alias="userId", description="Your id for the customer (customers.external_id).")
    anonymous_id: Id | None = Field(
        None, alias="anonymousId", description="A device or visitor id; userId or anonymousId is required."
    )
    timestamp: Timestamp | None = Field(None, description="When it happened, by the client's clock. Default: now.")
    sent_at: Timestamp | None = Field(
        None, alias="sentAt", description="When the client sent it; corrects timestamp for client clock skew."
    )
    context: Context = Field(default_factory=Context)
    integrations: JsonObject = Field(default_factory=dict, description="Accepted for compatibility; not used.")

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.user_id is None and self.anonymous_id is None:
            raise PydanticCustomError("identity", "userId or anonymousId is required")
        return self


class Identify(_Message):
    """Who a customer is: ``traits`` update the customer with ``external_id = userId``."""

    type: Literal["identify"] = "identify"
    traits: Traits = Field(default_factory=Traits)


class Track(_Message):
    """Something a customer did: an ``event`` name and its ``properties``."""

    type: Literal["track"] = "track"
    event: EventName = Field(description="The event name, e.g. 'Order Completed'.")
    properties: JsonObject = Field(default_factory=dict)


Message = Identify | Track
MessageT = TypeVar("MessageT", Identify, Track)


class Batch(BaseModel):
    """Many calls at once. Top-level ``context`` and ``sentAt`` apply to every call that lacks its own."""

    model_config = ConfigDict(extra="ignore")

    batch: list[Annotated[Message, Field(discriminator="type")]]
    context: Context = Field(default_factory=Context)
    integrations: JsonObject = Field(default_factory=dict)
    sent_at: Timestamp | None = Field(None, alias="sentAt")

    @field_validator("batch", mode="before")
    @classmethod
    def _not_too_many(cls, value: Any, info: ValidationInfo) -> Any:
        """Count before validating each call, so an oversize batch costs nothing more."""
        limit = (info.context or {}).get("max_events")
        if isinstance(value, list) and limit is not None and len(value) > limit:
            raise PayloadTooLarge(f"a batch holds at most {limit} events; this one has {len(value)}")
        return value

    @model_validator(mode="after")
    def _apply_defaults(self) -> Self:
        shared = self.context.as_json()
        for message in self.batch:
            if shared:
                message.context = Context.model_construct(**{**shared, **message.context.as_json()})
            if message.sent_at is None:
                message.sent_at = self.sent_at
        return self


class IntakeResponse(BaseModel):
    """Segment's answer, plus what happened to the calls."""

    success: Literal[True] = True
    stored: int = Field(description="Calls stored now.")
    duplicates: int = Field(description="Calls not stored again: their messageId was already stored or repeated.")


def parse_message(body: bytes, model: type[MessageT]) -> MessageT:
    """One ``identify`` or ``track`` call from a JSON body; ``BadRequest`` lists every field error."""
    return _parse(body, lambda: model.model_validate_json(body))


def parse_batch(body: bytes, *, max_events: int) -> list[Message]:
    """The calls of a ``batch`` body; ``PayloadTooLarge`` past ``max_events``, ``BadRequest`` if invalid."""
    return _parse(body, lambda: Batch.model_validate_json(body, context={"max_events": max_events})).batch


ParsedT = TypeVar("ParsedT")
# The JSON escape of U+0000 (after an even run of backslashes): PostgreSQL text and jsonb cannot store it, so it is
# refused here for both databases instead of failing the insert.
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _parse(body: bytes, validate: Callable[[], ParsedT]) -> ParsedT:
    if _NUL.search(body):
        raise BadRequest("invalid request body", details=[{"path": "", "message": r"strings may not contain \u0000"}])
    try:
        return validate()
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        if any(item["type"] == "json_invalid" for item in errors):
            raise BadRequest("malformed JSON", details=field_errors(errors)) from None
        raise BadRequest("invalid request body", details=field_errors(_readable(errors))) from None


def _readable(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Drop the union tag pydantic puts in a batch call's path, and say plainly what a bad type is."""
    readable = []
    for item in errors:
        loc = tuple(item["loc"])
        if len(loc) > 2 and loc[0] == "batch" and loc[2] in MESSAGE_TYPES:
            loc = loc[:2] + loc[3:]
        readable.append({**item, "loc": loc, "msg": _message(item)})
    return readable


def _message(item: Mapping[str, Any]) -> str:
    if item["type"] == "union_tag_invalid":
        return f"type must be 'identify' or 'track', not {item['ctx']['tag']!r}"
    if item["type"] == "union_tag_not_found":
        return "type is required: 'identify' or 'track'"
    if item["type"] == "model_type":
        return "Input should be an object"
    return str(item["msg"])
