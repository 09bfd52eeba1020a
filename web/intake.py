"""The Segment-compatible tracking API: ``POST /v1/identify``, ``/v1/track`` and ``/v1/batch``.

Point a Segment library (or anything speaking the Segment HTTP Tracking API) at Nudge's base URL with a
source's write key. Each handler is parse → ``audience.intake.ingest`` → response; the request's session
commits after it returns. Checks run in this order, and a refused call writes nothing:
401 (write key) → 413 (body size, then batch length) → 400 (JSON, fields).

200 answers Segment's ``{"success": true}`` plus ``stored`` (calls stored now) and ``duplicates`` (calls whose
messageId was stored before or repeated in the batch); a replay is a success, not an error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from audience.schemas import Batch, Identify, IntakeResponse, Message, Track, parse_batch, parse_message
from campaigns.outcomes import ingest_events
from core.clock import utcnow
from core.models import Source
from core.settings import Settings
from web.deps import BatchBody, EventBody, SessionDep, SettingsDep, SourceDep
from web.errors import responses

ScheduleCartCheck = Callable[[Session, int, datetime], None]
"""Called in the request for each waiting cart check (cart id, due instant); must act only if the session commits.
``nudge.asgi`` gives the Celery task with ``eta=due``; without one, the beat's minute scan checks due carts."""


def get_schedule_cart_check(request: Request) -> ScheduleCartCheck | None:
    schedule: ScheduleCartCheck | None = request.app.state.schedule_cart_check
    return schedule


CartCheckDep = Annotated[ScheduleCartCheck | None, Depends(get_schedule_cart_check)]

router = APIRouter(prefix="/v1", tags=["intake"], responses=responses(400, 401, 413))

REQUEST_MODELS: tuple[type[BaseModel], ...] = (Identify, Track, Batch)


def _request_body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """OpenAPI for a body parsed by hand (to bound its size first); ``web.app`` publishes the schema."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


@router.post(
    "/identify",
    summary="Identify a customer",
    openapi_extra=_request_body(
        Identify, "One identify call; at most `NUDGE_INTAKE_MAX_EVENT_BYTES` (default 32 KiB)."
    ),
)
def identify(
    source: SourceDep, session: SessionDep, settings: SettingsDep, schedule: CartCheckDep, body: EventBody
) -> IntakeResponse:
    """Store the call and, if its messageId is new, update the customer (`external_id` = userId) from its traits."""
    return _ingest(session, settings, schedule, source, [parse_message(body, Identify)])


@router.post(
    "/track",
    summary="Record an event",
    openapi_extra=_request_body(Track, "One track call; at most `NUDGE_INTAKE_MAX_EVENT_BYTES` (default 32 KiB)."),
)
def track(
    source: SourceDep, session: SessionDep, settings: SettingsDep, schedule: CartCheckDep, body: EventBody
) -> IntakeResponse:
    """Store the event, linked to the customer with `external_id` = userId (created if unknown).

    Segment e-commerce events (`Product Added`, `Product Removed`, `Cart Viewed`, `Order Completed`) also
    update the customer's carts and orders, and with them the abandoned-cart trigger."""
    return _ingest(session, settings, schedule, source, [parse_message(body, Track)])


@router.post(
    "/batch",
    summary="Send many identify and track calls",
    openapi_extra=_request_body(
        Batch,
        "Identify and track calls; at most `NUDGE_INTAKE_MAX_BATCH_BYTES` (default 500 KiB) and "
        "`NUDGE_INTAKE_MAX_BATCH_EVENTS` (default 1,000) calls. All are stored or, if any is invalid, none.",
    ),
)
def batch(
    source: SourceDep, session: SessionDep, settings: SettingsDep, schedule: CartCheckDep, body: BatchBody
) -> IntakeResponse:
    """Store every call not stored before, in one transaction; duplicates inside the batch count once."""
    messages = parse_batch(body, max_events=settings.intake_max_batch_events)
    return _ingest(session, settings, schedule, source, messages)


def _ingest(
    session: Session, settings: Settings, schedule: ScheduleCartCheck | None, source: Source, messages: list[Message]
) -> IntakeResponse:
    result, checks = ingest_events(session, settings, messages, source_id=source.id, now=utcnow())
    if schedule is not None:
        for check in checks:
            schedule(session, check.cart_id, check.due_at)
    return IntakeResponse(stored=result.stored, duplicates=result.duplicates)
