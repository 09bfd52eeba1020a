"""Provider webhooks: ``POST /webhooks/sendgrid``, ``/webhooks/twilio/status`` and ``/webhooks/twilio/inbound``.

The provider's signature is the only authentication. Each route runs one pipeline (CONVENTIONS §10) and a
refused request writes nothing:

    503 (the webhook's secret is not configured) → 413 (body size) → 401 (signature, timestamp)
    → 400 (payload) → store each event once → 202 → process after the commit (``schedule_processing``)

Answering 503 when the secret is missing, rather than 401, is deliberate: the provider keeps retrying a
5xx (SendGrid for 24 hours), so events wait for the configuration instead of being dropped as forged.

Processing (``channels.outcomes.process_pending``) starts once the request's session has committed, through
one seam, ``schedule_processing``: it calls the ``ScheduleProcessing`` the app factory was given. The full
application (``nudge.asgi``) gives it the Celery task ``nudge.events.process``, enqueued after commit; web
cannot import workers (they are siblings), so it is handed the function rather than reaching for it. An app
built without one (tests, ``uvicorn --factory web.app:create_app``) processes in this process, also after the
commit. A failed run leaves its events unprocessed for the next one (beat runs the task every minute).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from starlette.datastructures import ImmutableMultiDict

from campaigns.outcomes import process_events
from channels.events import (
    TWILIO_MESSAGE_KEY_PARAM,
    TWILIO_STATUS_PATH,
    ParsedEvent,
    parse_sendgrid,
    parse_twilio_inbound,
    parse_twilio_status,
    sendgrid_key_is_valid,
    sign_sendgrid,
    store_events,
    verify_sendgrid,
    verify_twilio,
)
from channels.outcomes import BATCH
from core.clock import utcnow
from core.db import Database
from core.errors import ServiceUnavailable
from core.settings import Settings
from web.deps import SessionDep, SettingsDep, read_body
from web.errors import responses

logger = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])

# SendGrid posts every 30 s or at 768 KB, whichever comes first (reference §3.2); leave room above that.
MAX_SENDGRID_BYTES = 1024 * 1024
# A Twilio callback is a few dozen short form fields; an inbound SMS body is at most 1,600 characters.
MAX_TWILIO_BYTES = 64 * 1024
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def sendgrid_signed_headers(private_key: ec.EllipticCurvePrivateKey, raw_body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of a SendGrid Event Webhook request signed with ``private_key`` (the demo and the tests)."""
    stamp = str(timestamp)
    return {
        SENDGRID_SIGNATURE: sign_sendgrid(private_key, raw_body, stamp),
        SENDGRID_TIMESTAMP: stamp,
        "Content-Type": "application/json",
    }


class WebhookAck(BaseModel):
    """Events stored now, and events stored before (a replay) or repeated in the body."""

    stored: int
    duplicates: int


# --- verification dependencies ------------------------------------------------------------------------------


async def sendgrid_events(request: Request, settings: SettingsDep) -> list[ParsedEvent]:
    """The verified, parsed events of a SendGrid Event Webhook request."""
    public_key = settings.sendgrid_webhook_public_key.strip()
    if not public_key or not sendgrid_key_is_valid(public_key):
        raise ServiceUnavailable(
            "the SendGrid event webhook is not configured: set NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY to the "
            "verification key of Signed Event Webhook Requests"
        )
    raw = await read_body(request, MAX_SENDGRID_BYTES)
    verify_sendgrid(
        raw,
        signature=request.headers.get(SENDGRID_SIGNATURE),
        timestamp=request.headers.get(SENDGRID_TIMESTAMP),
        public_key=public_key,
        now=utcnow(),
        max_age=settings.webhook_max_age_seconds,
    )
    return parse_sendgrid(raw)


async def twilio_form(request: Request, settings: SettingsDep) -> ImmutableMultiDict[str, str]:
    """The verified form fields of a Twilio webhook request."""
    auth_token = settings.twilio_auth_token.get_secret_value()
    if not auth_token:
        raise ServiceUnavailable("Twilio webhooks are not configured: set NUDGE_TWILIO_AUTH_TOKEN")
    raw = await read_body(request, MAX_TWILIO_BYTES)
    # Form bodies are ASCII (percent-encoded); latin-1 never fails, and parse_qsl decodes the escapes as UTF-8.
    form = ImmutableMultiDict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    verify_twilio(_public_url(settings, request), form, request.headers.get(TWILIO_SIGNATURE), auth_token)
    return form


