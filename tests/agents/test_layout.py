"""The brand's layout: the e-mail footer, the HTML rendered from the text, the SMS frame, and finishing
finished copy changing nothing."""

from __future__ import annotations

import pytest

from agents.layout import (
    CART_BLOCK,
    EMAIL_FOOTER,
    SMS_PREFIX,
    SMS_SUFFIX,
    finish,
    html_from_text,
    with_footer,
    with_sms_frame,
)
from agents.schemas import (
    BODY_TEXT_MAX,
    SMS_TEXT_MAX,
    WRITER_MAX_LENGTH,
    DraftOutput,
    Goal,
    copy_problems,
    html_problems,
)
from core.models import Channel

FOOTER = (
    "You are receiving this because you are a {{brand_name}} customer.\n"
    "{{brand_name}}, {{postal_address}}\n"
    "Unsubscribe: {{unsubscribe_url}}"
)
FOOTER_HTML = (
    "<p>You are receiving this because you are a {{brand_name}} customer.<br>"
    "{{brand_name}}, {{postal_address}}<br>"
    'Unsubscribe: <a href="{{unsubscribe_url}}">{{unsubscribe_url}}</a></p>'
)
BODY = (
    "Hi {{first_name}},\n\n"
    "Thank you for being with {{brand_name}}. Here is {{offer.name}} with code {{offer.code}}.\n"
    "Claim it here: {{offer.url}}\n\n"
    "The {{brand_name}} team"
)
EMAIL = DraftOutput(
    subject="A thank-you for you, {{first_name}}",
    preheader="Take {{offer.name}} with code {{offer.code}}.",
    body_text=BODY,
    creative_ids=("c1",),
    offer_codes=("SAVE20",),
)
SMS = DraftOutput(sms_text="{{first_name}}, here is {{offer.name}}: {{offer.url}}", offer_codes=("SAVE20",))


def test_the_layout_parts_are_the_footer_the_brand_prefix_and_the_opt_out() -> None:
    assert EMAIL_FOOTER == FOOTER
    assert (SMS_PREFIX, SMS_SUFFIX) == ("{{brand_name}}: ", " {{sms_opt_out}}")


def test_a_body_without_the_footer_slots_gets_the_footer_after_a_blank_line() -> None:
    assert with_footer("Hi {{first_name}}.") == f"Hi {{{{first_name}}}}.\n\n{FOOTER}"
    assert with_footer("Hi {{first_name}}.\n\n  \n") == f"Hi {{{{first_name}}}}.\n\n{FOOTER}"


@pytest.mark.parametrize(
    "body",
    ["Hi. Write to {{postal_address}}.", "Hi. Leave at {{unsubscribe_url}}.", "Hi. {{postal_address}} {{unsubscribe}}"],
)
def test_a_body_placing_only_one_footer_slot_gets_the_whole_footer(body: str) -> None:
    assert with_footer(body) == f"{body}\n\n{FOOTER}"


def test_a_body_already_placing_both_footer_slots_gets_no_second_footer() -> None:
    body = "Hi.\n\nWe are at {{postal_address}}; leave any time: {{unsubscribe_url}}"

    assert with_footer(body) == body
    assert with_footer(f"{body}\n\n") == body


@pytest.mark.parametrize(
    ("text", "framed"),
    [
        ("Hi {{first_name}}, thanks.", "{{brand_name}}: Hi {{first_name}}, thanks. {{sms_opt_out}}"),
        ("  Hi there.\n", "{{brand_name}}: Hi there. {{sms_opt_out}}"),
        ("{{brand_name}} says thanks.", "{{brand_name}} says thanks. {{sms_opt_out}}"),
        ("Thanks. Text STOP: {{sms_opt_out}} Bye.", "{{brand_name}}: Thanks. Text STOP: {{sms_opt_out}} Bye."),
        ("{{brand_name}}: thanks. {{sms_opt_out}}", "{{brand_name}}: thanks. {{sms_opt_out}}"),
        # The brand named later is not the sender identification up front.
        ("Thanks from {{brand_name}}.", "{{brand_name}}: Thanks from {{brand_name}}. {{sms_opt_out}}"),
    ],
)
def test_an_sms_is_framed_only_where_its_frame_is_missing(text: str, framed: str) -> None:
    assert with_sms_frame(text) == framed
    assert with_sms_frame(framed) == framed


def test_html_escapes_angle_brackets_and_ampersands_and_leaves_quotes() -> None:
    text = "<script>alert(1)</script> Tom & Jerry > cats; Say \"hi\" and 'bye'"

    assert html_from_text(text) == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; Tom &amp; Jerry &gt; cats; Say \"hi\" and 'bye'</p>"
    )


def test_html_has_a_paragraph_per_blank_line_separated_block_and_a_break_per_line() -> None:
    text = "  First line  \nsecond line\n\n\n\nSecond paragraph\n \n\t\nThird\r\n\r\nFourth"

    assert html_from_text(text) == ("<p>First line<br>second line</p><p>Second paragraph</p><p>Third</p><p>Fourth</p>")
    assert html_from_text("") == html_from_text("\n \n") == ""


