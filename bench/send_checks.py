"""Send-time checks per second (``guardrails.sendtime.check_send``), pure, no database.

100,000 recipients drawn like the sample data (places and time zones of ``audience.generated_contacts``, 10 %
without a time zone, SMS and e-mail, a few recent sends each), checked at noon and at 03:00 New York time
(where most texts are deferred, the slower path). Best of 3. Not a test: it prints figures (``make bench``).

    .venv/bin/python bench/send_checks.py
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audience.generated_contacts import PLACES  # noqa: E402
from core.models import Channel, ConsentBasis, ConsentPurpose, ConsentStatus  # noqa: E402
from guardrails.sendtime import ConsentRecord, Recipient, SendPolicy, check_send  # noqa: E402

RECIPIENTS = 100_000
NOON_NEW_YORK = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
THREE_AM_NEW_YORK = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)


def recipients(count: int, seed: int = 7) -> list[Recipient]:
    chooser = random.Random(seed)
    consent = ConsentRecord(
        ConsentStatus.GRANTED, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS_WRITTEN, datetime(2025, 1, 1, tzinfo=UTC)
    )
    drawn = []
    for number in range(count):
        place = chooser.choices(PLACES, weights=[place.weight for place in PLACES])[0]
        channel = Channel.SMS if chooser.random() < 0.5 else Channel.EMAIL
        sends = tuple(NOON_NEW_YORK - timedelta(hours=chooser.uniform(1, 200)) for _ in range(chooser.randrange(3)))
        drawn.append(
            Recipient(
                customer_id=number,
                channel=channel,
                address=f"customer-{number}",
                country=place.country,
                region=place.region,
                time_zone=None if chooser.random() < 0.1 else place.time_zone,
                consent=consent,
                recent_sends=sends,
            )
        )
    return drawn


def checks_per_second(batch: list[Recipient], now: datetime, policy: SendPolicy) -> tuple[float, dict[str, int]]:
    best = float("inf")
    verdicts: dict[str, int] = {}
    for _ in range(3):
        started = time.perf_counter()
        decisions = [check_send(recipient, now, policy) for recipient in batch]
        best = min(best, time.perf_counter() - started)
        verdicts = {}
        for decision in decisions:
            verdicts[decision.verdict.value] = verdicts.get(decision.verdict.value, 0) + 1
    return len(batch) / best, verdicts


def main() -> None:
    batch, policy = recipients(RECIPIENTS), SendPolicy()
    for label, now in (("noon in New York", NOON_NEW_YORK), ("03:00 in New York", THREE_AM_NEW_YORK)):
        rate, verdicts = checks_per_second(batch, now, policy)
        print(f"check_send at {label}: {rate:,.0f} checks/s over {len(batch):,} recipients; {verdicts}")
    texts = [replace(recipient, channel=Channel.SMS) for recipient in batch[:20_000]]
    rate, verdicts = checks_per_second(texts, THREE_AM_NEW_YORK, policy)
    print(f"check_send, texts only at 03:00 in New York: {rate:,.0f} checks/s; {verdicts}")


if __name__ == "__main__":
    main()
