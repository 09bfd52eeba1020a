"""A draft rendered for each recipient: its ``{{slots}}`` filled, its headers set, ready for a sender.

A draft's copy places slots (``{{first_name}}``, ``{{offer.code}}``, ``{{unsubscribe_url}}`` …) and nothing
else; the values come from here, never from the model. Each draft is compiled once into a template
(``EmailTemplate.from_draft``, ``SmsTemplate.from_draft``) and rendered per recipient, so a batch of 1,000
costs 1,000 renders and one compile:

    template = EmailTemplate.from_draft(draft, brand, offer, campaign_key="spring", variant="v1",
                                        offer_url="https://brand.example/o/SPRING")
    emails = [template.render(values, message_key) for values, message_key in batch]

Rendering runs on a sandboxed Jinja2 environment with ``StrictUndefined``: a slot with no value (an unknown
name, ``{{offer.code}}`` with no offer, ``{{offer.expires}}`` for an offer that never ends) is a
``RenderError``, never an empty string. Values are HTML-escaped in the HTML body and nowhere else. Before
Jinja sees a template, its source must hold plain ``{{name}}`` or ``{{name.attribute}}`` expressions only —
no filters, statements or comments — which is what drafts hold (``agents.schemas.copy_problems``), so a
template can do nothing but place values.

The results are plain strings (``OutboundEmail``, ``OutboundSms``) the guardrails can check again at send
time. An e-mail's preheader travels inside its HTML body, as the usual hidden preview element at its top;
re-check a rendered e-mail with an empty preheader, or the preheader is read twice.

SendGrid batching. A rendered e-mail is a ``PersonalizedEmail``: an ``OutboundEmail`` that also carries its
template's ``SubstitutionForm`` — the same e-mail with each per-recipient value (first name, unsubscribe
link, offer link) replaced by a tag — and its own values. ``channels.sendgrid`` sends a whole batch of one
template as one request, the form once and the values as each personalization's ``substitutions``, after
checking that substituting them gives back exactly the rendered strings.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Protocol

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from channels.ports import OutboundEmail, OutboundSms
from core.errors import ValidationFailed
from core.sms import SmsSize, normalize_typography, sms_size

NEUTRAL_FIRST_NAME = "there"  # "Hi there," reads naturally where a first name is unknown
SMS_OPT_OUT = "Reply STOP to opt out"
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058's List-Unsubscribe-Post value
PREHEADER_HTML = '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">{}</div>'
# The values that differ from one recipient to the next; SendGrid receives them as substitutions.
PERSONAL_SLOTS = ("first_name", "unsubscribe_url", "offer.url")
_TAG_PREFIX = "-nudge."
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# A plain slot (only the offer has attributes: a string's, such as ``first_name.upper``, are methods), or
# anything else that opens a Jinja expression, statement or comment.
_TEMPLATE_TOKEN = re.compile(r"(?P<slot>\{\{\s*(?:offer\.)?[a-z][a-z0-9_]*\s*\}\})|(?P<other>\{[{%#])")
# An unsubscribe link goes inside <…> in a header: no white space, no brackets, no commas, no quotes.
_HEADER_URL = re.compile(r"^https?://[^\s<>,\"]+$")


class _OfferSlots:
    """The ``offer.*`` values of one recipient: plain strings by attribute name."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values


class _SlotEnvironment(SandboxedEnvironment):
    """The sandbox, with a fast path for ``offer.*``: a third of a render went to checking those attributes,
    and an ``_OfferSlots`` holds nothing but strings."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is _OfferSlots:
            value = obj.values.get(attribute)
            return value if value is not None else self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


_TEXT = _SlotEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_HTML = _SlotEnvironment(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)


class RenderError(ValidationFailed):
    """A template that cannot be compiled, or a slot with no value for a recipient."""


class EmailCopy(Protocol):
    """An e-mail draft's copy (``agents.schemas.Draft`` is one)."""

    @property
    def subject(self) -> str: ...

    @property
    def preheader(self) -> str: ...

    @property
    def body_text(self) -> str: ...

    @property
    def body_html(self) -> str: ...


class SmsCopy(Protocol):
    """An SMS draft's copy (``agents.schemas.Draft`` is one)."""

    @property
    def sms_text(self) -> str: ...


class Brand(Protocol):
    """Who sends (``guardrails.context.BrandRules`` is one)."""

    @property
    def brand_name(self) -> str: ...

    @property
    def sender_address(self) -> str: ...

    @property
    def postal_address(self) -> str: ...


