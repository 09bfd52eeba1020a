"""``TwilioSender``: the real twilio 9.13 SDK against a loopback fake of the Messages API — the exact form it
posts, one receipt per message whatever Twilio answers, and the auth token kept out of sight."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime

import pytest
from pydantic import SecretStr

from channels.ports import OutboundSms, ReceiptStatus, SendReceipt
from channels.twilio import MAX_BATCH, TwilioSender
from core.clock import utcnow
from core.errors import ServiceUnavailable
from core.models import Provider
from core.settings import Settings, SmsProvider
from tests.support.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    INVALID_NUMBER,
    MESSAGING_SERVICE_SID,
    NOT_MOBILE,
    OPTED_OUT,
    UNAVAILABLE,
    Failure,
    FakeTwilio,
    rate_limited,
)

MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
CALLBACK = "https://nudge.example.com/webhooks/twilio/status?message_key=k-1"


def twilio_settings(**changes: object) -> Settings:
    values: dict[str, object] = {
        "sms_provider": SmsProvider.TWILIO,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_messaging_service_sid": MESSAGING_SERVICE_SID,
    }
    values.update(changes)
    return Settings.model_validate(values)


def sms(key: str, phone: str, body: str = "Fablewave: 20% off this week. Reply STOP to opt out") -> OutboundSms:
    return OutboundSms(message_key=key, to_phone=phone, body=body, status_callback_url=f"{CALLBACK}&k={key}")


def sm_sid(number: int) -> str:
    """The sid the fake gives its ``number``-th created message."""
    return f"SM{number:032x}"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def sender(fake: FakeTwilio) -> TwilioSender:
    return TwilioSender.from_settings(twilio_settings(), api_base_url=fake.base_url)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the probe is closed


# --- what goes out -----------------------------------------------------------------------------------------


def test_each_message_is_posted_with_exactly_to_body_service_and_status_callback(
    fake: FakeTwilio, sender: TwilioSender
) -> None:
    message = OutboundSms("k-1", "+15555550101", "Fablewave: your cart misses you. Reply STOP to opt out", CALLBACK)

    sender.send_batch([message])

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", MESSAGES_PATH)
    assert request.form == {
        "To": "+15555550101",
        "Body": "Fablewave: your cart misses you. Reply STOP to opt out",
        "MessagingServiceSid": MESSAGING_SERVICE_SID,
        "StatusCallback": CALLBACK,
    }
    assert (request.username, request.password) == (ACCOUNT_SID, AUTH_TOKEN)


def test_a_message_without_a_callback_url_posts_no_status_callback(fake: FakeTwilio, sender: TwilioSender) -> None:
    sender.send_batch([OutboundSms("k-1", "+15555550101", "Hi")])

    assert fake.requests[0].form == {"To": "+15555550101", "Body": "Hi", "MessagingServiceSid": MESSAGING_SERVICE_SID}


def test_the_sender_never_names_a_from_number(fake: FakeTwilio, sender: TwilioSender) -> None:
    sender.send_batch([sms("k-1", "+15555550101"), sms("k-2", "+15555550102")])

    assert [sorted(request.form) for request in fake.requests] == [
        ["Body", "MessagingServiceSid", "StatusCallback", "To"]
    ] * 2


def test_twilio_region_and_edge_in_the_environment_do_not_move_the_api_host(
    fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    sender = TwilioSender.from_settings(twilio_settings(), api_base_url=fake.base_url)

    [receipt] = sender.send_batch([sms("k-1", "+15555550101")])

    assert receipt.status is ReceiptStatus.ACCEPTED
    assert len(fake.requests) == 1


# --- receipts ----------------------------------------------------------------------------------------------


def test_an_accepted_message_comes_back_with_its_sm_sid(sender: TwilioSender) -> None:
    receipts = sender.send_batch([sms("k-1", "+15555550101")])

    assert receipts == [SendReceipt("k-1", ReceiptStatus.ACCEPTED, provider_message_id=sm_sid(1))]


def test_a_mixed_batch_gets_one_receipt_per_message_in_order(fake: FakeTwilio, sender: TwilioSender) -> None:
    fake.fail_to("+15555550102", OPTED_OUT)
    fake.fail_to("+15555550103", INVALID_NUMBER)
    fake.fail_to("+15555550104", NOT_MOBILE)
    fake.fail_to("+15555550105", UNAVAILABLE)
    fake.fail_to("+15555550107", rate_limited(retry_after="7"))
    batch = [sms(f"k-{n}", f"+1555555010{n}") for n in range(1, 9)]

    receipts = sender.send_batch(batch)

    assert receipts == [
        SendReceipt("k-1", ReceiptStatus.ACCEPTED, provider_message_id=sm_sid(1)),
        SendReceipt(
            "k-2",
            ReceiptStatus.REJECTED,
            error="Attempt to send to unsubscribed recipient",
            error_code="21610",
            opted_out=True,
        ),
        SendReceipt("k-3", ReceiptStatus.REJECTED, error="Invalid 'To' Phone Number", error_code="21211"),
        SendReceipt(
            "k-4", ReceiptStatus.REJECTED, error="'To' number is not a valid mobile number", error_code="21614"
        ),
        SendReceipt("k-5", ReceiptStatus.RETRY, error="Service Unavailable", error_code="20503"),
        SendReceipt("k-6", ReceiptStatus.ACCEPTED, provider_message_id=sm_sid(2)),
        SendReceipt("k-7", ReceiptStatus.RETRY, error="Too Many Requests", error_code="20429", retry_after=7.0),
        SendReceipt(
            "k-8",
            ReceiptStatus.RETRY,
            error="not attempted: an earlier message in the batch got 20429 (Too Many Requests)",
            error_code="not_attempted",
            retry_after=7.0,
        ),
    ]
    # A 429 says slow down: the message after it was not sent at all.
    assert [request.form["To"] for request in fake.requests] == [f"+1555555010{n}" for n in range(1, 8)]


def test_a_5xx_does_not_stop_the_rest_of_the_batch(fake: FakeTwilio, sender: TwilioSender) -> None:
    fake.fail_next(UNAVAILABLE)

    receipts = sender.send_batch([sms("k-1", "+15555550101"), sms("k-2", "+15555550102")])

    assert [receipt.status for receipt in receipts] == [ReceiptStatus.RETRY, ReceiptStatus.ACCEPTED]
    assert len(fake.requests) == 2


def test_a_message_retried_after_a_503_is_accepted_the_second_time(fake: FakeTwilio, sender: TwilioSender) -> None:
    fake.fail_to("+15555550101", UNAVAILABLE, times=1)

    [first] = sender.send_batch([sms("k-1", "+15555550101")])
    [second] = sender.send_batch([sms("k-1", "+15555550101")])

    assert (first.status, second.status, second.provider_message_id) == (
        ReceiptStatus.RETRY,
        ReceiptStatus.ACCEPTED,
        sm_sid(1),
    )


def test_an_empty_body_is_rejected_by_twilio_not_retried(sender: TwilioSender) -> None:
    [receipt] = sender.send_batch([OutboundSms("k-1", "+15555550101", "")])

    assert receipt == SendReceipt("k-1", ReceiptStatus.REJECTED, error="Message body is required.", error_code="21602")


def test_a_5xx_without_a_json_body_is_retried_under_its_http_status(fake: FakeTwilio, sender: TwilioSender) -> None:
    fake.fail_next(Failure(502, None, "", raw_body="<html><body>Bad Gateway</body></html>"))

    [receipt] = sender.send_batch([sms("k-1", "+15555550101")])

    assert receipt == SendReceipt("k-1", ReceiptStatus.RETRY, error="Unable to create record", error_code="502")


def test_an_rfc_9457_problem_body_is_read_for_its_code_title_and_detail(fake: FakeTwilio, sender: TwilioSender) -> None:
    problem = {
        "type": "https://www.twilio.com/docs/errors/21211",
        "title": "Invalid 'To' Phone Number",
        "status": 400,
        "code": 21211,
        "detail": "The number is not a valid phone number",
    }
    fake.fail_next(Failure(400, 21211, "", raw_body=json.dumps(problem)))

    [receipt] = sender.send_batch([sms("k-1", "+15555550101")])

    assert receipt == SendReceipt(
        "k-1",
        ReceiptStatus.REJECTED,
        error="Invalid 'To' Phone Number: The number is not a valid phone number",
        error_code="21211",
    )


def test_a_429_with_error_20429_and_no_retry_after_has_no_retry_after(fake: FakeTwilio, sender: TwilioSender) -> None:
    fake.fail_next(rate_limited(retry_after=None))

    [receipt] = sender.send_batch([sms("k-1", "+15555550101")])

    assert receipt == SendReceipt("k-1", ReceiptStatus.RETRY, error="Too Many Requests", error_code="20429")


def test_a_retry_after_given_as_an_http_date_becomes_seconds_from_now(fake: FakeTwilio, sender: TwilioSender) -> None:
    in_two_minutes = format_datetime(utcnow() + timedelta(seconds=120), usegmt=True)
    fake.fail_next(rate_limited(retry_after=in_two_minutes))
    fake.fail_next(rate_limited(retry_after="Wed, 21 Oct 2015 07:28:00 GMT"))

    [first] = sender.send_batch([sms("k-1", "+15555550101")])
    [second] = sender.send_batch([sms("k-2", "+15555550102")])

    assert first.retry_after is not None
    assert 100 < first.retry_after <= 120
    assert second.retry_after == 0.0  # a date already past: retry now


def test_a_retry_after_that_is_not_a_number_or_a_date_is_ignored(fake: FakeTwilio, sender: TwilioSender) -> None:
    fake.fail_next(rate_limited(retry_after="soon"))

    [receipt] = sender.send_batch([sms("k-1", "+15555550101")])

    assert (receipt.status, receipt.retry_after) == (ReceiptStatus.RETRY, None)


def test_a_refused_connection_is_retry_and_the_rest_of_the_batch_is_not_attempted() -> None:
    sender = TwilioSender.from_settings(twilio_settings(), api_base_url=closed_port_url())

    receipts = sender.send_batch([sms("k-1", "+15555550101"), sms("k-2", "+15555550102")])

    assert receipts == [
        SendReceipt(
            "k-1", ReceiptStatus.RETRY, error="Twilio unreachable (ConnectionError)", error_code="connection_error"
        ),
        SendReceipt(
            "k-2",
            ReceiptStatus.RETRY,
            error="not attempted: an earlier message in the batch got connection_error "
            "(Twilio unreachable (ConnectionError))",
            error_code="not_attempted",
        ),
    ]


def test_a_call_that_outlasts_the_timeout_is_retry_with_code_timeout(fake: FakeTwilio) -> None:
    sender = TwilioSender(
        account_sid=ACCOUNT_SID,
        auth_token=SecretStr(AUTH_TOKEN),
        messaging_service_sid=MESSAGING_SERVICE_SID,
        timeout_seconds=0.2,
        api_base_url=fake.base_url,
    )
    fake.stall(5.0)

    receipts = sender.send_batch([sms("k-1", "+15555550101"), sms("k-2", "+15555550102")])

    assert [(receipt.status, receipt.error_code) for receipt in receipts] == [
        (ReceiptStatus.RETRY, "timeout"),
        (ReceiptStatus.RETRY, "not_attempted"),
    ]
    assert receipts[0].error == "no answer from Twilio in time (ReadTimeout)"
    assert len(fake.requests) == 1


def test_refused_credentials_are_retry_not_rejected_and_stop_the_batch(fake: FakeTwilio) -> None:
    sender = TwilioSender.from_settings(twilio_settings(twilio_auth_token="not-the-token"), api_base_url=fake.base_url)

    receipts = sender.send_batch([sms("k-1", "+15555550101"), sms("k-2", "+15555550102")])

    assert receipts[0] == SendReceipt(
        "k-1",
        ReceiptStatus.RETRY,
        error="Twilio refused the credentials (NUDGE_TWILIO_*): Authenticate",
        error_code="20003",
    )
    assert (receipts[1].status, receipts[1].error_code) == (ReceiptStatus.RETRY, "not_attempted")
    assert len(fake.requests) == 1


def test_an_empty_batch_calls_nobody(fake: FakeTwilio, sender: TwilioSender) -> None:
    assert sender.send_batch([]) == []
    assert fake.requests == []


def test_a_batch_over_max_batch_is_refused_before_anything_is_sent(fake: FakeTwilio, sender: TwilioSender) -> None:
    batch = [sms(f"k-{n}", "+15555550101") for n in range(MAX_BATCH + 1)]

    with pytest.raises(ValueError, match="at most 100 messages, got 101"):
        sender.send_batch(batch)

    assert fake.requests == []


# --- configuration and secrecy ---------------------------------------------------------------------------------


def test_the_sender_says_it_is_twilio_and_takes_a_hundred_at_a_time(sender: TwilioSender) -> None:
    assert (sender.provider, sender.max_batch) == (Provider.TWILIO, 100)


def test_from_settings_names_every_missing_twilio_setting() -> None:
    settings = twilio_settings(twilio_account_sid="", twilio_auth_token="", twilio_messaging_service_sid=" ")

    with pytest.raises(ServiceUnavailable) as raised:
        TwilioSender.from_settings(settings)

    assert raised.value.message == (
        "NUDGE_SMS_PROVIDER=twilio needs NUDGE_TWILIO_ACCOUNT_SID, NUDGE_TWILIO_AUTH_TOKEN, "
        "NUDGE_TWILIO_MESSAGING_SERVICE_SID"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"twilio_account_sid": "SK0123"}, "NUDGE_TWILIO_ACCOUNT_SID must be an account sid (AC…)"),
        (
            {"twilio_messaging_service_sid": "PN0123"},
            "NUDGE_TWILIO_MESSAGING_SERVICE_SID must be a Messaging Service sid (MG…)",
        ),
    ],
)
def test_a_sid_of_the_wrong_kind_fails_at_start(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ServiceUnavailable) as raised:
        TwilioSender.from_settings(twilio_settings(**changes))

    assert raised.value.message == message


def test_the_auth_token_never_appears_in_receipts_logs_errors_or_reprs(
    fake: FakeTwilio, sender: TwilioSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_to("+15555550102", OPTED_OUT)
    fake.fail_to("+15555550103", UNAVAILABLE)
    fake.fail_to("+15555550104", rate_limited())
    unreachable = TwilioSender.from_settings(twilio_settings(), api_base_url=closed_port_url())

    receipts = sender.send_batch([sms(f"k-{n}", f"+1555555010{n}") for n in range(1, 6)])
    receipts += unreachable.send_batch([sms("k-9", "+15555550109")])

    assert "twilio could not take message k-3 now" in caplog.text  # the logs were captured
    shown = [repr(sender), str(sender), repr(unreachable), repr(receipts), caplog.text]
    assert [AUTH_TOKEN in text for text in shown] == [False] * len(shown)
    assert fake.requests[0].password == AUTH_TOKEN  # it did travel, in the Basic-auth header only
