"""What the guardrails check, and what they check it against: plain values, no ORM rows, no vendor objects.

- ``Message``: one channel's copy. Either a draft (``rendered=False``: personalisation is still
  ``{{slots}}``) or a rendered message at send time (``rendered=True``: slots filled, headers set).
- ``CheckContext``: the offer catalog, the brand's rules, the clock, and — at send time — the recipient's
  own data (the only personal data a message may hold) and what the retrieved creative tried to inject.
- ``BrandRules``: the brand's machine-checkable rules, read from the brand folder's ``rules.json``
  (``BrandRules.cached`` reads it again only when the file changes).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ValidationFailed, field_errors
from core.models import Channel, OfferKind

TEXT_FIELDS = ("subject", "preheader", "body_text", "body_html", "sms_text")
# The compliance reference's claims list (§8, brand "banned claims"): words a marketer cannot substantiate.
DEFAULT_BANNED_CLAIMS = ("guaranteed", "risk-free", "risk free", "no obligation", "no catch", "100% free")
RULES_FILE = "rules.json"
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True, slots=True)
class Message:
    """One message (or draft) on one channel.

    Attributes
    ----------
    channel : Channel
    subject, preheader, body_text, body_html : str
        The e-mail's parts (empty for an SMS).
    sms_text : str
        The SMS (empty for an e-mail).
    offer_codes : tuple of str
        The offers the message says it makes.
    rendered : bool
        ``True`` once slots are filled for a recipient; ``False`` for a draft.
    from_name, from_address : str, optional
        The e-mail's sender, once rendered.
    headers : mapping of str to str
        The e-mail's headers, once rendered (``List-Unsubscribe`` …).
    """

    channel: Channel
    subject: str = ""
    preheader: str = ""
    body_text: str = ""
    body_html: str = ""
    sms_text: str = ""
    offer_codes: tuple[str, ...] = ()
    rendered: bool = False
    from_name: str | None = None
    from_address: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def texts(self) -> dict[str, str]:
        """The non-empty text fields, by name."""
        return {name: text for name in TEXT_FIELDS if (text := getattr(self, name))}

    def header(self, name: str) -> str | None:
        """A header's value, its name matched case-insensitively."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


@dataclass(frozen=True, slots=True)
class CatalogOffer:
    """An offer as the catalog holds it: the only offers, codes and figures a message may state."""

    code: str
    name: str
    kind: OfferKind
    value: Decimal
    currency: str | None = None
    terms: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def is_valid_at(self, instant: datetime) -> bool:
        """Whether the offer can be redeemed at ``instant``."""
        starts = self.valid_from is None or self.valid_from <= instant
        return starts and (self.valid_until is None or instant < self.valid_until)


