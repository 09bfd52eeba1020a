"""``/u/{token}``: RFC 8058 one-click POST (200, never a redirect, idempotent), a GET that changes nothing,
a preference page, and invalid tokens refused with nothing written. No credentials but the token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, text

from channels.tokens import customer_token, message_token
from core.db import Database
from core.models import (
    Channel,
    Consent,
    ConsentBasis,
    ConsentPurpose,
    ConsentStatus,
    Customer,
    Message,
    Provider,
    Suppression,
    SuppressionReason,
)
from tests.web.conftest import MakeClient

SECRET = "test signing secret"
KEY = SECRET.encode()
EMAIL, PHONE = "ada@example.com", "+15555550123"
ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BOUNDARY = "nudge-test-boundary"
MULTIPART_ONE_CLICK = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--{BOUNDARY}--\r\n'
)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client(signing_secret=SecretStr(SECRET))


def add_customer(db: Database, *, phone: str | None = PHONE, consents: tuple[ConsentPurpose, ...] = ()) -> None:
    """Customer 1 (Ada), e-mail message ``m-email`` and text message ``m-sms``, and granted consents."""
    with db.session() as session:
        session.add(Customer(id=1, external_id="ada", email=EMAIL, phone=phone))
        session.flush()
        for key, channel, address in (("m-email", Channel.EMAIL, EMAIL), ("m-sms", Channel.SMS, PHONE)):
            session.add(_message(key, channel, address))
        for channel in Channel:
            session.add_all(_granted(channel, purpose) for purpose in consents)


def _message(key: str, channel: Channel, address: str) -> Message:
    return Message(
        message_key=key,
        idempotency_key=f"winback:1:{channel.value}",
        campaign_key="winback",
        customer_id=1,
        channel=channel,
        address=address,
        provider=Provider.OUTBOX,
    )


def _granted(channel: Channel, purpose: ConsentPurpose) -> Consent:
    return Consent(
        customer_id=1,
        channel=channel,
        status=ConsentStatus.GRANTED,
        purpose=purpose,
        basis=ConsentBasis.EXPRESS_WRITTEN,
        source="signup_form",
    )


def url(key: str = "m-email", channel: Channel = Channel.EMAIL) -> str:
    return f"/u/{message_token(KEY, key, channel)}"


def suppressions(db: Database) -> list[tuple[Any, ...]]:
    with db.session() as session:
        rows = session.execute(
            select(Suppression.channel, Suppression.address, Suppression.reason, Suppression.source).order_by(
                Suppression.channel
            )
        )
        return [tuple(row) for row in rows]


def withdrawals(db: Database) -> list[tuple[Any, ...]]:
    with db.session() as session:
        query = (
            select(Consent.channel, Consent.purpose, Consent.basis, Consent.source, Consent.proof)
            .where(Consent.status == ConsentStatus.WITHDRAWN)
            .order_by(Consent.id)
        )
        return [tuple(row) for row in session.execute(query)]


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row an unsubscribe could write or change."""
    with db.engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
            for table in ("customers", "messages", "consents", "suppressions")
        }


def assert_not_a_redirect(response: httpx.Response) -> None:
    assert not response.is_redirect
    assert "location" not in response.headers
    assert not 300 <= response.status_code < 400


