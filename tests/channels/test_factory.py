"""The sender factory picks by settings; the start-up check names every missing setting, and the API refuses
to start without them."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session

from channels.factory import check_configured, email_sender, missing_settings, sms_sender
from channels.outbox import OutboxEmailSender, OutboxSmsSender
from core.db import Database
from core.errors import ServiceUnavailable
from core.settings import EmailProvider, Environment, Settings, SmsProvider
from web.app import create_app

SENDGRID: dict[str, Any] = {
    "email_provider": EmailProvider.SENDGRID,
    "sendgrid_api_key": SecretStr("SG.key"),
    "sendgrid_webhook_public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
}
TWILIO: dict[str, Any] = {
    "sms_provider": SmsProvider.TWILIO,
    "twilio_account_sid": "AC" + "0" * 32,
    "twilio_auth_token": SecretStr("token"),
    "twilio_messaging_service_sid": "MG" + "0" * 32,
}
PRODUCTION: dict[str, Any] = {
    "environment": Environment.PRODUCTION,
    "signing_secret": SecretStr("a long random secret"),
    "public_base_url": "https://nudge.example.com",
}


def test_the_embedded_default_sends_to_the_outbox(sqlite_db: Database) -> None:
    with Session(sqlite_db.engine) as session:
        assert isinstance(email_sender(Settings(), session), OutboxEmailSender)
        assert isinstance(sms_sender(Settings(), session), OutboxSmsSender)


def test_the_outbox_never_loads_a_vendor_sdk(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "channels.sendgrid", None)  # importing it now raises ImportError
    monkeypatch.setitem(sys.modules, "channels.twilio", None)

    with Session(sqlite_db.engine) as session:
        assert isinstance(email_sender(Settings(), session), OutboxEmailSender)
        assert isinstance(sms_sender(Settings(), session), OutboxSmsSender)


def test_sendgrid_and_twilio_are_picked_when_selected(sqlite_db: Database) -> None:
    from channels.sendgrid import SendGridSender
    from channels.twilio import TwilioSender

    with Session(sqlite_db.engine) as session:
        assert isinstance(email_sender(Settings(**SENDGRID), session), SendGridSender)
        assert isinstance(sms_sender(Settings(**TWILIO), session), TwilioSender)


def test_the_embedded_default_needs_nothing() -> None:
    assert missing_settings(Settings()) == []
    check_configured(Settings())


def test_a_complete_production_configuration_needs_nothing() -> None:
    assert missing_settings(Settings(**SENDGRID, **TWILIO, **PRODUCTION)) == []


def test_sendgrid_without_its_settings_names_both() -> None:
    assert missing_settings(Settings(email_provider=EmailProvider.SENDGRID)) == [
        "NUDGE_SENDGRID_API_KEY",
        "NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY",
    ]


def test_only_the_missing_settings_are_named() -> None:
    values = {**SENDGRID, "sendgrid_webhook_public_key": "  ", **TWILIO, "twilio_auth_token": SecretStr("")}

    assert missing_settings(Settings(**values)) == ["NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY", "NUDGE_TWILIO_AUTH_TOKEN"]


def test_twilio_without_its_settings_names_all_three() -> None:
    assert missing_settings(Settings(sms_provider=SmsProvider.TWILIO)) == [
        "NUDGE_TWILIO_ACCOUNT_SID",
        "NUDGE_TWILIO_AUTH_TOKEN",
        "NUDGE_TWILIO_MESSAGING_SERVICE_SID",
    ]


def test_production_needs_a_signing_secret_and_a_public_https_url() -> None:
    assert missing_settings(Settings(environment=Environment.PRODUCTION)) == [
        "NUDGE_SIGNING_SECRET",
        "NUDGE_PUBLIC_BASE_URL (an https:// URL reachable from outside)",
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://nudge.example.com", "an https:// URL reachable from outside"),
        ("https://localhost:8000", "localhost is this machine, not an address reachable from outside"),
        ("https://api.localhost", "api.localhost is this machine, not an address reachable from outside"),
        ("https://127.0.0.1", "127.0.0.1 is this machine, not an address reachable from outside"),
        ("https://[::1]:8443", "::1 is this machine, not an address reachable from outside"),
        ("https://0.0.0.0", "0.0.0.0 is this machine, not an address reachable from outside"),
        ("nudge.example.com", "an https:// URL reachable from outside"),
    ],
)
def test_a_public_url_nobody_outside_can_reach_is_refused_in_production(url: str, problem: str) -> None:
    values = {**PRODUCTION, "public_base_url": url}

    assert missing_settings(Settings(**values)) == [f"NUDGE_PUBLIC_BASE_URL ({problem})"]


def test_check_configured_raises_with_every_missing_setting() -> None:
    with pytest.raises(ServiceUnavailable) as raised:
        check_configured(Settings(email_provider=EmailProvider.SENDGRID, sms_provider=SmsProvider.TWILIO))

    assert raised.value.message == (
        "Nudge is not configured: set NUDGE_SENDGRID_API_KEY, NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY, "
        "NUDGE_TWILIO_ACCOUNT_SID, NUDGE_TWILIO_AUTH_TOKEN, NUDGE_TWILIO_MESSAGING_SERVICE_SID"
    )
    assert len(raised.value.details) == 5


def test_the_api_does_not_start_with_sendgrid_selected_and_no_key(sqlite_db: Database) -> None:
    values = {**SENDGRID, "sendgrid_api_key": SecretStr("")}

    with pytest.raises(ServiceUnavailable, match=r"Nudge is not configured: set NUDGE_SENDGRID_API_KEY$"):
        create_app(Settings(**values), database=sqlite_db)


def test_the_api_starts_with_a_complete_production_configuration(sqlite_db: Database) -> None:
    app = create_app(Settings(**SENDGRID, **TWILIO, **PRODUCTION), database=sqlite_db)

    assert app.state.settings.email_provider is EmailProvider.SENDGRID
