"""Content rules on every channel: offers and figures from the catalog only, no personal data but the
recipient's own, no banned claims or words, the brand's sign-off and tone, well-formed slots, and links
only to the brand's domains (pre-send gate step 7 and OWASP LLM02/LLM05/LLM09; compliance reference
§1.10, §8, §9).

Each rule reads a draft (``rendered=False``: ``{{slots}}`` unfilled) or a rendered message (slots
filled for ``context.recipient``). Text rules read every text field; ``body_html`` is read as a reader
sees it (tags as spaces, entities decoded; ``guardrails.injection.unescaped``), and every finding's
span and excerpt are in the field as given, so ``field_text[start:end] == excerpt``. The HTML body is an
alternative of the text body, so a problem in the text usually shows in both and is reported for both.

``KNOWN_SLOTS`` repeats the drafting agent's slot names (guardrails may not import agents; a test keeps
them equal to ``agents.schemas.SLOTS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache, lru_cache
from urllib.parse import urlsplit

from core.claims import Claim, find_claims, spoken
from core.models import OfferKind
from guardrails.context import CatalogOffer, CheckContext, Message, is_own_link, is_within
from guardrails.injection import EMAIL_PATTERN, URL_PATTERN, MappedText, folded, unescaped
from guardrails.report import Finding, Severity
from guardrails.rule import ALL_CHANNELS, EMAIL, Rule

KNOWN_SLOTS: tuple[str, ...] = (
    "first_name",
    "brand_name",
    "offer.name",
    "offer.code",
    "offer.terms",
    "offer.expires",
    "offer.url",
    "unsubscribe_url",
    "postal_address",
    "sms_opt_out",
    "cart_items",
)
LINK_SLOTS: tuple[str, ...] = ("offer.url", "unsubscribe_url")
# Capitals that are names, not shouting: channel words, carrier keywords (CTIA), currencies, formats.
ACRONYMS = frozenset(
    {
        "SMS", "MMS", "STOP", "HELP", "INFO", "START", "UNSTOP", "QUIT", "CANCEL", "END", "STOPALL", "UNSUBSCRIBE",
        "FAQ", "USD", "EUR", "GBP", "CAD", "TV", "HDTV", "DVD", "CD", "CDS", "DVR", "HTTP", "HTTPS", "HTML", "URL",
        "WIFI", "LTE", "USB", "HDMI", "RSVP", "PDF",
    }
)  # fmt: skip
_BACKED_BY_VALUE = {
    OfferKind.PERCENT_OFF: Claim.PERCENT,
    OfferKind.AMOUNT_OFF: Claim.MONEY,
    OfferKind.FREE_MONTHS: Claim.MONTHS,
}
_AFTER_CODE = re.compile(r"\b(?i:codes?)\b\s*:?\s*[\"'“]?(?=[A-Z0-9_-]*[A-Z])([A-Z0-9][A-Z0-9_-]{2,19})(?![\w-])")
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[ ().-]{0,2}\d){6,}(?!\d)")  # seven digits or more
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?!\d)")
# Whole words of four letters or more with no a-z (a word with one is not in capitals; ``str.isupper`` judges the rest).
_CAPITALS = re.compile(r"\b[^\W\d_a-z]{4,}\b")
_DRAFT_TAGS = re.compile(r"\{\{([^{}]*)\}\}|\{%.*?%\}|\{#.*?#\}|\{[^{}\n]*\}|[{}]", re.DOTALL)
_LEFTOVER_TAGS = re.compile(r"\{\{[^{}]*\}\}|\{%.*?%\}|\{#.*?#\}|\{\{|\}\}|\{%|%\}", re.DOTALL)
_LINK_ATTRIBUTE = re.compile(r"\b(?:href|src)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+))", re.IGNORECASE)
_SLOT_SHAPED = re.compile(r"^\s*\{\{[^{}]*\}\}\s*$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:")
_TRAILING = ".,;:!?'\")]"
_READER_ORDER = (("subject", "preheader", "body_text", "sms_text"), ("subject", "preheader", "body_html"))


# --- reading a message -----------------------------------------------------------------------------------------------


def read(message: Message, *, strip_tags: bool = True) -> Iterator[tuple[str, str, MappedText]]:
    """Each non-empty text field as ``(field, text as given, text as read)``.

    Entities are decoded in every field (as the drafting agent's checks read them); with ``strip_tags``
    the tags of ``body_html`` read as spaces.
    """
    for field, text in message.texts().items():
        yield field, text, unescaped(text, strip_tags=strip_tags and field == "body_html")


def at(rule: Rule, what: str, field: str, text: str, view: MappedText, span: tuple[int, int], hint: str) -> Finding:
    """A finding of ``rule`` on ``view.text[span]``, placed in the field as given."""
    start, end = view.raw_span(*span)
    return rule.finding(what, field=field, span=(start, end), excerpt=text[start:end], hint=hint)


@lru_cache(maxsize=1024)
def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """``phrase`` as a whole word or phrase, any case, any white space between its words."""
    body = r"\s+".join(re.escape(word) for word in phrase.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=1024)
def phrase_cue(phrase: str) -> str | None:
    """A cheap test before ``phrase_pattern(phrase)``: it matches only a text whose ``folded`` text holds this.

    The phrase's longest word, lower-cased; None (no test) when that word is not ASCII.
    """
    word = max(phrase.split(), key=len, default="").lower()
    return word if word and word.isascii() else None


def own_offers(message: Message, context: CheckContext) -> list[CatalogOffer]:
    """The catalog entries of the message's offers (codes the catalog lacks are left out)."""
    codes = dict.fromkeys(message.offer_codes)
    return [offer for code in codes if (offer := context.catalog.get(code)) is not None]


# --- content.unknown_offer -------------------------------------------------------------------------------------------


def check_unknown_offer(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """Offers the catalog lacks or that are not valid now, and codes in the text the message does not make."""
    for code in dict.fromkeys(message.offer_codes):
        offer = context.catalog.get(code)
        if offer is None:
            yield rule.finding(
                f"{code} is not an offer in the catalog",
                field="offer_codes",
                excerpt=code,
                hint="make only offers from the catalog",
            )
        elif not valid_at(offer, context.now):
            yield rule.finding(
                f"{code} is not valid now: {_validity(offer, context.now)}",
                field="offer_codes",
                excerpt=code,
                hint="choose an offer that is valid when the message is sent",
            )
    own = {code.upper() for code in message.offer_codes}
    for field, text, view in read(message):
        for span, code in _written_codes(view.text, context.catalog):
            if code.upper() not in own:
                yield at(rule, _stray_code(code, context.catalog), field, text, view, span, _code_hint(message))


def valid_at(offer: CatalogOffer, now: datetime) -> bool:
    """Whether ``offer`` can be redeemed at ``now``; a date without an offset is UTC (as the catalog files say)."""
    starts = offer.valid_from is None or _utc(offer.valid_from) <= _utc(now)
    return starts and (offer.valid_until is None or _utc(now) < _utc(offer.valid_until))


def _utc(instant: datetime) -> datetime:
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def _validity(offer: CatalogOffer, now: datetime) -> str:
    # ``valid_at`` failed: the offer has either not started or ended.
    if offer.valid_from is not None and _utc(now) < _utc(offer.valid_from):
        return f"it starts {offer.valid_from:%Y-%m-%d}"
    return f"it ended {offer.valid_until:%Y-%m-%d}" if offer.valid_until is not None else "it has ended"


def _written_codes(text: str, catalog: Mapping[str, CatalogOffer]) -> Iterator[tuple[tuple[int, int], str]]:
    # Catalog codes as written (case-sensitive: a lower-case code inside a link path is not the code), and
    # any upper-case token after the word "code"; each span once.
    seen: set[tuple[int, int]] = set()
    if catalog:
        for match in _codes_pattern(tuple(sorted(catalog, key=len, reverse=True))).finditer(text):
            seen.add(match.span())
            yield match.span(), match.group(0)
    for match in _AFTER_CODE.finditer(text):
        if match.span(1) not in seen:
            yield match.span(1), match.group(1)


@cache
def _codes_pattern(codes: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-])(?:{'|'.join(map(re.escape, codes))})(?![\w-])")


def _stray_code(code: str, catalog: Mapping[str, CatalogOffer]) -> str:
    if code in catalog:
        return f"the text gives the code {code}, a catalog offer this message does not make"
    return f"the text gives the code {code}, which is not an offer in the catalog"


def _code_hint(message: Message) -> str:
    if not message.offer_codes:
        return "remove the code: the message makes no offer"
    return f"give only the message's own code ({', '.join(message.offer_codes)}), through {{{{offer.code}}}}"


# --- content.invented_figure -----------------------------------------------------------------------------------------


def check_invented_figure(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """Every percentage, amount and month count equals an offer's value of its kind or is in its name or terms."""
    offers = own_offers(message, context)
    backed = {claim for offer in offers for claim in _offer_claims(offer)}
    names = ", ".join(offer.code for offer in offers)
    reason = f"the message's offers ({names}) do not state it" if offers else "the message makes no catalog offer"
    hint = "quote only the offer's own figures, or write the offer through {{offer.name}}"
    for field, text, view in read(message):
        links = _url_spans(view.text)  # a link's token can read as a figure ("…1euR…", "…7USD…")
        for claim in find_claims(view.text):
            if (claim.kind, claim.number) not in backed and not _inside(claim.start, links):
                what = f"the copy states {spoken(claim.kind, claim.number)} but {reason}"
                yield at(rule, what, field, text, view, (claim.start, claim.end), hint)


def _offer_claims(offer: CatalogOffer) -> set[tuple[Claim, Decimal]]:
    backed = {(claim.kind, claim.number) for claim in find_claims(f"{offer.name}\n{offer.terms}")}
    if kind := _BACKED_BY_VALUE.get(offer.kind):
        backed.add((kind, offer.value))
    return backed


# --- content.personal_data -------------------------------------------------------------------------------------------


def check_personal_data(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """E-mail addresses and phone numbers other than the recipient's own (rendered) and the brand's."""
    hint = (
        "remove it: a message holds no one's data but the recipient's own"
        if message.rendered
        else "remove it: personal data reaches a message only through slots, filled at send time"
    )
    for field, text, view in read(message, strip_tags=False):
        if "@" in view.text:
            for match in EMAIL_PATTERN.finditer(view.text):
                if not _allowed_email(match.group(0), message, context):
                    yield at(rule, _whose("an e-mail address", message), field, text, view, match.span(), hint)
        links: tuple[tuple[int, int], ...] | None = None  # found when a phone-like run needs them
        for match in _PHONE.finditer(view.text):
            if _ISO_DATE.match(match.group(0)):
                continue  # dates are long digit runs, not phones
            if links is None:
                links = _url_spans(view.text)
            if _inside(match.start(), links):
                continue  # and so are link paths (unsubscribe tokens)
            if not _own_phone(match.group(0), message, context):
                yield at(rule, _whose("a phone number", message), field, text, view, match.span(), hint)


@lru_cache(maxsize=1024)
def _url_spans(text: str) -> tuple[tuple[int, int], ...]:
    # Cached: several rules look for the links of the same text.
    return tuple(match.span() for match in URL_PATTERN.finditer(text))


def _inside(position: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def _whose(what: str, message: Message) -> str:
    return f"{what} that is not the recipient's own" if message.rendered else f"{what} written into a draft"


def _allowed_email(address: str, message: Message, context: CheckContext) -> bool:
    # The brand's own mailboxes are not personal data; the recipient's own address only once rendered.
    address = address.lower()
    if address == context.brand.sender_address.lower():
        return True
    if is_within(address.rsplit("@", 1)[1], context.brand.sender_domains):
        return True
    recipient = context.recipient
    return bool(message.rendered and recipient and recipient.email and recipient.email.lower() == address)


def _own_phone(number: str, message: Message, context: CheckContext) -> bool:
    recipient = context.recipient
    if not (message.rendered and recipient and recipient.phone):
        return False
    # "+1 415 555 0123" and "(415) 555-0123", "+44 7700 900123" and "07700 900123": the same line.
    written = re.sub(r"\D", "", number).lstrip("0")
    own = re.sub(r"\D", "", recipient.phone).lstrip("0")
    return len(written) >= 7 and len(own) >= 7 and (own.endswith(written) or written.endswith(own))


# --- content.banned_claim, brand.banned_word -------------------------------------------------------------------------


def check_banned_claim(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """Each occurrence of one of the brand's banned claims, as a whole word or phrase, any case."""
    yield from _banned(rule, message, context.brand.banned_claims, "a claim the brand cannot substantiate")


def check_banned_word(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """Each occurrence of one of the brand's banned words (competitors, jargon), as a whole word, any case."""
    yield from _banned(rule, message, context.brand.banned_words, "a word the brand does not use")


def _banned(rule: Rule, message: Message, phrases: Iterable[str], what: str) -> Iterator[Finding]:
    patterns = [
        (phrase, phrase_cue(phrase), phrase_pattern(phrase)) for phrase in dict.fromkeys(phrases) if phrase.strip()
    ]
    for field, text, view in read(message):
        lowered = folded(view.text)
        found = sorted(
            (match.span(), phrase)
            for phrase, cue, pattern in patterns
            if cue is None or cue in lowered  # a cheap test first: most copy holds none of them
            for match in pattern.finditer(view.text)
        )
        for span, phrase in found:
            yield at(rule, f"{phrase!r} is {what}", field, text, view, span, f"rephrase without {phrase!r}")


# --- brand.sign_off --------------------------------------------------------------------------------------------------


def check_sign_off(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """The e-mail body signs off with the brand's sign-off (its ``{{brand_name}}`` filled once rendered)."""
    sign_off = context.brand.sign_off
    if not sign_off:
        return
    if message.rendered:
        sign_off = sign_off.replace("{{brand_name}}", context.brand.brand_name)
    if sign_off not in message.body_text:
        yield rule.finding(
            f"the body does not sign off with {sign_off!r}",
            field="body_text",
            hint=f"end the message, before the footer, with the line {sign_off!r}",
        )


# --- brand.tone ------------------------------------------------------------------------------------------------------


def check_tone(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """Exclamation marks beyond the brand's allowance, and whole words of four letters or more in capitals."""
    findings = [*_exclamations(rule, message, context), *_shouting(rule, message, context)]
    yield from dict.fromkeys(findings)


def _exclamations(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    # A reader sees the subject, the preheader and one body (text or HTML): the allowance is per reading, so
    # each alternative is counted on its own and a mark in the subject is reported once.
    allowed = context.brand.max_exclamations
    fields = {field: (text, view) for field, text, view in read(message)}
    marks = f"{allowed} exclamation mark{'' if allowed == 1 else 's'}"
    what, hint = f"more than {marks} in the message", f"use at most {marks} in the whole message"
    for order in _READER_ORDER:
        seen = 0
        for field in (name for name in order if name in fields):
            text, view = fields[field]
            if "!" not in view.text:
                continue
            for match in re.finditer("!", view.text):
                seen += 1
                if seen > allowed:
                    yield at(rule, what, field, text, view, match.span(), hint)


def _shouting(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    names = ACRONYMS | {code.upper() for code in context.catalog}
    for field, text, view in read(message):
        capitals = [
            match for match in _CAPITALS.finditer(view.text) if match.group(0).isupper() and match.group(0) not in names
        ]
        if not capitals:
            continue
        # Links and codes ("code SAVEBIG") are written in capitals for a reason; content.unknown_offer judges codes.
        skipped = [*_url_spans(view.text)]
        skipped += [match.span(1) for match in _AFTER_CODE.finditer(view.text)]
        for match in capitals:
            if not _inside(match.start(), skipped):
                yield at(rule, "a whole word in capitals", field, text, view, match.span(), "write it in sentence case")


# --- content.template_tags -------------------------------------------------------------------------------------------


def check_template_tags(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """A draft places only known ``{{slots}}`` and no other braces; a rendered message has no tag left."""
    for field, text in message.texts().items():
        if message.rendered:
            for match in _LEFTOVER_TAGS.finditer(text):
                yield _tag_finding(rule, "an unfilled template tag", field, match, "fill it or remove it")
        else:
            for match in _DRAFT_TAGS.finditer(text):
                if match.group(1) is None or match.group(1) not in KNOWN_SLOTS:
                    yield _draft_tag(rule, field, match)


def _draft_tag(rule: Rule, field: str, match: re.Match[str]) -> Finding:
    token = match.group(0)
    known = ", ".join(f"{{{{{name}}}}}" for name in KNOWN_SLOTS)
    if match.group(1) is not None:
        name = match.group(1).strip()
        if name in KNOWN_SLOTS:
            return _tag_finding(rule, "a slot written with spaces", field, match, f"write it as {{{{{name}}}}}")
        return _tag_finding(rule, "an unknown slot", field, match, f"use only the known slots: {known}")
    if token.startswith(("{%", "{#")):
        return _tag_finding(rule, "a template statement or comment", field, match, "remove it: drafts hold slots only")
    what = "a stray brace" if len(token) == 1 else "a placeholder in single braces"
    return _tag_finding(rule, what, field, match, f"write slots with double braces: {known}")


def _tag_finding(rule: Rule, what: str, field: str, match: re.Match[str], hint: str) -> Finding:
    return rule.finding(what, field=field, span=match.span(), excerpt=match.group(0), hint=hint)


# --- content.link_domain ---------------------------------------------------------------------------------------------


def check_link_domain(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """Every link points to the brand's link domains; a draft links only through link slots."""
    domains = context.brand.link_domains
    for field, text, span, url, in_attribute in _links(message):
        if message.rendered and _SLOT_SHAPED.match(url):
            continue  # an unfilled slot: content.template_tags reports it
        if not message.rendered:
            if not (in_attribute and url.strip() in {f"{{{{{slot}}}}}" for slot in LINK_SLOTS}):
                yield _link_finding(
                    rule, "a literal link in a draft", field, text, span, _draft_link_hint(in_attribute)
                )
        elif not (is_own_link(url, context.own_origin) or _allowed_link(url, domains, context.brand.sender_domains)):
            what = f"a link outside the brand's domains ({', '.join(domains)})"
            yield _link_finding(rule, what, field, text, span, "link only to the brand's own domains")


def _links(message: Message) -> Iterator[tuple[str, str, tuple[int, int], str, bool]]:
    # (field, field text, span, link, whether it is an href/src) for attribute values and written URLs.
    for field, text, view in read(message):
        if field == "body_html":
            for match in _LINK_ATTRIBUTE.finditer(text):
                group = next(index for index in (1, 2, 3) if match.group(index) is not None)
                yield field, text, match.span(group), match.group(group), True
        for start, end in _url_spans(view.text):
            url = view.text[start:end].rstrip(_TRAILING)
            span = view.raw_span(start, start + len(url))
            yield field, text, span, url, False


def _allowed_link(url: str, link_domains: tuple[str, ...], sender_domains: tuple[str, ...]) -> bool:
    lowered = url.strip().lower()
    if lowered.startswith("mailto:"):
        domain = lowered.removeprefix("mailto:").split("?", 1)[0].rsplit("@", 1)[-1]
        return bool(domain) and is_within(domain, (*link_domains, *sender_domains))
    if _SCHEME.match(lowered) and not lowered.startswith(("http://", "https://")):
        return False  # javascript:, data:, tel:, ftp: … are not links to the brand's site
    host = _host(lowered if "://" in lowered else f"http://{lowered}")  # www.… and bare domains
    return host is not None and is_within(host, link_domains)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # a malformed link (an unclosed IPv6 bracket …) points nowhere we allow
        return None


def _link_finding(rule: Rule, what: str, field: str, text: str, span: tuple[int, int], hint: str) -> Finding:
    return rule.finding(what, field=field, span=span, excerpt=text[span[0] : span[1]], hint=hint)


def _draft_link_hint(in_attribute: bool) -> str:
    if in_attribute:
        return "link only through {{offer.url}} or {{unsubscribe_url}}"
    return "write no URL: the offer's link is {{offer.url}}, filled at send time"


CONTENT_RULES: tuple[Rule, ...] = (
    Rule(
        id="content.unknown_offer",
        severity=Severity.BLOCK,
        channels=ALL_CHANNELS,
        summary="Every offer is in the catalog and valid now, and the text gives no code but the message's own.",
        source="Pre-send gate step 7, claims policy; OWASP LLM09 (ref §1.10, §9)",
        check=check_unknown_offer,
    ),
    Rule(
        id="content.invented_figure",
        severity=Severity.BLOCK,
        channels=ALL_CHANNELS,
        summary="Every percentage, amount and month count is an offer's value or in its name or terms.",
        source="Pre-send gate step 7, claims match structured offer data; OWASP LLM09 (ref §1.10, §9)",
        check=check_invented_figure,
    ),
    Rule(
        id="content.personal_data",
        severity=Severity.BLOCK,
        channels=ALL_CHANNELS,
        summary="No e-mail address or phone number but the recipient's own (once rendered) and the brand's.",
        source="Pre-send gate step 7, PII leak; OWASP LLM02 (ref §1.10, §8, §9)",
        check=check_personal_data,
    ),
    Rule(
        id="content.banned_claim",
        severity=Severity.BLOCK,
        channels=ALL_CHANNELS,
        summary="None of the brand's banned claims ('guaranteed', 'risk-free' …), as whole words in any case.",
        source="Pre-send gate step 7, claims policy; the brand's banned claims (ref §1.10, §8)",
        check=check_banned_claim,
    ),
    Rule(
        id="brand.banned_word",
        severity=Severity.BLOCK,
        channels=ALL_CHANNELS,
        summary="None of the brand's banned words (competitors, jargon), as whole words in any case.",
        source="Pre-send gate step 7, competitor mentions; the brand's rules (ref §1.10, §8)",
        check=check_banned_word,
    ),
    Rule(
        id="brand.sign_off",
        severity=Severity.WARN,
        channels=EMAIL,
        summary="The e-mail body contains the brand's sign-off ('The {{brand_name}} team', filled once rendered).",
        source="The brand's rules (rules.json sign_off)",
        check=check_sign_off,
    ),
    Rule(
        id="brand.tone",
        severity=Severity.WARN,
        channels=ALL_CHANNELS,
        summary="No more exclamation marks than the brand allows, and no whole words in capitals.",
        source="The brand's voice guideline (gl-voice); the approver weighs tone (ref §8)",
        check=check_tone,
    ),
    Rule(
        id="content.template_tags",
        severity=Severity.BLOCK,
        channels=ALL_CHANNELS,
        summary="A draft places only known {{slots}} and no stray braces or {% %}; a rendered message has no tag left.",
        source="OWASP LLM05 improper output handling (ref §9)",
        check=check_template_tags,
    ),
    Rule(
        id="content.link_domain",
        severity=Severity.BLOCK,
        channels=ALL_CHANNELS,
        summary="Every link points to the brand's link domains; a draft links only through {{offer.url}} or "
        "{{unsubscribe_url}}.",
        source="OWASP LLM05: allow-list URLs to tenant domains; never let retrieved text set links (ref §9)",
        check=check_link_domain,
    ),
)
