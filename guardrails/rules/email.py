"""E-mail compliance rules: unsubscribe link and one-click headers, postal address, honest subject and sender,
and the commercial disclosure (CAN-SPAM C1–C5, CASL K3–K4, RFC 8058; compliance reference §1.1, §1.4, §1.6).

Each rule reads a draft or a rendered message. In a draft (``rendered=False``) a requirement is met by its
slot, which the sender fills per recipient (``{{unsubscribe_url}}``, ``{{postal_address}}``); in a rendered
message only the real value counts (an https link, the brand's postal address). Header and sender rules
read what only a rendered message has and skip drafts.

An empty ``body_html`` is a text-only e-mail: it has no HTML part to carry anything, so the body rules
check only the text then.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from decimal import Decimal

from core.claims import Claim, claims_in, find_claims, spoken
from guardrails.context import CheckContext, Message, is_own_link, is_within
from guardrails.report import Finding, Severity
from guardrails.rule import EMAIL, Rule

UNSUBSCRIBE_SLOT = "{{unsubscribe_url}}"
POSTAL_ADDRESS_SLOT = "{{postal_address}}"
ONE_CLICK = "List-Unsubscribe=One-Click"
# The layout's footer line (agents.layout.EMAIL_FOOTER), and words that say outright what the e-mail is.
_DISCLOSURE = re.compile(
    r"\byou(?:\s+are|'re|’re)\s+receiving\s+this\b.{0,80}?\bbecause\s+you\s+are\s+an?\s+.{1,80}?\bcustomer\b"
    r"|\b(?:marketing|advertisement|advertising|promotional)\b",
    re.IGNORECASE | re.DOTALL,
)
_FAKE_REPLY = re.compile(r"^\s*((?:re|fwd?)\s*:)", re.IGNORECASE)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s<>\"']+", re.IGNORECASE)
# In the text part the link follows the word on its line, as in the layout's "Unsubscribe: <url>", or opens the
# next line; an offer link further on is not the unsubscribe link.
_TEXT_UNSUBSCRIBE = re.compile(rf"unsubscribe[^\n]{{0,120}}?(?:\n[ \t]*)?(?P<url>{_URL.pattern})", re.IGNORECASE)
_ANCHOR = re.compile(
    r"<a\b[^>]*?\bhref\s*=\s*(?P<quote>[\"'])(?P<href>.*?)(?P=quote)[^>]*>(?P<text>.*?)</a\s*>", re.I | re.DOTALL
)
_SLOT_ANCHOR = re.compile(r"<a\b[^>]*?\bhref\s*=\s*([\"'])\s*\{\{unsubscribe_url\}\}\s*\1", re.IGNORECASE)
_ANY_URI = re.compile(r"<\s*([a-z][a-z0-9+.-]*:[^\s<>]+)\s*>", re.IGNORECASE)  # <https://…>, <mailto:…>
# What ends a line of HTML for "the words just before an anchor": a line or block break, or an earlier link;
# of those words, the last _NEAR characters count (as the text part's link follows the word within 120).
_LINE_BREAK = re.compile(r"<(?:br|/?(?:p|div|li|tr|td|th|h[1-6]|table|ul|ol))\b[^>]*>|</a\s*>", re.IGNORECASE)
_NEAR = 120
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
# Offer slots a draft's body may state its figures through: the sender fills them from the catalog.
_OFFER_TEXT_SLOTS = {"{{offer.name}}": "name", "{{offer.terms}}": "terms"}


def plain_html(markup: str) -> str:
    """The words of ``markup``: tags dropped, entities decoded, white space collapsed."""
    return collapse(html.unescape(_TAG.sub(" ", markup)))


def collapse(text: str) -> str:
    """``text`` with every run of white space made one space, and no space at either end."""
    return _SPACE.sub(" ", text).strip()


def _bodies(message: Message) -> dict[str, str]:
    # The text part always; the HTML part when the e-mail has one.
    return {"body_text": message.body_text, **({"body_html": message.body_html} if message.body_html else {})}


# --- email.unsubscribe_link -------------------------------------------------------------------------------


def check_unsubscribe_link(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """Both body parts carry the unsubscribe link: its slot in a draft, an https link once rendered.

    In a draft's HTML part the slot must be an anchor's ``href`` (``<a href="{{unsubscribe_url}}">``, any
    words). Once rendered, a link is the unsubscribe link when the words just before it (same line) say
    "unsubscribe", when its own words or address do (HTML), or when it is the https URI of the
    ``List-Unsubscribe`` header; one such link must be https. The layout shows a link's address as its
    words: ``Unsubscribe: <a href="https://…/u/…">https://…/u/…</a>``.
    """
    if message.rendered:
        listed = _listed_uris(message.header("List-Unsubscribe"), context.own_origin)
        yield from _rendered_text_link(rule, message.body_text, listed, context.own_origin)
        if message.body_html:
            yield from _rendered_html_link(rule, message.body_html, listed, context.own_origin)
        return
    if UNSUBSCRIBE_SLOT not in message.body_text:
        yield _no_unsubscribe(rule, "body_text", f"place {UNSUBSCRIBE_SLOT} in the footer, after the postal address")
    if message.body_html and not _SLOT_ANCHOR.search(message.body_html):
        yield _draft_html_link(rule, message.body_html)


def _listed_uris(value: str | None, own_origin: str | None) -> set[str]:
    """The https (or own-origin) URIs of a ``List-Unsubscribe`` header value (none when it is missing)."""
    uris = {match.group(1) for match in _ANY_URI.finditer(value or "")}
    return {uri for uri in uris if _is_secure(uri, own_origin)}


def _no_unsubscribe(rule: Rule, field: str, hint: str) -> Finding:
    return rule.finding(f"{field} has no unsubscribe link", field=field, hint=hint)


def _draft_html_link(rule: Rule, body_html: str) -> Finding:
    start = body_html.find(UNSUBSCRIBE_SLOT)
    hint = f'link it in the footer: <a href="{UNSUBSCRIBE_SLOT}">{UNSUBSCRIBE_SLOT}</a>'
    if start < 0:
        return _no_unsubscribe(rule, "body_html", hint)
    span = (start, start + len(UNSUBSCRIBE_SLOT))
    return rule.finding(
        "body_html shows the unsubscribe slot as text, not as a link",
        field="body_html",
        span=span,
        excerpt=UNSUBSCRIBE_SLOT,
        hint=hint,
    )


def _rendered_text_link(rule: Rule, body_text: str, listed: set[str], own_origin: str | None) -> Iterator[Finding]:
    urls = [match.span("url") for match in _TEXT_UNSUBSCRIBE.finditer(body_text)]
    urls += [match.span() for match in _URL.finditer(body_text) if match.group() in listed]
    if any(_is_secure(body_text[start:end], own_origin) for start, end in urls):
        return
    hint = "end the footer with 'Unsubscribe: ' and the recipient's https unsubscribe link"
    if not urls:
        yield _no_unsubscribe(rule, "body_text", hint)
        return
    yield _not_https(rule, "body_text", body_text, urls[0], hint)


def _rendered_html_link(rule: Rule, body_html: str, listed: set[str], own_origin: str | None) -> Iterator[Finding]:
    links = [match.span("href") for match in _ANCHOR.finditer(body_html) if _unsubscribes(match, body_html, listed)]
    if any(_is_secure(html.unescape(body_html[start:end]), own_origin) for start, end in links):
        return
    hint = 'end the footer with Unsubscribe: <a href="https://…">https://…</a>, the recipient\'s unsubscribe link'
    if not links:
        yield _no_unsubscribe(rule, "body_html", hint)
        return
    yield _not_https(rule, "body_html", body_html, links[0], hint)


def _unsubscribes(anchor: re.Match[str], body_html: str, listed: set[str]) -> bool:
    """Whether ``anchor`` is the unsubscribe link: its words or address, or the words just before it on
    its line, say "unsubscribe", or it links the ``List-Unsubscribe`` header's https URI."""
    before = _LINE_BREAK.split(body_html[: anchor.start()])[-1]
    words = f"{anchor['href']} {plain_html(anchor['text'])} {plain_html(before)[-_NEAR:]}"
    return "unsubscribe" in words.lower() or html.unescape(anchor["href"]).strip() in listed


