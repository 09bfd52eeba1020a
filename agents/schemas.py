"""What goes into the drafting agent and what comes out: the brief, the model's output, the drafts.

- ``Brief``: one campaign's request — goal, channel, tone, how many variants, the offers the catalog
  allows, and a segment described by **aggregates only** (no customer, no e-mail address, no phone
  number can ride along: unknown fields are refused, free-text labels are screened, and a segment
  smaller than ``MIN_SEGMENT_SIZE`` is refused because its averages would describe a few people).
- ``DraftOutput``: the JSON object the model writes for one variant. ``output_schema`` derives from it
  the JSON schema sent with the request, narrowed to the channel's fields and to the ids and codes
  the model was given, and kept small so the tiny local model can fill it.
- ``Draft`` and ``DraftSet``: the checked result, with what each variant cost.

Copy rules that need nothing but the copy live here too (``copy_problems``), so a ``Draft`` cannot be
built — by the agent or later from an edit — that breaks them: personalisation only through the
slots in ``SLOTS`` (filled at send time, never by the model), simple HTML whose links are slots, no
literal URLs or e-mail addresses, no invisible characters, the compliance slots in place, and an SMS
within ``SMS_MAX_SEGMENTS`` once every slot is filled with its reserved length.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, computed_field, model_validator

from agents.ports import LlmResult
from core.models import Channel, OfferKind
from core.sms import GSM7_BASIC, GSM7_EXTENSION, sms_size

SUBJECT_MAX = 78  # RFC 5322's recommended line length; longer subjects are cut by most inboxes anyway
PREHEADER_MAX = 110
# The writer's body limit (about 170 words) keeps a whole e-mail answer under the drafting agent's max_tokens, so
# a schema-held model that rambles is stopped by a length limit, with its JSON closed, not cut off mid-string.
BODY_TEXT_WRITER_MAX = 1000
LAYOUT_ROOM = 200  # characters the layout adds to what the writer wrote (agents.layout: the footer, the SMS frame)
BODY_TEXT_MAX = BODY_TEXT_WRITER_MAX + LAYOUT_ROOM
# Rendered from the text, never written by hand: an escape ("&amp;") or a tag ("<br>") is at most 5 characters
# for 1, and a link slot becomes an anchor of twice its length plus 15.
BODY_HTML_MAX = 6 * BODY_TEXT_MAX
SMS_MAX_SEGMENTS = 2  # Twilio's recommendation; the decision engine prices the segments
SMS_TEXT_MAX = SMS_MAX_SEGMENTS * 153  # the most GSM-7 characters that can fit, before slots are filled
# What the writer is held to, leaving room for what the layout adds.
WRITER_MAX_LENGTH: Mapping[str, int] = MappingProxyType(
    {"body_text": BODY_TEXT_WRITER_MAX, "sms_text": SMS_TEXT_MAX - len("{{brand_name}}:  {{sms_opt_out}}")}
)
# Below these a field says nothing: the local model, left free, wrote subjects such as "L.O.Y." and "LEAVE".
WRITER_MIN_LENGTH: Mapping[str, int] = MappingProxyType(
    {"subject": 15, "preheader": 20, "body_text": 150, "sms_text": 40}
)
MAX_VARIANTS = 5  # one per angle in ``agents.prompts.ANGLES``
MAX_OFFERS = 5
MAX_CITATIONS = 8
MIN_SEGMENT_SIZE = 10  # below this, "aggregates" describe a handful of identifiable people


@dataclass(frozen=True, slots=True)
class Slot:
    """A personalisation placeholder, written ``{{name}}`` in the copy and filled at send time.

    Attributes
    ----------
    description : str
        What it holds, as the model is told.
    reserve : int
        Characters kept free for its value when an SMS is measured, so a filled message still fits.
    url : bool
        Whether it holds a link (and so may be an ``href``).
    channels : frozenset of Channel
        The channels whose copy may place it.
    layout : bool
        Placed by the brand's layout (``agents.layout``), so the writer is not asked for it.
    """

    description: str
    reserve: int
    url: bool = False
    channels: frozenset[Channel] = frozenset(Channel)
    layout: bool = False


_EMAIL_ONLY = frozenset({Channel.EMAIL})
_SMS_ONLY = frozenset({Channel.SMS})

# The one list of slots. The sender fills them; the model only places them.
SLOTS: Mapping[str, Slot] = MappingProxyType(
    {
        "first_name": Slot("the recipient's first name (a neutral word when unknown)", 20),
        "brand_name": Slot("the sender's brand name", 24),
        "offer.name": Slot("the chosen offer's name", 40),
        "offer.code": Slot("the chosen offer's redemption code", 16),
        "offer.terms": Slot("the chosen offer's full terms", 300, channels=_EMAIL_ONLY),
        "offer.expires": Slot("the date the chosen offer ends (only if it has one)", 18),
        "offer.url": Slot("the link that redeems the chosen offer", 40, url=True),
        "unsubscribe_url": Slot("the one-click unsubscribe link", 80, url=True, channels=_EMAIL_ONLY, layout=True),
        "postal_address": Slot("the sender's postal address", 100, channels=_EMAIL_ONLY, layout=True),
        "sms_opt_out": Slot(
            "the opt-out wording, such as 'Reply STOP to opt out'", 24, channels=_SMS_ONLY, layout=True
        ),
        "cart_items": Slot(
            "the items left in the shopper's cart, one per line", 300, channels=_EMAIL_ONLY, layout=True
        ),
    }
)

# What the law and the carriers need in every message (compliance reference §1.1, §1.3), placed as slots.
REQUIRED_SLOTS: Mapping[Channel, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        Channel.EMAIL: {
            "body_text": ("postal_address", "unsubscribe_url"),
            "body_html": ("postal_address", "unsubscribe_url"),
        },
        Channel.SMS: {"sms_text": ("brand_name", "sms_opt_out")},
    }
)

# The fields the writer writes for each channel; the rest stay empty (the layout renders ``body_html`` from the text).
CHANNEL_FIELDS: Mapping[Channel, tuple[str, ...]] = MappingProxyType(
    {
        Channel.EMAIL: ("body_text", "subject", "preheader"),  # the body first: subjects then sum it up
        Channel.SMS: ("sms_text",),
    }
)
COPY_FIELDS = ("subject", "preheader", "body_text", "body_html", "sms_text")
FIELD_CHANNEL: Mapping[str, Channel] = MappingProxyType(
    {"body_html": Channel.EMAIL, **{name: channel for channel, names in CHANNEL_FIELDS.items() for name in names}}
)

SLOT_PATTERN = re.compile(r"\{\{([^{}]*)\}\}")
ALLOWED_HTML_TAGS = frozenset({"p", "br", "strong", "em", "ul", "ol", "li", "a"})
_VOID_TAGS = frozenset({"br"})
_URL = re.compile(
    r"(?i)\b(?:https?://|ftp://|www\.)\S*"
    r"|\b(?:mailto|tel|javascript|data):\S+"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|co|ly|me|info|biz|app|shop|store|us|uk|ca|de|fr|eu|link|xyz|ai)\b"
)
_EMAIL_ADDRESS = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+\.[^\s@<>\"']+")
_PHONE_NUMBER = re.compile(r"\+?\d(?:[\s().-]{0,2}\d){6,}")  # seven digits or more: phones, cards, account ids
_FAKE_REPLY = re.compile(r"(?i)^\s*(?:re|fwd?)\s*:")
_VISIBLE_CONTROLS = frozenset("\n\r\t")


class Goal(StrEnum):
    RETENTION = "retention"
    WIN_BACK = "win_back"
    CART_RECOVERY = "cart_recovery"
    UPSELL = "upsell"


class RiskBand(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def is_hidden(char: str) -> bool:
    """Control and format characters (zero-width, bidi overrides…) other than line breaks and tabs.

    They render as nothing, so they can hide instructions in retrieved text or junk in a draft.
    """
    return unicodedata.category(char) in ("Cc", "Cf") and char not in _VISIBLE_CONTROLS


def strip_hidden(text: str) -> str:
    """``text`` without its hidden characters (see ``is_hidden``)."""
    return "".join(char for char in text if not is_hidden(char))


def _no_personal_data(value: str) -> str:
    if _EMAIL_ADDRESS.search(value):
        raise ValueError("looks like an e-mail address; a brief carries segment aggregates only, no personal data")
    if _PHONE_NUMBER.search(value):
        raise ValueError("looks like a phone or account number; a brief carries segment aggregates only")
    if any(is_hidden(char) for char in value):
        raise ValueError("contains control or invisible characters")
    return value


Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80), AfterValidator(_no_personal_data)
]
CampaignKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Average = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class SegmentProfile(BaseModel):
    """Who a campaign is for, as aggregates over at least ``MIN_SEGMENT_SIZE`` customers.

    Attributes
    ----------
    name : str
        A label such as "Month-to-month fiber, high risk".
    size : int
        Customers in the segment.
    churn_risk : RiskBand, optional
        The band of the segment's calibrated churn probability.
    avg_tenure_months, avg_monthly_charges : optional
        Subscription aggregates (money in ``currency``).
    avg_orders, avg_order_value, avg_days_since_last_order : optional
        Order-history aggregates (money in ``currency``).
    top_plans, top_categories : tuple of str
        The most common plans, and product categories or genres, at most five each.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Label
    size: int = Field(ge=MIN_SEGMENT_SIZE)
    churn_risk: RiskBand | None = None
    avg_tenure_months: Average | None = None
    avg_monthly_charges: Amount | None = None
    avg_orders: Average | None = None
    avg_order_value: Amount | None = None
    avg_days_since_last_order: Average | None = None
    currency: Currency | None = None
    top_plans: tuple[Label, ...] = Field(default=(), max_length=5)
    top_categories: tuple[Label, ...] = Field(default=(), max_length=5)


