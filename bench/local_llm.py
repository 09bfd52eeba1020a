"""Benchmark: the offline drafting path end to end — Gemma 3 270M (llama.cpp) writing checked drafts.

Runs the real drafting agent (``agents.drafting.draft_campaign``) with the local model, retrieving from
the sample brand's creative library (indexed in memory with the local embeddings), the agent's checks
and the guardrails in its repair loop, on ``--briefs`` e-mail and SMS briefs with the sample catalog's
offers. No cache: every call reaches the model. Prints, per variant, attempts, tokens, seconds and
whether it passed; then drafts per minute (passing drafts over wall time), LLM calls per minute, tokens
per passing draft, and the pass rate.

Not a test: it prints figures (``make bench``). Timings depend on how busy the CPU is.

    .venv/bin/python bench/local_llm.py [--briefs 2] [--variants 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.drafting import draft_campaign  # noqa: E402
from agents.embeddings import LocalEmbeddings  # noqa: E402
from agents.evaluation import library_from_folder  # noqa: E402
from agents.llm import LocalLlm  # noqa: E402
from agents.ports import LlmRequest, LlmResult  # noqa: E402
from agents.retrieval import VectorRetriever  # noqa: E402
from agents.schemas import Brief, Goal, OfferData, RiskBand, SegmentProfile  # noqa: E402
from campaigns.guarding import GuardedRetriever, repair_check  # noqa: E402
from core.errors import ValidationFailed  # noqa: E402
from core.models import Channel, OfferKind  # noqa: E402
from core.settings import Settings  # noqa: E402
from guardrails.context import BrandRules, CatalogOffer, CheckContext  # noqa: E402

BRAND = ROOT / "data" / "samples" / "brand"
OFFERS = (
    OfferData(code="LOYAL20", name="20% off the monthly bill for 3 months", kind=OfferKind.PERCENT_OFF,
              value=Decimal(20), currency="USD", terms="Applies to the next 3 monthly bills."),
    OfferData(code="TECHCARE", name="Tech Care add-on free for 6 months", kind=OfferKind.FREE_MONTHS,
              value=Decimal(6), terms="Free for 6 months, then at the list price unless removed."),
)  # fmt: skip
SEGMENTS = (
    SegmentProfile(name="Month-to-month fiber, high risk", size=656, churn_risk=RiskBand.HIGH,
                   avg_tenure_months=9, avg_monthly_charges=Decimal("88.40"), currency="USD",
                   top_plans=("Fiber optic", "Month-to-month")),
    SegmentProfile(name="Lapsed CD buyers", size=420, churn_risk=RiskBand.MEDIUM, avg_orders=3.2,
                   avg_order_value=Decimal("41.10"), avg_days_since_last_order=180, currency="USD",
                   top_categories=("Jazz", "Rock")),
)  # fmt: skip


@dataclass
class TimedLlm:
    """The local model, timing and counting each call."""

    inner: LocalLlm
    seconds: float = 0.0
    calls: int = 0

    @property
    def provider(self) -> str:
        return self.inner.provider

    def complete(self, request: LlmRequest) -> LlmResult:
        started = time.perf_counter()
        try:
            return self.inner.complete(request)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def briefs(count: int, variants: int) -> list[Brief]:
    channels = (Channel.EMAIL, Channel.SMS)
    return [
        Brief(
            campaign_key=f"bench-{number}",
            goal=Goal.RETENTION,
            segment=SEGMENTS[number % len(SEGMENTS)],
            channel=channels[number % len(channels)],
            tone="warm, direct",
            n_variants=variants,
            offers=OFFERS,
        )
        for number in range(count)
    ]


def context() -> CheckContext:
    catalog = {
        offer.code: CatalogOffer(offer.code, offer.name, offer.kind, offer.value, offer.currency, offer.terms)
        for offer in OFFERS
    }
    return CheckContext(catalog, BrandRules.load(BRAND / "rules.json"), datetime.now(UTC))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--briefs", type=int, default=2, help="Briefs, alternating e-mail and SMS.")
    parser.add_argument("--variants", type=int, default=2, help="Variants per brief.")
    args = parser.parse_args()
    store, rates = library_from_folder(BRAND, LocalEmbeddings())
    llm = TimedLlm(LocalLlm.from_settings(Settings()))
    passed, failed, tokens = 0, 0, 0
    started = time.perf_counter()
    for brief in briefs(args.briefs, args.variants):
        retriever = GuardedRetriever.around(VectorRetriever(store, rates=rates))
        checks = [repair_check(context(), retriever)]
        try:
            drafted = draft_campaign(brief, retriever=retriever, llm=llm, extra_checks=checks)
        except ValidationFailed as error:
            print(f"{brief.campaign_key} ({brief.channel}): every variant failed: {error.message[:300]}")
            failed += brief.n_variants
            continue
        for draft in drafted.drafts:
            tokens += draft.usage.prompt_tokens + draft.usage.completion_tokens
            print(f"{brief.campaign_key} {draft.variant} ({brief.channel}): passed after {draft.attempts} attempt(s), "
                  f"{draft.usage.prompt_tokens}+{draft.usage.completion_tokens} tokens")  # fmt: skip
        for variant in drafted.failed:
            print(f"{brief.campaign_key} {variant.variant} ({brief.channel}): failed after {variant.attempts} "
                  f"attempts: {'; '.join(variant.problems)[:200]}")  # fmt: skip
        passed += len(drafted.drafts)
        failed += len(drafted.failed)
    elapsed = time.perf_counter() - started
    print(
        f"\n{passed} of {passed + failed} variants passed in {elapsed:.0f} s: {passed / elapsed * 60:.2f} passing "
        f"drafts/min; {llm.calls} LLM calls ({llm.calls / llm.seconds * 60:.1f}/min while generating); "
        f"{tokens / max(passed, 1):,.0f} tokens per passing draft (prompt + completion, repairs included)"
    )


if __name__ == "__main__":
    main()