ONE_CLICK_BODIES: dict[str, dict[str, Any]] = {
    "form-urlencoded": {"content": ONE_CLICK, "headers": FORM},
    "multipart": {
        "content": MULTIPART_ONE_CLICK,
        "headers": {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    },
    "empty body": {},
}


@pytest.mark.parametrize("body", ONE_CLICK_BODIES.values(), ids=ONE_CLICK_BODIES.keys())
def test_a_one_click_post_unsubscribes_and_answers_200_without_a_redirect(
    client: TestClient, db: Database, body: dict[str, Any]
) -> None:
    add_customer(db, consents=(ConsentPurpose.MARKETING,))

    response = client.post(url(), follow_redirects=False, **body)

    assert response.status_code == 200
    assert_not_a_redirect(response)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Unsubscribed: a***@example.com gets no more marketing e-mail from Fablewave.\n"
    assert suppressions(db) == [(Channel.EMAIL, EMAIL, SuppressionReason.UNSUBSCRIBED, "one_click")]
    assert withdrawals(db) == [
        (Channel.EMAIL, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS_WRITTEN, "one_click", "m-email")
    ]


def test_posting_three_times_writes_the_suppression_and_the_withdrawal_once(client: TestClient, db: Database) -> None:
    add_customer(db, consents=(ConsentPurpose.MARKETING,))
    client.post(url(), content=ONE_CLICK, headers=FORM)
    after_first = snapshot(db)

    responses = [client.post(url(), content=ONE_CLICK, headers=FORM, follow_redirects=False) for _ in range(2)]

    assert [response.status_code for response in responses] == [200, 200]
    assert snapshot(db) == after_first
    assert len(suppressions(db)) == 1
    assert len(withdrawals(db)) == 1


def test_a_text_messages_token_suppresses_the_phone(client: TestClient, db: Database) -> None:
    add_customer(db)

    response = client.post(url("m-sms", Channel.SMS), content=ONE_CLICK, headers=FORM)

    assert response.text == "Unsubscribed: +1******0123 gets no more marketing texts from Fablewave.\n"
    assert suppressions(db) == [(Channel.SMS, PHONE, SuppressionReason.UNSUBSCRIBED, "one_click")]
    # No consent was on file: the withdrawal still records the request, with the default basis.
    assert withdrawals(db) == [(Channel.SMS, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS, "one_click", "m-sms")]


def test_a_customer_token_unsubscribes_their_current_address(client: TestClient, db: Database) -> None:
    add_customer(db)

    response = client.post(f"/u/{customer_token(KEY, 1, Channel.EMAIL)}", content=ONE_CLICK, headers=FORM)

    assert response.status_code == 200
    assert suppressions(db) == [(Channel.EMAIL, EMAIL, SuppressionReason.UNSUBSCRIBED, "one_click")]
    assert withdrawals(db)[0][4] == "customer:1"


def test_one_opt_out_withdraws_cart_reminders_too(client: TestClient, db: Database) -> None:
    add_customer(db, consents=(ConsentPurpose.MARKETING, ConsentPurpose.CART, ConsentPurpose.TRANSACTIONAL))

    client.post(url(), content=ONE_CLICK, headers=FORM)

    assert [(row[0], row[1]) for row in withdrawals(db)] == [
        (Channel.EMAIL, ConsentPurpose.MARKETING),
        (Channel.EMAIL, ConsentPurpose.CART),
    ]


def test_an_address_suppressed_before_keeps_its_reason(client: TestClient, db: Database) -> None:
    add_customer(db)
    with db.session() as session:
        session.add(Suppression(channel=Channel.EMAIL, address=EMAIL, reason=SuppressionReason.BOUNCED, source="sg"))

    response = client.post(url(), content=ONE_CLICK, headers=FORM)

    assert response.status_code == 200
    assert suppressions(db) == [(Channel.EMAIL, EMAIL, SuppressionReason.BOUNCED, "sg")]
    assert len(withdrawals(db)) == 1


def test_a_get_shows_the_page_and_writes_nothing(client: TestClient, db: Database) -> None:
    add_customer(db)
    before = snapshot(db)

    response = client.get(url(), follow_redirects=False)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    page = response.text
    assert "<h1>Unsubscribe from Fablewave</h1>" in page
    assert '<input type="hidden" name="form" value="preferences">' in page
    assert 'id="channel-email" name="channel" value="email" checked>' in page
    assert 'id="channel-sms" name="channel" value="sms">' in page
    assert "(to a***@example.com)" in page
    assert "(to +1******0123)" in page
    assert EMAIL not in page
    assert PHONE not in page
    assert "<script" not in page
    assert snapshot(db) == before


def test_the_page_offers_texts_only_to_a_customer_with_a_phone(client: TestClient, db: Database) -> None:
    add_customer(db, phone=None)

    page = client.get(url()).text

    assert 'value="email"' in page
    assert 'value="sms"' not in page


def test_the_page_says_what_is_already_unsubscribed(client: TestClient, db: Database) -> None:
    add_customer(db, phone=None)
    client.post(url(), content=ONE_CLICK, headers=FORM)

    page = client.get(url()).text

    assert "a***@example.com is already unsubscribed from marketing e-mail." in page
    assert "<form" not in page


def test_the_page_form_unsubscribes_the_chosen_channels_and_confirms(client: TestClient, db: Database) -> None:
    add_customer(db)

    response = client.post(
        url(), content="form=preferences&channel=email&channel=sms", headers=FORM, follow_redirects=False
    )

    assert response.status_code == 200
    assert_not_a_redirect(response)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "You are unsubscribed" in response.text
    assert "+1******0123 will get no more marketing texts from Fablewave." in response.text
    assert suppressions(db) == [
        (Channel.EMAIL, EMAIL, SuppressionReason.UNSUBSCRIBED, "preference_page"),
        (Channel.SMS, PHONE, SuppressionReason.UNSUBSCRIBED, "preference_page"),
    ]
    assert [(row[0], row[3], row[4]) for row in withdrawals(db)] == [
        (Channel.EMAIL, "preference_page", "m-email"),
        (Channel.SMS, "preference_page", "m-email"),
    ]


def test_the_page_form_with_nothing_chosen_changes_nothing(client: TestClient, db: Database) -> None:
    add_customer(db)
    before = snapshot(db)

    response = client.post(url(), content="form=preferences", headers=FORM)

    assert response.status_code == 400
    assert "Choose what to unsubscribe from." in response.text
    assert snapshot(db) == before


def _tampered(token_url: str) -> str:
    return token_url[:-3] + ("AAA" if not token_url.endswith("AAA") else "BBB")


BAD_URLS: dict[str, Callable[[], str]] = {
    "tampered": lambda: _tampered(url()),
    "other secret": lambda: f"/u/{message_token(b'another secret', 'm-email', Channel.EMAIL)}",
    "unknown message": lambda: url("m-gone"),
    "other channel than the message's": lambda: url("m-email", Channel.SMS),
    "unknown customer": lambda: f"/u/{customer_token(KEY, 99, Channel.EMAIL)}",
    "garbage": lambda: "/u/not-a-token",
}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("bad_url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_an_invalid_token_is_404_and_writes_nothing(
    client: TestClient, db: Database, method: str, bad_url: Callable[[], str]
) -> None:
    add_customer(db)
    before = snapshot(db)

    response = client.request(method, bad_url(), content=ONE_CLICK, headers=FORM, follow_redirects=False)

    assert response.status_code == 404
    assert "This unsubscribe link is not valid" in response.text
    assert snapshot(db) == before


def test_the_endpoint_needs_no_credentials_and_sets_no_cookie(client: TestClient, db: Database) -> None:
    add_customer(db)

    responses = [client.get(url()), client.post(url(), content=ONE_CLICK, headers=FORM)]

    assert [response.status_code for response in responses] == [200, 200]
    assert all("set-cookie" not in response.headers for response in responses)
