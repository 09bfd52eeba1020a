"""The parts of a message the brand's layout adds, so no writer (model or marketer) has to remember them.

- E-mail: the footer the law asks of every commercial e-mail — who sends it, the postal address
  (CAN-SPAM C4, CASL K3) and the unsubscribe link (CAN-SPAM C5, CASL K4, RFC 8058's visible link) —
  is appended to the plain-text body unless the body already places both slots; the HTML body is
  then rendered from the text, so the two alternatives of a multipart e-mail always say the same thing.
- SMS: ``{{brand_name}}: `` in front (sender identification) unless the brand already leads, and
  ``{{sms_opt_out}}`` at the end (CTIA: "Reply STOP to opt out") unless it is already there.
- A cart-recovery e-mail lists the cart: ``CART_BLOCK`` (with ``{{cart_items}}``, filled per cart at send
  time by ``campaigns.triggers``) goes after the message, before the footer. A text names no items: it stays
  one segment.

``finish`` is idempotent: finishing finished copy changes nothing, so an edited draft is finished
again before it is checked. Slots stay slots: the sender fills them (escaped) per recipient.
"""

from __future__ import annotations

import html
import re

from agents.schemas import SLOT_PATTERN, SLOTS, DraftOutput, Goal
from core.models import Channel

EMAIL_FOOTER = (
    "You are receiving this because you are a {{brand_name}} customer.\n"
    "{{brand_name}}, {{postal_address}}\n"
    "Unsubscribe: {{unsubscribe_url}}"
)
CART_BLOCK = "Still in your cart:\n{{cart_items}}"
SMS_PREFIX = "{{brand_name}}: "
SMS_SUFFIX = " {{sms_opt_out}}"
FOOTER_SLOTS = ("postal_address", "unsubscribe_url")

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def finish(output: DraftOutput, channel: Channel, goal: Goal = Goal.RETENTION) -> DraftOutput:
    """``output`` with the layout's parts in place for ``channel`` and ``goal``: the cart, footer and HTML, or
    the SMS frame."""
    if channel is Channel.EMAIL:
        body = with_cart(output.body_text) if goal is Goal.CART_RECOVERY else output.body_text
        text = with_footer(body)
        return output.model_copy(update={"body_text": text, "body_html": html_from_text(text)})
    return output.model_copy(update={"sms_text": with_sms_frame(output.sms_text)})


def with_cart(body_text: str) -> str:
    """The plain-text body with ``CART_BLOCK`` after the message, unless it already places ``{{cart_items}}``."""
    if "{{cart_items}}" in body_text:
        return body_text
    body, footer = _split_footer(body_text.rstrip())
    return f"{body}\n\n{CART_BLOCK}" + (f"\n\n{footer}" if footer else "")


def _split_footer(body: str) -> tuple[str, str]:
    # A finished body (an edit being finished again) keeps its footer last.
    return (body[: -len(EMAIL_FOOTER)].rstrip(), EMAIL_FOOTER) if body.endswith(EMAIL_FOOTER) else (body, "")


def with_footer(body_text: str) -> str:
    """The plain-text body, ending with ``EMAIL_FOOTER`` unless it already places every footer slot."""
    body = body_text.rstrip()
    if all(f"{{{{{slot}}}}}" in body for slot in FOOTER_SLOTS):
        return body
    return f"{body}\n\n{EMAIL_FOOTER}"


def with_sms_frame(sms_text: str) -> str:
    """The SMS, led by the brand and ending with the opt-out wording (each added only when missing)."""
    text = sms_text.strip()
    if not text.startswith("{{brand_name}}"):
        text = SMS_PREFIX + text
    if "{{sms_opt_out}}" not in text:
        text += SMS_SUFFIX
    return text


def html_from_text(text: str) -> str:
    """Simple HTML for plain ``text``: escaped, paragraphs as ``<p>``, line breaks as ``<br>``, link slots as links.

    A link shows its own address (``<a href="{{offer.url}}">{{offer.url}}</a>``), as the text version does,
    so the copy around it reads the same in both ("Claim it here: …", "Unsubscribe: …").
    """
    paragraphs = (part.strip() for part in _PARAGRAPH_BREAK.split(text.strip()))
    return "".join(f"<p>{_html_line_breaks(part)}</p>" for part in paragraphs if part)


def _html_line_breaks(paragraph: str) -> str:
    return "<br>".join(_linked(html.escape(line.strip(), quote=False)) for line in paragraph.splitlines())


def _linked(escaped: str) -> str:
    # Slots survive escaping unchanged ({, }, ., _ are not escaped); link slots become anchors to themselves.
    def anchor(match: re.Match[str]) -> str:
        slot = SLOTS.get(match.group(1))
        if slot is None or not slot.url:
            return match.group(0)
        return f'<a href="{match.group(0)}">{match.group(0)}</a>'

    return SLOT_PATTERN.sub(anchor, escaped)