class OfferData(BaseModel):
    """An offer from the catalog as the agent sees it; ``OfferData.model_validate(offer)`` reads an ``Offer`` row.

    ``unit_cost`` and ``eligible_segments`` are left out on purpose: what an offer costs the business
    is not the model's business, and eligibility is decided before the brief is written.
    """

    model_config = ConfigDict(frozen=True, from_attributes=True)

    code: str = Field(min_length=1, max_length=64, pattern=r"^[^\s{}<>\"]+$")
    name: str = Field(min_length=1, max_length=200)
    kind: OfferKind
    value: Amount
    currency: Currency | None = None
    terms: str = Field(default="", max_length=2000)
    valid_until: datetime | None = None


class Brief(BaseModel):
    """One campaign's drafting request.

    Attributes
    ----------
    campaign_key : str
        The campaign's key; every LLM call is attributed to it.
    goal : Goal
    segment : SegmentProfile
        Aggregates only.
    channel : Channel
        ``email`` or ``sms``.
    tone : str
        A few words, such as "warm, direct".
    n_variants : int
        How many different variants to write, 1 to ``MAX_VARIANTS``.
    offers : tuple of OfferData
        The only offers a draft may make, passed in from the catalog.
    brand_guidelines : str, optional
        The brand's voice and rules, trusted text from the brand.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_key: CampaignKey
    goal: Goal
    segment: SegmentProfile
    channel: Channel
    tone: Label
    n_variants: int = Field(default=3, ge=1, le=MAX_VARIANTS)
    offers: tuple[OfferData, ...] = Field(default=(), max_length=MAX_OFFERS)
    brand_guidelines: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _offer_codes_are_unique(self) -> Brief:
        codes = [offer.code for offer in self.offers]
        if len(set(codes)) != len(codes):
            raise ValueError(f"offer codes must be unique: {codes}")
        return self

    def offer(self, code: str) -> OfferData | None:
        """The brief's offer with ``code``, if there is one."""
        return next((offer for offer in self.offers if offer.code == code), None)