class BrandRules(BaseModel):
    """A brand's machine-checkable rules.

    Attributes
    ----------
    brand_name : str
        The name every message identifies the sender by (SMS prefix, e-mail From name).
    sender_address : str
        The e-mail From address; its domain must be one of ``sender_domains``.
    sender_domains : tuple of str
        Domains the brand sends e-mail from (authenticated with SPF/DKIM/DMARC).
    postal_address : str
        The physical postal address every commercial e-mail carries (CAN-SPAM, CASL).
    link_domains : tuple of str
        The only domains links may point to (subdomains included).
    banned_claims : tuple of str
        Phrases never to use, matched as whole words, case-insensitively.
    banned_words : tuple of str
        The brand's own banned words (competitors, jargon …).
    sign_off : str, optional
        Words every e-mail body must end its message with (before the footer), such as "The {{brand_name}} team".
    max_exclamations : int
        Exclamation marks allowed per message.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    brand_name: str = Field(min_length=1, max_length=100)
    sender_address: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    sender_domains: tuple[str, ...] = Field(min_length=1)
    postal_address: str = Field(min_length=10, max_length=300)
    link_domains: tuple[str, ...] = Field(min_length=1)
    banned_claims: tuple[str, ...] = DEFAULT_BANNED_CLAIMS
    banned_words: tuple[str, ...] = ()
    sign_off: str | None = None
    max_exclamations: int = Field(default=1, ge=0)

    @classmethod
    def load(cls, path: Path) -> BrandRules:
        """Read ``path`` (a ``rules.json``); ``ValidationFailed`` names every bad field."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValidationFailed(f"{path}: cannot read the brand rules: {error}") from error
        try:
            rules = cls.model_validate(data)
        except ValidationError as error:
            details = field_errors(error.errors())
            raise ValidationFailed(f"{path}: the brand rules are not valid", details=details) from error
        rules.check_domains()
        return rules

    @classmethod
    def cached(cls, path: Path) -> BrandRules:
        """``load``, read again only when the file changes: every check and every review page needs the rules,
        and they change only when someone edits ``rules.json``.

        The cache is keyed on the file's path and its identity (device, inode, size, modification time in
        nanoseconds), so an edited or replaced file is read on the next call; a file that cannot be read is
        never cached (``load`` raises ``ValidationFailed`` as before).
        """
        try:
            stat = path.stat()
        except OSError:
            return cls.load(path)  # raises, naming the path
        version = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with _BRAND_LOCK:
            found = _BRAND_CACHE.get(path)
        if found is not None and found[0] == version:
            return found[1]
        rules = cls.load(path)
        with _BRAND_LOCK:
            _BRAND_CACHE[path] = (version, rules)
        return rules

    def check_domains(self) -> None:
        """``ValidationFailed`` unless every domain is a lower-case host name and the sender uses one of them."""
        bad = [domain for domain in (*self.sender_domains, *self.link_domains) if not _DOMAIN.match(domain)]
        if bad:
            raise ValidationFailed(f"not lower-case domain names: {', '.join(bad)}")
        if not is_within(self.sender_address.rsplit("@", 1)[1].lower(), self.sender_domains):
            raise ValidationFailed(f"the sender address {self.sender_address} is not on a sender domain")


_BRAND_LOCK = threading.Lock()
_BRAND_CACHE: dict[Path, tuple[tuple[int, int, int, int], BrandRules]] = {}


def is_own_link(url: str, own_origin: str | None) -> bool:
    """Whether ``url`` points into Nudge's own public origin (see ``CheckContext.own_origin``)."""
    if not own_origin:
        return False
    link, origin = url.strip().lower(), own_origin.lower().rstrip("/")
    return link == origin or link.startswith(f"{origin}/")


def is_within(host: str, domains: tuple[str, ...]) -> bool:
    """Whether ``host`` is one of ``domains`` or a subdomain of one."""
    host = host.lower().rstrip(".")
    return any(host == domain or host.endswith(f".{domain}") for domain in domains)


@dataclass(frozen=True, slots=True)
class RecipientData:
    """The recipient's own data: the only personal data a rendered message may contain."""

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    country: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything a message is checked against.

    Attributes
    ----------
    catalog : mapping of code to CatalogOffer
        Every offer in the catalog (not only the message's): a code from the catalog that is not the
        message's own is still an offer the copy did not mean to make.
    brand : BrandRules
    now : datetime
        When the check runs (offers must be valid now; quiet hours are the send-time checks' business).
    recipient : RecipientData, optional
        At send time, whose message it is.
    injected : frozenset of str
        Payloads (links, codes, addresses, phrases) found in instructions hidden in the creative the draft
        drew on: copy that contains one obeyed the injection.
    own_origin : str, optional
        The origin of Nudge's own public URL (``https://nudge.example.com``): unsubscribe and preference
        links point there, so they are the brand's links too. Production refuses to start unless it is
        https; the embedded default's loopback origin is accepted as it is, since nothing leaves the outbox.
    max_sms_segments : int
        Segments an SMS may take.
    sms_segment_price : Decimal
        USD per segment, to show what an SMS costs per recipient.
    """

    catalog: Mapping[str, CatalogOffer]
    brand: BrandRules
    now: datetime
    recipient: RecipientData | None = None
    injected: frozenset[str] = frozenset()
    own_origin: str | None = None
    max_sms_segments: int = 2
    sms_segment_price: Decimal = Decimal("0.0083")
