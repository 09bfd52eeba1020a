"""Links into Nudge's own public origin (unsubscribe, preferences) are the brand's links too; other links are not."""

from __future__ import annotations

from dataclasses import replace

from core.models import Channel
from guardrails.context import Message
from guardrails.service import check
from tests.guardrails.corpus_support import context_for

LOOPBACK = "http://127.0.0.1:8000"
LINK = f"{LOOPBACK}/u/abc123"
BODY = (
    "Hi Ana,\n\nTake 20% off the monthly bill for 3 months with code LOYAL20: https://fablewave.example.com/o/LOYAL20"
    "\n\nThe Fablewave team\n\nYou are receiving this because you are a Fablewave customer.\n"
    "Fablewave, 100 Example Street, Anytown, CA 90000\nUnsubscribe: {link}"
)


def rendered(link: str) -> Message:
    text = BODY.replace("{link}", link)
    html = "<p>" + text.replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"
    html = html.replace(f"Unsubscribe: {link}", f'Unsubscribe: <a href="{link}">{link}</a>')
    return Message(
        channel=Channel.EMAIL,
        subject="A thank-you from Fablewave",
        preheader="Your offer inside.",
        body_text=text,
        body_html=html,
        offer_codes=("LOYAL20",),
        rendered=True,
        from_name="Fablewave",
        from_address="hello@fablewave.example.com",
        headers={"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )


def test_unsubscribe_links_into_our_own_origin_pass_even_on_the_embedded_loopback() -> None:
    context = replace(context_for({}), own_origin=LOOPBACK)

    assert check(rendered(LINK), context).findings == ()


def test_the_same_loopback_links_are_refused_when_they_are_not_our_origin() -> None:
    context = replace(context_for({}), own_origin="https://nudge.example.com")

    rules = check(rendered(LINK), context).rules()

    assert rules == ("email.unsubscribe_link", "email.list_unsubscribe", "content.link_domain")
