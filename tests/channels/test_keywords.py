"""Inbound SMS keywords: every keyword in every spelling a phone produces, the replies carriers require, and
each reply inside one GSM-7 segment."""

from __future__ import annotations

import pytest

from channels.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    KeywordAction,
    KeywordKind,
    SmsProgram,
    classify,
    help_reply,
    keyword_action,
    start_reply,
    stop_reply,
)
from core.errors import ValidationFailed
from core.sms import sms_size

FABLEWAVE = SmsProgram(brand_name="Fablewave", support_contact="fablewave.example.com/help")


def spellings(keyword: str) -> list[str]:
    """How a keyword arrives from a phone: any case, padded, with punctuation, on its own line."""
    return [
        keyword,
        keyword.lower(),
        keyword.title(),
        f"  {keyword}  ",
        f"{keyword}.",
        f"{keyword}!",
        f"{keyword.lower()}?",
        f"\n{keyword}\n",
        f'"{keyword}"',
    ]


# --- classification ------------------------------------------------------------------------------------------


def test_the_keyword_lists_are_twilios_and_ctias() -> None:
    assert sorted(OPT_OUT_KEYWORDS) == ["CANCEL", "END", "OPTOUT", "QUIT", "REVOKE", "STOP", "STOPALL", "UNSUBSCRIBE"]
    assert sorted(OPT_IN_KEYWORDS) == ["START", "UNSTOP", "YES"]
    assert sorted(HELP_KEYWORDS) == ["HELP", "INFO"]


@pytest.mark.parametrize("text", [text for keyword in sorted(OPT_OUT_KEYWORDS) for text in spellings(keyword)])
def test_every_opt_out_keyword_in_any_spelling_is_an_opt_out(text: str) -> None:
    assert classify(text) is KeywordKind.OPT_OUT


@pytest.mark.parametrize("text", [text for keyword in sorted(OPT_IN_KEYWORDS) for text in spellings(keyword)])
def test_every_opt_in_keyword_in_any_spelling_is_an_opt_in(text: str) -> None:
    assert classify(text) is KeywordKind.OPT_IN


@pytest.mark.parametrize("text", [text for keyword in sorted(HELP_KEYWORDS) for text in spellings(keyword)])
def test_every_help_keyword_in_any_spelling_is_help(text: str) -> None:
    assert classify(text) is KeywordKind.HELP


@pytest.mark.parametrize(
    "text",
    ["opt out", "Opt-Out", "OPT OUT!", "opt_out", "stop all", "Stop-All", "STOP ALL.", "S.T.O.P", "un-subscribe"],
)
def test_keywords_written_as_two_words_or_with_inner_punctuation_are_opt_outs(text: str) -> None:
    assert classify(text) is KeywordKind.OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "STOP please",
        "Stop texting me",
        "cancel my subscription",
        "End.",
        "Quit it",
        "Opt out please",
        "stop all now",
        "STOP 🛑",
    ],
)
def test_a_message_whose_first_word_is_an_opt_out_keyword_is_an_opt_out(text: str) -> None:
    assert classify(text) is KeywordKind.OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "ok stop",
        "pls stop it",
        "Yes, STOP",
        "please stop sending these",
        "Please opt me out of these",
        "How do I unsubscribe?",
        "I want to opt out",
        "can you remove me from this list",
        "take me off your list",
        "why won't you stop texting",
    ],
)
def test_a_plain_language_revocation_is_an_opt_out(text: str) -> None:
    assert classify(text) is KeywordKind.OPT_OUT


@pytest.mark.parametrize("text", ["Don't stop", "End of story, I'll buy it"])
def test_the_rule_accepts_a_few_false_opt_outs_rather_than_miss_a_real_one(text: str) -> None:
    assert classify(text) is KeywordKind.OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "stopping by later?",
        "I'll stop by the store tomorrow to pick it up",
        "When does the sale end?",
        "Stopwatch in stock?",
        "Endless summer sale!",
        "Start over",
        "Can I start my order again?",
        "yes please send more",
        "Yes, if it's cheaper",
        "Helpful, thanks",
        "Information on the sale please",
        "Thanks!",
        "🙂",
        "",
        "   ",
        "...",
    ],
)
def test_anything_else_is_other(text: str) -> None:
    assert classify(text) is KeywordKind.OTHER


@pytest.mark.parametrize("text", ["help me", "Help, where is my order?", "INFO please"])
def test_a_message_whose_first_word_is_help_or_info_is_help(text: str) -> None:
    assert classify(text) is KeywordKind.HELP


def test_an_opt_out_outranks_help_and_opt_in_in_the_same_message() -> None:
    assert [classify(text) for text in ["Help, unsubscribe me", "yes stop"]] == [KeywordKind.OPT_OUT] * 2