class DraftOutput(BaseModel):
    """The JSON object the model writes for one variant.

    Fields the channel does not use stay empty (an e-mail has no ``sms_text``, an SMS no subject or
    bodies). ``creative_ids`` name the creative items drawn on, as the prompt labelled them;
    ``offer_codes`` the brief's offers the copy makes. Unknown keys in the model's answer are ignored.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    subject: str = Field(default="", max_length=SUBJECT_MAX, description="E-mail subject line.")
    preheader: str = Field(default="", max_length=PREHEADER_MAX, description="Preview text shown after the subject.")
    body_text: str = Field(default="", max_length=BODY_TEXT_MAX, description="Plain-text e-mail body.")
    body_html: str = Field(default="", max_length=BODY_HTML_MAX, description="Simple HTML e-mail body.")
    sms_text: str = Field(default="", max_length=SMS_TEXT_MAX, description="The text message.")
    creative_ids: tuple[str, ...] = Field(default=(), max_length=MAX_CITATIONS, description="Creative drawn on.")
    offer_codes: tuple[str, ...] = Field(default=(), max_length=MAX_OFFERS, description="Offers the copy makes.")

    def copy_fields(self) -> dict[str, str]:
        """The text fields, by name."""
        return {name: getattr(self, name) for name in COPY_FIELDS}

    def slots_used(self) -> tuple[str, ...]:
        """Every slot name the copy places, sorted, each once."""
        return tuple(sorted({name for text in self.copy_fields().values() for name in SLOT_PATTERN.findall(text)}))


class UsageSummary(BaseModel):
    """Tokens spent, summed over LLM calls, as the providers reported them (cached answers included)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    models: tuple[str, ...] = ()

    @classmethod
    def of(cls, results: Iterable[LlmResult]) -> UsageSummary:
        """The sum of ``results``' usage."""
        return sum((cls._one(result) for result in results), cls())

    @classmethod
    def _one(cls, result: LlmResult) -> UsageSummary:
        usage = result.usage
        return cls(
            calls=1,
            cached_calls=int(result.cached),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            models=(usage.model,),
        )

    def __add__(self, other: UsageSummary) -> UsageSummary:
        return UsageSummary(
            calls=self.calls + other.calls,
            cached_calls=self.cached_calls + other.cached_calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            models=tuple(sorted({*self.models, *other.models})),
        )


