"""The SendGrid sender: the real SDK against the loopback fake of Mail Send. Exact request payloads, batching
by template (1,000 personalizations a request), receipts for every answer, and a key that never leaks."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr

from channels.ports import OutboundEmail, ReceiptStatus, SendReceipt
from channels.rendering import BrandValues, EmailDraftCopy, EmailTemplate, PersonalizedEmail, RecipientValues
from channels.sendgrid import SendGridSender
from core.errors import ServiceUnavailable
from core.models import Provider
from core.settings import EmailProvider, Settings
from tests.support.fake_sendgrid import INVALID_ADDRESS, FakeSendGrid

BRAND = BrandValues("Fablewave", "hello@fablewave.example.com", "100 Example Street, Anytown, CA 90000")
DRAFT = EmailDraftCopy(
    subject="Hi {{first_name}}",
    body_text="Hi {{first_name}}, from {{brand_name}}.\nUnsubscribe: {{unsubscribe_url}}",
    body_html='<p>Hi {{first_name}}, from {{brand_name}}.<br>Unsubscribe: <a href="{{unsubscribe_url}}">link</a></p>',
)
ONE_CLICK = "List-Unsubscribe=One-Click"
TRACKING = {
    "click_tracking": {"enable": False, "enable_text": False},
    "open_tracking": {"enable": True},
    "subscription_tracking": {"enable": False},
}


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


def settings_for(fake: FakeSendGrid, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "email_provider": EmailProvider.SENDGRID,
        "sendgrid_api_key": SecretStr(fake.api_key),
        "sendgrid_host": fake.host,
    }
    return Settings(**(values | overrides))


def sender_for(fake: FakeSendGrid, **overrides: Any) -> SendGridSender:
    return SendGridSender.from_settings(settings_for(fake, **overrides))


def unsubscribe(n: int) -> str:
    return f"https://fablewave.example.com/u/t{n}"


def rendered(
    count: int, *, names: tuple[str | None, ...] = ("Ana", None), campaign: str = "spring"
) -> list[PersonalizedEmail]:
    template = EmailTemplate.from_draft(DRAFT, BRAND, campaign_key=campaign, variant="v1")
    return [
        template.render(
            RecipientValues(names[n % len(names)], f"r{n}@example.com", unsubscribe_url=unsubscribe(n)), f"m-{n}"
        )
        for n in range(count)
    ]


def plain(key: str, address: str, subject: str = "Same subject") -> OutboundEmail:
    return OutboundEmail(
        message_key=key,
        to_address=address,
        subject=subject,
        body_text="Text",
        body_html="<p>HTML</p>",
        from_address="hello@fablewave.example.com",
        from_name="Fablewave",
        headers={"List-Unsubscribe": f"<https://fablewave.example.com/u/{key}>", "List-Unsubscribe-Post": ONE_CLICK},
        categories=("triggers",),
    )


def statuses(receipts: list[SendReceipt]) -> list[tuple[str, ReceiptStatus]]:
    return [(receipt.message_key, receipt.status) for receipt in receipts]


# --- the request ----------------------------------------------------------------------------------------------------


def test_a_batch_of_one_template_is_one_request_with_one_personalization_and_substitutions_each(
    fake: FakeSendGrid,
) -> None:
    sender = sender_for(fake, sendgrid_unsubscribe_group_id=4242)

    receipts = sender.send_batch(rendered(2))

    [request] = fake.requests
    assert (request.method, request.path, request.headers["authorization"]) == (
        "POST",
        "/v3/mail/send",
        "Bearer SG.test-key",
    )
    assert request.body == {
        "personalizations": [
            {
                "to": [{"email": "r0@example.com", "name": "Ana"}],
                "custom_args": {"message_key": "m-0"},
                "headers": {"List-Unsubscribe": f"<{unsubscribe(0)}>", "List-Unsubscribe-Post": ONE_CLICK},
                "substitutions": {
                    "-nudge.first_name-": "Ana",
                    "-nudge.unsubscribe_url-": unsubscribe(0),
                    "-nudge.first_name.html-": "Ana",
                    "-nudge.unsubscribe_url.html-": unsubscribe(0),
                },
            },
            {
                "to": [{"email": "r1@example.com"}],
                "custom_args": {"message_key": "m-1"},
                "headers": {"List-Unsubscribe": f"<{unsubscribe(1)}>", "List-Unsubscribe-Post": ONE_CLICK},
                "substitutions": {
                    "-nudge.first_name-": "there",
                    "-nudge.unsubscribe_url-": unsubscribe(1),
                    "-nudge.first_name.html-": "there",
                    "-nudge.unsubscribe_url.html-": unsubscribe(1),
                },
            },
        ],
        "from": {"email": "hello@fablewave.example.com", "name": "Fablewave"},
        "subject": "Hi -nudge.first_name-",
        "content": [
            {
                "type": "text/plain",
                "value": "Hi -nudge.first_name-, from Fablewave.\nUnsubscribe: -nudge.unsubscribe_url-",
            },
            {
                "type": "text/html",
                "value": "<p>Hi -nudge.first_name.html-, from Fablewave.<br>"
                'Unsubscribe: <a href="-nudge.unsubscribe_url.html-">link</a></p>',
            },
        ],
        "categories": ["spring", "v1"],
        "asm": {"group_id": 4242},
        "mail_settings": {"sandbox_mode": {"enable": False}},
        "tracking_settings": TRACKING,
    }
    assert receipts == [
        SendReceipt("m-0", ReceiptStatus.ACCEPTED, provider_message_id="fake-message-1"),
        SendReceipt("m-1", ReceiptStatus.ACCEPTED, provider_message_id="fake-message-1"),
    ]


def test_each_recipient_gets_exactly_the_rendered_email_once_sendgrid_substitutes(fake: FakeSendGrid) -> None:
    emails = rendered(3, names=("Ana & <Bo>", "Zoë", None))

    sender_for(fake).send_batch(emails)

    deliveries = fake.deliveries()
    assert [(d.to, d.subject, d.text, d.html) for d in deliveries] == [
        (e.to_address, e.subject, e.body_text, e.body_html) for e in emails
    ]
    assert [d.headers for d in deliveries] == [dict(e.headers) for e in emails]
    assert [d.custom_args for d in deliveries] == [
        {"message_key": "m-0"},
        {"message_key": "m-1"},
        {"message_key": "m-2"},
    ]
    assert emails[0].body_html == (
        f'<p>Hi Ana &amp; &lt;Bo&gt;, from Fablewave.<br>Unsubscribe: <a href="{unsubscribe(0)}">link</a></p>'
    )


def test_no_unsubscribe_group_means_no_asm_and_sandbox_mode_is_sent_as_a_boolean(fake: FakeSendGrid) -> None:
    receipts = sender_for(fake, sendgrid_sandbox=True).send_batch(rendered(1))

    [request] = fake.requests
    assert "asm" not in request.body
    assert request.body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    # In sandbox mode SendGrid answers 200 and delivers nothing: accepted, with no id to match events by.
    assert (request.status, receipts) == (200, [SendReceipt("m-0", ReceiptStatus.ACCEPTED)])
    assert fake.deliveries() == []


def test_plain_emails_share_a_request_only_when_their_content_is_identical(fake: FakeSendGrid) -> None:
    batch = [plain("a", "a@example.com"), plain("b", "b@example.com", "Other"), plain("c", "c@example.com")]

    receipts = sender_for(fake).send_batch(batch)

    assert [[p["custom_args"]["message_key"] for p in r.body["personalizations"]] for r in fake.requests] == [
        ["a", "c"],
        ["b"],
    ]
    first = fake.requests[0].body
    assert (first["subject"], first["content"], first["categories"]) == (
        "Same subject",
        [{"type": "text/plain", "value": "Text"}, {"type": "text/html", "value": "<p>HTML</p>"}],
        ["triggers"],
    )
    assert "substitutions" not in first["personalizations"][0]
    assert [(r.message_key, r.provider_message_id) for r in receipts] == [
        ("a", "fake-message-1"),
        ("b", "fake-message-2"),
        ("c", "fake-message-1"),
    ]


def test_an_email_altered_after_rendering_is_sent_as_it_stands(fake: FakeSendGrid) -> None:
    [email] = rendered(1)
    edited = replace(email, subject="Edited by hand")

    sender_for(fake).send_batch([edited])

    [request] = fake.requests
    assert request.body["subject"] == "Edited by hand"
    assert request.body["content"][0]["value"] == email.body_text
    assert "substitutions" not in request.body["personalizations"][0]


def test_an_empty_html_part_is_left_out(fake: FakeSendGrid) -> None:
    sender_for(fake).send_batch([replace(plain("a", "a@example.com"), body_html="")])

    assert fake.requests[0].body["content"] == [{"type": "text/plain", "value": "Text"}]


def test_an_empty_batch_makes_no_request(fake: FakeSendGrid) -> None:
    assert sender_for(fake).send_batch([]) == []
    assert fake.requests == []


# --- batching -------------------------------------------------------------------------------------------------------


def test_a_thousand_and_one_emails_of_one_template_are_two_requests_of_1000_and_1(fake: FakeSendGrid) -> None:
    emails = rendered(1001)

    receipts = sender_for(fake).send_batch(emails)

    assert [len(request.body["personalizations"]) for request in fake.requests] == [1000, 1]
    assert [receipt.message_key for receipt in receipts] == [f"m-{n}" for n in range(1001)]
    assert {receipt.provider_message_id for receipt in receipts[:1000]} == {"fake-message-1"}
    assert receipts[1000] == SendReceipt("m-1000", ReceiptStatus.ACCEPTED, provider_message_id="fake-message-2")
    assert len(fake.deliveries()) == 1001


def test_an_address_twice_in_a_batch_goes_in_separate_requests(fake: FakeSendGrid) -> None:
    batch = [plain("a", "same@example.com"), plain("b", "other@example.com"), plain("c", "SAME@example.com")]

    receipts = sender_for(fake).send_batch(batch)

    assert [[p["to"][0]["email"] for p in r.body["personalizations"]] for r in fake.requests] == [
        ["same@example.com", "other@example.com"],
        ["SAME@example.com"],
    ]
    assert {receipt.status for receipt in receipts} == {ReceiptStatus.ACCEPTED}


def test_templates_and_plain_emails_mixed_keep_their_receipts_in_order(fake: FakeSendGrid) -> None:
    spring, autumn = rendered(2), rendered(2, campaign="autumn")
    batch = [spring[0], plain("p", "p@example.com"), autumn[0], spring[1], autumn[1]]

    receipts = sender_for(fake).send_batch(batch)

    assert [receipt.message_key for receipt in receipts] == ["m-0", "p", "m-0", "m-1", "m-1"]
    assert [receipt.provider_message_id for receipt in receipts] == [
        "fake-message-1",
        "fake-message-2",
        "fake-message-3",
        "fake-message-1",
        "fake-message-3",
    ]


# --- what SendGrid answers ----------------------------------------------------------------------------------------


def test_a_429_is_retried_after_the_retry_after_seconds(fake: FakeSendGrid) -> None:
    fake.fail(429, headers={"Retry-After": "7"}, errors=[{"field": None, "message": "too many requests"}])

    receipts = sender_for(fake).send_batch(rendered(2))

    assert receipts == [
        SendReceipt(
            key, ReceiptStatus.RETRY, error="SendGrid 429: too many requests", error_code="429", retry_after=7.0
        )
        for key in ("m-0", "m-1")
    ]
    assert fake.deliveries() == []


def test_a_429_without_retry_after_waits_until_the_rate_limit_resets(fake: FakeSendGrid) -> None:
    fake.fail(429, headers={"X-RateLimit-Reset": "1000030"})
    sender = SendGridSender(fake.api_key, host=fake.host, clock=lambda: 1_000_000.0)

    [receipt] = sender.send_batch(rendered(1))

    assert (receipt.status, receipt.retry_after) == (ReceiptStatus.RETRY, 30.0)


def test_a_retry_after_given_as_a_date_is_the_seconds_until_then(fake: FakeSendGrid) -> None:
    fake.fail(503, headers={"Retry-After": "Thu, 01 Jan 2026 00:01:00 GMT"})
    sender = SendGridSender(fake.api_key, host=fake.host, clock=lambda: 1_767_225_600.0)  # 2026-01-01T00:00Z

    [receipt] = sender.send_batch(rendered(1))

    assert (receipt.status, receipt.error_code, receipt.retry_after) == (ReceiptStatus.RETRY, "503", 60.0)


def test_a_500_is_retried(fake: FakeSendGrid) -> None:
    fake.fail(500)

    receipts = sender_for(fake).send_batch(rendered(2))

    assert [(r.status, r.error, r.error_code, r.retry_after) for r in receipts] == [
        (ReceiptStatus.RETRY, "SendGrid 500: simulated 500", "500", None)
    ] * 2


def test_a_bad_request_rejects_the_whole_request_with_sendgrids_error_message(fake: FakeSendGrid) -> None:
    fake.fail(400, errors=[{"field": "from.email", "message": "The from address does not match a verified Sender."}])

    receipts = sender_for(fake).send_batch(rendered(2))

    assert receipts == [
        SendReceipt(
            key,
            ReceiptStatus.REJECTED,
            error="SendGrid 400: from.email: The from address does not match a verified Sender.",
            error_code="400",
        )
        for key in ("m-0", "m-1")
    ]
    assert len(fake.requests) == 1


def test_an_invalid_address_is_rejected_and_the_rest_of_its_request_is_sent_without_it(fake: FakeSendGrid) -> None:
    fake.refuse("r1@example.com")

    receipts = sender_for(fake).send_batch(rendered(3))

    assert statuses(receipts) == [
        ("m-0", ReceiptStatus.ACCEPTED),
        ("m-1", ReceiptStatus.REJECTED),
        ("m-2", ReceiptStatus.ACCEPTED),
    ]
    assert receipts[1] == SendReceipt(
        "m-1",
        ReceiptStatus.REJECTED,
        error=f"SendGrid 400: personalizations.1.to.0.email: {INVALID_ADDRESS}",
        error_code="400",
    )
    assert [request.status for request in fake.requests] == [400, 202]
    assert [d.to for d in fake.deliveries()] == ["r0@example.com", "r2@example.com"]


def test_refusals_that_keep_coming_leave_the_rest_to_retry_after_a_few_rounds(fake: FakeSendGrid) -> None:
    named = [{"field": "personalizations.0.to.0.email", "message": INVALID_ADDRESS}]
    fake.fail(400, times=3, errors=named)

    receipts = sender_for(fake).send_batch(rendered(4))

    assert statuses(receipts) == [
        ("m-0", ReceiptStatus.REJECTED),
        ("m-1", ReceiptStatus.REJECTED),
        ("m-2", ReceiptStatus.REJECTED),
        ("m-3", ReceiptStatus.RETRY),
    ]
    assert receipts[3].error == "not sent: SendGrid kept refusing other recipients of the same request"
    assert len(fake.requests) == 3


def test_a_wrong_key_is_rejected_with_sendgrids_message(fake: FakeSendGrid) -> None:
    sender = SendGridSender("SG.wrong-key", host=fake.host)

    [receipt] = sender.send_batch(rendered(1))

    assert (receipt.status, receipt.error_code) == (ReceiptStatus.REJECTED, "401")
    assert receipt.error == "SendGrid 401: The provided authorization grant is invalid, expired, or revoked"


def test_a_refused_connection_is_retried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = SendGridSender("SG.test-key", host=f"http://127.0.0.1:{port}")

    [receipt] = sender.send_batch(rendered(1))

    assert (receipt.status, receipt.error_code, receipt.provider_message_id) == (ReceiptStatus.RETRY, None, None)
    assert receipt.error is not None
    assert receipt.error.startswith("SendGrid unreachable: URLError(ConnectionRefusedError(111, 'Connection refused'))")


def test_an_answer_slower_than_the_timeout_is_retried(fake: FakeSendGrid) -> None:
    fake.stall(1.0)
    sender = SendGridSender(fake.api_key, host=fake.host, timeout=0.1)

    [receipt] = sender.send_batch(rendered(1))

    assert receipt.status is ReceiptStatus.RETRY
    assert receipt.error == "SendGrid unreachable: TimeoutError('timed out')"


# --- configuration and secrets --------------------------------------------------------------------------------------


def test_the_sender_is_built_from_settings_and_declares_its_provider_and_batch_size(fake: FakeSendGrid) -> None:
    sender = sender_for(fake)

    assert (sender.provider, sender.max_batch, sender.host) == (Provider.SENDGRID, 1000, fake.host)


def test_no_api_key_fails_at_start_with_the_setting_to_set() -> None:
    with pytest.raises(ServiceUnavailable, match="NUDGE_SENDGRID_API_KEY"):
        SendGridSender.from_settings(Settings(email_provider=EmailProvider.SENDGRID))


def test_the_api_key_appears_in_no_receipt_no_repr_and_no_log_line(
    fake: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = sender_for(fake)
    fake.fail(429, errors=[{"field": None, "message": f"echoing {fake.api_key}"}])
    fake.fail(500)

    receipts = [*sender.send_batch(rendered(1)), *sender.send_batch(rendered(1)), *sender.send_batch(rendered(1))]
    receipts += SendGridSender(fake.api_key, host="http://127.0.0.1:9").send_batch(rendered(1))

    assert [receipt.status for receipt in receipts] == [
        ReceiptStatus.RETRY,
        ReceiptStatus.RETRY,
        ReceiptStatus.ACCEPTED,
        ReceiptStatus.RETRY,
    ]
    assert receipts[0].error == "SendGrid 429: echoing [redacted]"
    assert caplog.records  # the SDK's DEBUG lines and ours were captured …
    assert fake.api_key not in caplog.text  # … and none holds the key
    assert "r0@example.com" not in caplog.text  # nor a payload with an address
    assert fake.api_key not in repr(receipts) + repr(sender)
