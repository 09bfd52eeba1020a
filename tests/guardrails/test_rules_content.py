"""The content rules, one by one, on drafts (slots) and rendered messages (real values), with exact findings:
offers and codes, invented figures, personal data, banned claims and words, sign-off, tone, template tags, links.

The context is the sample brand's (``data/samples/brand``): its rules and its whole offer catalog.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from agents.layout import html_from_text, with_footer
from agents.schemas import SLOTS
from core.models import Channel
from guardrails.context import CheckContext, Message, RecipientData
from guardrails.report import Finding, Severity
from guardrails.rules import RULES
from guardrails.rules.content import CONTENT_RULES, KNOWN_SLOTS, LINK_SLOTS, valid_at
from guardrails.service import check
from tests.guardrails.corpus_support import context_for, load_cases, message_for, sample_brand, sample_catalog

NOW = datetime(2026, 11, 21, 15, tzinfo=UTC)
CONTEXT = CheckContext(catalog=sample_catalog(), brand=sample_brand(), now=NOW)
ANA = RecipientData(email="ana.lopez@example.net", phone="+14155550123", first_name="Ana", country="US", region="CA")
RENDERED_CONTEXT = replace(CONTEXT, recipient=ANA)

Row = tuple[str | None, int | None, int | None, str]


def email_draft(
    body: str, *, subject: str = "A thank-you for staying, {{first_name}}", codes: tuple[str, ...] = ()
) -> Message:
    text = with_footer(body)
    return Message(Channel.EMAIL, subject=subject, body_text=text, body_html=html_from_text(text), offer_codes=codes)


def sms(text: str, *, codes: tuple[str, ...] = (), rendered: bool = False) -> Message:
    return Message(Channel.SMS, sms_text=text, offer_codes=codes, rendered=rendered)


def rendered_email(body_text: str, body_html: str = "", *, codes: tuple[str, ...] = (), subject: str = "Hi") -> Message:
    return Message(
        Channel.EMAIL, subject=subject, body_text=body_text, body_html=body_html, offer_codes=codes, rendered=True
    )


def run(rule_id: str, message: Message, context: CheckContext = CONTEXT) -> list[Finding]:
    rule = next(rule for rule in CONTENT_RULES if rule.id == rule_id)
    return rule.run(message, context)


def rows(rule_id: str, message: Message, context: CheckContext = CONTEXT) -> list[Row]:
    """The findings as (field, start, end, excerpt)."""
    return [(f.field, f.start, f.end, f.excerpt) for f in run(rule_id, message, context)]


def test_the_content_rules_are_listed_once_with_their_severities() -> None:
    severities = {rule.id: rule.severity for rule in CONTENT_RULES}

    assert severities == {
        "content.unknown_offer": Severity.BLOCK,
        "content.invented_figure": Severity.BLOCK,
        "content.personal_data": Severity.BLOCK,
        "content.banned_claim": Severity.BLOCK,
        "brand.banned_word": Severity.BLOCK,
        "brand.sign_off": Severity.WARN,
        "brand.tone": Severity.WARN,
        "content.template_tags": Severity.BLOCK,
        "content.link_domain": Severity.BLOCK,
    }
    assert all(rule in RULES for rule in CONTENT_RULES)
    assert all(rule.summary and rule.source for rule in CONTENT_RULES)


def test_the_known_slots_are_the_drafting_agents_slots() -> None:
    assert tuple(SLOTS) == KNOWN_SLOTS
    assert set(LINK_SLOTS) == {name for name, slot in SLOTS.items() if slot.url}


# --- content.unknown_offer -------------------------------------------------------------------------------------------


def test_an_offer_code_the_catalog_lacks_is_blocked() -> None:
    [finding] = run("content.unknown_offer", sms("{{brand_name}}: {{offer.name}} {{sms_opt_out}}", codes=("SAVE50",)))

    assert (finding.field, finding.start, finding.excerpt) == ("offer_codes", None, "SAVE50")
    assert finding.message == "SAVE50 is not an offer in the catalog"
    assert finding.severity is Severity.BLOCK


def test_an_offer_that_has_ended_is_blocked_with_its_end_date() -> None:
    [finding] = run("content.unknown_offer", sms("{{offer.name}}", codes=("SUMMER30",)))

    assert finding.message == "SUMMER30 is not valid now: it ended 2026-09-01"
    assert finding.excerpt == "SUMMER30"


def test_an_offer_that_has_not_started_is_blocked_with_its_start_date() -> None:
    early = replace(CONTEXT, now=datetime(2026, 11, 1, tzinfo=UTC))

    [finding] = run("content.unknown_offer", sms("{{offer.name}}", codes=("HOLIDAY25",)), early)

    assert finding.message == "HOLIDAY25 is not valid now: it starts 2026-11-20"


def test_validity_reads_dates_without_an_offset_as_utc() -> None:
    holiday = sample_catalog()["HOLIDAY25"]  # valid_from 2026-11-20, no offset

    assert not valid_at(holiday, datetime(2026, 11, 19, 23, 59, tzinfo=UTC))
    assert valid_at(holiday, datetime(2026, 11, 20, tzinfo=UTC))
    assert valid_at(holiday, NOW)
    assert not valid_at(holiday, datetime(2027, 1, 1, 5, tzinfo=UTC))  # ends 2027-01-01 00:00 -05:00


def test_a_catalog_code_in_the_text_that_is_not_the_messages_offer_is_blocked_where_it_stands() -> None:
    message = sms("{{brand_name}}: use code MUSIC5 or LOYAL20 today {{sms_opt_out}}", codes=("LOYAL20",))

    assert rows("content.unknown_offer", message) == [("sms_text", 25, 31, "MUSIC5")]


def test_a_code_like_word_after_code_is_blocked_when_it_is_no_offer() -> None:
    message = sms("{{brand_name}}: take code SAVE50, or Code: free-ride {{sms_opt_out}}", codes=("LOYAL20",))

    [finding] = run("content.unknown_offer", message)

    assert (finding.field, finding.start, finding.end, finding.excerpt) == ("sms_text", 26, 32, "SAVE50")
    assert finding.message == "the text gives the code SAVE50, which is not an offer in the catalog"


def test_slots_zip_codes_and_lower_case_link_paths_are_not_codes() -> None:
    text = (
        "Use code {{offer.code}}; zip code 90000 is covered. https://fablewave.example.com/offers/music5 "
        "Offer code LOYAL20."
    )

    assert rows("content.unknown_offer", rendered_email(text, codes=("LOYAL20",))) == []


def test_a_message_with_no_offer_may_write_no_code() -> None:
    [finding] = run("content.unknown_offer", sms("{{brand_name}}: code TECHCARE {{sms_opt_out}}"))

    assert finding.excerpt == "TECHCARE"
    assert finding.hint == "remove the code: the message makes no offer"


# --- content.invented_figure -----------------------------------------------------------------------------------------


def test_a_figure_no_offer_of_the_message_states_is_blocked_per_occurrence() -> None:
    message = sms("{{brand_name}}: 25% off now, 25 percent off later {{sms_opt_out}}", codes=("LOYAL20",))

    findings = run("content.invented_figure", message)

    assert [(f.start, f.end, f.excerpt) for f in findings] == [(16, 19, "25%"), (29, 39, "25 percent")]
    assert findings[0].message == "the copy states 25% but the message's offers (LOYAL20) do not state it"


def test_figures_backed_by_the_offers_value_name_or_terms_pass() -> None:
    text = "20% off, 20 percent, for 3 months or three months, 3 consecutive bills; then $10.99 a month"
    message = rendered_email(text, codes=("LOYAL20", "STREAMFREE3"))

    assert rows("content.invented_figure", message) == []


def test_a_figure_of_another_kind_than_the_offers_value_is_not_backed_by_it() -> None:
    # LOYAL20 backs 20% (its value) and 3 months (its name), not $20.
    assert rows("content.invented_figure", sms("Save $20", codes=("LOYAL20",))) == [("sms_text", 5, 8, "$20")]


def test_with_no_offer_every_figure_is_invented() -> None:
    [finding] = run("content.invented_figure", sms("Now 6 months free"))

    assert finding.excerpt == "6 months"
    assert finding.message == "the copy states 6 months but the message makes no catalog offer"


def test_figures_are_read_in_any_case_and_in_every_currency() -> None:
    message = sms("20 PERCENT for TWELVE MONTHS, then 5 U\u017fD, \u20ac7 or 8 Pounds")

    assert rows("content.invented_figure", message) == [
        ("sms_text", 0, 10, "20 PERCENT"),
        ("sms_text", 15, 28, "TWELVE MONTHS"),
        ("sms_text", 35, 40, "5 U\u017fD"),
        ("sms_text", 42, 44, "\u20ac7"),
        ("sms_text", 48, 56, "8 Pounds"),
    ]


def test_figures_in_html_are_read_unescaped_and_placed_in_the_html_as_written() -> None:
    html = "<p>Save <strong>90&#37;</strong> on &pound;5 extras</p>"
    message = rendered_email("", html, codes=("MUSIC5",))

    assert rows("content.invented_figure", message) == [("body_html", 16, 23, "90&#37;")]


# --- content.personal_data -------------------------------------------------------------------------------------------


def test_an_address_or_phone_written_into_a_draft_is_blocked() -> None:
    message = sms("{{brand_name}}: write to jo.kim@example.org or call 555-0142. {{sms_opt_out}}")

    findings = run("content.personal_data", message)

    assert [(f.start, f.end, f.excerpt) for f in findings] == [(25, 43, "jo.kim@example.org"), (52, 60, "555-0142")]
    assert findings[0].message == "an e-mail address written into a draft"
    assert findings[1].message == "a phone number written into a draft"


def test_the_brands_own_addresses_are_not_personal_data() -> None:
    text = "Write to hello@fablewave.example.com or help@care.fablewave.example.com."

    assert rows("content.personal_data", sms(text)) == []


def test_a_rendered_message_may_hold_the_recipients_own_address_and_phone_in_any_format() -> None:
    text = "We will write to Ana.Lopez@example.net and call (415) 555-0123 or +1 415 555 0123."

    assert rows("content.personal_data", sms(text, rendered=True), RENDERED_CONTEXT) == []


def test_a_rendered_message_holding_another_customers_data_is_blocked() -> None:
    text = "Hi Ana, your friend bo@example.net (415-555-0199) joined."

    findings = run("content.personal_data", sms(text, rendered=True), RENDERED_CONTEXT)

    assert [(f.excerpt, f.message) for f in findings] == [
        ("bo@example.net", "an e-mail address that is not the recipient's own"),
        ("415-555-0199", "a phone number that is not the recipient's own"),
    ]


def test_a_national_number_matches_the_recipients_international_one() -> None:
    uk = replace(CONTEXT, recipient=RecipientData(phone="+447700900123", country="GB"))

    assert rows("content.personal_data", sms("Call 07700 900123", rendered=True), uk) == []
    assert rows("content.personal_data", sms("Call 07700 900124", rendered=True), uk) == [
        ("sms_text", 5, 17, "07700 900124")
    ]


def test_dates_and_digits_in_links_are_not_phone_numbers() -> None:
    text = "Ends 2027-03-31. Unsubscribe: https://fablewave.example.com/u/12345678901234"

    assert rows("content.personal_data", sms(text, rendered=True), RENDERED_CONTEXT) == []


def test_a_mailto_link_to_another_customer_in_html_is_blocked() -> None:
    html = '<p><a href="mailto:bo@example.net">Write to us</a></p>'

    assert rows("content.personal_data", rendered_email("", html), RENDERED_CONTEXT) == [
        ("body_html", 19, 33, "bo@example.net")
    ]


# --- content.banned_claim, brand.banned_word -------------------------------------------------------------------------


def test_banned_claims_are_blocked_per_occurrence_as_whole_words_in_any_case() -> None:
    message = sms("Guaranteed speed, RISK FREE, risk-free; unguaranteed is fine, 100% free is not")

    assert rows("content.banned_claim", message) == [
        ("sms_text", 0, 10, "Guaranteed"),
        ("sms_text", 18, 27, "RISK FREE"),
        ("sms_text", 29, 38, "risk-free"),
        ("sms_text", 62, 71, "100% free"),
    ]


def test_a_banned_phrase_matches_across_a_line_break() -> None:
    assert rows("content.banned_claim", sms("the lowest\nprice")) == [("sms_text", 4, 16, "lowest\nprice")]


def test_banned_words_are_found_in_every_field_and_in_html_as_written() -> None:
    message = email_draft("Faster than AT&T and comcast, without Layer 2 talk.", subject="Leave Verizon behind")

    found = rows("brand.banned_word", message)

    assert [(field, excerpt) for field, _, _, excerpt in found] == [
        ("subject", "Verizon"),
        ("body_text", "AT&T"),
        ("body_text", "comcast"),
        ("body_text", "Layer 2"),
        ("body_html", "AT&amp;T"),
        ("body_html", "comcast"),
        ("body_html", "Layer 2"),
    ]
    html = message.body_html
    assert all(html[start:end] == excerpt for field, start, end, excerpt in found if field == "body_html")


def test_a_banned_word_inside_another_word_is_not_banned() -> None:
    assert rows("brand.banned_word", sms("Spotifyish playlists and ONTARIO")) == []


def test_banned_words_are_found_in_letters_that_match_their_own_in_any_case() -> None:
    # The long s matches "s" and the dotless i matches "i" in a case-insensitive match.
    message = sms("No \u017fpotify, no Ver\u0131zon, no GUARANTEED\u00a0\u017fpeeds: risk\u2003free")

    assert rows("brand.banned_word", message) == [
        ("sms_text", 3, 10, "\u017fpotify"),
        ("sms_text", 15, 22, "Ver\u0131zon"),
    ]
    assert rows("content.banned_claim", message) == [
        ("sms_text", 27, 37, "GUARANTEED"),
        ("sms_text", 46, 55, "risk\u2003free"),
    ]


# --- brand.sign_off --------------------------------------------------------------------------------------------------


def test_a_draft_without_the_sign_off_warns() -> None:
    [finding] = run("brand.sign_off", email_draft("Hi {{first_name}},\n\nThanks.\n\nCheers"))

    assert (finding.field, finding.severity, finding.excerpt) == ("body_text", Severity.WARN, "")
    assert finding.message == "the body does not sign off with 'The {{brand_name}} team'"


def test_a_draft_signs_off_with_the_slot_and_a_rendered_message_with_the_brand_name() -> None:
    assert run("brand.sign_off", email_draft("Hi,\n\nThanks.\n\nThe {{brand_name}} team")) == []
    assert run("brand.sign_off", rendered_email("Hi,\n\nThanks.\n\nThe Fablewave team")) == []
    [finding] = run("brand.sign_off", rendered_email("Hi,\n\nThanks.\n\nThe {{brand_name}} team"))
    assert finding.message == "the body does not sign off with 'The Fablewave team'"


def test_the_sign_off_is_an_email_rule_only() -> None:
    assert run("brand.sign_off", sms("{{brand_name}}: thanks {{sms_opt_out}}")) == []


# --- brand.tone ------------------------------------------------------------------------------------------------------


def test_exclamation_marks_beyond_the_allowance_warn_at_each_extra_mark() -> None:
    findings = run("brand.tone", sms("Wow! Great!! Now"))

    assert [(f.start, f.end, f.excerpt, f.severity) for f in findings] == [
        (10, 11, "!", Severity.WARN),
        (11, 12, "!", Severity.WARN),
    ]
    assert findings[0].message == "more than 1 exclamation mark in the message"


def test_the_subject_counts_towards_each_body_alternative_and_is_reported_once() -> None:
    message = rendered_email("Thanks!", "<p>Thanks!</p>", subject="Hello!")

    assert rows("brand.tone", message) == [("body_text", 6, 7, "!"), ("body_html", 9, 10, "!")]


def test_whole_words_in_capitals_warn_but_codes_keywords_and_links_do_not() -> None:
    text = (
        "PLEASE stay: code TECHCARE or LOYAL20, FAQ on TV. https://fablewave.example.com/u/TOKEN Reply STOP to opt out"
    )

    assert rows("brand.tone", sms(text, rendered=True)) == [("sms_text", 0, 6, "PLEASE")]


def test_short_capitals_and_capitalised_words_are_not_shouting() -> None:
    assert rows("brand.tone", sms("OK, DON'T miss Fablewave Tunes on CD")) == []


def test_words_in_capitals_beyond_ascii_are_shouting_and_mixed_case_ones_are_not() -> None:
    message = sms("\u00c9NORME savings, CAF\u00e9 and \u0130STANBUL")

    assert rows("brand.tone", message) == [("sms_text", 0, 6, "\u00c9NORME"), ("sms_text", 25, 33, "\u0130STANBUL")]


# --- content.template_tags -------------------------------------------------------------------------------------------


def test_a_draft_with_known_slots_only_passes() -> None:
    text = "{{brand_name}}: {{first_name}}, {{offer.name}} {{offer.code}} {{offer.url}} {{sms_opt_out}}"

    assert rows("content.template_tags", sms(text, codes=("LOYAL20",))) == []


def test_unknown_slots_stray_braces_and_template_statements_are_blocked_in_a_draft() -> None:
    text = "{{firstname}} {{ first_name }} {first_name} {% if vip %}VIP{% endif %} {# note #} }"

    findings = run("content.template_tags", sms(text))

    assert [(f.excerpt, f.message) for f in findings] == [
        ("{{firstname}}", "an unknown slot"),
        ("{{ first_name }}", "a slot written with spaces"),
        ("{first_name}", "a placeholder in single braces"),
        ("{% if vip %}", "a template statement or comment"),
        ("{% endif %}", "a template statement or comment"),
        ("{# note #}", "a template statement or comment"),
        ("}", "a stray brace"),
    ]
    assert findings[1].hint == "write it as {{first_name}}"
    assert [(f.start, f.end) for f in findings][:2] == [(0, 13), (14, 30)]


def test_any_tag_left_in_a_rendered_message_is_blocked() -> None:
    message = sms("Hi {{first_name}}, {% if x %}deal{% endif %} ok {{", rendered=True)

    assert [(f.excerpt, f.message) for f in run("content.template_tags", message)] == [
        ("{{first_name}}", "an unfilled template tag"),
        ("{% if x %}", "an unfilled template tag"),
        ("{% endif %}", "an unfilled template tag"),
        ("{{", "an unfilled template tag"),
    ]


def test_single_braces_in_rendered_text_are_text() -> None:
    assert rows("content.template_tags", sms("Smile {:", rendered=True)) == []


# --- content.link_domain ---------------------------------------------------------------------------------------------


def test_a_draft_links_through_link_slots_only() -> None:
    message = email_draft("Claim it: {{offer.url}}\n\nThe {{brand_name}} team", codes=("LOYAL20",))

    assert rows("content.link_domain", message) == []


def test_a_literal_link_in_a_draft_is_blocked_even_on_the_brands_domain() -> None:
    message = sms("{{brand_name}}: speed test at fablewave.example.com/speed. {{sms_opt_out}}")

    [finding] = run("content.link_domain", message)

    assert (finding.start, finding.end, finding.excerpt) == (30, 57, "fablewave.example.com/speed")
    assert finding.message == "a literal link in a draft"


def test_a_literal_href_in_a_draft_is_blocked() -> None:
    html = '<p><a href="https://fablewave.example.com/x">Go</a> <a href="{{offer.url}}">{{offer.url}}</a></p>'
    message = Message(Channel.EMAIL, body_html=html)

    assert rows("content.link_domain", message) == [("body_html", 12, 43, "https://fablewave.example.com/x")]


def test_rendered_links_on_the_brands_domains_and_subdomains_pass() -> None:
    text = (
        "https://fablewave.example.com/offers/loyal20 and www.shop.fablewave.example.com/vinyl, "
        "or hello@fablewave.example.com"
    )
    html = (
        '<p><a href="https://fablewave.example.com/u/TOKEN">{{unsubscribe_url}}</a> '
        '<a href="mailto:hello@fablewave.example.com">Mail</a></p>'
    )

    assert rows("content.link_domain", rendered_email(text, html)) == []


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example.org/win",
        "http://fablewave.example.com.evil.io/x",
        "https://fablewave.example.com@evil.io/",
        "bit.ly/3xYz",
        "www.fablewave-deals.com",
    ],
)
def test_a_rendered_link_outside_the_brands_domains_is_blocked(link: str) -> None:
    text = f"Visit {link} now"

    [finding] = run("content.link_domain", sms(text, rendered=True))

    assert (finding.start, finding.excerpt) == (6, link)
    assert finding.message == "a link outside the brand's domains (fablewave.example.com)"


def test_a_script_or_data_href_is_not_a_brand_link() -> None:
    html = "<p><a href='javascript:alert(1)'>Go</a><img src=data:image/png;base64,AAAA></p>"

    assert [excerpt for *_, excerpt in rows("content.link_domain", rendered_email("", html))] == [
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
    ]


def test_an_unfilled_link_slot_in_a_rendered_href_is_left_to_the_template_rule() -> None:
    message = rendered_email("", '<p><a href="{{offer.url}}">Claim</a></p>')

    assert rows("content.link_domain", message) == []
    assert [f.excerpt for f in run("content.template_tags", message)] == ["{{offer.url}}"]


def test_an_e_mail_address_is_not_a_link() -> None:
    assert rows("content.link_domain", sms("Write to bo@example.com", rendered=True)) == []


# --- every finding --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases(), ids=lambda case: str(case["name"]))
def test_every_content_finding_points_at_its_own_excerpt(case: dict[str, Any]) -> None:
    message = message_for(case)
    texts: dict[str, str] = {**message.texts(), "offer_codes": ""}

    for finding in check(message, context_for(case)).findings:
        if finding.rule.startswith(("content.", "brand.", "injection.")) and finding.start is not None:
            assert finding.field is not None
            assert texts[finding.field][finding.start : finding.end] == finding.excerpt


def test_a_figure_inside_a_link_token_is_not_a_claim() -> None:
    # Signed unsubscribe tokens are random base64: one in ~50,000 spells "1euR" or "7USD".
    rule = next(rule for rule in RULES if rule.id == "content.invented_figure")
    message = Message(
        channel=Channel.EMAIL,
        body_text="Unsubscribe: https://fablewave.example.com/u/LJUaGrEZaPVB0xZWtxdBQG0wz8AT1euR",
        rendered=True,
    )

    assert rule.run(message, context_for({})) == []
