"""Messages rendered, and handed to the provider, per second: one process, into the loopback SendGrid fake.

E-mail: N recipients rendered from one draft (the sample brand's layout, every slot placed), then the same
N rendered and sent through ``SendGridSender`` (the real SDK, batches of 1,000, one request each) to the
fake of Mail Send running in a thread of this process, which parses and checks every request: the
end-to-end figure includes the fake's work, on the same cores. SMS: N texts rendered and priced, then
rendered and sent through ``TwilioSender`` (the real SDK: one HTTP call per text) to the Twilio fake. Best of 3.
Not a test: it prints figures (``make bench``).

    .venv/bin/python bench/channels.py [N]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.layout import finish  # noqa: E402
from agents.schemas import DraftOutput  # noqa: E402
from channels.ports import ReceiptStatus  # noqa: E402
from channels.rendering import EmailTemplate, OfferValues, RecipientValues, SmsTemplate  # noqa: E402
from channels.sendgrid import SendGridSender  # noqa: E402
from channels.twilio import TwilioSender  # noqa: E402
from core.models import Channel  # noqa: E402
from core.settings import SAMPLE_BRAND_RULES  # noqa: E402
from guardrails.context import BrandRules  # noqa: E402
from tests.support.fake_sendgrid import FakeSendGrid  # noqa: E402
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID, FakeTwilio  # noqa: E402

RECIPIENTS = 10_000
BATCH = 1000
OFFER = OfferValues(
    "LOYAL20",
    "20% off the monthly bill for 3 months",
    terms="20% off your monthly plan charge for 3 consecutive bills. Month-to-month plans only; one per account.",
    valid_until=datetime(2027, 4, 1, 4, 59, 59, tzinfo=UTC),
)
EMAIL = DraftOutput(
    subject="A thank-you for staying with us, {{first_name}}",
    preheader="{{offer.name}} with code {{offer.code}}",
    body_text=(
        "Hi {{first_name}},\n\nThank you for being with {{brand_name}}. As a thank-you, here is {{offer.name}}: "
        "use code {{offer.code}} by {{offer.expires}}.\n\nClaim it here: {{offer.url}}\n\n{{offer.terms}}\n\n"
        "The {{brand_name}} team"
    ),
)
SMS = DraftOutput(sms_text="{{first_name}}, {{offer.name}} with code {{offer.code}}: {{offer.url}}")


def recipients(count: int) -> list[RecipientValues]:
    return [
        RecipientValues(
            first_name=None if n % 10 == 0 else f"Name{n}",
            email=f"customer-{n}@example.com",
            phone=f"+1555{n:07d}",
            unsubscribe_url=f"https://fablewave.example.com/u/{n:08d}.c2lnbmVkLXRva2VuLWZvci1yZWNpcGllbnQ",
        )
        for n in range(count)
    ]


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else RECIPIENTS
    brand = BrandRules.load(SAMPLE_BRAND_RULES)
    people = recipients(count)
    offer_url = "https://fablewave.example.com/o/LOYAL20"
    email = EmailTemplate.from_draft(
        finish(EMAIL, Channel.EMAIL), brand, OFFER, campaign_key="bench", variant="v1", offer_url=offer_url
    )
    sms = SmsTemplate.from_draft(
        finish(SMS, Channel.SMS), brand, OFFER, segment_price=Decimal("0.0083"), offer_url=offer_url
    )

    compile_seconds = best_of(
        3, lambda: EmailTemplate.from_draft(finish(EMAIL, Channel.EMAIL), brand, OFFER, campaign_key="b")
    )
    render_seconds = best_of(3, lambda: [email.render(person, f"m-{n}") for n, person in enumerate(people)])
    print(f"e-mail compile: {compile_seconds * 1000:.2f} ms per draft")
    print(f"e-mail render: {count / render_seconds:,.0f} e-mails/s ({count:,} recipients, one compiled template)")

    with FakeSendGrid() as fake:
        sender = SendGridSender(fake.api_key, host=fake.host)

        def render_and_send() -> None:
            for start in range(0, count, BATCH):
                batch = [
                    email.render(person, f"m-{start + n}") for n, person in enumerate(people[start : start + BATCH])
                ]
                receipts = sender.send_batch(batch)
                assert all(receipt.status is ReceiptStatus.ACCEPTED for receipt in receipts)

        end_to_end = best_of(3, render_and_send)
        request_bytes = len(json.dumps(fake.requests[0].body).encode())
        requests = len(fake.requests) // 3
    print(
        f"e-mail render + send through SendGridSender into the fake: {count / end_to_end:,.0f} messages/s "
        f"({requests} requests of up to {BATCH:,}; {request_bytes / 1e6:.2f} MB a full request)"
    )

    texts = best_of(3, lambda: [sms.render(person, f"s-{n}") for n, person in enumerate(people)])
    sample = sms.render(people[1], "s-1")
    print(
        f"SMS render and price: {count / texts:,.0f} texts/s "
        f"({sample.segments} segment, {sample.size.encoding}, ${sample.cost} each)"
    )
    texts_sent = min(count, 2000)  # one HTTP call each: fewer, so the run stays short
    with FakeTwilio() as fake_twilio:
        twilio = TwilioSender(
            account_sid=ACCOUNT_SID,
            auth_token=SecretStr(AUTH_TOKEN),
            messaging_service_sid=MESSAGING_SERVICE_SID,
            api_base_url=fake_twilio.base_url,
        )

        def render_and_text() -> None:
            for start in range(0, texts_sent, twilio.max_batch):
                chunk = people[start : min(start + twilio.max_batch, texts_sent)]
                batch = [sms.render(person, f"s-{start + n}").message for n, person in enumerate(chunk)]
                assert all(r.status is ReceiptStatus.ACCEPTED for r in twilio.send_batch(batch))

        sms_seconds = best_of(3, render_and_text)
    print(
        f"SMS render + send through TwilioSender into the fake: {texts_sent / sms_seconds:,.0f} texts/s "
        f"({texts_sent:,} texts, one request each)"
    )


if __name__ == "__main__":
    main()