def test_link_slots_become_anchors_showing_their_address_and_other_slots_stay_text() -> None:
    text = "{{first_name}}: {{offer.code}} at {{offer.url}}\n{{postal_address}} {{unsubscribe_url}} {{nope}}"

    assert html_from_text(text) == (
        '<p>{{first_name}}: {{offer.code}} at <a href="{{offer.url}}">{{offer.url}}</a><br>'
        '{{postal_address}} <a href="{{unsubscribe_url}}">{{unsubscribe_url}}</a> {{nope}}</p>'
    )


def test_a_link_slot_next_to_escaped_markup_is_still_an_anchor_and_a_misspelt_one_is_not() -> None:
    assert html_from_text("<{{offer.url}}> {{ offer.url }}") == (
        '<p>&lt;<a href="{{offer.url}}">{{offer.url}}</a>&gt; {{ offer.url }}</p>'
    )


def test_a_finished_email_has_the_footer_and_html_rendered_from_its_text() -> None:
    finished = finish(EMAIL, Channel.EMAIL)

    assert finished == EMAIL.model_copy(
        update={
            "body_text": f"{BODY}\n\n{FOOTER}",
            "body_html": "<p>Hi {{first_name}},</p>"
            "<p>Thank you for being with {{brand_name}}. Here is {{offer.name}} with code {{offer.code}}.<br>"
            'Claim it here: <a href="{{offer.url}}">{{offer.url}}</a></p>'
            "<p>The {{brand_name}} team</p>"
            f"{FOOTER_HTML}",
        }
    )
    assert html_problems(finished.body_html) == []
    assert copy_problems(finished, Channel.EMAIL) == []


def test_html_a_writer_put_in_the_answer_is_replaced_by_the_rendered_text() -> None:
    written = EMAIL.model_copy(update={"body_html": '<p onclick="x()">Other words</p><img src="x">'})

    assert finish(written, Channel.EMAIL).body_html == finish(EMAIL, Channel.EMAIL).body_html


def test_markup_written_into_the_text_is_shown_as_text_in_the_finished_html() -> None:
    hostile = EMAIL.model_copy(
        update={"body_text": '<a href="https://evil.example" onclick="x()">Click</a> <!-- hidden --> & <img src=x>'}
    )

    finished = finish(hostile, Channel.EMAIL)

    assert finished.body_html == (
        '<p>&lt;a href="https://evil.example" onclick="x()"&gt;Click&lt;/a&gt; &lt;!-- hidden --&gt; &amp; '
        f"&lt;img src=x&gt;</p>{FOOTER_HTML}"
    )
    assert html_problems(finished.body_html) == []


def test_a_finished_sms_is_framed_and_nothing_else_changes() -> None:
    finished = finish(SMS, Channel.SMS)

    assert finished == SMS.model_copy(
        update={"sms_text": "{{brand_name}}: {{first_name}}, here is {{offer.name}}: {{offer.url}} {{sms_opt_out}}"}
    )
    assert copy_problems(finished, Channel.SMS) == []


def test_finishing_one_channel_leaves_the_other_channels_fields_alone() -> None:
    both = EMAIL.model_copy(update={"sms_text": SMS.sms_text})

    assert finish(both, Channel.EMAIL).sms_text == SMS.sms_text
    assert finish(both, Channel.SMS).body_text == BODY
    assert finish(both, Channel.SMS).body_html == ""


@pytest.mark.parametrize(
    ("output", "channel"),
    [
        (EMAIL, Channel.EMAIL),
        (EMAIL.model_copy(update={"body_text": "Hi.\n\n{{postal_address}}\n{{unsubscribe_url}}\n"}), Channel.EMAIL),
        (EMAIL.model_copy(update={"body_text": "  a < b & c  \n\n\n"}), Channel.EMAIL),
        (SMS, Channel.SMS),
        (SMS.model_copy(update={"sms_text": "  {{brand_name}} hi  "}), Channel.SMS),
        (SMS.model_copy(update={"sms_text": ""}), Channel.SMS),
    ],
)
def test_finishing_is_idempotent(output: DraftOutput, channel: Channel) -> None:
    once = finish(output, channel)

    assert finish(once, channel) == once


def test_what_the_layout_adds_fits_in_the_room_the_draft_leaves_for_it() -> None:
    longest_body = with_footer("x" * WRITER_MAX_LENGTH["body_text"])
    longest_sms = with_sms_frame("x" * WRITER_MAX_LENGTH["sms_text"])

    assert (len(longest_body), BODY_TEXT_MAX) == (1135, 1200)
    assert (len(longest_sms), SMS_TEXT_MAX) == (306, 306)


def test_a_cart_recovery_email_lists_the_cart_before_the_footer_once() -> None:
    finished = finish(EMAIL, Channel.EMAIL, Goal.CART_RECOVERY)

    assert finished.body_text == f"{BODY}\n\n{CART_BLOCK}\n\n{FOOTER}"
    assert "{{cart_items}}" in finished.body_html
    assert finish(finished, Channel.EMAIL, Goal.CART_RECOVERY) == finished
    assert "{{cart_items}}" not in finish(EMAIL, Channel.EMAIL).body_text  # other goals name no cart
