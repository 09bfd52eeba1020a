"""SMS compliance and cost rules: brand prefix, STOP wording, segments and encoding, no public URL shorteners
(CTIA and carrier rules, TCPA; compliance reference §1.3, §1.10, §2.1).

Each rule reads a draft or a rendered message. In a draft (``rendered=False``) the brand prefix and the
opt-out wording are met by their slots (``{{brand_name}}:``, ``{{sms_opt_out}}``), and a draft is measured
with every slot filled by its reserved length (``SLOT_RESERVE``), so the filled message still fits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from core.sms import GSM7_BASIC, GSM7_EXTENSION, SmsSize, normalize_typography, sms_size
from guardrails.context import CheckContext, Message
from guardrails.report import Finding, Severity
from guardrails.rule import SMS, Rule

BRAND_SLOT = "{{brand_name}}"
OPT_OUT_SLOT = "{{sms_opt_out}}"
# Characters kept for each slot's value when a draft is measured. The same figures as the drafting agent's
# ``agents.schemas.SLOTS`` reserves (guardrails may not import agents; a test keeps the two equal).
SLOT_RESERVE: Mapping[str, int] = MappingProxyType(
    {
        "first_name": 20,
        "brand_name": 24,
        "offer.name": 40,
        "offer.code": 16,
        "offer.terms": 300,
        "offer.expires": 18,
        "offer.url": 40,
        "unsubscribe_url": 80,
        "postal_address": 100,
        "sms_opt_out": 24,
        "cart_items": 300,
    }
)
UNKNOWN_SLOT_EXTRA = 4  # an unknown slot keeps its name's length and this much more
# (single-segment, per-segment-when-split) capacity per encoding, in that encoding's units (ref §2.1).
CAPACITY: Mapping[str, tuple[int, int]] = MappingProxyType({"GSM-7": (160, 153), "UCS-2": (70, 67)})
SHORTENERS = ("bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly")

_SLOT = re.compile(r"\{\{([^{}]*)\}\}")
_OPT_OUT = re.compile(r"\b(?:reply|text)\s+stop\b|\bstop\s+to\s+(?:opt[\s-]*out|end|unsubscribe)\b", re.IGNORECASE)
_SHORT_LINK = re.compile(
    r"(?<![\w.@/-])(?:https?://)?(?:www\.)?(?:" + "|".join(map(re.escape, SHORTENERS)) + r")(?![\w-]|\.\w)(?:/\S*)?",
    re.IGNORECASE,
)
_TRAILING_PUNCTUATION = ".,;:!?)]'\""


def reserve(name: str) -> int:
    """Characters a slot named ``name`` is measured with in a draft."""
    return SLOT_RESERVE.get(name, len(name) + UNKNOWN_SLOT_EXTRA)


def measured_text(message: Message) -> str:
    """The text the segment count is taken on: a rendered SMS as it is; a draft with each slot as reserved x's."""
    if message.rendered:
        return message.sms_text
    return _SLOT.sub(lambda match: "x" * reserve(match.group(1)), message.sms_text)


def non_gsm(text: str) -> list[str]:
    """The characters of ``text`` outside GSM-7, each once, in order of appearance."""
    return list(dict.fromkeys(char for char in text if char not in GSM7_BASIC and char not in GSM7_EXTENSION))


def named(char: str) -> str:
    """A character as a reader can spot it, invisible ones included: ``'’' (U+2019)``."""
    return f"{char!r} (U+{ord(char):04X})"


def capacity(encoding: str, segments: int) -> int:
    """How many units of ``encoding`` fit in ``segments`` segments."""
    single, multi = CAPACITY[encoding]
    if segments <= 0:
        return 0
    return single if segments == 1 else segments * multi


# --- sms.brand_identified ---------------------------------------------------------------------------------