class Offer(Protocol):
    """A catalog offer (``guardrails.context.CatalogOffer``, ``agents.schemas.OfferData`` and the ORM row are)."""

    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def terms(self) -> str: ...

    @property
    def valid_until(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class EmailDraftCopy:
    """An e-mail draft's copy as plain strings."""

    subject: str
    body_text: str
    body_html: str
    preheader: str = ""


@dataclass(frozen=True, slots=True)
class SmsDraftCopy:
    """An SMS draft's copy as a plain string."""

    sms_text: str


@dataclass(frozen=True, slots=True)
class BrandValues:
    """The brand's values as plain strings."""

    brand_name: str
    sender_address: str
    postal_address: str


@dataclass(frozen=True, slots=True)
class OfferValues:
    """An offer's values as plain data."""

    code: str
    name: str
    terms: str = ""
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class RecipientValues:
    """One recipient's own values.

    Attributes
    ----------
    first_name : str, optional
        ``None`` or blank renders ``NEUTRAL_FIRST_NAME``.
    email, phone : str, optional
        The address the channel needs (``email`` for an e-mail, ``phone`` in E.164 for an SMS).
    unsubscribe_url : str, optional
        The recipient's one-click unsubscribe link; every e-mail needs one (footer and headers).
    offer_url : str, optional
        The recipient's own offer link; ``None`` uses the template's.
    """

    first_name: str | None = None
    email: str | None = None
    phone: str | None = None
    unsubscribe_url: str | None = None
    offer_url: str | None = None


@dataclass(frozen=True, slots=True)
class SubstitutionForm:
    """An e-mail with its per-recipient values replaced by tags, as SendGrid's ``substitutions`` fill it.

    Attributes
    ----------
    subject, body_text, body_html : str
        The e-mail with tags where the per-recipient values go.
    text_tags, html_tags : mapping of slot to tag
        The tags placed in the subject and text body, and in the HTML body (whose values are escaped);
        only the slots the e-mail places.
    """

    subject: str
    body_text: str
    body_html: str
    text_tags: Mapping[str, str]
    html_tags: Mapping[str, str]

    def substitutions(self, values: Mapping[str, str]) -> dict[str, str]:
        """The substitutions that fill this form with ``values`` (slot to raw value)."""
        substitutions = {tag: values[slot] for slot, tag in self.text_tags.items()}
        substitutions.update((tag, str(escape(values[slot]))) for slot, tag in self.html_tags.items())
        return substitutions

    def expand(self, substitutions: Mapping[str, str]) -> tuple[str, str, str]:
        """The subject, text and HTML body once ``substitutions`` are made, as SendGrid makes them."""
        parts = [self.subject, self.body_text, self.body_html]
        for tag, value in substitutions.items():
            parts = [part.replace(tag, value) for part in parts]
        return parts[0], parts[1], parts[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalizedEmail(OutboundEmail):
    """A rendered ``OutboundEmail`` that also knows its template's ``SubstitutionForm`` and its own values.

    Every ``OutboundEmail`` field holds the final strings; ``form`` and ``values`` only let a provider send a
    batch of one template as one request.
    """

    form: SubstitutionForm = field(repr=False, compare=False)
    values: Mapping[str, str] = field(repr=False, compare=False)

    def substitutions(self) -> dict[str, str]:
        """This recipient's substitutions for ``form``."""
        return self.form.substitutions(self.values)

    def is_substitutable(self) -> bool:
        """Whether filling ``form`` with this recipient's values gives exactly this e-mail's strings.

        False when a value holds a tag (it would be substituted again) or when the e-mail was altered after
        rendering (``dataclasses.replace``): such an e-mail must be sent as it stands.
        """
        if any(_TAG_PREFIX in value for value in self.values.values()):
            return False
        if not {*self.form.text_tags, *self.form.html_tags} <= self.values.keys():
            return False
        return self.form.expand(self.substitutions()) == (self.subject, self.body_text, self.body_html)


@dataclass(frozen=True, slots=True)
class RenderedSms:
    """One rendered text, how it travels and what it costs.

    Attributes
    ----------
    message : OutboundSms
    size : SmsSize
        Encoding, length and billed segments (``core.sms.sms_size``).
    cost : Decimal
        USD: segments × the segment price.
    """

    message: OutboundSms
    size: SmsSize
    cost: Decimal

    @property
    def segments(self) -> int:
        """Segments billed."""
        return self.size.segments


class _Slots:
    """The values common to every recipient of one draft, and each recipient's context from them."""

    def __init__(
        self, brand: Brand, offer: Offer | None, offer_url: str | None, expires_in: tzinfo | None = None
    ) -> None:
        self.common: dict[str, Any] = {
            "brand_name": brand.brand_name,
            "postal_address": brand.postal_address,
            "sms_opt_out": SMS_OPT_OUT,
        }
        self.offer = _offer_slots(offer, expires_in) if offer is not None else None
        self.offer_url = offer_url

    def context(self, first_name: str, unsubscribe_url: str | None, offer_url: str | None) -> dict[str, Any]:
        """Every slot's value for one recipient; a slot with no value is left out (``StrictUndefined``)."""
        context = dict(self.common, first_name=first_name)
        if unsubscribe_url is not None:
            context["unsubscribe_url"] = unsubscribe_url
        if self.offer is not None:
            url = offer_url or self.offer_url
            context["offer"] = _OfferSlots(dict(self.offer, url=url) if url else self.offer)
        return context

    def tag_context(self, tags: Mapping[str, str]) -> dict[str, Any]:
        """The context with each per-recipient slot's value replaced by its tag."""
        return self.context(tags["first_name"], tags["unsubscribe_url"], tags["offer.url"])


class EmailTemplate:
    """One e-mail draft compiled for one brand, offer and campaign variant; ``render`` fills it per recipient.

    Build it with ``from_draft``.
    """

    def __init__(
        self,
        *,
        subject: Template,
        body_text: Template,
        body_html: Template,
        slots: _Slots,
        brand: Brand,
        categories: tuple[str, ...],
        headers: Mapping[str, str],
    ) -> None:
        self._subject, self._text, self._html = subject, body_text, body_html
        self._slots = slots
        self._from_name, self._from_address = brand.brand_name, brand.sender_address
        self.categories = categories
        self._headers = dict(headers)
        self.form = self._substitution_form()

    @classmethod
    def from_draft(
        cls,
        draft: EmailCopy,
        brand: Brand,
        offer: Offer | None = None,
        *,
        campaign_key: str,
        variant: str | None = None,
        offer_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        expires_in: tzinfo | None = None,
    ) -> EmailTemplate:
        """Compile ``draft``'s copy once, for every recipient of one campaign variant.

        Parameters
        ----------
        draft : EmailCopy
            Subject, preheader, text and HTML bodies, with ``{{slots}}`` (an ``agents.schemas.Draft`` will do).
        brand : Brand
            From name and address, ``{{brand_name}}`` and ``{{postal_address}}``.
        offer : Offer, optional
            The catalog offer behind ``{{offer.*}}``; without one those slots are errors.
        campaign_key, variant : str
            The provider's categories (statistics labels: never personal data).
        offer_url : str, optional
            ``{{offer.url}}`` for recipients with no link of their own.
        headers : mapping of str to str, optional
            Extra headers for every message (``List-Id`` …); the unsubscribe headers are set per recipient.
        expires_in : tzinfo, optional
            The time zone ``{{offer.expires}}`` is told in; by default the offer's end date's own.

        Returns
        -------
        EmailTemplate

        Raises
        ------
        RenderError
            A part holds template syntax other than plain slots, or a slot nothing can fill.
        """
        html_source = draft.body_html
        if draft.preheader:
            html_source = PREHEADER_HTML.format(_escape_text(draft.preheader)) + html_source
        return cls(
            subject=_compile(_TEXT, "subject", draft.subject),
            body_text=_compile(_TEXT, "body_text", draft.body_text),
            body_html=_compile(_HTML, "body_html", html_source),
            slots=_Slots(brand, offer, offer_url, expires_in),
            brand=brand,
            categories=tuple(dict.fromkeys(label for label in (campaign_key, variant) if label)),
            headers=headers or {},
        )

    def render(self, recipient: RecipientValues, message_key: str) -> PersonalizedEmail:
        """The e-mail for ``recipient``.

        Parameters
        ----------
        recipient : RecipientValues
            Needs ``email`` and ``unsubscribe_url``.
        message_key : str
            Our id for the message (``Message.message_key``).

        Returns
        -------
        PersonalizedEmail
            An ``OutboundEmail`` with ``List-Unsubscribe: <url>`` and ``List-Unsubscribe-Post`` set.

        Raises
        ------
        RenderError
            No address, no or a malformed unsubscribe link, or a slot with no value for this recipient.
        """
        if not recipient.email:
            raise RenderError(f"message {message_key}: the recipient has no e-mail address")
        unsubscribe_url = _header_url(recipient.unsubscribe_url, message_key)
        first_name = first_name_or_neutral(recipient.first_name)
        context = self._slots.context(first_name, unsubscribe_url, recipient.offer_url)
        values = {"first_name": first_name, "unsubscribe_url": unsubscribe_url}
        if isinstance(offer := context.get("offer"), _OfferSlots) and "url" in offer.values:
            values["offer.url"] = offer.values["url"]
        return PersonalizedEmail(
            message_key=message_key,
            to_address=recipient.email,
            to_name=_clean_name(recipient.first_name) or None,
            subject=_render(self._subject, context, "subject", message_key),
            body_text=_render(self._text, context, "body_text", message_key),
            body_html=_render(self._html, context, "body_html", message_key),
            from_address=self._from_address,
            from_name=self._from_name,
            headers=MappingProxyType(
                {"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": ONE_CLICK, **self._headers}
            ),
            categories=self.categories,
            form=self.form,
            values=MappingProxyType(values),
        )

    def _substitution_form(self) -> SubstitutionForm:
        # Rendering with tags for values also proves, once per draft, that every other slot has a value.
        text_tags = {slot: f"{_TAG_PREFIX}{slot}-" for slot in PERSONAL_SLOTS}
        html_tags = {slot: f"{_TAG_PREFIX}{slot}.html-" for slot in PERSONAL_SLOTS}
        subject = _render(self._subject, self._slots.tag_context(text_tags), "subject", "(template)")
        body_text = _render(self._text, self._slots.tag_context(text_tags), "body_text", "(template)")
        body_html = _render(self._html, self._slots.tag_context(html_tags), "body_html", "(template)")
        return SubstitutionForm(
            subject=subject,
            body_text=body_text,
            body_html=body_html,
            text_tags=MappingProxyType({s: t for s, t in text_tags.items() if t in subject or t in body_text}),
            html_tags=MappingProxyType({s: t for s, t in html_tags.items() if t in body_html}),
        )


class SmsTemplate:
    """One SMS draft compiled for one brand and offer; ``render`` fills it per recipient and prices it.

    Build it with ``from_draft``.
    """

    def __init__(self, *, text: Template, slots: _Slots, segment_price: Decimal) -> None:
        self._text, self._slots, self._segment_price = text, slots, segment_price

    @classmethod
    def from_draft(
        cls,
        draft: SmsCopy,
        brand: Brand,
        offer: Offer | None = None,
        *,
        segment_price: Decimal,
        offer_url: str | None = None,
        expires_in: tzinfo | None = None,
    ) -> SmsTemplate:
        """Compile ``draft``'s text once, for every recipient.

        Parameters
        ----------
        draft : SmsCopy
            The text with ``{{slots}}``; ``{{sms_opt_out}}`` renders ``SMS_OPT_OUT``.
        brand : Brand
            ``{{brand_name}}``.
        offer : Offer, optional
            The catalog offer behind ``{{offer.*}}``.
        segment_price : Decimal
            USD per segment (``Settings.sms_segment_price_usd``).
        offer_url : str, optional
            ``{{offer.url}}`` for recipients with no link of their own.
        expires_in : tzinfo, optional
            The time zone ``{{offer.expires}}`` is told in.

        Returns
        -------
        SmsTemplate

        Raises
        ------
        RenderError
            The text holds template syntax other than plain slots, or a slot nothing can fill.
        """
        slots = _Slots(brand, offer, offer_url, expires_in)
        text = _compile(_TEXT, "sms_text", draft.sms_text)
        # Rendering once with stand-ins for the recipient's values proves every other slot has one.
        _render(text, slots.context(NEUTRAL_FIRST_NAME, None, "https://offer.invalid/"), "sms_text", "(template)")
        return cls(text=text, slots=slots, segment_price=segment_price)

    def render(
        self, recipient: RecipientValues, message_key: str, *, status_callback_url: str | None = None
    ) -> RenderedSms:
        """The text for ``recipient``, typography made plain (curly quotes would switch it to UCS-2).

        Parameters
        ----------
        recipient : RecipientValues
            Needs ``phone``.
        message_key : str
            Our id for the message.
        status_callback_url : str, optional
            Where the provider reports the message's status.

        Returns
        -------
        RenderedSms
            The message, its size and its cost.

        Raises
        ------
        RenderError
            No phone number, or a slot with no value for this recipient.
        """
        if not recipient.phone:
            raise RenderError(f"message {message_key}: the recipient has no phone number")
        context = self._slots.context(first_name_or_neutral(recipient.first_name), None, recipient.offer_url)
        body = normalize_typography(_render(self._text, context, "sms_text", message_key))
        size = sms_size(body)
        message = OutboundSms(message_key, recipient.phone, body, status_callback_url=status_callback_url)
        return RenderedSms(message, size, size.segments * self._segment_price)


def render_email(
    draft: EmailCopy,
    brand: Brand,
    offer: Offer | None,
    recipient: RecipientValues,
    message_key: str,
    *,
    campaign_key: str,
    variant: str | None = None,
    offer_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> PersonalizedEmail:
    """One e-mail for one recipient (a trigger's); batches compile once with ``EmailTemplate.from_draft``."""
    template = EmailTemplate.from_draft(
        draft, brand, offer, campaign_key=campaign_key, variant=variant, offer_url=offer_url, headers=headers
    )
    return template.render(recipient, message_key)


def render_sms(
    draft: SmsCopy,
    brand: Brand,
    offer: Offer | None,
    recipient: RecipientValues,
    message_key: str,
    *,
    segment_price: Decimal,
    offer_url: str | None = None,
    status_callback_url: str | None = None,
) -> RenderedSms:
    """One text for one recipient; batches compile once with ``SmsTemplate.from_draft``."""
    template = SmsTemplate.from_draft(draft, brand, offer, segment_price=segment_price, offer_url=offer_url)
    return template.render(recipient, message_key, status_callback_url=status_callback_url)


def first_name_or_neutral(first_name: str | None) -> str:
    """``first_name`` cleaned (see ``_clean_name``), or ``NEUTRAL_FIRST_NAME`` when there is none."""
    return _clean_name(first_name) or NEUTRAL_FIRST_NAME


def format_expiry(valid_until: datetime | date, time_zone: tzinfo | None = None) -> str:
    """The last day an offer can be used, as "March 31, 2027".

    ``valid_until`` is exclusive (an offer is valid up to, not including, it), so an end at midnight is told
    as the day before.
    """
    if isinstance(valid_until, datetime):
        moment = valid_until.astimezone(time_zone) if time_zone is not None else valid_until
        last = (moment - timedelta(microseconds=1)).date() if moment.time() == time(0) else moment.date()
    else:
        last = valid_until
    return f"{_MONTHS[last.month - 1]} {last.day}, {last.year}"


def _compile(environment: SandboxedEnvironment, part: str, source: str) -> Template:
    for match in _TEMPLATE_TOKEN.finditer(source):
        if match.group("other") is not None:
            excerpt = source[match.start() : match.start() + 24]
            raise RenderError(f"{part}: only plain {{{{slot}}}} placeholders may be templated, not {excerpt!r}")
    try:
        return environment.from_string(source)
    except TemplateError as error:
        raise RenderError(f"{part}: {error}") from error


def _render(template: Template, context: Mapping[str, Any], part: str, message_key: str) -> str:
    try:
        return template.render(context)
    except TemplateError as error:
        raise RenderError(f"{part} for {message_key}: a slot has no value: {error}") from error


def _offer_slots(offer: Offer, expires_in: tzinfo | None) -> dict[str, str]:
    slots = {"code": offer.code, "name": offer.name, "terms": offer.terms}
    if offer.valid_until is not None:  # left out otherwise, so {{offer.expires}} is an error, not a blank
        slots["expires"] = format_expiry(offer.valid_until, expires_in)
    return slots


def _header_url(url: str | None, message_key: str) -> str:
    if url is None:
        raise RenderError(f"message {message_key}: an e-mail needs the recipient's unsubscribe link")
    if not _HEADER_URL.match(url):
        raise RenderError(f"message {message_key}: the unsubscribe link is not an http(s) URL that fits a header")
    return url


def _clean_name(name: str | None) -> str:
    # A name from an import may hold line breaks or invisible characters: one line of visible words.
    if not name:
        return ""
    visible = "".join(char for char in name if unicodedata.category(char) not in ("Cc", "Cf"))
    return " ".join(visible.split())


def _escape_text(text: str) -> str:
    # Plain text placed in HTML, escaped as agents.layout escapes the body; slots survive ({, }, . and _ are
    # not escaped) and the renderer escapes their values.
    return html.escape(text, quote=False)
