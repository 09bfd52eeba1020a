"""The e-mail compliance rules, one by one, on drafts (slots) and rendered messages (real values), with exact
findings: unsubscribe link, one-click headers, postal address, deceptive subject, sender identity, disclosure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType

import pytest

from agents.layout import html_from_text, with_footer
from core.models import Channel, OfferKind
from guardrails.context import BrandRules, CatalogOffer, CheckContext, Message
from guardrails.report import Finding, Severity
from guardrails.rule import EMAIL, Rule
from guardrails.rules.email import EMAIL_RULES

BRAND = BrandRules(
    brand_name="Fablewave",
    sender_address="hello@fablewave.example.com",
    sender_domains=("fablewave.example.com",),
    postal_address="100 Example Street, Anytown, CA 90000",
    link_domains=("fablewave.example.com",),
)
LOYAL20 = CatalogOffer("LOYAL20", "20% off the monthly bill for 3 months", OfferKind.PERCENT_OFF, Decimal(20), "USD")
CONTEXT = CheckContext(catalog={"LOYAL20": LOYAL20}, brand=BRAND, now=datetime(2026, 11, 21, 15, tzinfo=UTC))

DRAFT_TEXT = with_footer(
    "Hi {{first_name}},\n\nHere is {{offer.name}}. Use code {{offer.code}} when you next pay.\n\n"
    "Claim it here: {{offer.url}}\n\nThe {{brand_name}} team"
)
DRAFT = Message(
    Channel.EMAIL,
    subject="A thank-you for staying with us, {{first_name}}",
    body_text=DRAFT_TEXT,
    body_html=html_from_text(DRAFT_TEXT),
    offer_codes=("LOYAL20",),
)
UNSUBSCRIBE = "https://fablewave.example.com/u/tok123"
FOOTER_TEXT = (
    "You are receiving this because you are a Fablewave customer.\n"
    "Fablewave, 100 Example Street, Anytown, CA 90000\n"
    f"Unsubscribe: {UNSUBSCRIBE}"
)
FOOTER_HTML = (
    "<p>You are receiving this because you are a Fablewave customer.<br>"
    "Fablewave, 100 Example Street, Anytown, CA 90000<br>"
    f'Unsubscribe: <a href="{UNSUBSCRIBE}">{UNSUBSCRIBE}</a></p>'
)
HEADERS = MappingProxyType(
    {"List-Unsubscribe": f"<{UNSUBSCRIBE}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
)
RENDERED = Message(
    Channel.EMAIL,
    subject="A thank-you for staying with us, Ana",
    body_text=f"Hi Ana,\n\nHere is 20% off the monthly bill for 3 months.\n\nThe Fablewave team\n\n{FOOTER_TEXT}",
    body_html="<p>Hi Ana,</p><p>Here is 20% off the monthly bill for 3 months.</p><p>The Fablewave team</p>"
    + FOOTER_HTML,
    offer_codes=("LOYAL20",),
    rendered=True,
    from_name="Fablewave",
    from_address="hello@fablewave.example.com",
    headers=HEADERS,
)


def findings(rule_id: str, message: Message, context: CheckContext = CONTEXT) -> list[Finding]:
    rule = next(rule for rule in EMAIL_RULES if rule.id == rule_id)
    return rule.run(message, context)


def with_text(message: Message, old: str, new: str) -> Message:
    """``message`` with ``old`` replaced by ``new`` in both body parts."""
    return replace(
        message, body_text=message.body_text.replace(old, new), body_html=message.body_html.replace(old, new)
    )


# --- the list ---------------------------------------------------------------------------------------------


def test_the_email_rules_are_listed_once_each_for_email_only_citing_the_reference() -> None:
    ids = [rule.id for rule in EMAIL_RULES]

    assert ids == [
        "email.unsubscribe_link",
        "email.list_unsubscribe",
        "email.postal_address",
        "email.deceptive_subject",
        "email.sender_identity",
        "email.commercial_disclosure",
    ]
    assert all(rule.channels == EMAIL and "ref §" in rule.source for rule in EMAIL_RULES)
    assert [rule.id for rule in EMAIL_RULES if rule.severity is Severity.WARN] == ["email.commercial_disclosure"]


@pytest.mark.parametrize("rule", EMAIL_RULES, ids=lambda rule: rule.id)
@pytest.mark.parametrize("message", [DRAFT, RENDERED], ids=["draft", "rendered"])
def test_a_clean_draft_and_a_clean_rendered_email_pass_every_email_rule(rule: Rule, message: Message) -> None:
    assert rule.run(message, CONTEXT) == []


def test_an_sms_is_not_judged_by_the_email_rules() -> None:
    sms = Message(Channel.SMS, sms_text="hello", rendered=True)

    assert [finding for rule in EMAIL_RULES for finding in rule.run(sms, CONTEXT)] == []


# --- email.unsubscribe_link -------------------------------------------------------------------------------


def test_a_draft_whose_text_lacks_the_unsubscribe_slot_is_blocked_with_where_to_put_it() -> None:
    draft = replace(DRAFT, body_text=DRAFT.body_text.replace("Unsubscribe: {{unsubscribe_url}}", ""))

    assert findings("email.unsubscribe_link", draft) == [
        Finding(
            rule="email.unsubscribe_link",
            severity=Severity.BLOCK,
            message="body_text has no unsubscribe link",
            field="body_text",
            hint="place {{unsubscribe_url}} in the footer, after the postal address",
        )
    ]


def test_a_draft_whose_html_shows_the_unsubscribe_slot_as_text_is_blocked_at_the_slot() -> None:
    body_html = "<p>Unsubscribe: {{unsubscribe_url}}</p>"
    draft = replace(DRAFT, body_html=body_html)

    [finding] = findings("email.unsubscribe_link", draft)

    assert finding.message == "body_html shows the unsubscribe slot as text, not as a link"
    assert (finding.field, finding.start, finding.end, finding.excerpt) == ("body_html", 16, 35, "{{unsubscribe_url}}")
    assert body_html[16:35] == "{{unsubscribe_url}}"
    assert finding.hint == 'link it in the footer: <a href="{{unsubscribe_url}}">{{unsubscribe_url}}</a>'


def test_a_draft_whose_html_has_no_unsubscribe_slot_is_blocked_without_a_span() -> None:
    draft = replace(DRAFT, body_html="<p>Hi</p>")

    [finding] = findings("email.unsubscribe_link", draft)

    assert (finding.field, finding.start, finding.excerpt) == ("body_html", None, "")
    assert finding.message == "body_html has no unsubscribe link"


def test_a_text_only_email_needs_the_link_in_its_text_alone() -> None:
    assert findings("email.unsubscribe_link", replace(DRAFT, body_html="")) == []


def test_a_rendered_email_with_https_links_in_both_parts_passes() -> None:
    assert findings("email.unsubscribe_link", RENDERED) == []


def test_a_rendered_text_whose_unsubscribe_link_is_plain_http_is_blocked_at_the_link() -> None:
    message = replace(RENDERED, body_text=RENDERED.body_text.replace(UNSUBSCRIBE, "http://fablewave.example.com/u/t"))

    [finding] = findings("email.unsubscribe_link", message)

    assert (finding.rule, finding.severity, finding.field) == ("email.unsubscribe_link", Severity.BLOCK, "body_text")
    assert finding.message == "the unsubscribe link in body_text is not https"
    assert finding.excerpt == "http://fablewave.example.com/u/t"
    assert message.body_text[finding.start : finding.end] == finding.excerpt


def test_a_rendered_html_whose_unsubscribe_anchor_is_plain_http_is_blocked_at_the_href() -> None:
    body_html = '<p>Unsubscribe: <a href="http://fablewave.example.com/u/t">http://fablewave.example.com/u/t</a></p>'
    message = replace(RENDERED, body_html=body_html)

    [finding] = findings("email.unsubscribe_link", message)

    assert finding.message == "the unsubscribe link in body_html is not https"
    assert (finding.field, finding.start, finding.end) == ("body_html", 25, 57)
    assert finding.excerpt == body_html[25:57] == "http://fablewave.example.com/u/t"


def test_a_rendered_html_that_shows_the_unsubscribe_address_without_an_anchor_is_blocked() -> None:
    message = replace(RENDERED, body_html=f"<p>Unsubscribe: {UNSUBSCRIBE}</p>")

    [finding] = findings("email.unsubscribe_link", message)

    assert (finding.field, finding.message, finding.start) == ("body_html", "body_html has no unsubscribe link", None)


def test_a_rendered_email_whose_unsubscribe_slot_was_never_filled_has_no_working_link_in_either_part() -> None:
    message = with_text(RENDERED, UNSUBSCRIBE, "{{unsubscribe_url}}")

    assert [(f.field, f.message, f.excerpt) for f in findings("email.unsubscribe_link", message)] == [
        ("body_text", "body_text has no unsubscribe link", ""),
        ("body_html", "the unsubscribe link in body_html is an unfilled slot", "{{unsubscribe_url}}"),
    ]


def test_the_unsubscribe_link_may_open_the_line_below_the_word() -> None:
    message = replace(RENDERED, body_text=f"To unsubscribe, visit:\n  {UNSUBSCRIBE}")

    assert findings("email.unsubscribe_link", message) == []


def test_an_offer_link_after_a_mention_of_unsubscribing_is_not_the_unsubscribe_link() -> None:
    body_text = "You can unsubscribe at any time.\nIn the meantime:\nhttps://fablewave.example.com/offers/loyal"
    message = replace(RENDERED, body_text=body_text)

    [finding] = findings("email.unsubscribe_link", message)

    assert (finding.field, finding.message) == ("body_text", "body_text has no unsubscribe link")


def test_an_anchor_whose_address_says_unsubscribe_counts_whatever_its_words() -> None:
    message = replace(RENDERED, body_html=f'<p><a href="{UNSUBSCRIBE}/unsubscribe">Stop these e-mails</a></p>')

    assert findings("email.unsubscribe_link", message) == []


def test_an_anchor_whose_words_say_unsubscribe_counts_whatever_its_address() -> None:
    message = replace(RENDERED, body_html='<p><a href="https://fablewave.example.com/prefs">Unsubscribe</a></p>')

    assert findings("email.unsubscribe_link", message) == []


def test_an_anchor_after_the_word_unsubscribe_on_its_line_counts_whatever_its_words() -> None:
    other = "https://fablewave.example.com/prefs/tok123"
    message = replace(RENDERED, body_html=f'<p>Fablewave<br>To unsubscribe, follow <a href="{other}">{other}</a></p>')

    assert findings("email.unsubscribe_link", message) == []


def test_an_offer_anchor_on_the_line_after_a_mention_of_unsubscribing_is_not_the_unsubscribe_link() -> None:
    offer = "https://fablewave.example.com/offers/loyal"
    body_html = f'<p>You can unsubscribe at any time.<br>Meanwhile: <a href="{offer}">{offer}</a></p>'
    message = replace(RENDERED, body_html=body_html)

    [finding] = findings("email.unsubscribe_link", message)

    assert (finding.field, finding.message) == ("body_html", "body_html has no unsubscribe link")


def test_the_anchor_linking_the_list_unsubscribe_uri_counts_whatever_the_words_around_it() -> None:
    body_html = f'<p>Stop these e-mails:<br><a href="{UNSUBSCRIBE}">{UNSUBSCRIBE}</a></p>'
    message = replace(RENDERED, body_html=body_html)
    unlisted = replace(message, headers={**HEADERS, "List-Unsubscribe": "<https://fablewave.example.com/u/other>"})

    assert findings("email.unsubscribe_link", message) == []
    assert [(f.field, f.message) for f in findings("email.unsubscribe_link", unlisted)] == [
        ("body_html", "body_html has no unsubscribe link")
    ]


def test_the_text_link_equal_to_the_list_unsubscribe_uri_counts_without_the_word() -> None:
    message = replace(RENDERED, body_text=f"Stop these e-mails:\n\n{UNSUBSCRIBE}")
    unlisted = replace(message, headers={**HEADERS, "List-Unsubscribe": "<https://fablewave.example.com/u/other>"})

    assert findings("email.unsubscribe_link", message) == []
    assert [(f.field, f.message) for f in findings("email.unsubscribe_link", unlisted)] == [
        ("body_text", "body_text has no unsubscribe link")
    ]


@pytest.mark.parametrize("words", ["{{unsubscribe_url}}", "Unsubscribe", "Manage your e-mails"])
def test_a_draft_anchor_to_the_unsubscribe_slot_passes_whatever_its_words(words: str) -> None:
    body_html = f'<p>Fablewave, {{{{postal_address}}}}<br><a href="{{{{unsubscribe_url}}}}">{words}</a></p>'

    assert findings("email.unsubscribe_link", replace(DRAFT, body_html=body_html)) == []


def test_the_layouts_draft_html_links_the_unsubscribe_slot_to_itself() -> None:
    assert 'Unsubscribe: <a href="{{unsubscribe_url}}">{{unsubscribe_url}}</a>' in DRAFT.body_html


# --- email.list_unsubscribe -------------------------------------------------------------------------------


def test_a_draft_has_no_headers_yet_and_is_not_held_to_them() -> None:
    assert findings("email.list_unsubscribe", DRAFT) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"List-Unsubscribe": f"<mailto:u@fablewave.example.com>, <{UNSUBSCRIBE}>"},
        {"list-unsubscribe": f"<{UNSUBSCRIBE}>"},
        {"List-Unsubscribe": f" < {UNSUBSCRIBE} > "},
    ],
)
def test_an_https_uri_among_others_in_any_header_case_passes(headers: dict[str, str]) -> None:
    message = replace(RENDERED, headers={**headers, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})

    assert findings("email.list_unsubscribe", message) == []


def test_a_rendered_email_without_the_one_click_headers_is_blocked_once_per_header() -> None:
    assert findings("email.list_unsubscribe", replace(RENDERED, headers={})) == [
        Finding(
            rule="email.list_unsubscribe",
            severity=Severity.BLOCK,
            message="the List-Unsubscribe header is missing",
            field="List-Unsubscribe",
            hint="set List-Unsubscribe: <https://…> to the recipient's one-click unsubscribe URL "
            "(a <mailto:…> may follow)",
        ),
        Finding(
            rule="email.list_unsubscribe",
            severity=Severity.BLOCK,
            message="the List-Unsubscribe-Post header is missing",
            field="List-Unsubscribe-Post",
            hint="set List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        ),
    ]


@pytest.mark.parametrize(
    "value", ["<mailto:u@fablewave.example.com>", "<http://fablewave.example.com/u/t>", UNSUBSCRIBE]
)
def test_a_list_unsubscribe_header_without_a_bracketed_https_uri_is_blocked_on_its_value(value: str) -> None:
    message = replace(RENDERED, headers={**HEADERS, "List-Unsubscribe": value})

    [finding] = findings("email.list_unsubscribe", message)

    assert finding.message == "the List-Unsubscribe header has no <https://…> URI"
    assert (finding.field, finding.start, finding.end, finding.excerpt) == ("List-Unsubscribe", 0, len(value), value)


@pytest.mark.parametrize("value", ["One-Click", "List-Unsubscribe=one-click", "List-Unsubscribe=One-Click; x=1"])
def test_a_post_header_other_than_exactly_the_one_click_value_is_blocked(value: str) -> None:
    message = replace(RENDERED, headers={**HEADERS, "List-Unsubscribe-Post": value})

    [finding] = findings("email.list_unsubscribe", message)

    assert finding.message == "the List-Unsubscribe-Post header is not 'List-Unsubscribe=One-Click'"
    assert (finding.field, finding.excerpt, finding.start, finding.end) == (
        "List-Unsubscribe-Post",
        value,
        0,
        len(value),
    )


# --- email.postal_address ---------------------------------------------------------------------------------


def test_a_draft_without_the_postal_address_slot_is_blocked_in_each_part() -> None:
    draft = with_text(DRAFT, "{{postal_address}}", "")

    assert findings("email.postal_address", draft) == [
        Finding(
            rule="email.postal_address",
            severity=Severity.BLOCK,
            message=f"{field} has no postal address",
            field=field,
            hint="put {{postal_address}} in the footer, after the brand name and before the unsubscribe link",
        )
        for field in ("body_text", "body_html")
    ]


def test_a_rendered_email_without_the_brands_address_names_the_address_to_add() -> None:
    message = replace(RENDERED, body_text=RENDERED.body_text.replace("100 Example Street", "1 Other Road"))

    [finding] = findings("email.postal_address", message)

    assert (finding.field, finding.start, finding.excerpt) == ("body_text", None, "")
    assert finding.hint == (
        "put '100 Example Street, Anytown, CA 90000' in the footer, "
        "after the brand name and before the unsubscribe link"
    )


def test_a_rendered_email_still_holding_the_address_slot_is_blocked() -> None:
    message = with_text(RENDERED, "100 Example Street, Anytown, CA 90000", "{{postal_address}}")

    assert [finding.field for finding in findings("email.postal_address", message)] == ["body_text", "body_html"]


def test_an_address_broken_over_lines_and_escaped_in_html_is_still_the_address() -> None:
    brand = BRAND.model_copy(update={"postal_address": "Unit 5 & 6, 100 Example Street, Anytown, CA 90000"})
    message = replace(
        RENDERED,
        body_text="Fablewave, Unit 5 & 6,\n100 Example Street,  Anytown, CA 90000",
        body_html="<p>Fablewave, Unit 5 &amp; 6,<br>100 Example Street, Anytown, CA 90000</p>",
    )

    assert findings("email.postal_address", message, replace(CONTEXT, brand=brand)) == []


# --- email.deceptive_subject ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "excerpt", "span"),
    [("RE: your bill", "RE:", (0, 3)), ("  fwd : a deal", "fwd :", (2, 7)), ("Fw:hello", "Fw:", (0, 3))],
)
def test_a_subject_faking_a_reply_or_forward_is_blocked_at_the_prefix(
    subject: str, excerpt: str, span: tuple[int, int]
) -> None:
    assert findings("email.deceptive_subject", replace(DRAFT, subject=subject)) == [
        Finding(
            rule="email.deceptive_subject",
            severity=Severity.BLOCK,
            message="the subject pretends the e-mail is a reply or a forward",
            field="subject",
            start=span[0],
            end=span[1],
            excerpt=excerpt,
            hint="drop the prefix: a campaign e-mail is neither a reply nor a forward",
        )
    ]


def test_a_real_reply_may_say_re() -> None:
    reply = replace(RENDERED, subject="Re: your question", headers={**HEADERS, "In-Reply-To": "<a@b.example>"})

    assert findings("email.deceptive_subject", reply) == []


@pytest.mark.parametrize("subject", ["Reward: a thank-you", "Freebies: none", "Your REFUND: on its way"])
def test_words_that_merely_start_with_re_or_fw_are_not_prefixes(subject: str) -> None:
    assert findings("email.deceptive_subject", replace(DRAFT, subject=subject)) == []


def test_a_subject_figure_the_body_never_states_is_a_warning_at_the_figure() -> None:
    draft = replace(DRAFT, subject="Take 20% off, {{first_name}}", offer_codes=())

    assert findings("email.deceptive_subject", draft) == [
        Finding(
            rule="email.deceptive_subject",
            severity=Severity.WARN,
            message="the subject states 20%, which the body never mentions",
            field="subject",
            start=5,
            end=8,
            excerpt="20%",
            hint="state the figure in the body too, or take it out of the subject",
        )
    ]


def test_a_draft_body_states_its_offers_figures_through_the_offer_name_slot() -> None:
    assert findings("email.deceptive_subject", replace(DRAFT, subject="20% off for 3 months")) == []


def test_a_rendered_body_backs_a_subject_figure_by_stating_it() -> None:
    message = replace(RENDERED, subject="20 percent off for three months, Ana")

    assert findings("email.deceptive_subject", message) == []


def test_each_unbacked_figure_is_its_own_warning() -> None:
    message = replace(RENDERED, subject="$10 off and 6 months free")

    assert [(f.excerpt, f.severity) for f in findings("email.deceptive_subject", message)] == [
        ("$10", Severity.WARN),
        ("6 months", Severity.WARN),
    ]


# --- email.sender_identity --------------------------------------------------------------------------------


def test_a_draft_has_no_sender_yet_and_is_not_held_to_one() -> None:
    assert findings("email.sender_identity", DRAFT) == []


def test_the_brand_in_any_case_from_a_sender_subdomain_passes() -> None:
    message = replace(RENDERED, from_name="FABLEWAVE ", from_address="news@mail.fablewave.example.com")

    assert findings("email.sender_identity", message) == []


def test_a_personal_from_name_is_blocked_on_the_name() -> None:
    assert findings("email.sender_identity", replace(RENDERED, from_name="Ana from Billing")) == [
        Finding(
            rule="email.sender_identity",
            severity=Severity.BLOCK,
            message="the From name is not the brand name 'Fablewave'",
            field="from_name",
            start=0,
            end=16,
            excerpt="Ana from Billing",
            hint="send as 'Fablewave'",
        )
    ]


@pytest.mark.parametrize(
    ("address", "excerpt", "span"),
    [
        ("hello@gmail.com", "gmail.com", (6, 15)),
        ("a@fablewave.example.com.evil.io", "fablewave.example.com.evil.io", (2, 31)),
    ],
)
def test_a_from_address_off_the_sender_domains_is_blocked_on_its_domain(
    address: str, excerpt: str, span: tuple[int, int]
) -> None:
    [finding] = findings("email.sender_identity", replace(RENDERED, from_address=address))

    assert finding.message == "the From address is not on one of the brand's sender domains"
    assert (finding.field, finding.excerpt, (finding.start, finding.end)) == ("from_address", excerpt, span)
    assert finding.hint == "send from an address on fablewave.example.com"


def test_a_rendered_email_without_a_sender_is_blocked_on_name_and_address_without_spans() -> None:
    message = replace(RENDERED, from_name=None, from_address=None)

    assert [(f.field, f.message, f.start) for f in findings("email.sender_identity", message)] == [
        ("from_name", "the e-mail has no From name", None),
        ("from_address", "the e-mail has no From address", None),
    ]


def test_a_from_address_that_is_no_address_is_blocked_whole() -> None:
    [finding] = findings("email.sender_identity", replace(RENDERED, from_address="fablewave.example.com"))

    assert (finding.message, finding.excerpt) == ("the From address is not an e-mail address", "fablewave.example.com")


# --- email.commercial_disclosure --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "You are receiving this because you are a {{brand_name}} customer.",
        "You're receiving this e-mail because you are an  Anytown\ncustomer.",
        "This is a marketing e-mail.",
        "Advertisement",
        "A promotional offer for you.",
    ],
)
def test_the_footer_line_or_a_plain_word_identifies_the_email_as_marketing(sentence: str) -> None:
    draft = replace(DRAFT, body_text=f"Hi.\n\n{sentence}", body_html="")

    assert findings("email.commercial_disclosure", draft) == []


def test_an_email_that_never_says_it_is_marketing_is_a_warning_without_a_span() -> None:
    draft = with_text(DRAFT, "You are receiving this because you are a {{brand_name}} customer.", "")

    assert findings("email.commercial_disclosure", draft) == [
        Finding(
            rule="email.commercial_disclosure",
            severity=Severity.WARN,
            message="the e-mail does not say it is a marketing message",
            field="body_text",
            hint="keep the footer line 'You are receiving this because you are a {{brand_name}} customer.' "
            "before the postal address, or say in the body that it is a marketing e-mail",
        )
    ]


def test_the_disclosure_may_sit_in_the_html_part_alone() -> None:
    message = replace(RENDERED, body_text="Hi Ana.")

    assert findings("email.commercial_disclosure", message) == []
