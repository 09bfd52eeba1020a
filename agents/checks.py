"""The checks a variant's answer must pass before it becomes a draft, each problem a message the model can act on.

``copy_problems`` (in ``agents.schemas``) holds the rules that need only the copy; this module adds
the ones that need the brief and the prompt: offers only from the brief, citations only of the
creative the variant was shown, no number the chosen offer does not back, no copy of an earlier
variant or of the worked example. ``DraftCheck`` is the shape of a further check (the guardrails
plug theirs in through ``draft_campaign(extra_checks=…)``).

The invented-number check is a first line of defence against LLM09 (misinformation: made-up
discounts, prices and durations), not the claims policy: it reads percentages ("20%", "20 percent"),
money ("$20", "€9.99", "20 USD", "20 dollars") and months ("3 months", "three-month") in every field,
and each must equal the value of one of the draft's offers of that kind (a ``percent_off`` offer backs
its percentage, ``amount_off`` its amount, ``free_months`` its months) or appear in that offer's name
or terms. It ignores currencies, dates, spelt-out percentages and amounts, and numbers of other kinds;
the guardrails' claims check on the rendered text is the complete one.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from agents.schemas import Brief, DraftOutput, OfferData, copy_problems
from core.claims import Claim, claims_in, spoken
from core.models import OfferKind

DraftCheck = Callable[[DraftOutput, Brief], list[str]]
"""A further check: the problems it finds with one variant's answer, as messages for the model (empty: none)."""

_WORDS = re.compile(r"\{\{[^{}]*\}\}|\w+")
_BACKED_BY_VALUE = {
    OfferKind.PERCENT_OFF: Claim.PERCENT,
    OfferKind.AMOUNT_OFF: Claim.MONEY,
    OfferKind.FREE_MONTHS: Claim.MONTHS,
}


def check_output(
    output: DraftOutput,
    brief: Brief,
    *,
    creative_labels: Sequence[str],
    earlier: Sequence[tuple[str, DraftOutput]] = (),
    extra_checks: Iterable[DraftCheck] = (),
) -> list[str]:
    """Every problem with one variant's answer, each once, in a stable order.

    Parameters
    ----------
    output : DraftOutput
        The parsed answer.
    brief : Brief
        The brief it answers.
    creative_labels : sequence of str
        The labels of the creative items the variant was shown (``c1``, ``c2`` …).
    earlier : sequence of (str, DraftOutput)
        Copy this answer must not repeat, each with a name for the message ("variant v1").
    extra_checks : iterable of DraftCheck
        Further checks, run after these.
    """
    problems = [
        *copy_problems(output, brief.channel),
        *offer_problems(output, brief),
        *citation_problems(output, creative_labels),
        *invented_numbers(output, brief),
        *duplicate_problems(output, earlier),
        *(problem for check in extra_checks for problem in check(output, brief)),
    ]
    return list(dict.fromkeys(problems))


def offer_problems(output: DraftOutput, brief: Brief) -> list[str]:
    """Offer codes the brief does not allow, and an end date promised for an offer without one."""
    allowed = ", ".join(offer.code for offer in brief.offers) or "the brief has none"
    problems = [
        f"offer_codes: {code!r} is not one of the brief's offers ({allowed})"
        for code in dict.fromkeys(output.offer_codes)
        if brief.offer(code) is None
    ]
    if "offer.expires" in output.slots_used() and any(offer.valid_until is None for offer in _chosen(output, brief)):
        problems.append("{{offer.expires}} is used but the chosen offer has no end date; do not mention one")
    return problems


def citation_problems(output: DraftOutput, creative_labels: Sequence[str]) -> list[str]:
    """Citations of creative the variant was not shown, or none at all when it was shown some."""
    shown = ", ".join(creative_labels) or "none were given"
    problems = [
        f"creative_ids: {label!r} is not one of the creative items given ({shown})"
        for label in dict.fromkeys(output.creative_ids)
        if label not in creative_labels
    ]
    if creative_labels and not output.creative_ids:
        problems.append(f"creative_ids: name the creative items you drew on ({shown})")
    return problems


def invented_numbers(output: DraftOutput, brief: Brief) -> list[str]:
    """Percentages, amounts and months in the copy that the draft's offers do not back (see the module doc)."""
    chosen = _chosen(output, brief)
    backed = {claim for offer in chosen for claim in _offer_claims(offer)}
    mentioned = {claim for text in output.copy_fields().values() for claim in claims_in(html.unescape(text))}
    offers = ", ".join(offer.code for offer in chosen)
    reason = (
        f"the chosen offer ({offers}) does not say so; quote only the offer's own numbers"
        if chosen
        else "offer_codes names none of the brief's offers; such numbers come only from an offer"
    )
    return [f"the copy mentions {spoken(kind, number)} but {reason}" for kind, number in sorted(mentioned - backed)]


def duplicate_problems(output: DraftOutput, earlier: Sequence[tuple[str, DraftOutput]]) -> list[str]:
    """Subjects and bodies with the same words as an earlier variant's or the example's (case and punctuation aside)."""
    problems = []
    for field in ("subject", "body_text", "sms_text"):
        mine = _normal(getattr(output, field))
        twin = next((name for name, other in earlier if mine and mine == _normal(getattr(other, field))), None)
        if twin is not None:
            problems.append(f"{field}: the same as {twin}'s; write one of your own for this variant's angle")
    return problems


def _chosen(output: DraftOutput, brief: Brief) -> list[OfferData]:
    return [offer for code in dict.fromkeys(output.offer_codes) if (offer := brief.offer(code)) is not None]


def _offer_claims(offer: OfferData) -> set[tuple[Claim, Decimal]]:
    backed = claims_in(f"{offer.name}\n{offer.terms}")
    if kind := _BACKED_BY_VALUE.get(offer.kind):
        backed.add((kind, offer.value))
    return backed


def _normal(text: str) -> str:
    # The same words and slots in the same order: a changed comma or capital does not make a new variant.
    return " ".join(_WORDS.findall(text.lower()))