def check_brand_identified(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """The SMS starts with the brand and a colon: ``{{brand_name}}:`` in a draft, ``Fablewave:`` once rendered.

    A draft may also write the brand out; the brand's case does not matter.
    """
    brand = f"{context.brand.brand_name}:".casefold()
    text = message.sms_text.lstrip().casefold()
    if text.startswith(brand) or (not message.rendered and text.startswith(f"{BRAND_SLOT}:")):
        return
    lead = f"{context.brand.brand_name}: " if message.rendered else f"{BRAND_SLOT}: "
    yield rule.finding(
        "the SMS does not start with the brand name",
        field="sms_text",
        hint=f"start the text with {lead!r}",
    )


# --- sms.opt_out_language ---------------------------------------------------------------------------------


def check_opt_out_language(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """The SMS tells how to opt out: ``{{sms_opt_out}}`` in a draft, or words such as "Reply STOP to opt out".

    Once rendered only the words count ("Reply STOP", "Text STOP", "STOP to opt out|end|unsubscribe", any case).
    """
    if _OPT_OUT.search(message.sms_text) or (not message.rendered and OPT_OUT_SLOT in message.sms_text):
        return
    wording = "Reply STOP to opt out" if message.rendered else OPT_OUT_SLOT
    yield rule.finding(
        "the SMS does not say how to opt out",
        field="sms_text",
        hint=f"end the text with {wording!r}",
    )


# --- sms.segments -----------------------------------------------------------------------------------------


def check_segments(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """The SMS takes at most ``context.max_sms_segments`` segments (a draft with its slots filled by their reserves).

    Twilio bills every segment, so the finding prices the message per recipient.
    """
    size = sms_size(measured_text(message))
    limit = context.max_sms_segments
    if size.segments <= limit:
        return
    filled = "" if message.rendered else ", slots filled with their reserved lengths"
    cost = size.segments * context.sms_segment_price
    yield rule.finding(
        f"the SMS takes {size.segments} segments ({size.units} {size.encoding} characters{filled}); the limit is "
        f"{limit}: {size.segments} × {context.sms_segment_price} = {cost} USD per recipient",
        field="sms_text",
        hint=_segments_hint(message, size, limit),
    )


def _segments_hint(message: Message, size: SmsSize, limit: int) -> str:
    if size.encoding == "GSM-7":
        return f"cut at least {_characters(size.units - capacity('GSM-7', limit))}"
    odd = non_gsm(_sent_characters(message))
    as_gsm = sms_size(_as_gsm(measured_text(message)))
    hint = (
        f"replace {', '.join(named(char) for char in odd)} with GSM-7 characters: they make the whole message UCS-2; "
        f"in GSM-7 it would take {as_gsm.segments} segments"
    )
    if as_gsm.segments > limit:
        hint += f", so also cut at least {_characters(as_gsm.units - capacity('GSM-7', limit))}"
    return hint


def _characters(count: int) -> str:
    return f"{count} character{'' if count == 1 else 's'}"


def _as_gsm(text: str) -> str:
    # Typography has plain equivalents; anything else (an emoji) is counted as one GSM-7 character in its place.
    plain = normalize_typography(text)
    return "".join(char if char in GSM7_BASIC or char in GSM7_EXTENSION else "?" for char in plain)


# --- sms.encoding -----------------------------------------------------------------------------------------


def check_encoding(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """The SMS is GSM-7: one character outside it makes the whole message UCS-2, which roughly halves the
    characters per segment (70/67 instead of 160/153) and so roughly doubles the cost of a long message."""
    sent = _sent_characters(message)
    odd = non_gsm(sent)
    if not odd:
        return
    start = sent.index(odd[0])
    yield rule.finding(
        f"the SMS is UCS-2 because of {', '.join(named(char) for char in odd)}: a segment then holds 70 characters "
        "(67 when split) instead of 160 (153), about half as many",
        field="sms_text",
        span=(start, start + 1),
        excerpt=odd[0],
        hint="; ".join(_replacement(char) for char in odd),
    )


def _sent_characters(message: Message) -> str:
    # A draft's slot names are never sent; blanking them keeps every other character at its offset.
    if message.rendered:
        return message.sms_text
    return _SLOT.sub(lambda match: " " * len(match.group()), message.sms_text)


def _replacement(char: str) -> str:
    plain = normalize_typography(char)
    if plain != char:
        return f"replace {named(char)} with {plain!r}"
    return f"remove {named(char)} or replace it with a GSM-7 character"


# --- sms.link_shortener -----------------------------------------------------------------------------------


def check_link_shortener(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """The SMS links through no public URL shortener (bit.ly, tinyurl.com, t.co …).

    Carriers filter public shorteners, which spammers share (ref §1.10 step 6; marked UNVERIFIED there as a
    carrier preference, hence a warning). A branded link on the brand's own domain is the alternative.
    """
    for match in _SHORT_LINK.finditer(message.sms_text):
        link = match.group().rstrip(_TRAILING_PUNCTUATION)
        yield rule.finding(
            "the SMS links through a public URL shortener, which carriers filter",
            field="sms_text",
            span=(match.start(), match.start() + len(link)),
            excerpt=link,
            hint="link to the brand's own domain instead, such as {{offer.url}}",
        )


SMS_RULES: tuple[Rule, ...] = (
    Rule(
        id="sms.brand_identified",
        severity=Severity.BLOCK,
        channels=SMS,
        summary="The SMS starts with the brand name and a colon ({{brand_name}}: in a draft).",
        source="CTIA sender identification, carrier vetting (ref §1.3)",
        check=check_brand_identified,
    ),
    Rule(
        id="sms.opt_out_language",
        severity=Severity.BLOCK,
        channels=SMS,
        summary="The SMS says how to opt out ({{sms_opt_out}} in a draft; 'Reply STOP to opt out' once rendered).",
        source="CTIA STOP handling, TCPA T5, CASL K4 (ref §1.2, §1.3, §1.4)",
        check=check_opt_out_language,
    ),
    Rule(
        id="sms.segments",
        severity=Severity.BLOCK,
        channels=SMS,
        summary="The SMS takes at most the allowed number of segments (default 2), its slots filled by their reserves.",
        source="Pre-send gate step 8, Twilio per-segment billing (ref §1.10, §2.1)",
        check=check_segments,
    ),
    Rule(
        id="sms.encoding",
        severity=Severity.WARN,
        channels=SMS,
        summary="The SMS is GSM-7: no character (emoji, curly quote, em dash) switches it to UCS-2.",
        source="Segment rules: UCS-2 is 70/67 characters per segment (ref §2.1)",
        check=check_encoding,
    ),
    Rule(
        id="sms.link_shortener",
        severity=Severity.WARN,
        channels=SMS,
        summary="The SMS links through no public URL shortener (bit.ly, tinyurl.com, t.co …).",
        source="Pre-send gate step 6, carrier filtering (ref §1.10, UNVERIFIED)",
        check=check_link_shortener,
    ),
)