def _is_secure(link: str, own_origin: str | None) -> bool:
    # https, or Nudge's own origin (https in production, enforced at start; loopback in the embedded default).
    return link.strip().lower().startswith("https://") or is_own_link(link, own_origin)


def _not_https(rule: Rule, field: str, text: str, span: tuple[int, int], hint: str) -> Finding:
    link = text[span[0] : span[1]]
    what = "an unfilled slot" if link.strip().startswith("{{") else "not https"
    return rule.finding(f"the unsubscribe link in {field} is {what}", field=field, span=span, excerpt=link, hint=hint)


# --- email.list_unsubscribe -------------------------------------------------------------------------------


def check_list_unsubscribe(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """A rendered e-mail offers one-click unsubscribe: an https ``List-Unsubscribe`` URI and its ``-Post`` header.

    Drafts have no headers yet: the sender (or SendGrid's subscription tracking) adds them.
    """
    if not message.rendered:
        return
    yield from _list_unsubscribe(rule, message.header("List-Unsubscribe"), context.own_origin)
    yield from _list_unsubscribe_post(rule, message.header("List-Unsubscribe-Post"))


def _list_unsubscribe(rule: Rule, value: str | None, own_origin: str | None) -> Iterator[Finding]:
    field = "List-Unsubscribe"
    hint = "set List-Unsubscribe: <https://…> to the recipient's one-click unsubscribe URL (a <mailto:…> may follow)"
    if not value or not value.strip():
        yield rule.finding("the List-Unsubscribe header is missing", field=field, hint=hint)
    elif not _listed_uris(value, own_origin):
        yield rule.finding(
            "the List-Unsubscribe header has no <https://…> URI",
            field=field,
            span=(0, len(value)),
            excerpt=value,
            hint=hint,
        )


def _list_unsubscribe_post(rule: Rule, value: str | None) -> Iterator[Finding]:
    field = "List-Unsubscribe-Post"
    hint = f"set List-Unsubscribe-Post: {ONE_CLICK}"
    if value is None or not value.strip():
        yield rule.finding("the List-Unsubscribe-Post header is missing", field=field, hint=hint)
    elif value.strip() != ONE_CLICK:
        yield rule.finding(
            f"the List-Unsubscribe-Post header is not {ONE_CLICK!r}",
            field=field,
            span=(0, len(value)),
            excerpt=value,
            hint=hint,
        )


# --- email.postal_address ---------------------------------------------------------------------------------


def check_postal_address(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """Both body parts carry the brand's postal address: its slot in a draft, the address itself once rendered.

    The rendered comparison ignores case, white space and the HTML's tags and entities, which a line
    break or an escaped ``&`` may put into the address.
    """
    address = collapse(context.brand.postal_address).casefold()
    for field, text in _bodies(message).items():
        if message.rendered:
            words = plain_html(text) if field == "body_html" else collapse(text)
            present = address in words.casefold()
        else:
            present = POSTAL_ADDRESS_SLOT in text
        if not present:
            yield _no_address(rule, field, message.rendered, context.brand.postal_address)


def _no_address(rule: Rule, field: str, rendered: bool, address: str) -> Finding:
    wanted = repr(address) if rendered else POSTAL_ADDRESS_SLOT
    return rule.finding(
        f"{field} has no postal address",
        field=field,
        hint=f"put {wanted} in the footer, after the brand name and before the unsubscribe link",
    )


# --- email.deceptive_subject ------------------------------------------------------------------------------


def check_deceptive_subject(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """The subject does not fake a reply or a forward, and states no figure the body does not back (warn).

    An e-mail is a reply only when it carries an ``In-Reply-To`` header, which no campaign e-mail has. In a
    draft, ``{{offer.name}}`` and ``{{offer.terms}}`` in the body state what the catalog says of the
    message's offers, so their figures count as the body's.
    """
    if (prefix := _FAKE_REPLY.match(message.subject)) and message.header("In-Reply-To") is None:
        yield rule.finding(
            "the subject pretends the e-mail is a reply or a forward",
            field="subject",
            span=prefix.span(1),
            excerpt=prefix.group(1),
            hint="drop the prefix: a campaign e-mail is neither a reply nor a forward",
        )
    backed = _body_claims(message, context)
    for claim in find_claims(message.subject):
        if (claim.kind, claim.number) not in backed:
            yield rule.finding(
                f"the subject states {spoken(claim.kind, claim.number)}, which the body never mentions",
                field="subject",
                span=(claim.start, claim.end),
                excerpt=message.subject[claim.start : claim.end],
                hint="state the figure in the body too, or take it out of the subject",
                severity=Severity.WARN,
            )


def _body_claims(message: Message, context: CheckContext) -> set[tuple[Claim, Decimal]]:
    bodies = f"{message.body_text}\n{plain_html(message.body_html)}"
    claims: set[tuple[Claim, Decimal]] = set(claims_in(bodies))
    offers = [context.catalog[code] for code in message.offer_codes if code in context.catalog]
    for slot, attribute in _OFFER_TEXT_SLOTS.items():
        if slot in bodies:
            claims.update(claim for offer in offers for claim in claims_in(getattr(offer, attribute)))
    return claims


# --- email.sender_identity --------------------------------------------------------------------------------


def check_sender_identity(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """A rendered e-mail comes from the brand: its From name is the brand name (any case), its From address
    is on one of the brand's sender domains. Drafts have no sender yet."""
    if not message.rendered:
        return
    yield from _from_name(rule, message.from_name or "", context.brand.brand_name)
    yield from _from_address(rule, message.from_address or "", context.brand.sender_domains)


def _from_name(rule: Rule, name: str, brand: str) -> Iterator[Finding]:
    hint = f"send as {brand!r}"
    if not name.strip():
        yield rule.finding("the e-mail has no From name", field="from_name", hint=hint)
    elif name.strip().casefold() != brand.casefold():
        yield rule.finding(
            f"the From name is not the brand name {brand!r}",
            field="from_name",
            span=(0, len(name)),
            excerpt=name,
            hint=hint,
        )


def _from_address(rule: Rule, address: str, domains: tuple[str, ...]) -> Iterator[Finding]:
    hint = f"send from an address on {', '.join(domains)}"
    local, at, domain = address.strip().rpartition("@")
    if not address.strip():
        yield rule.finding("the e-mail has no From address", field="from_address", hint=hint)
    elif not (at and local and domain):
        yield rule.finding(
            "the From address is not an e-mail address",
            field="from_address",
            span=(0, len(address)),
            excerpt=address,
            hint=hint,
        )
    elif not is_within(domain, domains):
        start = address.rindex("@") + 1
        yield rule.finding(
            "the From address is not on one of the brand's sender domains",
            field="from_address",
            span=(start, start + len(domain)),
            excerpt=domain,
            hint=hint,
        )


# --- email.commercial_disclosure --------------------------------------------------------------------------


def check_commercial_disclosure(rule: Rule, message: Message, context: CheckContext) -> Iterator[Finding]:
    """The e-mail says it is marketing: the layout's "You are receiving this because you are a … customer"
    line, or words such as "marketing", "advertisement" or "promotional".

    CAN-SPAM C3 asks for the disclosure only when the recipient gave no prior affirmative consent, and a
    check of the copy cannot know the consent; hence a warning for the approver, not a block.
    """
    if _DISCLOSURE.search(message.body_text) or _DISCLOSURE.search(plain_html(message.body_html)):
        return
    yield rule.finding(
        "the e-mail does not say it is a marketing message",
        field="body_text",
        hint="keep the footer line 'You are receiving this because you are a {{brand_name}} customer.' "
        "before the postal address, or say in the body that it is a marketing e-mail",
    )


EMAIL_RULES: tuple[Rule, ...] = (
    Rule(
        id="email.unsubscribe_link",
        severity=Severity.BLOCK,
        channels=EMAIL,
        summary="The text and HTML bodies each carry the unsubscribe link ({{unsubscribe_url}}; once rendered, https).",
        source="CAN-SPAM C5, CASL K4, Gmail/Yahoo visible unsubscribe link (ref §1.1, §1.4, §1.6)",
        check=check_unsubscribe_link,
    ),
    Rule(
        id="email.list_unsubscribe",
        severity=Severity.BLOCK,
        channels=EMAIL,
        summary="A rendered e-mail has an https List-Unsubscribe URI and 'List-Unsubscribe-Post: "
        "List-Unsubscribe=One-Click'.",
        source="RFC 8058 one-click unsubscribe, Gmail/Yahoo bulk-sender rules (ref §1.6)",
        check=check_list_unsubscribe,
    ),
    Rule(
        id="email.postal_address",
        severity=Severity.BLOCK,
        channels=EMAIL,
        summary="The text and HTML bodies each carry the brand's postal address ({{postal_address}} in a draft).",
        source="CAN-SPAM C4, CASL K3 (ref §1.1, §1.4)",
        check=check_postal_address,
    ),
    Rule(
        id="email.deceptive_subject",
        severity=Severity.BLOCK,
        channels=EMAIL,
        summary="The subject fakes no RE:/FW: prefix, and states no figure the body does not (a warning).",
        source="CAN-SPAM C2 (ref §1.1)",
        check=check_deceptive_subject,
    ),
    Rule(
        id="email.sender_identity",
        severity=Severity.BLOCK,
        channels=EMAIL,
        summary="A rendered e-mail's From name is the brand and its From address is on a brand sender domain.",
        source="CAN-SPAM C1 (ref §1.1)",
        check=check_sender_identity,
    ),
    Rule(
        id="email.commercial_disclosure",
        severity=Severity.WARN,
        channels=EMAIL,
        summary="The e-mail identifies itself as marketing (the layout's 'You are receiving this because …' line).",
        source="CAN-SPAM C3 (ref §1.1)",
        check=check_commercial_disclosure,
    ),
)
