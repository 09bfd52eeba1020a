"""The invented-number check and the other checks that need the brief."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from agents.checks import check_output, duplicate_problems, invented_numbers, offer_problems
from agents.schemas import DraftOutput, OfferData
from core.claims import Claim, claims_in
from core.models import Channel, OfferKind
from tests.agents.drafting_fakes import brief

TEN_OFF = OfferData(code="TEN", name="$10 off", kind=OfferKind.AMOUNT_OFF, value=Decimal("10.00"), currency="USD")
TWO_MONTHS = OfferData(
    code="TWO", name="Two months on us", kind=OfferKind.FREE_MONTHS, value=Decimal(2), terms="For 12-month plans only."
)


def test_claims_are_read_as_kinds_and_numbers() -> None:
    text = "20% or 12.5 percent, $1,000.50, €9,99, 15 USD, 3 months, three-month, two free months"

    assert claims_in(text) == {
        (Claim.PERCENT, Decimal(20)),
        (Claim.PERCENT, Decimal("12.5")),
        (Claim.MONEY, Decimal("1000.50")),
        (Claim.MONEY, Decimal("9.99")),
        (Claim.MONEY, Decimal(15)),
        (Claim.MONTHS, Decimal(3)),
        (Claim.MONTHS, Decimal(2)),
    }


@pytest.mark.parametrize(
    ("text", "codes", "problems"),
    [
        ("Take $10 off, that is 10 dollars", ["TEN"], []),
        (
            "Take $15 off",
            ["TEN"],
            [
                "the copy mentions the amount 15 but the chosen offer (TEN) does not say so; "
                "quote only the offer's own numbers"
            ],
        ),
        ("2 free months, then your 12 months plan", ["TWO"], []),
        (
            "6 months free",
            ["TWO"],
            [
                "the copy mentions 6 months but the chosen offer (TWO) does not say so; "
                "quote only the offer's own numbers"
            ],
        ),
        (
            "10% off",
            ["TEN"],
            ["the copy mentions 10% but the chosen offer (TEN) does not say so; quote only the offer's own numbers"],
        ),
        (
            "Save 20%",
            [],
            [
                "the copy mentions 20% but offer_codes names none of the brief's offers; such numbers come only "
                "from an offer"
            ],
        ),
    ],
)
def test_a_number_must_be_backed_by_a_chosen_offer_of_its_kind(
    text: str, codes: list[str], problems: list[str]
) -> None:
    draft_brief = brief(offers=(TEN_OFF, TWO_MONTHS))

    assert invented_numbers(DraftOutput(body_text=text, offer_codes=tuple(codes)), draft_brief) == problems


def test_an_end_date_slot_needs_an_offer_that_ends() -> None:
    ends = OfferData(
        code="END", name="Ends", kind=OfferKind.GIFT, value=Decimal(0), valid_until=datetime(2026, 12, 31, tzinfo=UTC)
    )
    draft_brief = brief(offers=(ends, TEN_OFF))

    assert offer_problems(DraftOutput(body_text="Until {{offer.expires}}", offer_codes=("END",)), draft_brief) == []
    assert offer_problems(DraftOutput(body_text="Until {{offer.expires}}", offer_codes=("TEN",)), draft_brief) == [
        "{{offer.expires}} is used but the chosen offer has no end date; do not mention one"
    ]


def test_a_brief_without_offers_says_so_when_a_code_is_made_up() -> None:
    output = DraftOutput(
        sms_text="{{brand_name}}: hi, thank you for staying with us. {{sms_opt_out}}", offer_codes=("X",)
    )

    problems = check_output(output, brief(Channel.SMS, offers=()), creative_labels=[])

    assert problems == ["offer_codes: 'X' is not one of the brief's offers (the brief has none)"]


def test_a_variant_differing_only_in_case_and_punctuation_is_a_duplicate() -> None:
    first = DraftOutput(sms_text="{{brand_name}}: Thanks, {{first_name}}! {{sms_opt_out}}")
    second = DraftOutput(sms_text="{{brand_name}} thanks {{first_name}}. {{sms_opt_out}}")
    third = DraftOutput(sms_text="{{brand_name}}: thanks again, {{first_name}}. {{sms_opt_out}}")

    assert duplicate_problems(second, [("variant v1", first)]) == [
        "sms_text: the same as variant v1's; write one of your own for this variant's angle"
    ]
    assert duplicate_problems(third, [("variant v1", first)]) == []