class Draft(DraftOutput):
    """One checked variant: the copy, what it drew on, and what it took to get it.

    ``creative_ids`` are the library's external ids here (not the prompt's labels). The copy rules of
    ``copy_problems`` are enforced on construction.
    """

    variant: str = Field(pattern=r"^v[1-9]$")
    angle: str
    channel: Channel
    attempts: int = Field(ge=1)
    usage: UsageSummary

    @computed_field  # type: ignore[prop-decorator]
    @property
    def slots(self) -> tuple[str, ...]:
        """The slots the copy places; the sender must fill every one."""
        return self.slots_used()

    @model_validator(mode="after")
    def _follows_the_copy_rules(self) -> Draft:
        if problems := copy_problems(self, self.channel):
            raise ValueError("; ".join(problems))
        return self


class FailedVariant(BaseModel):
    """A variant whose answers still failed their checks when its attempts ran out, and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: str
    angle: str
    attempts: int = Field(ge=1)
    problems: tuple[str, ...]
    usage: UsageSummary


class DraftSet(BaseModel):
    """Every variant drafted for one brief, passed and failed, with their attempts and tokens."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    brief: Brief
    drafts: tuple[Draft, ...]
    failed: tuple[FailedVariant, ...] = ()
    prompt_version: str
    retrieval_query: str
    retrieved_ids: tuple[str, ...]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def attempts(self) -> int:
        """LLM calls made for the brief, first asks and repairs, failed variants included."""
        return sum(draft.attempts for draft in self.drafts) + sum(failed.attempts for failed in self.failed)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usage(self) -> UsageSummary:
        """Token usage summed over every variant, failed ones included."""
        usages = [*(draft.usage for draft in self.drafts), *(failed.usage for failed in self.failed)]
        return sum(usages, UsageSummary())

    @model_validator(mode="after")
    def _drafts_match_the_brief(self) -> DraftSet:
        codes = {offer.code for offer in self.brief.offers}
        variants = [*(draft.variant for draft in self.drafts), *(failed.variant for failed in self.failed)]
        if len(variants) != self.brief.n_variants:
            raise ValueError(f"the brief asks for {self.brief.n_variants} variants, not {len(variants)}")
        if not self.drafts:
            raise ValueError("a draft set holds at least one draft")
        if len(set(variants)) != len(variants):
            raise ValueError("variant ids must be unique")
        if any(draft.channel != self.brief.channel for draft in self.drafts):
            raise ValueError(f"every draft must be for the brief's channel, {self.brief.channel}")
        if any(not set(draft.offer_codes) <= codes for draft in self.drafts):
            raise ValueError("a draft makes an offer the brief does not allow")
        return self


def output_schema(channel: Channel, *, offer_codes: Iterable[str], creative_ids: Iterable[str]) -> dict[str, Any]:
    """The JSON schema the model's answer must satisfy, derived from ``DraftOutput``.

    Narrowed to the channel's fields plus ``creative_ids`` and ``offer_codes``, whose items are
    enumerated from what the model was given, so a provider that enforces the schema (OpenAI
    structured outputs, a llama.cpp grammar) cannot even write an unknown code or id. Every property
    is required and no other is allowed, as OpenAI's strict mode demands.
    """
    properties = DraftOutput.model_json_schema()["properties"]
    names = (*CHANNEL_FIELDS[channel], "creative_ids", "offer_codes")
    schema = {name: _bare(properties[name]) for name in names}
    for name in schema.keys() & WRITER_MAX_LENGTH.keys():
        schema[name]["maxLength"] = WRITER_MAX_LENGTH[name]
    for name in schema.keys() & WRITER_MIN_LENGTH.keys():
        schema[name]["minLength"] = WRITER_MIN_LENGTH[name]
    schema["creative_ids"] = _enumerated(schema["creative_ids"], creative_ids)
    schema["offer_codes"] = _enumerated(schema["offer_codes"], offer_codes)
    return {"type": "object", "properties": schema, "required": list(names), "additionalProperties": False}


