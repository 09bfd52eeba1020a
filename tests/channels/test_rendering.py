"""Rendering a draft per recipient: exact e-mails and texts, escaping only in HTML, unsubscribe headers, the
neutral first name, errors for slots with no value, the SendGrid substitution form, SMS segments and cost."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import pytest
from jinja2.sandbox import SandboxedEnvironment

from agents.layout import finish
from agents.schemas import DraftOutput
from channels.rendering import (
    NEUTRAL_FIRST_NAME,
    BrandValues,
    EmailDraftCopy,
    EmailTemplate,
    OfferValues,
    PersonalizedEmail,
    RecipientValues,
    RenderError,
    SmsDraftCopy,
    SmsTemplate,
    format_expiry,
    render_email,
    render_sms,
)
from core.models import Channel, OfferKind
from core.sms import SmsSize
from guardrails.context import BrandRules, CatalogOffer, CheckContext, Message, RecipientData
from guardrails.service import check

ROOT = Path(__file__).resolve().parents[2]
BRAND = BrandValues("Fablewave", "hello@fablewave.example.com", "100 Example Street, Anytown, CA 90000")
OFFER = OfferValues(
    "LOYAL20",
    "20% off the monthly bill for 3 months",
    terms="Month-to-month plans only.",
    valid_until=datetime(2027, 4, 1, tzinfo=UTC),
)
OFFER_URL = "https://fablewave.example.com/o/LOYAL20"
UNSUBSCRIBE = "https://fablewave.example.com/u/tok-ana"
ANA = RecipientValues(first_name="Ana", email="ana@example.com", unsubscribe_url=UNSUBSCRIBE)
BODY = (
    "Hi {{first_name}},\n\n"
    "Here is {{offer.name}}. Use code {{offer.code}} by {{offer.expires}}.\n"
    "Claim it here: {{offer.url}}\n\n"
    "The {{brand_name}} team"
)
EMAIL_DRAFT = finish(
    DraftOutput(subject="A thank-you for you, {{first_name}}", preheader="Code {{offer.code}} inside", body_text=BODY),
    Channel.EMAIL,
)
FOOTER_TEXT = (
    "You are receiving this because you are a Fablewave customer.\n"
    "Fablewave, 100 Example Street, Anytown, CA 90000\n"
    f"Unsubscribe: {UNSUBSCRIBE}"
)
PREHEADER = '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">Code LOYAL20 inside</div>'
SMS_DRAFT = finish(DraftOutput(sms_text="{{first_name}}, {{offer.name}} with code {{offer.code}}."), Channel.SMS)
PRICE = Decimal("0.0083")


def template(draft: EmailDraftCopy | DraftOutput = EMAIL_DRAFT, **overrides: object) -> EmailTemplate:
    arguments: dict[str, object] = {"campaign_key": "spring", "variant": "v1", "offer_url": OFFER_URL}
    return EmailTemplate.from_draft(draft, BRAND, OFFER, **(arguments | overrides))  # type: ignore[arg-type]


def copy(subject: str = "Hello {{first_name}}", text: str = "Hi {{first_name}}", html: str = "") -> EmailDraftCopy:
    return EmailDraftCopy(subject=subject, body_text=text, body_html=html or f"<p>{text}</p>")


# --- e-mail: the rendered strings ---------------------------------------------------------------------------------


def test_an_email_fills_every_slot_and_sets_sender_recipient_and_categories() -> None:
    email = template().render(ANA, "m-1")

    assert email.subject == "A thank-you for you, Ana"
    assert email.body_text == (
        "Hi Ana,\n\nHere is 20% off the monthly bill for 3 months. Use code LOYAL20 by March 31, 2027.\n"
        f"Claim it here: {OFFER_URL}\n\nThe Fablewave team\n\n{FOOTER_TEXT}"
    )
    assert email.body_html == (
        f"{PREHEADER}<p>Hi Ana,</p>"
        "<p>Here is 20% off the monthly bill for 3 months. Use code LOYAL20 by March 31, 2027.<br>"
        f'Claim it here: <a href="{OFFER_URL}">{OFFER_URL}</a></p>'
        "<p>The Fablewave team</p>"
        "<p>You are receiving this because you are a Fablewave customer.<br>"
        "Fablewave, 100 Example Street, Anytown, CA 90000<br>"
        f'Unsubscribe: <a href="{UNSUBSCRIBE}">{UNSUBSCRIBE}</a></p>'
    )
    assert (email.message_key, email.to_address, email.to_name) == ("m-1", "ana@example.com", "Ana")
    assert (email.from_address, email.from_name) == ("hello@fablewave.example.com", "Fablewave")
    assert email.categories == ("spring", "v1")


def test_an_email_carries_the_one_click_unsubscribe_headers_and_the_templates_extra_headers() -> None:
    email = template(headers={"List-Id": "Offers <offers.fablewave.example.com>"}).render(ANA, "m-1")

    assert dict(email.headers) == {
        "List-Unsubscribe": f"<{UNSUBSCRIBE}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": "Offers <offers.fablewave.example.com>",
    }


def test_values_are_escaped_in_the_html_body_and_nowhere_else() -> None:
    brand = BrandValues("Bits & <Bytes>", "hello@bits.example.com", "1 Quote \"Lane\" & 'Row'")
    draft = copy(
        subject="{{first_name}} from {{brand_name}}",
        text="{{first_name}}: {{offer.name}} ({{postal_address}})",
        html='<p>{{first_name}}: <a href="{{offer.url}}">{{offer.name}}</a> ({{postal_address}})</p>',
    )
    offer = OfferValues("X1", "Fish & <Chips>")
    recipient = replace(ANA, first_name="Zoë <b>", offer_url='https://bits.example.com/o?a=1&b="2"')

    email = EmailTemplate.from_draft(draft, brand, offer, campaign_key="c").render(recipient, "m-1")

    assert email.subject == "Zoë <b> from Bits & <Bytes>"
    assert email.body_text == "Zoë <b>: Fish & <Chips> (1 Quote \"Lane\" & 'Row')"
    assert email.body_html == (
        '<p>Zoë &lt;b&gt;: <a href="https://bits.example.com/o?a=1&amp;b=&#34;2&#34;">Fish &amp; &lt;Chips&gt;</a>'
        " (1 Quote &#34;Lane&#34; &amp; &#39;Row&#39;)</p>"
    )
    assert email.from_name == "Bits & <Bytes>"


def test_the_preheader_leads_the_html_as_hidden_preview_text_with_its_own_characters_escaped() -> None:
    draft = copy(text="Hi {{first_name}}")
    with_preheader = replace(draft, preheader="Fish & chips for {{first_name}} <today>")

    assert template(draft).render(ANA, "m-1").body_html == "<p>Hi Ana</p>"
    assert template(with_preheader).render(replace(ANA, first_name="A&B"), "m-1").body_html == (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
        "Fish &amp; chips for A&amp;B &lt;today&gt;</div><p>Hi A&amp;B</p>"
    )


@pytest.mark.parametrize("first_name", [None, "", "   ", "\u200b"])
def test_an_unknown_first_name_reads_as_the_neutral_word_and_the_to_name_is_left_out(first_name: str | None) -> None:
    email = template(copy()).render(replace(ANA, first_name=first_name), "m-1")

    assert (email.subject, email.body_text) == ("Hello there", "Hi there")
    assert NEUTRAL_FIRST_NAME == "there"
    assert email.to_name is None


def test_a_first_name_with_line_breaks_or_invisible_characters_renders_as_one_line_of_visible_words() -> None:
    email = template(copy()).render(replace(ANA, first_name=" Ana\u200b\r\n  Maria\t"), "m-1")

    assert (email.subject, email.to_name) == ("Hello Ana Maria", "Ana Maria")


def test_the_recipients_own_offer_link_wins_over_the_templates() -> None:
    own = "https://fablewave.example.com/o/LOYAL20?r=ana"

    email = template().render(replace(ANA, offer_url=own), "m-1")

    assert f"Claim it here: {own}\n" in email.body_text
    assert f'<a href="{own}">{own}</a>' in email.body_html


def test_render_email_compiles_and_renders_one_message_like_the_template_does() -> None:
    one = render_email(EMAIL_DRAFT, BRAND, OFFER, ANA, "m-1", campaign_key="spring", variant="v1", offer_url=OFFER_URL)

    assert one == template().render(ANA, "m-1")


def test_a_guardrails_brand_and_catalog_offer_are_taken_as_they_are() -> None:
    brand = BrandRules.load(ROOT / "data" / "samples" / "brand" / "rules.json")
    offer = CatalogOffer("LOYAL20", "20% off", OfferKind.PERCENT_OFF, Decimal(20), "USD")

    email = EmailTemplate.from_draft(copy(text="{{brand_name}}: {{offer.name}}"), brand, offer, campaign_key="c")

    assert email.render(ANA, "m-1").body_text == "Fablewave: 20% off"


# --- e-mail: what cannot be rendered --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("draft", "missing"),
    [
        (copy(subject="Hi {{coupon}}"), "'coupon' is undefined"),
        (copy(text="Use {{offer.discount}}"), "has no attribute 'discount'"),
    ],
    ids=["unknown slot", "unknown offer field"],
)
def test_a_slot_with_no_value_is_an_error_when_the_draft_is_compiled(draft: EmailDraftCopy, missing: str) -> None:
    with pytest.raises(RenderError, match=missing):
        template(draft)


def test_offer_slots_without_an_offer_and_the_expiry_of_an_offer_that_never_ends_are_errors() -> None:
    endless = replace(OFFER, valid_until=None)

    with pytest.raises(RenderError, match="'offer' is undefined"):
        EmailTemplate.from_draft(copy(text="Code {{offer.code}}"), BRAND, None, campaign_key="c")
    with pytest.raises(RenderError, match="has no attribute 'expires'"):
        EmailTemplate.from_draft(copy(text="Ends {{offer.expires}}"), BRAND, endless, campaign_key="c")


def test_an_offer_link_neither_the_template_nor_the_recipient_has_is_an_error_for_that_recipient() -> None:
    compiled = template(copy(text="Go: {{offer.url}}"), offer_url=None)

    assert compiled.render(replace(ANA, offer_url="https://fablewave.example.com/o/1"), "m-1").body_text == (
        "Go: https://fablewave.example.com/o/1"
    )
    with pytest.raises(RenderError, match=r"body_text for m-2: a slot has no value: .*'url'"):
        compiled.render(ANA, "m-2")


@pytest.mark.parametrize(
    "text",
    [
        "{% for x in y %}{{x}}{% endfor %}",
        "{{ first_name|upper }}",
        "{# a comment #}",
        "{{offer.__class__}}",
        "{{first_name.upper}}",
        "{{ first_name() }}",
        "{{{first_name}}}",
    ],
)
def test_template_syntax_other_than_plain_slots_is_refused(text: str) -> None:
    with pytest.raises(RenderError, match="only plain \\{\\{slot\\}\\} placeholders"):
        template(copy(text=text))


@pytest.mark.parametrize(
    ("recipient", "problem"),
    [
        (replace(ANA, email=None), "has no e-mail address"),
        (replace(ANA, unsubscribe_url=None), "needs the recipient's unsubscribe link"),
        (replace(ANA, unsubscribe_url="https://x.example/u/1>, <https://evil.example"), "fits a header"),
        (replace(ANA, unsubscribe_url="https://x.example/u/1\r\nBcc: a@b.example"), "fits a header"),
        (replace(ANA, unsubscribe_url="mailto:u@x.example"), "fits a header"),
    ],
)
def test_an_email_needs_an_address_and_an_unsubscribe_link_that_fits_a_header(
    recipient: RecipientValues, problem: str
) -> None:
    with pytest.raises(RenderError, match=problem):
        template().render(recipient, "m-1")


# --- e-mail: many recipients, one compile ---------------------------------------------------------------------------


def test_a_thousand_recipients_render_from_one_compiled_template(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = template()
    monkeypatch.setattr(SandboxedEnvironment, "from_string", _no_compiling)
    recipients = [
        RecipientValues(f"Name{n}", f"r{n}@example.com", unsubscribe_url=f"https://fablewave.example.com/u/{n}")
        for n in range(1000)
    ]

    emails = [compiled.render(recipient, f"m-{n}") for n, recipient in enumerate(recipients)]

    assert len({email.body_text for email in emails}) == 1000
    assert emails[999].subject == "A thank-you for you, Name999"
    assert emails[999].headers["List-Unsubscribe"] == "<https://fablewave.example.com/u/999>"
    assert all(email.is_substitutable() for email in emails)


def _no_compiling(*_: object, **__: object) -> None:
    raise AssertionError("a template was compiled again")


# --- e-mail: the SendGrid substitution form -------------------------------------------------------------------------


def test_the_substitution_form_holds_tags_for_the_per_recipient_values_only() -> None:
    form = template(copy(subject="For {{first_name}}", text="{{first_name}}, {{offer.code}}: {{unsubscribe_url}}")).form

    assert form.subject == "For -nudge.first_name-"
    assert form.body_text == "-nudge.first_name-, LOYAL20: -nudge.unsubscribe_url-"
    assert form.body_html == "<p>-nudge.first_name.html-, LOYAL20: -nudge.unsubscribe_url.html-</p>"
    assert dict(form.text_tags) == {"first_name": "-nudge.first_name-", "unsubscribe_url": "-nudge.unsubscribe_url-"}
    assert dict(form.html_tags) == {
        "first_name": "-nudge.first_name.html-",
        "unsubscribe_url": "-nudge.unsubscribe_url.html-",
    }


def test_a_recipients_substitutions_fill_the_form_with_exactly_the_rendered_strings() -> None:
    email = template().render(replace(ANA, first_name="Ana & <Bo>"), "m-1")

    substitutions = email.substitutions()

    assert substitutions == {
        "-nudge.first_name-": "Ana & <Bo>",
        "-nudge.unsubscribe_url-": UNSUBSCRIBE,
        "-nudge.offer.url-": OFFER_URL,
        "-nudge.first_name.html-": "Ana &amp; &lt;Bo&gt;",
        "-nudge.unsubscribe_url.html-": UNSUBSCRIBE,
        "-nudge.offer.url.html-": OFFER_URL,
    }
    assert email.form.expand(substitutions) == (email.subject, email.body_text, email.body_html)
    assert email.is_substitutable()


def test_an_email_altered_after_rendering_or_holding_a_tag_in_a_value_is_not_substitutable() -> None:
    email = template().render(ANA, "m-1")
    tagged = template().render(replace(ANA, first_name="-nudge.offer.url-"), "m-2")

    assert not replace(email, subject="Something else").is_substitutable()
    assert not tagged.is_substitutable()


# --- offer expiry ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("valid_until", "time_zone", "told"),
    [
        (datetime(2027, 4, 1, tzinfo=UTC), None, "March 31, 2027"),  # exclusive midnight end: the day before
        (datetime(2027, 3, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))), None, "March 31, 2027"),
        (datetime(2027, 4, 1, 4, 59, 59, tzinfo=UTC), timezone(timedelta(hours=-5)), "March 31, 2027"),
        (datetime(2027, 4, 1, 4, 59, 59, tzinfo=UTC), None, "April 1, 2027"),
        (date(2026, 12, 24), None, "December 24, 2026"),
    ],
)
def test_an_offers_expiry_is_told_as_its_last_day(valid_until: datetime, time_zone: timezone | None, told: str) -> None:
    assert format_expiry(valid_until, time_zone) == told


# --- a rendered e-mail passes the guardrails the draft passed -------------------------------------------------------


def test_a_rendered_sample_email_passes_every_guardrail_at_send_time() -> None:
    brand = BrandRules.load(ROOT / "data" / "samples" / "brand" / "rules.json")
    offer = CatalogOffer(
        "LOYAL20",
        "20% off the monthly bill for 3 months",
        OfferKind.PERCENT_OFF,
        Decimal(20),
        "USD",
        valid_until=datetime(2027, 4, 1, 4, 59, 59, tzinfo=UTC),
    )
    compiled = EmailTemplate.from_draft(EMAIL_DRAFT, brand, offer, campaign_key="spring", offer_url=OFFER_URL)
    email = compiled.render(ANA, "m-1")
    context = CheckContext(
        catalog={"LOYAL20": offer},
        brand=brand,
        now=datetime(2026, 11, 21, 15, tzinfo=UTC),
        recipient=RecipientData(email="ana@example.com", first_name="Ana"),
    )
    rendered = Message(
        Channel.EMAIL,
        subject=email.subject,
        body_text=email.body_text,
        body_html=email.body_html,  # the preheader travels inside it
        offer_codes=("LOYAL20",),
        rendered=True,
        from_name=email.from_name,
        from_address=email.from_address,
        headers=email.headers,
    )

    report = check(rendered, context)

    assert report.findings == ()


# --- SMS --------------------------------------------------------------------------------------------------------------


def test_a_text_fills_its_slots_with_the_brand_prefix_and_the_opt_out_wording() -> None:
    compiled = SmsTemplate.from_draft(SMS_DRAFT, BRAND, OFFER, segment_price=PRICE)

    rendered = compiled.render(
        RecipientValues(first_name="Ana", phone="+15555550100"), "s-1", status_callback_url="https://n.example/cb"
    )

    body = "Fablewave: Ana, 20% off the monthly bill for 3 months with code LOYAL20. Reply STOP to opt out"
    assert rendered.message.body == body
    assert (rendered.message.message_key, rendered.message.to_phone) == ("s-1", "+15555550100")
    assert rendered.message.status_callback_url == "https://n.example/cb"
    assert (rendered.size, rendered.segments, rendered.cost) == (SmsSize("GSM-7", len(body), 1), 1, PRICE)


def test_a_text_over_one_segment_costs_each_segment() -> None:
    long_name = "A" * 110
    compiled = SmsTemplate.from_draft(SMS_DRAFT, BRAND, replace(OFFER, name=long_name), segment_price=PRICE)

    rendered = compiled.render(RecipientValues(phone="+15555550100"), "s-1")

    assert rendered.message.body == f"Fablewave: there, {long_name} with code LOYAL20. Reply STOP to opt out"
    assert (rendered.size.units, rendered.segments, rendered.cost) == (169, 2, Decimal("0.0166"))


def test_curly_quotes_in_a_value_are_made_plain_so_the_text_stays_gsm7_but_a_real_accent_switches_to_ucs2() -> None:
    compiled = SmsTemplate.from_draft(
        SmsDraftCopy("{{offer.name}} for {{first_name}}"), BRAND, OFFER, segment_price=PRICE
    )
    curly = replace(OFFER, name="\u201cSpring\u201d deal \u2014 it\u2019s on")

    plain = SmsTemplate.from_draft(SmsDraftCopy("{{offer.name}}"), BRAND, curly, segment_price=PRICE)
    accented = compiled.render(RecipientValues(first_name="Łucja", phone="+15555550100"), "s-2")

    assert plain.render(RecipientValues(phone="+15555550100"), "s-1").message.body == '"Spring" deal - it\'s on'
    assert plain.render(RecipientValues(phone="+15555550100"), "s-1").size.encoding == "GSM-7"
    assert (accented.size.encoding, accented.segments) == ("UCS-2", 1)


def test_a_text_needs_a_phone_number_and_its_slots_need_values() -> None:
    compiled = SmsTemplate.from_draft(SMS_DRAFT, BRAND, OFFER, segment_price=PRICE)

    with pytest.raises(RenderError, match="has no phone number"):
        compiled.render(RecipientValues(first_name="Ana"), "s-1")
    with pytest.raises(RenderError, match="'offer' is undefined"):
        SmsTemplate.from_draft(SMS_DRAFT, BRAND, None, segment_price=PRICE)
    with pytest.raises(RenderError, match="'unsubscribe_url' is undefined"):
        SmsTemplate.from_draft(SmsDraftCopy("{{unsubscribe_url}}"), BRAND, OFFER, segment_price=PRICE)


def test_render_sms_compiles_and_renders_one_text_like_the_template_does() -> None:
    recipient = RecipientValues(first_name="Ana", phone="+15555550100")

    one = render_sms(SMS_DRAFT, BRAND, OFFER, recipient, "s-1", segment_price=PRICE)

    assert one == SmsTemplate.from_draft(SMS_DRAFT, BRAND, OFFER, segment_price=PRICE).render(recipient, "s-1")


def test_a_personalized_email_is_an_outbound_email_whose_extra_fields_stay_out_of_its_repr() -> None:
    email = template().render(ANA, "m-1")

    assert isinstance(email, PersonalizedEmail)
    assert "form=" not in repr(email)
    assert email.values == MappingProxyType(
        {"first_name": "Ana", "unsubscribe_url": UNSUBSCRIBE, "offer.url": OFFER_URL}
    )
