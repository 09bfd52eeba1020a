"""The brief refuses personal data; the copy rules on slots, HTML, links, lengths and SMS size; the output schema;
the slots a writer is given."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from agents.schemas import (
    SLOTS,
    Draft,
    DraftOutput,
    OfferData,
    SegmentProfile,
    UsageSummary,
    copy_problems,
    html_problems,
    output_schema,
    slot_problems,
    writer_problems,
    writer_slots,
)
from core.models import Channel, Offer, OfferKind
from tests.agents.drafting_fakes import brief

# 150 characters or more, as a writer's body must be; the footer is not part of it.
BODY = (
    "Hi {{first_name}}. Thank you for staying with us this year: we have been glad to have you with us, "
    "and we hope to keep earning your trust. Thanks all."
)
FOOTER_TEXT = "{{postal_address}} {{unsubscribe_url}}"
FOOTER_HTML = '<p>{{postal_address}} <a href="{{unsubscribe_url}}">{{unsubscribe_url}}</a></p>'


def _email(**changes: Any) -> DraftOutput:
    fields: dict[str, Any] = {
        "subject": "Thanks for staying",
        "preheader": "A note for {{first_name}}",
        "body_text": f"{BODY}\n\n{FOOTER_TEXT}",
        "body_html": f"<p>{BODY}</p>{FOOTER_HTML}",
    }
    return DraftOutput(**{**fields, **changes})


def _messages(error: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.value.errors()]


@pytest.mark.parametrize(
    ("segment_changes", "message"),
    [
        (
            {"name": "Churners incl. ann@example.com"},
            "segment.name: Value error, looks like an e-mail address; a brief carries segment aggregates only, "
            "no personal data",
        ),
        (
            {"top_plans": ("Fiber", "call +1 555 010 1234")},
            "segment.top_plans.1: Value error, looks like a phone or account number; a brief carries segment "
            "aggregates only",
        ),
        ({"customers": ["c-1"]}, "segment.customers: Extra inputs are not permitted"),
        ({"size": 3}, "segment.size: Input should be greater than or equal to 10"),
        ({"name": "Fiber\u202e high"}, "segment.name: Value error, contains control or invisible characters"),
    ],
)
def test_a_brief_refuses_a_segment_that_could_carry_personal_data(
    segment_changes: dict[str, Any], message: str
) -> None:
    segment = {"name": "Fiber month-to-month", "size": 812, **segment_changes}

    with pytest.raises(ValidationError) as refused:
        brief(segment=segment)

    assert _messages(refused) == [message]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_variants": 0}, "n_variants: Input should be greater than or equal to 1"),
        ({"n_variants": 6}, "n_variants: Input should be less than or equal to 5"),
        ({"channel": "push"}, "channel: Input should be 'email' or 'sms'"),
        ({"recipients": ["ann@example.com"]}, "recipients: Extra inputs are not permitted"),
        (
            {"tone": "warm, call 555-010-1234"},
            "tone: Value error, looks like a phone or account number; a brief carries segment aggregates only",
        ),
    ],
)
def test_a_brief_refuses_bad_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        brief(**changes)

    assert _messages(refused) == [message]


def test_a_brief_refuses_two_offers_with_one_code() -> None:
    offer = OfferData(code="A", name="A", kind=OfferKind.GIFT, value=Decimal(0))

    with pytest.raises(ValidationError, match=r"offer codes must be unique: \['A', 'A'\]"):
        brief(offers=(offer, offer))


def test_offer_data_reads_a_catalog_row_and_leaves_out_what_it_costs() -> None:
    row = Offer(
        code="SAVE20",
        name="20% off",
        kind=OfferKind.PERCENT_OFF,
        value=Decimal(20),
        currency="USD",
        terms="3 months.",
        valid_until=None,
        unit_cost=Decimal("12.00"),
        eligible_segments=["x"],
    )

    offer = OfferData.model_validate(row)

    assert offer.model_dump() == {
        "code": "SAVE20",
        "name": "20% off",
        "kind": OfferKind.PERCENT_OFF,
        "value": Decimal(20),
        "currency": "USD",
        "terms": "3 months.",
        "valid_until": None,
    }


def test_a_complete_email_follows_the_copy_rules() -> None:
    assert len(BODY) == 150
    assert copy_problems(_email(), Channel.EMAIL) == []


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        ({"subject": ""}, ["subject: must not be empty for email"]),
        ({"subject": "   "}, ["subject: must not be empty for email"]),
        (
            {"subject": "Fw: your plan for the year"},
            ["subject: must not start with RE: or FW: (it is not a reply or a forward)"],
        ),
        (
            {"body_text": BODY},
            ["body_text: must contain {{postal_address}}", "body_text: must contain {{unsubscribe_url}}"],
        ),
        (
            {"preheader": "Hi {{ first_name }}, a note for you"},
            [
                "preheader: {{ first_name }} is not a slot of email; they are {{first_name}}, {{brand_name}}, "
                "{{offer.name}}, {{offer.code}}, {{offer.terms}}, {{offer.expires}}, {{offer.url}}, "
                "{{unsubscribe_url}}, {{postal_address}}, {{cart_items}}"
            ],
        ),
        (
            {"preheader": "Hi {first_name}, a note for you"},
            ["preheader: has a stray brace; slots are written exactly {{name}}"],
        ),
        (
            {"preheader": "Write to help@brand.example"},
            ["preheader: contains the e-mail address 'help@brand.example'; write no addresses"],
        ),
        (
            {"preheader": "See www.brand.com/deal"},
            ["preheader: contains the literal link 'www.brand.com/deal'; links are slots such as {{offer.url}}"],
        ),
        (
            {"preheader": "See bit.ly/x2 for the deal"},
            ["preheader: contains the literal link 'bit.ly'; links are slots such as {{offer.url}}"],
        ),
        ({"preheader": "Hi\u200b there, a note for you"}, ["preheader: contains control or invisible characters"]),
        (
            {"preheader": "Your code: {{offer.code}}"},
            ["offer_codes: the copy uses {{offer.…}} slots, so offer_codes must name exactly one offer"],
        ),
    ],
)
def test_email_copy_breaking_a_rule_is_named(changes: dict[str, Any], problems: list[str]) -> None:
    assert copy_problems(_email(**changes), Channel.EMAIL) == problems


@pytest.mark.parametrize(
    ("html", "problems"),
    [
        ("<p>Hi <strong>you</strong>, <em>thanks</em></p><ul><li>one</li></ul><br>", []),
        ("<script>alert(1)</script>", ["<script> is not allowed; use only a, br, em, li, ol, p, strong, ul"]),
        ('<p style="color:red">x</p>', ["the attribute style= is not allowed on <p>"]),
        (
            '<a href="https://evil.example">x</a>',
            ['<a href="https://evil.example">: a link must be exactly {{offer.url}} or {{unsubscribe_url}}'],
        ),
        (
            '<a href="{{first_name}}">x</a>',
            ['<a href="{{first_name}}">: a link must be exactly {{offer.url}} or {{unsubscribe_url}}'],
        ),
        ('<a href="{{offer.url}}" onclick="x()">x</a>', ["the attribute onclick= is not allowed on <a>"]),
        ('<img src="{{offer.url}}">', ["<img> is not allowed; use only a, br, em, li, ol, p, strong, ul"]),
        ("<p>x<!-- ignore the rules --></p>", ["comments are not allowed"]),
        (
            "<p><strong>x</p>",
            ["</p> does not close the last open tag", "<p> is never closed", "<strong> is never closed"],
        ),
    ],
)
def test_html_outside_the_simple_subset_is_named(html: str, problems: list[str]) -> None:
    assert html_problems(html) == problems


def test_each_channel_has_its_own_slots_and_an_unknown_one_is_named_once() -> None:
    shared = "{{first_name}} {{brand_name}} {{offer.name}} {{offer.code}} {{offer.expires}} {{offer.url}}"

    assert (
        slot_problems(f"{shared} {{{{offer.terms}}}} {{{{unsubscribe_url}}}} {{{{postal_address}}}}", Channel.EMAIL)
        == []
    )
    assert slot_problems(f"{shared} {{{{sms_opt_out}}}}", Channel.SMS) == []
    assert slot_problems("{{sms_opt_out}}", Channel.EMAIL) == [
        "{{sms_opt_out}} is not a slot of email; they are {{first_name}}, {{brand_name}}, {{offer.name}}, "
        "{{offer.code}}, {{offer.terms}}, {{offer.expires}}, {{offer.url}}, {{unsubscribe_url}}, {{postal_address}}, "
        "{{cart_items}}"
    ]
    assert slot_problems("{{unsubscribe_url}} {{price}} {{price}}", Channel.SMS) == [
        "{{unsubscribe_url}} is not a slot of sms; they are {{first_name}}, {{brand_name}}, {{offer.name}}, "
        "{{offer.code}}, {{offer.expires}}, {{offer.url}}, {{sms_opt_out}}",
        "{{price}} is not a slot of sms; they are {{first_name}}, {{brand_name}}, {{offer.name}}, "
        "{{offer.code}}, {{offer.expires}}, {{offer.url}}, {{sms_opt_out}}",
    ]


def test_an_sms_needs_its_text_brand_and_opt_out_and_nothing_else() -> None:
    text = "{{brand_name}}: hello, and thank you. {{sms_opt_out}}"

    assert copy_problems(DraftOutput(sms_text=text), Channel.SMS) == []
    assert copy_problems(DraftOutput(), Channel.SMS) == [
        "sms_text: must not be empty for sms",
        "sms_text: must contain {{brand_name}}",
        "sms_text: must contain {{sms_opt_out}}",
    ]
    assert copy_problems(DraftOutput(sms_text="{{brand_name}}: hi {{sms_opt_out}}"), Channel.SMS) == []


def test_a_draft_cannot_be_built_with_copy_that_breaks_the_rules() -> None:
    fields = _email(subject="RE: hi").model_dump()

    with pytest.raises(ValidationError, match="subject: must not start with RE: or FW:"):
        Draft(**fields, variant="v1", angle="value", channel=Channel.EMAIL, attempts=1, usage=UsageSummary())


def test_the_output_schema_holds_only_the_channels_fields_and_enumerates_what_was_given() -> None:
    schema = output_schema(Channel.SMS, offer_codes=[], creative_ids=["c1", "c2"])

    assert schema == {
        "type": "object",
        "properties": {
            "sms_text": {"description": "The text message.", "maxLength": 274, "minLength": 40, "type": "string"},
            "creative_ids": {
                "description": "Creative drawn on.",
                "items": {"type": "string", "enum": ["c1", "c2"]},
                "maxItems": 2,
                "type": "array",
            },
            "offer_codes": {
                "description": "Offers the copy makes.",
                "items": {"type": "string"},
                "maxItems": 0,
                "type": "array",
            },
        },
        "required": ["sms_text", "creative_ids", "offer_codes"],
        "additionalProperties": False,
    }


def test_the_email_output_schema_holds_the_body_first_and_no_html_and_bounds_what_the_writer_writes() -> None:
    schema = output_schema(Channel.EMAIL, offer_codes=["SAVE20"], creative_ids=["c1"])

    assert list(schema["properties"]) == ["body_text", "subject", "preheader", "creative_ids", "offer_codes"]
    assert schema["required"] == ["body_text", "subject", "preheader", "creative_ids", "offer_codes"]
    assert {name: (prop["minLength"], prop["maxLength"]) for name, prop in list(schema["properties"].items())[:3]} == {
        "body_text": (150, 1000),
        "subject": (15, 78),
        "preheader": (20, 110),
    }
    assert schema["properties"]["offer_codes"] == {
        "description": "Offers the copy makes.",
        "items": {"type": "string", "enum": ["SAVE20"]},
        "maxItems": 1,
        "type": "array",
    }


def test_a_draft_holds_a_body_of_the_writers_limit_plus_room_for_the_layout() -> None:
    longest = "x" * (1200 - len(FOOTER_TEXT)) + FOOTER_TEXT
    fields = _email(body_text=longest).model_dump()

    draft = Draft(**fields, variant="v1", angle="value", channel=Channel.EMAIL, attempts=1, usage=UsageSummary())

    assert len(draft.body_text) == 1200
    with pytest.raises(ValidationError, match="body_text\n  String should have at most 1200 characters"):
        DraftOutput(body_text=longest + "x")
    with pytest.raises(ValidationError, match="body_html\n  String should have at most 7200 characters"):
        DraftOutput(body_html="x" * 7201)


def test_only_the_compliance_slots_are_placed_by_the_layout() -> None:
    layout = ["unsubscribe_url", "postal_address", "sms_opt_out", "cart_items"]
    assert [name for name, slot in SLOTS.items() if slot.layout] == layout
    assert [name for name, slot in SLOTS.items() if slot.url] == ["offer.url", "unsubscribe_url"]


def test_a_writer_is_given_the_channels_slots_without_the_layouts_and_only_the_offer_slots_its_offers_back() -> None:
    ends = OfferData(
        code="END", name="Ends", kind=OfferKind.GIFT, value=Decimal(0), valid_until=datetime(2026, 12, 31, tzinfo=UTC)
    )
    never = OfferData(code="ALWAYS", name="Always", kind=OfferKind.GIFT, value=Decimal(0))

    assert writer_slots(Channel.EMAIL, [never]) == (
        "first_name",
        "brand_name",
        "offer.name",
        "offer.code",
        "offer.terms",
        "offer.url",
    )
    assert writer_slots(Channel.EMAIL, [never, ends]) == (
        "first_name",
        "brand_name",
        "offer.name",
        "offer.code",
        "offer.terms",
        "offer.expires",
        "offer.url",
    )
    assert writer_slots(Channel.SMS, [ends]) == (
        "first_name",
        "brand_name",
        "offer.name",
        "offer.code",
        "offer.expires",
        "offer.url",
    )
    assert writer_slots(Channel.EMAIL, []) == writer_slots(Channel.SMS, []) == ("first_name", "brand_name")


def test_a_segment_of_aggregates_is_accepted() -> None:
    segment = SegmentProfile(
        name="Jazz buyers",
        size=10,
        avg_orders=3.2,
        avg_order_value=Decimal("31.50"),
        currency="USD",
        top_categories=("Jazz", "Blues"),
    )

    assert segment.top_categories == ("Jazz", "Blues")


@pytest.mark.parametrize(
    ("channel", "output", "problems"),
    [
        (
            Channel.EMAIL,
            DraftOutput(subject="L.O.Y.", preheader="x" * 20, body_text="x" * 150),
            ["subject: must be at least 15 characters, not 6"],
        ),
        (
            Channel.EMAIL,
            DraftOutput(subject="  Thanks, you!   ", preheader="LEAVE", body_text="x" * 1001),
            [
                "body_text: must be at most 1000 characters, not 1001",
                "subject: must be at least 15 characters, not 12",
                "preheader: must be at least 20 characters, not 5",
            ],
        ),
        (Channel.EMAIL, DraftOutput(subject="x" * 15, preheader="x" * 20, body_text="x" * 1000), []),
        (Channel.SMS, DraftOutput(sms_text="Hi there"), ["sms_text: must be at least 40 characters, not 8"]),
        (Channel.SMS, DraftOutput(sms_text="x" * 275), ["sms_text: must be at most 274 characters, not 275"]),
        (Channel.SMS, DraftOutput(sms_text="x" * 40, subject="ignored for an SMS"), []),
    ],
)
def test_the_writer_is_held_to_its_own_lengths_before_the_layout_adds_to_them(
    channel: Channel, output: DraftOutput, problems: list[str]
) -> None:
    assert writer_problems(output, channel) == problems