def _bare(prop: dict[str, Any]) -> dict[str, Any]:
    # Titles and defaults are noise to a model; the grammar and the strict mode need neither.
    return {key: value for key, value in prop.items() if key not in ("title", "default")}


def _enumerated(prop: dict[str, Any], values: Iterable[str]) -> dict[str, Any]:
    allowed = list(dict.fromkeys(values))
    if not allowed:
        return {**prop, "maxItems": 0}
    return {**prop, "items": {"type": "string", "enum": allowed}, "maxItems": min(prop["maxItems"], len(allowed))}


def copy_problems(output: DraftOutput, channel: Channel) -> list[str]:
    """Everything wrong with ``output``'s copy that can be seen without the brief, as messages for the model.

    Checks: the channel's fields are written; the subject does not pretend to be a reply or a
    forward; slots are known to the field's channel and written exactly (only a link slot may be an
    ``href``; the compliance slots are present; an ``offer.*`` slot needs exactly one offer code); the
    HTML is simple; no literal URL or e-mail address; no invisible characters; and an SMS fits
    ``SMS_MAX_SEGMENTS`` once its slots are filled.
    """
    fields = output.copy_fields()
    return [
        *_missing_fields(fields, channel),
        *_subject_problems(output.subject),
        *(problem for name, text in fields.items() for problem in _text_problems(name, text)),
        *_required_slot_problems(fields, channel),
        *_offer_slot_problems(output),
        *(f"body_html: {problem}" for problem in html_problems(output.body_html)),
        *_sms_problems(output.sms_text),
    ]


def _missing_fields(fields: Mapping[str, str], channel: Channel) -> list[str]:
    return [f"{name}: must not be empty for {channel}" for name in CHANNEL_FIELDS[channel] if not fields[name].strip()]


def writer_problems(output: DraftOutput, channel: Channel) -> list[str]:
    """The writer's own length limits, on the answer as written (before the layout adds to it)."""
    problems = []
    for name in CHANNEL_FIELDS[channel]:
        length = len(getattr(output, name).strip())
        low, high = WRITER_MIN_LENGTH.get(name, 1), WRITER_MAX_LENGTH.get(name)
        if length < low:
            problems.append(f"{name}: must be at least {low} characters, not {length}")
        if high is not None and length > high:
            problems.append(f"{name}: must be at most {high} characters, not {length}")
    return problems


def _subject_problems(subject: str) -> list[str]:
    if _FAKE_REPLY.match(subject):
        return ["subject: must not start with RE: or FW: (it is not a reply or a forward)"]
    return []


def _text_problems(name: str, text: str) -> list[str]:
    problems = [f"{name}: {problem}" for problem in slot_problems(text, FIELD_CHANNEL[name])]
    words = SLOT_PATTERN.sub(" ", text)  # slot names such as offer.code must not read as domains
    if url := _URL.search(words):
        problems.append(f"{name}: contains the literal link {url.group()!r}; links are slots such as {{{{offer.url}}}}")
    if address := _EMAIL_ADDRESS.search(words):
        problems.append(f"{name}: contains the e-mail address {address.group()!r}; write no addresses")
    if any(is_hidden(char) for char in text):
        problems.append(f"{name}: contains control or invisible characters")
    return problems


def slots_for(channel: Channel) -> tuple[str, ...]:
    """The names of the slots ``channel``'s copy may place, in ``SLOTS`` order."""
    return tuple(name for name, slot in SLOTS.items() if channel in slot.channels)


def writer_slots(channel: Channel, offers: Sequence[OfferData]) -> tuple[str, ...]:
    """The slots a writer may place for ``channel`` and these offers: the layout's own are left out, so
    are ``offer.*`` with no offer, and ``offer.expires`` when no offer ends."""
    return tuple(
        name
        for name in slots_for(channel)
        if not SLOTS[name].layout
        and (offers or not name.startswith("offer."))
        and (name != "offer.expires" or any(offer.valid_until is not None for offer in offers))
    )