# --- replies -----------------------------------------------------------------------------------------------


def test_the_stop_reply_names_the_brand_confirms_and_says_how_to_come_back() -> None:
    assert stop_reply(FABLEWAVE) == (
        "Fablewave: You are unsubscribed and will receive no more messages. Reply START to resubscribe."
    )


def test_the_start_reply_gives_frequency_rates_help_and_stop() -> None:
    program = SmsProgram(
        brand_name="Fablewave", support_contact="help@fablewave.example.com", frequency="Up to 4 msgs/week"
    )

    assert start_reply(program) == (
        "Fablewave: You are subscribed to our texts. Up to 4 msgs/week. Msg & data rates may apply. "
        "Reply HELP for help, STOP to opt out."
    )


def test_the_help_reply_gives_brand_support_contact_frequency_rates_and_stop() -> None:
    assert help_reply(FABLEWAVE) == (
        "Fablewave: Help at fablewave.example.com/help. Msg frequency varies. Msg & data rates may apply. "
        "Reply STOP to opt out."
    )


@pytest.mark.parametrize("reply", [stop_reply, start_reply, help_reply])
@pytest.mark.parametrize(
    "program",
    [
        FABLEWAVE,
        SmsProgram(
            brand_name="Fablewave’s Corner Shop", support_contact="1-800-555-0199", frequency="Up to 4 msgs/wk."
        ),
        SmsProgram(brand_name="B", support_contact="b@b.example"),
    ],
)
def test_every_reply_fits_one_gsm7_segment(program: SmsProgram, reply: object) -> None:
    assert callable(reply)
    size = sms_size(reply(program))

    assert (size.encoding, size.segments) == ("GSM-7", 1)
    assert size.units <= 160


def test_a_curly_apostrophe_in_the_brand_is_straightened_so_the_reply_stays_gsm7() -> None:
    program = SmsProgram(brand_name="Fablewave’s", support_contact="fablewave.example.com/help")

    assert stop_reply(program).startswith("Fablewave's: ")


def test_a_program_whose_longest_reply_is_exactly_160_characters_is_accepted_and_one_more_is_refused() -> None:
    contact = "fablewave.example.com/help"
    # The START reply is the longest: 122 characters besides the brand with the default frequency.
    fixed = len(start_reply(SmsProgram(brand_name="B", support_contact=contact))) - 1
    brand = "F" * (160 - fixed)
    assert fixed == 122

    assert len(start_reply(SmsProgram(brand_name=brand, support_contact=contact))) == 160
    with pytest.raises(ValidationFailed) as raised:
        SmsProgram(brand_name=brand + "F", support_contact=contact)

    assert [problem["path"] for problem in raised.value.details] == ["start_reply"]
    assert "is 161 characters, over one segment (160)" in raised.value.details[0]["message"]


def test_a_brand_outside_gsm7_is_refused_whatever_its_length() -> None:
    with pytest.raises(ValidationFailed) as raised:
        SmsProgram(brand_name="Fablewave 🌊", support_contact="fablewave.example.com/help")

    assert [problem["path"] for problem in raised.value.details] == ["stop_reply", "start_reply", "help_reply"]


def test_empty_values_are_refused_by_name() -> None:
    with pytest.raises(ValidationFailed) as raised:
        SmsProgram(brand_name=" ", support_contact="", frequency="Up to 4 msgs/week")

    assert raised.value.details == [
        {"path": "brand_name", "message": "must not be empty"},
        {"path": "support_contact", "message": "must not be empty"},
    ]


# --- actions -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Stop.", KeywordAction(KeywordKind.OPT_OUT, stop_reply(FABLEWAVE))),
        ("unstop", KeywordAction(KeywordKind.OPT_IN, start_reply(FABLEWAVE))),
        ("Info", KeywordAction(KeywordKind.HELP, help_reply(FABLEWAVE))),
        ("Is the sale still on?", KeywordAction(KeywordKind.OTHER, None)),
    ],
)
def test_a_keyword_gets_its_reply_and_other_text_gets_none(text: str, expected: KeywordAction) -> None:
    assert keyword_action(text, FABLEWAVE) == expected


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("STOP", KeywordKind.OPT_OUT),
        ("START", KeywordKind.OPT_IN),
        ("HELP", KeywordKind.HELP),
        ("hi", KeywordKind.OTHER),
    ],
)
def test_when_twilio_answers_keywords_itself_we_reply_nothing_but_still_classify(text: str, kind: KeywordKind) -> None:
    program = SmsProgram(brand_name="Fablewave", support_contact="fablewave.example.com/help", provider_replies=True)

    assert keyword_action(text, program) == KeywordAction(kind, None)
