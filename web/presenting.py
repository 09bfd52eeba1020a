"""Turning stored data into what a page shows: the profit-curve SVG, guardrail spans to highlight, an
e-mail preview rendered with sample values, and an SMS's segment count.

The SVG is built here as text (no plotting library in the request path) and is escaped by construction:
it holds only numbers and fixed labels.

Previews are memoised: compiling a draft into templates (``channels.rendering``) is most of a review page's
cost, and the result depends only on the copy, the brand's rules and the offer — all of them in the cache
key, as values — so an edited draft, a changed offer or new brand rules simply miss the cache, and nothing
needs to be invalidated. The cache is bounded (least recently used entries go first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from html import escape
from typing import Any

from campaigns.sending import offer_url
from channels.rendering import (
    EmailDraftCopy,
    EmailTemplate,
    RecipientValues,
    RenderError,
    SmsDraftCopy,
    SmsTemplate,
)
from core.sms import SmsSize, sms_size
from guardrails.context import BrandRules, CatalogOffer, CheckContext

_HEADER_STYLE = "font:14px/1.4 system-ui,sans-serif;border-bottom:1px solid #d1d5db;padding:0 0 8px;margin:0 0 8px"
PREVIEW_CACHE_SIZE = 2048  # drafts; an e-mail preview is a few kilobytes
WIDTH, HEIGHT, MARGIN = 640, 280, 56
VISIBLE_TAIL = 3  # the curve is drawn up to this many times the larger mode's customers
SAMPLE_RECIPIENT = RecipientValues(
    first_name="Alex", email="alex@example.com", phone="+12125550100", unsubscribe_url="https://example.com/u/preview"
)


@dataclass(frozen=True, slots=True)
class Marker:
    label: str
    customers: int
    profit: float


def profit_curve_svg(points: Sequence[tuple[int, float]], markers: list[Marker]) -> str:
    """An accessible SVG line chart of cumulative expected profit against customers targeted, with markers.

    ``points`` are (N, expected profit of the best N targets); the markers' labels form a legend in the top
    right corner, so close markers never write over each other.
    """
    # The decisions sit near the peak: show up to a few times the larger mode's N, not a long loss-making tail.
    end = points[-1][0] if points else 0
    shown = min(end, max((m.customers for m in markers), default=0) * VISIBLE_TAIL) or end
    points = [(n, profit) for n, profit in points if n <= shown]
    if len(points) < 2:
        return ""
    right = max(shown, *(m.customers for m in markers), 1)
    top = max(max(p for _, p in points), *(m.profit for m in markers), 1.0)
    bottom = min(min(p for _, p in points), 0.0)

    def x(value: float) -> float:
        return MARGIN + (WIDTH - 2 * MARGIN) * value / right

    def y(value: float) -> float:
        return HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * (value - bottom) / (top - bottom)

    line = " ".join(f"{x(n):.1f},{y(profit):.1f}" for n, profit in points)
    dots = "".join(
        f'<circle cx="{x(m.customers):.1f}" cy="{y(m.profit):.1f}" r="5" class="marker-{k}"/>'
        f'<circle cx="{WIDTH - 232}" cy="{MARGIN - 4 + 16 * k}" r="5" class="marker-{k}"/>'
        f'<text x="{WIDTH - 222}" y="{MARGIN + 16 * k}">{m.label}: {m.customers:,} customers, ${m.profit:,.0f}</text>'
        for k, m in enumerate(markers)
    )
    zero = f'<line x1="{MARGIN}" y1="{y(0.0):.1f}" x2="{WIDTH - MARGIN}" y2="{y(0.0):.1f}" class="axis"/>'
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="curve-title" class="curve">'
        '<title id="curve-title">Cumulative expected profit by customers targeted, best first</title>'
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" class="axis"/>{zero}'
        f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 16}" text-anchor="middle">customers targeted (0 – {right:,})</text>'
        f'<text x="12" y="{MARGIN - 16}">expected profit, USD (max ${top:,.0f})</text>'
        f'<polyline points="{line}" class="line"/>{dots}</svg>'
    )


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    finding: int | None  # the index of the finding it belongs to, or None


def highlighted(text: str, findings: list[dict[str, Any]], field: str) -> list[Piece]:
    """``text`` cut into pieces, those inside a finding's span on ``field`` tagged with the finding's index.

    Overlapping spans: the earlier finding keeps the overlap.
    """
    spans = sorted(
        (int(f["start"]), int(f["end"]), index)
        for index, f in enumerate(findings)
        if f.get("field") == field and f.get("start") is not None and f.get("end") is not None
    )
    pieces, cursor = [], 0
    for start, end, index in spans:
        start, end = max(start, cursor), min(end, len(text))
        if start >= end:
            continue
        pieces.append(Piece(text[cursor:start], None))
        pieces.append(Piece(text[start:end], index))
        cursor = end
    pieces.append(Piece(text[cursor:], None))
    return [piece for piece in pieces if piece.text]


def email_preview(content: dict[str, Any], context: CheckContext, campaign_key: str) -> tuple[str, str]:
    """The e-mail as a sample recipient would get it: (subject, HTML), or the raw copy and why it did not render."""
    copy = EmailDraftCopy(
        subject=str(content.get("subject", "")),
        body_text=str(content.get("body_text", "")),
        body_html=str(content.get("body_html", "")),
        preheader=str(content.get("preheader", "")),
    )
    return _email_preview(copy, context.brand, _first_offer(content, context), campaign_key)


def _first_offer(content: dict[str, Any], context: CheckContext) -> CatalogOffer | None:
    codes = content.get("offer_codes") or []
    return context.catalog.get(str(codes[0])) if codes else None


@lru_cache(maxsize=PREVIEW_CACHE_SIZE)
def _email_preview(
    copy: EmailDraftCopy, brand: BrandRules, offer: CatalogOffer | None, campaign_key: str
) -> tuple[str, str]:
    try:
        template = EmailTemplate.from_draft(
            copy, brand, offer, campaign_key=campaign_key, offer_url=offer_url(brand, offer)
        )
        email = template.render(SAMPLE_RECIPIENT, "preview")
    except RenderError as error:
        problem = escape(error.message, quote=False)
        return copy.subject, f"<p><strong>Not renderable:</strong> {problem}</p>{copy.body_html}"
    return email.subject, email.body_html


def preview_document(subject: str, body_html: str, brand: BrandRules) -> str:
    """The e-mail preview as its own HTML document, headed like a mail client shows a message.

    ``body_html`` is the rendered e-mail (the draft's HTML with values escaped by the renderer); only the
    header lines are ours, escaped here.
    """
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(subject, quote=False)}</title></head><body>"
        f'<div style="{_HEADER_STYLE}">'
        f"<div><strong>From:</strong> {escape(f'{brand.brand_name} <{brand.sender_address}>', quote=False)}</div>"
        f"<div><strong>Subject:</strong> {escape(subject, quote=False)}</div></div>"
        f"{body_html}</body></html>"
    )


def sms_preview(content: dict[str, Any], context: CheckContext) -> tuple[str, SmsSize]:
    """The text as a sample recipient would get it and its size as carriers bill it (the raw copy's if it
    does not render)."""
    copy = SmsDraftCopy(sms_text=str(content.get("sms_text", "")))
    return _sms_preview(copy, context.brand, _first_offer(content, context), context.sms_segment_price)


@lru_cache(maxsize=PREVIEW_CACHE_SIZE)
def _sms_preview(
    copy: SmsDraftCopy, brand: BrandRules, offer: CatalogOffer | None, segment_price: Decimal
) -> tuple[str, SmsSize]:
    try:
        template = SmsTemplate.from_draft(
            copy, brand, offer, segment_price=segment_price, offer_url=offer_url(brand, offer)
        )
        rendered = template.render(SAMPLE_RECIPIENT, "preview")
    except RenderError:
        return copy.sms_text, sms_size(copy.sms_text)
    return rendered.message.body, rendered.size
