"""``POST /webhooks/twilio/status`` and ``/webhooks/twilio/inbound`` over HTTP, signed with the real validator.

The app runs behind a (pretend) TLS-terminating proxy: it is called at ``http://testserver``, and Twilio
signed ``https://nudge.example.com``, the public base URL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from audience.consent import reachable
from campaigns.outcomes import sms_program
from channels.keywords import help_reply, start_reply, stop_reply
from channels.outcomes import REPLY_CAMPAIGN
from core.db import Database
from core.models import (
    Channel,
    Consent,
    ConsentBasis,
    ConsentPurpose,
    ConsentStatus,
    Customer,
    Message,
    MessageStatus,
    OutboxMessage,
    Outcome,
    OutcomeKind,
    Provider,
    ProviderEvent,
    Suppression,
    SuppressionReason,
)
from core.settings import Settings
from tests.web.conftest import MakeClient

TOKEN = "test-auth-token"
PUBLIC = "https://nudge.example.com"
PHONE = "+15555550100"
STATUS = "/webhooks/twilio/status"
INBOUND = "/webhooks/twilio/inbound"
WRITTEN = ("provider_events", "outcomes", "suppressions", "consents", "messages", "outbox_messages")


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client(twilio_auth_token=TOKEN, public_base_url=PUBLIC)


def signed_post(
    client: TestClient, path: str, params: dict[str, str], *, token: str = TOKEN, signed_url: str | None = None
) -> httpx.Response:
    """POST the form as Twilio does, signed over the public URL (path and query included)."""
    signature = RequestValidator(token).compute_signature(signed_url or PUBLIC + path, params)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    return client.post(path, content=urlencode(params), headers=headers)


def status(sid: str, state: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": state, "AccountSid": "AC1", "To": PHONE, **extra}


def inbound(sid: str, body: str) -> dict[str, str]:
    return {"MessageSid": sid, "From": PHONE, "To": "+15555550999", "Body": body, "NumSegments": "1"}


def add_customer(db: Database, external_id: str) -> int:
    with db.session() as session:
        customer = Customer(external_id=external_id, phone=PHONE)
        session.add(customer)
        session.flush()
        return customer.id


def add_text(db: Database, customer_id: int, key: str = "sms-1", sid: str = "SM1") -> int:
    with db.session() as session:
        message = Message(
            message_key=key,
            idempotency_key=f"spring:{customer_id}:sms",
            campaign_key="spring",
            customer_id=customer_id,
            channel=Channel.SMS,
            address=PHONE,
            provider=Provider.TWILIO,
            provider_message_id=sid,
            status=MessageStatus.SENT,
            created_at=datetime.now(UTC) - timedelta(hours=1),
        )
        session.add(message)
        session.flush()
        return message.id


def grant(db: Database, customer_id: int) -> None:
    with db.session() as session:
        session.add(
            Consent(
                customer_id=customer_id,
                channel=Channel.SMS,
                status=ConsentStatus.GRANTED,
                purpose=ConsentPurpose.MARKETING,
                basis=ConsentBasis.EXPRESS_WRITTEN,
                source="signup_form",
                recorded_at=datetime.now(UTC) - timedelta(days=3),
            )
        )


def outcomes(db: Database) -> list[tuple[int, str, OutcomeKind]]:
    with db.session() as session:
        query = select(Outcome.message_id, ProviderEvent.event_id, Outcome.kind).join(ProviderEvent)
        return sorted((message_id, event_id, kind) for message_id, event_id, kind in session.execute(query))


def suppressions(db: Database) -> list[tuple[Channel, str, SuppressionReason]]:
    with db.session() as session:
        query = select(Suppression.channel, Suppression.address, Suppression.reason)
        return [(channel, address, reason) for channel, address, reason in session.execute(query)]


def keyword_consents(db: Database) -> list[tuple[int, ConsentStatus, ConsentPurpose, ConsentBasis]]:
    with db.session() as session:
        rows = session.scalars(select(Consent).where(Consent.source == "sms_keyword").order_by(Consent.id))
        return [(row.customer_id, row.status, row.purpose, row.basis) for row in rows]


def replies(db: Database) -> list[tuple[str, str | None]]:
    """The keyword replies the (outbox) SMS sender kept: recipient and text."""
    with db.session() as session:
        query = (
            select(OutboxMessage.to_address, OutboxMessage.sms_text)
            .join(Message)
            .where(Message.campaign_key == REPLY_CAMPAIGN)
            .order_by(OutboxMessage.id)
        )
        return [(to, body) for to, body in session.execute(query)]


def row_counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as connection:
        return {table: connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0 for table in WRITTEN}


def program_replies() -> tuple[str, str, str]:
    program = sms_program(Settings())
    assert program is not None
    return stop_reply(program), start_reply(program), help_reply(program)


# --- status callbacks ---------------------------------------------------------------------------------------


def test_a_signed_status_callback_is_stored_answered_202_and_becomes_an_outcome(
    client: TestClient, db: Database
) -> None:
    message = add_text(db, add_customer(db, "ann"))

    response = signed_post(client, f"{STATUS}?mk=sms-1", status("SM1", "delivered"))

    assert (response.status_code, response.content) == (202, b"")
    assert outcomes(db) == [(message, "SM1:delivered", OutcomeKind.SMS_DELIVERED)]
    with db.session() as session:
        (event,) = session.scalars(select(ProviderEvent)).all()
        assert (event.provider, event.message_key, event.kind) == (Provider.TWILIO, "sms-1", "delivered")


def test_a_status_callback_replayed_ten_times_yields_one_outcome(client: TestClient, db: Database) -> None:
    message = add_text(db, add_customer(db, "ann"))

    codes = [signed_post(client, f"{STATUS}?mk=sms-1", status("SM1", "sent")).status_code for _ in range(10)]

    assert codes == [202] * 10
    assert outcomes(db) == [(message, "SM1:sent", OutcomeKind.SMS_SENT)]


def test_delivered_before_sent_each_yield_one_outcome(client: TestClient, db: Database) -> None:
    message = add_text(db, add_customer(db, "ann"))

    for state in ["delivered", "sent", "delivered"]:
        signed_post(client, f"{STATUS}?mk=sms-1", status("SM1", state))

    assert outcomes(db) == [
        (message, "SM1:delivered", OutcomeKind.SMS_DELIVERED),
        (message, "SM1:sent", OutcomeKind.SMS_SENT),
    ]


def test_a_status_without_our_key_is_linked_by_the_message_sid(client: TestClient, db: Database) -> None:
    message = add_text(db, add_customer(db, "ann"))

    signed_post(client, STATUS, status("SM1", "undelivered", ErrorCode="30003"))

    assert outcomes(db) == [(message, "SM1:undelivered", OutcomeKind.SMS_UNDELIVERED)]


def test_error_21610_suppresses_the_phone(client: TestClient, db: Database) -> None:
    add_text(db, add_customer(db, "ann"))

    signed_post(client, f"{STATUS}?mk=sms-1", status("SM1", "failed", ErrorCode="21610"))

    assert suppressions(db) == [(Channel.SMS, PHONE, SuppressionReason.STOP_KEYWORD)]


def test_a_status_for_an_unknown_message_is_stored_and_processed_without_an_outcome(
    client: TestClient, db: Database
) -> None:
    response = signed_post(client, f"{STATUS}?mk=nobody", status("SM9", "delivered"))

    assert response.status_code == 202
    with db.session() as session:
        assert [event.processed_at is not None for event in session.scalars(select(ProviderEvent))] == [True]
    assert outcomes(db) == []


# --- inbound keywords ---------------------------------------------------------------------------------------


def test_stop_answers_empty_twiml_and_suppresses_every_later_text_to_the_phone(
    client: TestClient, db: Database
) -> None:
    ann, bob = add_customer(db, "ann"), add_customer(db, "bob")
    grant(db, ann)
    grant(db, bob)
    message = add_text(db, ann)

    response = signed_post(client, INBOUND, inbound("SMin1", "STOP"))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert suppressions(db) == [(Channel.SMS, PHONE, SuppressionReason.STOP_KEYWORD)]
    assert keyword_consents(db) == [
        (ann, ConsentStatus.WITHDRAWN, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS_WRITTEN),
        (bob, ConsentStatus.WITHDRAWN, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS_WRITTEN),
    ]
    assert outcomes(db) == [(message, "SMin1:inbound", OutcomeKind.SMS_STOP)]
    with db.session() as session:
        assert reachable(session, [ann, bob])[Channel.SMS].tolist() == [False, False]
    assert replies(db) == [(PHONE, program_replies()[0])]


def test_a_stop_delivered_ten_times_is_answered_once(client: TestClient, db: Database) -> None:
    add_customer(db, "ann")

    for _ in range(10):
        signed_post(client, INBOUND, inbound("SMin1", "stop"))

    assert len(replies(db)) == 1
    assert len(keyword_consents(db)) == 1


def test_start_after_stop_resubscribes(client: TestClient, db: Database) -> None:
    ann = add_customer(db, "ann")
    grant(db, ann)
    signed_post(client, INBOUND, inbound("SMin1", "STOP"))

    signed_post(client, INBOUND, inbound("SMin2", "START"))

    assert suppressions(db) == []
    assert keyword_consents(db)[-1] == (ann, ConsentStatus.GRANTED, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS)
    with db.session() as session:
        assert reachable(session, [ann])[Channel.SMS].tolist() == [True]
    stop, start, _ = program_replies()
    assert replies(db) == [(PHONE, stop), (PHONE, start)]


def test_help_only_replies(client: TestClient, db: Database) -> None:
    add_customer(db, "ann")

    response = signed_post(client, INBOUND, inbound("SMin1", "HELP"))

    assert response.status_code == 200
    assert (suppressions(db), keyword_consents(db), outcomes(db)) == ([], [], [])
    assert replies(db) == [(PHONE, program_replies()[2])]


# --- refused ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{STATUS}?mk=sms-1", INBOUND])
@pytest.mark.parametrize("case", ["unsigned", "wrong token", "forged", "internal url", "query changed"])
def test_a_request_not_signed_by_twilio_for_the_public_url_is_refused_401_and_stores_nothing(
    client: TestClient, db: Database, path: str, case: str
) -> None:
    add_customer(db, "ann")
    params = inbound("SMin1", "STOP") if path == INBOUND else status("SM1", "failed", ErrorCode="21610")
    before = row_counts(db)

    if case == "unsigned":
        response = client.post(path, data=params)
    elif case == "wrong token":
        response = signed_post(client, path, params, token="another-token")
    elif case == "forged":
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
        headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
        response = client.post(path, content=urlencode({**params, "To": "+15555550111"}), headers=headers)
    elif case == "internal url":  # what this server sees behind the proxy is not what Twilio signed
        response = signed_post(client, path, params, signed_url="http://testserver" + path)
    else:
        response = signed_post(client, path, params, signed_url=PUBLIC + path + "&extra=1")

    assert response.status_code == 401
    assert row_counts(db) == before


def test_without_an_auth_token_the_twilio_webhooks_answer_503_and_store_nothing(
    make_client: MakeClient, db: Database
) -> None:
    client = make_client(public_base_url=PUBLIC)

    responses = [signed_post(client, path, inbound("SMin1", "STOP")) for path in (STATUS, INBOUND)]

    assert [response.status_code for response in responses] == [503, 503]
    assert "NUDGE_TWILIO_AUTH_TOKEN" in responses[0].json()["message"]
    assert row_counts(db) == dict.fromkeys(WRITTEN, 0)


@pytest.mark.parametrize(
    ("path", "params"),
    [(STATUS, {"MessageSid": "SM1"}), (INBOUND, {"MessageSid": "SM1", "Body": "STOP"})],
)
def test_a_signed_request_missing_its_fields_is_refused_400(
    client: TestClient, db: Database, path: str, params: dict[str, Any]
) -> None:
    response = signed_post(client, path, params)

    assert response.status_code == 400
    assert row_counts(db) == dict.fromkeys(WRITTEN, 0)


def test_a_body_over_the_limit_is_refused_413(client: TestClient, db: Database) -> None:
    params = inbound("SMin1", "x" * 70_000)

    response = signed_post(client, INBOUND, params)

    assert response.status_code == 413
    assert row_counts(db) == dict.fromkeys(WRITTEN, 0)