def slot_problems(text: str, channel: Channel) -> list[str]:
    """Slots in ``text`` that are unknown, misspelt or not for ``channel``, and braces that are not part of a slot."""
    allowed = slots_for(channel)
    problems = [
        f"{{{{{name}}}}} is not a slot of {channel}; they are {', '.join(f'{{{{{known}}}}}' for known in allowed)}"
        for name in dict.fromkeys(SLOT_PATTERN.findall(text))
        if name not in allowed
    ]
    if "{" in SLOT_PATTERN.sub("", text) or "}" in SLOT_PATTERN.sub("", text):
        problems.append("has a stray brace; slots are written exactly {{name}}")
    return problems


def _required_slot_problems(fields: Mapping[str, str], channel: Channel) -> list[str]:
    return [
        f"{name}: must contain {{{{{slot}}}}}"
        for name, slots in REQUIRED_SLOTS[channel].items()
        for slot in slots
        if f"{{{{{slot}}}}}" not in fields[name]
    ]


def _offer_slot_problems(output: DraftOutput) -> list[str]:
    # {{offer.*}} is filled from the draft's offer: with none or several, the sender could not know which.
    uses_offer = any(name.startswith("offer.") for name in output.slots_used())
    if uses_offer and len(set(output.offer_codes)) != 1:
        return ["offer_codes: the copy uses {{offer.…}} slots, so offer_codes must name exactly one offer"]
    return []


def _sms_problems(sms_text: str) -> list[str]:
    if not sms_text:
        return []
    filled = SLOT_PATTERN.sub(lambda match: "x" * _reserve(match.group(1)), sms_text)
    size = sms_size(filled)
    if size.segments <= SMS_MAX_SEGMENTS:
        return []
    hint = "" if size.encoding == "GSM-7" else f"; these characters make the whole message UCS-2: {_non_gsm(sms_text)}"
    return [
        f"sms_text: {size.segments} segments once slots are filled ({size.units} {size.encoding} characters); "
        f"the limit is {SMS_MAX_SEGMENTS}: shorten it{hint}"
    ]


def _reserve(name: str) -> int:
    slot = SLOTS.get(name)
    return slot.reserve if slot else len(name) + 4


def _non_gsm(text: str) -> str:
    odd = dict.fromkeys(char for char in text if char not in GSM7_BASIC and char not in GSM7_EXTENSION)
    return ", ".join(repr(char) for char in odd)


def html_problems(html: str) -> list[str]:
    """What ``html`` does outside the allowed subset: tags, attributes, non-slot links, comments, nesting."""
    checker = _HtmlChecker()
    checker.feed(html)
    checker.close()
    return list(dict.fromkeys(checker.problems))


class _HtmlChecker(HTMLParser):
    """Walks the HTML once, collecting every way it leaves the allowed subset."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check_tag(tag, attrs)
        if tag in ALLOWED_HTML_TAGS and tag not in _VOID_TAGS:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check_tag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS or tag not in ALLOWED_HTML_TAGS:
            return  # a disallowed tag was reported where it opened
        if not self._open or self._open[-1] != tag:
            self.problems.append(f"</{tag}> does not close the last open tag")
            return
        self._open.pop()

    def handle_comment(self, data: str) -> None:
        self.problems.append("comments are not allowed")

    def handle_decl(self, decl: str) -> None:
        self.problems.append("declarations are not allowed")

    def handle_pi(self, data: str) -> None:
        self.problems.append("processing instructions are not allowed")

    def unknown_decl(self, data: str) -> None:
        self.problems.append("declarations are not allowed")

    def close(self) -> None:
        super().close()
        self.problems.extend(f"<{tag}> is never closed" for tag in self._open)

    def _check_tag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_HTML_TAGS:
            self.problems.append(f"<{tag}> is not allowed; use only {', '.join(sorted(ALLOWED_HTML_TAGS))}")
            return
        allowed = {"href"} if tag == "a" else set()
        self.problems.extend(
            f"the attribute {name}= is not allowed on <{tag}>" for name, _ in attrs if name not in allowed
        )
        if tag == "a":
            self._check_link(dict(attrs).get("href"))

    def _check_link(self, href: str | None) -> None:
        match = SLOT_PATTERN.fullmatch(href or "")
        if match is None or match.group(1) not in SLOTS or not SLOTS[match.group(1)].url:
            links = " or ".join(f"{{{{{name}}}}}" for name, slot in SLOTS.items() if slot.url)
            self.problems.append(f'<a href="{href or ""}">: a link must be exactly {links}')
