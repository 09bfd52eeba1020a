"""Benchmark: the guardrails' non-LLM checks on rendered messages, as the workers re-run them at send time.

Renders the sample brand's finished e-mail and SMS drafts for N generated recipients (the drafts' slots
filled with each recipient's name, e-mail or phone, the offer and per-recipient unsubscribe links), then
runs every rule (``guardrails.service.check``) on each and prints checks per second per channel, and how
many messages had a finding (there should be none: the messages are clean).

Not a test: it prints figures (``make bench``). Target: ≥ 1,000 checks/s, so re-checking costs nothing.

    .venv/bin/python bench/guardrails.py [--messages 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.layout import EMAIL_FOOTER, html_from_text, with_sms_frame  # noqa: E402
from core.models import Channel, OfferKind  # noqa: E402
from guardrails.context import BrandRules, CatalogOffer, CheckContext, Message, RecipientData  # noqa: E402
from guardrails.service import check  # noqa: E402

BRAND = ROOT / "data" / "samples" / "brand"
BODY = (
    "Hi {{first_name}},\n\nThank you for staying with {{brand_name}}. As a thank-you, take {{offer.name}} "
    "with code {{offer.code}} when you next pay.\n\nClaim it here: {{offer.url}}\n\n"
    "Questions? Just reply: a real person reads every message.\n\nThe {{brand_name}} team\n\n" + EMAIL_FOOTER
)
SMS = with_sms_frame("{{first_name}}, thanks for staying with us. Take {{offer.name}} with code {{offer.code}}")
COUNTRIES = (("US", "NY"), ("US", "FL"), ("CA", "ON"), ("DE", None), ("GB", None))


def catalog() -> dict[str, CatalogOffer]:
    items = json.loads((BRAND / "offers.json").read_text())
    items = items["offers"] if isinstance(items, dict) else items
    return {
        item["code"]: CatalogOffer(
            code=item["code"],
            name=item["name"],
            kind=OfferKind(item["kind"]),
            value=Decimal(str(item["value"])),
            currency=item.get("currency"),
            terms=item.get("terms", ""),
        )
        for item in items
    }


def fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace(f"{{{{{name}}}}}", value)
    return template


def rendered(channel: Channel, number: int, brand: BrandRules, offers: dict[str, CatalogOffer]) -> Message:
    offer = offers["LOYAL20"]
    unsubscribe = f"https://fablewave.example.com/u/{number:08x}"
    values = {
        "first_name": f"Sam{number % 97}",
        "brand_name": brand.brand_name,
        "offer.name": offer.name,
        "offer.code": offer.code,
        "offer.url": f"https://fablewave.example.com/o/LOYAL20?r={number}",
        "unsubscribe_url": unsubscribe,
        "postal_address": brand.postal_address,
        "sms_opt_out": "Reply STOP to opt out",
    }
    if channel is Channel.SMS:
        return Message(channel, sms_text=fill(SMS, values), offer_codes=("LOYAL20",), rendered=True)
    text = fill(BODY, values)
    return Message(
        channel,
        subject=fill("A thank-you from us, {{first_name}}", values),
        preheader=fill("Your offer: {{offer.name}}, code {{offer.code}}.", values),
        body_text=text,
        body_html=fill(html_from_text(BODY), values),
        offer_codes=("LOYAL20",),
        rendered=True,
        from_name=brand.brand_name,
        from_address=brand.sender_address,
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )


def recipient(number: int) -> RecipientData:
    country, region = COUNTRIES[number % len(COUNTRIES)]
    return RecipientData(
        email=f"customer{number}@example.org", phone=f"+1202555{number % 10_000:04d}", country=country, region=region
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="Messages per channel.")
    args = parser.parse_args()
    brand, offers = BrandRules.load(BRAND / "rules.json"), catalog()
    now = datetime(2026, 11, 21, 15, tzinfo=UTC)
    for channel in (Channel.EMAIL, Channel.SMS):
        work = [
            (rendered(channel, n, brand, offers), CheckContext(offers, brand, now, recipient(n)))
            for n in range(args.messages)
        ]
        started = time.perf_counter()
        reports = [check(message, context) for message, context in work]
        elapsed = time.perf_counter() - started
        flagged = sum(bool(report.findings) for report in reports)
        print(
            f"{channel.value:<5} {args.messages:,} rendered messages in {elapsed:.2f} s: "
            f"{args.messages / elapsed:,.0f} checks/s ({elapsed / args.messages * 1e3:.2f} ms each); "
            f"{flagged} with findings"
        )


if __name__ == "__main__":
    main()