def _public_url(settings: Settings, request: Request) -> str:
    """The URL Twilio signed: the public one. Behind a TLS-terminating proxy or a load balancer this server
    sees another scheme, host or port (``http://10.0.0.5:8000``), so the URL is rebuilt from
    ``public_base_url``, with the path and the query string exactly as received."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = settings.public_base_url.rstrip("/") + request.url.path
    return f"{url}?{query}" if query else url


ScheduleProcessing = Callable[[Session], None]
"""Called in the request after new events are stored in the session; must act only if that session commits."""


def get_schedule_processing(request: Request) -> ScheduleProcessing:
    schedule: ScheduleProcessing = request.app.state.schedule_processing
    return schedule


ProcessingDep = Annotated[ScheduleProcessing, Depends(get_schedule_processing)]
SendGridEvents = Annotated[list[ParsedEvent], Depends(sendgrid_events)]
TwilioForm = Annotated[ImmutableMultiDict[str, str], Depends(twilio_form)]


# --- routes -------------------------------------------------------------------------------------------------


@router.post(
    "/webhooks/sendgrid",
    status_code=202,
    summary="SendGrid Event Webhook (signed)",
    responses=responses(400, 401, 413, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "SendGrid's JSON array of events, signed (Signed Event Webhook Requests); "
            f"at most {MAX_SENDGRID_BYTES} bytes.",
            "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
        }
    },
)
def sendgrid(
    events: SendGridEvents,
    session: SessionDep,
    schedule: ProcessingDep,
) -> WebhookAck:
    """Store each event not stored before (by `sg_event_id`, or its content when retried under a new id);
    delivery and engagement outcomes and suppressions follow within seconds."""
    return _store(events, session, schedule)


@router.post(
    TWILIO_STATUS_PATH,  # channels builds the StatusCallback URLs with it
    status_code=202,
    summary="Twilio message status callback (signed)",
    responses=responses(400, 401, 413, 503),
    response_class=Response,
)
def twilio_status(
    request: Request,
    form: TwilioForm,
    session: SessionDep,
    schedule: ProcessingDep,
) -> Response:
    """Store the status once per message and status; the `mk` query parameter names our message."""
    event = parse_twilio_status(form, request.query_params.get(TWILIO_MESSAGE_KEY_PARAM))
    _store([event], session, schedule)
    return Response(status_code=202)


@router.post(
    "/webhooks/twilio/inbound",
    summary="Twilio incoming SMS (signed)",
    responses=responses(400, 401, 413, 503),
    response_class=Response,
)
def twilio_inbound(form: TwilioForm, session: SessionDep, schedule: ProcessingDep) -> Response:
    """Store the message once; STOP, START and HELP are acted on when it is processed.

    The answer is empty TwiML: replies go out through the API (the SMS sender), so each is recorded as a message.
    """
    _store([parse_twilio_inbound(form)], session, schedule)
    return Response(EMPTY_TWIML, media_type="text/xml")


def _store(events: list[ParsedEvent], session: Session, schedule: ScheduleProcessing) -> WebhookAck:
    result = store_events(session, events, received_at=utcnow())
    if result.stored:
        schedule_processing(session, schedule)
    return WebhookAck(stored=len(result.stored), duplicates=result.duplicates)


# --- processing ---------------------------------------------------------------------------------------------


def schedule_processing(session: Session, schedule: ScheduleProcessing) -> None:
    """The one seam: arrange for the events just stored in ``session`` to be processed once it commits."""
    schedule(session)


def process_after_commit(database: Database, settings: Settings) -> ScheduleProcessing:
    """The in-process ``ScheduleProcessing``: ``process_stored_events`` runs when the session commits (a
    rollback stores nothing, so there is nothing to process)."""

    def schedule(session: Session) -> None:
        sa_event.listen(session, "after_commit", lambda _session: process_stored_events(database, settings), once=True)

    return schedule


def process_stored_events(database: Database, settings: Settings) -> None:
    """Process pending events batch by batch, each in its own transaction, until none is left.

    Running after the request's commit is a process edge: a failure is logged with its traceback and the batch
    rolls back, so its events stay pending for the next run.
    """
    try:
        while True:
            with database.session() as session:
                result = process_events(session, settings, utcnow())
            if result.events < BATCH:
                return
    except Exception:
        logger.exception("processing webhook events failed; they stay pending for the next run")
