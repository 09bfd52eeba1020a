"""The SMS rules, one by one, on drafts (slots) and rendered messages, with exact findings: brand prefix,
STOP wording, segments (measured as ``core.sms.sms_size`` measures, with properties), encoding, shorteners."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.schemas import SLOTS
from core.models import Channel
from core.sms import GSM7_BASIC, GSM7_EXTENSION, sms_size
from guardrails.context import BrandRules, CheckContext, Message
from guardrails.report import Finding, Severity
from guardrails.rule import SMS, Rule
from guardrails.rules.sms import SHORTENERS, SLOT_RESERVE, SMS_RULES, measured_text, reserve

BRAND = BrandRules(
    brand_name="Fablewave",
    sender_address="hello@fablewave.example.com",
    sender_domains=("fablewave.example.com",),
    postal_address="100 Example Street, Anytown, CA 90000",
    link_domains=("fablewave.example.com",),
)
CONTEXT = CheckContext(catalog={}, brand=BRAND, now=datetime(2026, 11, 21, 15, tzinfo=UTC))
DRAFT = Message(
    Channel.SMS,
    sms_text="{{brand_name}}: {{first_name}}, here is {{offer.name}} with code {{offer.code}}: {{offer.url}} "
    "{{sms_opt_out}}",
)
RENDERED = Message(
    Channel.SMS,
    sms_text="Fablewave: Ana, here is 20% off the monthly bill for 3 months with code LOYAL20: "
    "https://fablewave.example.com/o/LOYAL20 Reply STOP to opt out",
    rendered=True,
)
GSM_BASIC = st.sampled_from(sorted(GSM7_BASIC - set("{}")))
GSM_EXTENSION = st.sampled_from(sorted(GSM7_EXTENSION))
NON_GSM = st.characters(codec="utf-8").filter(lambda char: char not in GSM7_BASIC and char not in GSM7_EXTENSION)


def findings(rule_id: str, message: Message, context: CheckContext = CONTEXT) -> list[Finding]:
    rule = next(rule for rule in SMS_RULES if rule.id == rule_id)
    return rule.run(message, context)


def rendered(text: str) -> Message:
    return Message(Channel.SMS, sms_text=text, rendered=True)


def segments_named(message: Message, context: CheckContext) -> int | None:
    """The segment count the ``sms.segments`` finding states, or None without a finding."""
    found = findings("sms.segments", message, context)
    return int(found[0].message.split()[3]) if found else None


# --- the list ---------------------------------------------------------------------------------------------


def test_the_sms_rules_are_listed_once_each_for_sms_only_citing_the_reference() -> None:
    assert [(rule.id, rule.severity) for rule in SMS_RULES] == [
        ("sms.brand_identified", Severity.BLOCK),
        ("sms.opt_out_language", Severity.BLOCK),
        ("sms.segments", Severity.BLOCK),
        ("sms.encoding", Severity.WARN),
        ("sms.link_shortener", Severity.WARN),
    ]
    assert all(rule.channels == SMS and "ref §" in rule.source for rule in SMS_RULES)


@pytest.mark.parametrize("rule", SMS_RULES, ids=lambda rule: rule.id)
@pytest.mark.parametrize("message", [DRAFT, RENDERED], ids=["draft", "rendered"])
def test_a_clean_draft_and_a_clean_rendered_sms_pass_every_sms_rule(rule: Rule, message: Message) -> None:
    assert rule.run(message, CONTEXT) == []


def test_an_email_is_not_judged_by_the_sms_rules() -> None:
    email = Message(Channel.EMAIL, body_text="hi 😀 bit.ly/x", rendered=True)

    assert [finding for rule in SMS_RULES for finding in rule.run(email, CONTEXT)] == []


# --- sms.brand_identified ---------------------------------------------------------------------------------


def test_a_draft_not_led_by_the_brand_slot_is_blocked_with_the_prefix_to_add() -> None:
    assert findings("sms.brand_identified", replace(DRAFT, sms_text="Hi {{first_name}}. {{sms_opt_out}}")) == [
        Finding(
            rule="sms.brand_identified",
            severity=Severity.BLOCK,
            message="the SMS does not start with the brand name",
            field="sms_text",
            hint="start the text with '{{brand_name}}: '",
        )
    ]


@pytest.mark.parametrize("text", ["  {{brand_name}}: hi", "Fablewave: hi", "FABLEWAVE: hi"])
def test_a_draft_may_lead_with_the_slot_or_the_brand_written_out(text: str) -> None:
    assert findings("sms.brand_identified", replace(DRAFT, sms_text=text)) == []


@pytest.mark.parametrize("text", ["Fablewave: hi", "fablewave: hi", " Fablewave:hi"])
def test_a_rendered_sms_led_by_the_brand_and_a_colon_passes(text: str) -> None:
    assert findings("sms.brand_identified", rendered(text)) == []


@pytest.mark.parametrize(
    "text", ["{{brand_name}}: hi", "Hi Ana, Fablewave: hi", "Fablewave - hi", "Fablewaves: hi", "Fable: hi"]
)
def test_a_rendered_sms_not_led_by_the_brand_and_a_colon_is_blocked(text: str) -> None:
    [finding] = findings("sms.brand_identified", rendered(text))

    assert (finding.field, finding.start, finding.hint) == ("sms_text", None, "start the text with 'Fablewave: '")


# --- sms.opt_out_language ---------------------------------------------------------------------------------


def test_a_draft_without_the_opt_out_slot_or_words_is_blocked_with_the_slot_to_add() -> None:
    assert findings("sms.opt_out_language", replace(DRAFT, sms_text="{{brand_name}}: hi")) == [
        Finding(
            rule="sms.opt_out_language",
            severity=Severity.BLOCK,
            message="the SMS does not say how to opt out",
            field="sms_text",
            hint="end the text with '{{sms_opt_out}}'",
        )
    ]


def test_a_draft_may_write_the_opt_out_words_out() -> None:
    assert findings("sms.opt_out_language", replace(DRAFT, sms_text="{{brand_name}}: hi. Reply STOP to opt out")) == []


@pytest.mark.parametrize(
    "wording",
    [
        "Reply STOP to opt out",
        "reply stop to end",
        "Text STOP to quit",
        "STOP to opt-out",
        "Stop to end",
        "STOP to unsubscribe",
    ],
)
def test_a_rendered_sms_with_stop_wording_in_any_case_passes(wording: str) -> None:
    assert findings("sms.opt_out_language", rendered(f"Fablewave: hi. {wording}")) == []


@pytest.mark.parametrize("text", ["Fablewave: hi {{sms_opt_out}}", "Fablewave: stop by our store", "Fablewave: STOPS"])
def test_a_rendered_sms_without_stop_wording_is_blocked_with_the_words_to_add(text: str) -> None:
    [finding] = findings("sms.opt_out_language", rendered(text))

    assert (finding.field, finding.start, finding.hint) == (
        "sms_text",
        None,
        "end the text with 'Reply STOP to opt out'",
    )


# --- sms.segments -----------------------------------------------------------------------------------------


def test_the_slot_reserves_are_the_drafting_agents() -> None:
    assert dict(SLOT_RESERVE) == {name: slot.reserve for name, slot in SLOTS.items()}


def test_an_unknown_slot_is_reserved_its_name_and_four_more() -> None:
    assert reserve("coupon") == 10
    assert measured_text(replace(DRAFT, sms_text="{{coupon}} {{first_name}}")) == "x" * 10 + " " + "x" * 20


def test_a_rendered_sms_is_measured_as_it_is() -> None:
    assert measured_text(rendered("{{first_name}}")) == "{{first_name}}"


def test_a_gsm_sms_over_the_limit_is_blocked_with_its_segments_encoding_cost_and_what_to_cut() -> None:
    assert findings("sms.segments", rendered("a" * 307)) == [
        Finding(
            rule="sms.segments",
            severity=Severity.BLOCK,
            message="the SMS takes 3 segments (307 GSM-7 characters); the limit is 2: "
            "3 × 0.0083 = 0.0249 USD per recipient",
            field="sms_text",
            hint="cut at least 1 character",
        )
    ]


def test_a_draft_is_measured_with_its_slots_filled_by_their_reserves() -> None:
    # 250 characters of copy fit in two segments, but {{offer.name}} keeps 40 more: 290 + 24 for the opt-out slot.
    draft = replace(DRAFT, sms_text="a" * 250 + "{{offer.name}}{{sms_opt_out}}")

    [finding] = findings("sms.segments", draft)

    assert finding.message == (
        "the SMS takes 3 segments (314 GSM-7 characters, slots filled with their reserved lengths); the limit is 2: "
        "3 × 0.0083 = 0.0249 USD per recipient"
    )
    assert finding.hint == "cut at least 8 characters"


def test_a_ucs2_sms_over_the_limit_names_the_characters_to_replace_and_its_gsm_length() -> None:
    message = rendered("Fablewave: it’s here " + "a" * 120 + " Reply STOP to opt out")

    [finding] = findings("sms.segments", message)

    assert finding.message == (
        "the SMS takes 3 segments (163 UCS-2 characters); the limit is 2: 3 × 0.0083 = 0.0249 USD per recipient"
    )
    assert finding.hint == (
        "replace '’' (U+2019) with GSM-7 characters: they make the whole message UCS-2; "
        "in GSM-7 it would take 2 segments"
    )


def test_a_ucs2_sms_too_long_even_in_gsm_says_to_cut_as_well() -> None:
    message = rendered("😀" + "a" * 320)

    [finding] = findings("sms.segments", message, replace(CONTEXT, max_sms_segments=1))

    assert finding.message == (
        "the SMS takes 5 segments (322 UCS-2 characters); the limit is 1: 5 × 0.0083 = 0.0415 USD per recipient"
    )
    assert finding.hint == (
        "replace '😀' (U+1F600) with GSM-7 characters: they make the whole message UCS-2; "
        "in GSM-7 it would take 3 segments, so also cut at least 161 characters"
    )


def test_the_limit_and_the_price_come_from_the_context() -> None:
    context = replace(CONTEXT, max_sms_segments=1, sms_segment_price=Decimal("0.01"))

    [finding] = findings("sms.segments", rendered("a" * 161), context)

    assert finding.message == (
        "the SMS takes 2 segments (161 GSM-7 characters); the limit is 1: 2 × 0.01 = 0.02 USD per recipient"
    )
    assert finding.hint == "cut at least 1 character"


def test_an_sms_at_the_limit_and_an_empty_one_pass() -> None:
    assert findings("sms.segments", rendered("a" * 306)) == []
    assert findings("sms.segments", rendered("")) == []


@given(st.text(GSM_BASIC, min_size=161, max_size=1600))
def test_a_gsm_text_above_160_characters_takes_one_segment_per_153(text: str) -> None:
    context = replace(CONTEXT, max_sms_segments=1)

    assert segments_named(rendered(text), context) == math.ceil(len(text) / 153)


@given(st.text(GSM_BASIC, max_size=160))
def test_a_gsm_text_of_160_characters_or_fewer_is_one_segment(text: str) -> None:
    assert segments_named(rendered(text), replace(CONTEXT, max_sms_segments=1)) is None


@given(st.text(GSM_BASIC, max_size=400), st.lists(GSM_EXTENSION, min_size=1, max_size=200))
def test_extension_characters_count_double(basic: str, extension: list[str]) -> None:
    text = basic + "".join(extension)
    units = len(basic) + 2 * len(extension)
    message = rendered(text)
    [finding] = findings("sms.segments", message, replace(CONTEXT, max_sms_segments=0))

    assert f"({units} GSM-7 characters)" in finding.message
    assert segments_named(message, replace(CONTEXT, max_sms_segments=0)) == (
        1 if units <= 160 else math.ceil(units / 153)
    )


@given(st.text(GSM_BASIC, max_size=600), NON_GSM, st.integers(min_value=0))
def test_one_non_gsm_character_switches_the_whole_text_to_ucs2_at_70_and_67(basic: str, odd: str, at: int) -> None:
    position = at % (len(basic) + 1)
    text = basic[:position] + odd + basic[position:]
    units = len(text.encode("utf-16-le")) // 2
    [finding] = findings("sms.segments", rendered(text), replace(CONTEXT, max_sms_segments=0))

    assert f"({units} UCS-2 characters)" in finding.message
    assert segments_named(rendered(text), replace(CONTEXT, max_sms_segments=0)) == (
        1 if units <= 70 else math.ceil(units / 67)
    )


@given(st.text(max_size=700), st.integers(min_value=1, max_value=5))
def test_the_rule_blocks_exactly_when_sms_size_counts_more_segments_than_allowed(text: str, limit: int) -> None:
    size = sms_size(text)
    found = findings("sms.segments", rendered(text), replace(CONTEXT, max_sms_segments=limit))

    assert bool(found) == (size.segments > limit)
    assert all(f"takes {size.segments} segments ({size.units} {size.encoding} characters)" in f.message for f in found)


# --- sms.encoding -----------------------------------------------------------------------------------------


def test_a_curly_apostrophe_is_a_warning_at_the_character_with_its_plain_replacement() -> None:
    assert findings("sms.encoding", rendered("Fablewave: it’s here")) == [
        Finding(
            rule="sms.encoding",
            severity=Severity.WARN,
            message="the SMS is UCS-2 because of '’' (U+2019): a segment then holds 70 characters (67 when split) "
            "instead of 160 (153), about half as many",
            field="sms_text",
            start=13,
            end=14,
            excerpt="’",
            hint="replace '’' (U+2019) with \"'\"",
        )
    ]


def test_every_odd_character_is_named_once_and_the_first_is_the_excerpt() -> None:
    message = replace(DRAFT, sms_text="{{brand_name}}: ça va 😀 — ça 😀 {{sms_opt_out}}")

    [finding] = findings("sms.encoding", message)

    assert (finding.start, finding.end, finding.excerpt) == (16, 17, "ç")
    assert "because of 'ç' (U+00E7), '😀' (U+1F600), '—' (U+2014):" in finding.message
    assert finding.hint == (
        "remove 'ç' (U+00E7) or replace it with a GSM-7 character; "
        "remove '😀' (U+1F600) or replace it with a GSM-7 character; replace '—' (U+2014) with '-'"
    )


@pytest.mark.parametrize("text", ["{{brand_name}}: 5€ [off] ~ é Ç {{sms_opt_out}}", "Fablewave: plain"])
def test_gsm_text_with_slots_and_extension_characters_raises_no_warning(text: str) -> None:
    assert findings("sms.encoding", replace(DRAFT, sms_text=text)) == []


def test_a_draft_is_judged_on_what_is_sent_not_on_its_slot_names() -> None:
    draft = replace(DRAFT, sms_text="{{brand_name}}: {{prénom}} ça {{sms_opt_out}}")

    [finding] = findings("sms.encoding", draft)

    assert (finding.start, finding.end, finding.excerpt) == (27, 28, "ç")
    assert "because of 'ç' (U+00E7):" in finding.message


def test_an_invisible_non_breaking_space_is_named_by_its_code_point() -> None:
    [finding] = findings("sms.encoding", rendered("Fablewave:\u00a0hi"))

    assert finding.excerpt == "\u00a0"
    assert finding.hint == "replace '\\xa0' (U+00A0) with ' '"


# --- sms.link_shortener -----------------------------------------------------------------------------------


def test_a_public_shortener_link_is_a_warning_at_the_link_without_its_trailing_stop() -> None:
    text = "Fablewave: see https://bit.ly/3xYz. Reply STOP to opt out"

    assert findings("sms.link_shortener", rendered(text)) == [
        Finding(
            rule="sms.link_shortener",
            severity=Severity.WARN,
            message="the SMS links through a public URL shortener, which carriers filter",
            field="sms_text",
            start=15,
            end=34,
            excerpt="https://bit.ly/3xYz",
            hint="link to the brand's own domain instead, such as {{offer.url}}",
        )
    ]


@pytest.mark.parametrize("shortener", SHORTENERS)
def test_every_listed_shortener_is_caught_with_or_without_scheme(shortener: str) -> None:
    text = f"Fablewave: {shortener}/a and http://www.{shortener.upper()}/b"

    assert [finding.excerpt for finding in findings("sms.link_shortener", rendered(text))] == [
        f"{shortener}/a",
        f"http://www.{shortener.upper()}/b",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Fablewave: https://fablewave.example.com/o/LOYAL20",
        "Fablewave: at.co and t.com and bit.lyrics",
        "Fablewave: https://fablewave.example.com/bit.ly",
        "Fablewave: mail me@t.co",
        "Fablewave: goo.gle.example.com",
    ],
)
def test_lookalikes_and_the_brands_own_links_are_not_shorteners(text: str) -> None:
    assert findings("sms.link_shortener", rendered(text)) == []
