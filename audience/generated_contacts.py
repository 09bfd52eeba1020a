"""Made-up but safe contact details and consent records for the sample data sets, which have none.

Everything is derived from the customer's external id by hashing (no global random state), so a
customer gets the same name, address, phone, place and consents on every machine and every load.
Only addresses that can never reach a real person are produced:

- e-mail at the domains reserved for documentation (RFC 2606): ``example.com``, ``example.org``,
  ``example.net``;
- North American numbers in ``555-0100`` … ``555-0199``, which NANPA reserves for fiction in every
  area code, and UK mobiles in ``07700 900000`` … ``07700 900999``, Ofcom's drama range.

The shares below are the *expected* proportions; ``data/samples/README.md`` gives the counts they
produce on the real files.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.models import Channel, ConsentBasis, ConsentStatus

RESERVED_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
CONSENT_SOURCE = "sample_generated"
CONSENT_PROOF = "Generated for sample data by Nudge's sample loader; not a consent anyone gave."
# Versions of the (imaginary) consent wording a generated grant records: a TCPA prior-express-written-consent
# checkbox for SMS, an opt-in checkbox for e-mail, and in the UK the notice that offered the soft opt-in's opt-out.
SMS_DISCLOSURE_VERSION = "sample-sms-pewc-v1"
EMAIL_DISCLOSURE_VERSION = "sample-email-opt-in-v1"
SOFT_OPT_IN_DISCLOSURE_VERSION = "sample-email-soft-opt-in-notice-v1"

PHONE_SHARE = 0.75  # customers with a mobile number
EMAIL_CONSENT_SHARE = 0.85  # customers who granted e-mail consent
EMAIL_WITHDRAWN_SHARE = 0.06  # of those, who later withdrew it
SMS_CONSENT_SHARE = 0.50  # customers with a phone who granted SMS consent
SMS_WITHDRAWN_SHARE = 0.08  # of those, who later withdrew it (replied STOP)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a generated customer lives: the region and time zone agree, and so does the phone's area code."""

    country: str
    region: str
    time_zone: str
    area_codes: tuple[str, ...]  # NANP area codes of the region; empty for the UK (mobiles have none)
    weight: int  # share of customers, in percent


# Mostly the US, spread over every US time zone (Arizona keeps no daylight saving time), with Florida
# and Oklahoma for their stricter calling rules; some Canada and some UK.
PLACES = (
    Place("US", "CA", "America/Los_Angeles", ("213", "415", "619"), 16),
    Place("US", "WA", "America/Los_Angeles", ("206", "509"), 4),
    Place("US", "AZ", "America/Phoenix", ("480", "602"), 5),
    Place("US", "CO", "America/Denver", ("303", "720"), 5),
    Place("US", "TX", "America/Chicago", ("214", "512", "713"), 11),
    Place("US", "IL", "America/Chicago", ("312", "773"), 5),
    Place("US", "OK", "America/Chicago", ("405", "918"), 3),
    Place("US", "FL", "America/New_York", ("305", "407", "813"), 10),
    Place("US", "NY", "America/New_York", ("212", "718"), 9),
    Place("US", "GA", "America/New_York", ("404", "770"), 5),
    Place("US", "PA", "America/New_York", ("215", "412"), 5),
    Place("US", "AK", "America/Anchorage", ("907",), 1),
    Place("US", "HI", "Pacific/Honolulu", ("808",), 1),
    Place("CA", "ON", "America/Toronto", ("416", "613"), 5),
    Place("CA", "QC", "America/Toronto", ("514",), 2),
    Place("CA", "BC", "America/Vancouver", ("604",), 2),
    Place("CA", "AB", "America/Edmonton", ("403",), 1),
    Place("GB", "ENG", "Europe/London", (), 8),
    Place("GB", "SCT", "Europe/London", (), 1),
    Place("GB", "WLS", "Europe/London", (), 1),
)

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "James",
    "Mia", "Lucas", "Amelia", "Mateo", "Harper", "Ethan", "Aisha", "Omar", "Priya", "Arjun",
    "Mei", "Wei", "Yuki", "Hiroshi", "Fatima", "Mohammed", "Chloe", "Daniel", "Grace", "Samuel",
    "Zoe", "David", "Lucia", "Diego", "Nadia", "Kofi", "Amara", "Ines", "Leila", "Jonah",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Nguyen", "Patel", "Kim", "Chen", "Singh", "Khan", "Okafor", "Mensah", "Silva", "Rossi",
    "Murphy", "Walsh", "Campbell", "Evans", "Hughes", "Tremblay", "Roy", "Gagnon", "Cohen", "Novak",
)  # fmt: skip

_NOT_LOCAL_PART = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class GeneratedContact:
    first_name: str
    last_name: str
    email: str
    phone: str | None  # E.164, in a fictional range
    country: str
    region: str
    time_zone: str


@dataclass(frozen=True, slots=True)
class GeneratedConsent:
    channel: Channel
    status: ConsentStatus
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentTerms:
    """The legal basis a generated consent stands on and the version of the wording the customer saw."""

    basis: ConsentBasis
    disclosure_version: str


def consent_terms(channel: Channel, country: str) -> ConsentTerms:
    """What a generated grant on ``channel`` records for a customer in ``country``: every SMS grant is prior
    express written consent (so it unlocks marketing texts under the TCPA too); e-mail is an opt-in, except in
    the UK, where an address given at checkout is mailed under the soft opt-in (PECR reg. 22(3))."""
    if channel is Channel.SMS:
        return ConsentTerms(ConsentBasis.EXPRESS_WRITTEN, SMS_DISCLOSURE_VERSION)
    if country == "GB":
        return ConsentTerms(ConsentBasis.SOFT_OPT_IN, SOFT_OPT_IN_DISCLOSURE_VERSION)
    return ConsentTerms(ConsentBasis.EXPRESS, EMAIL_DISCLOSURE_VERSION)


def generate_contact(external_id: str) -> GeneratedContact:
    """The contact details of the customer ``external_id``: the same every time."""
    name_draw, last_draw, domain_draw, place_draw, phone_draw, area_draw, line_draw, _ = _draws(external_id, "contact")
    first, last = _pick(FIRST_NAMES, name_draw), _pick(LAST_NAMES, last_draw)
    place = _place(place_draw)
    # The external id in the local part keeps every address unique; the name makes it look like one.
    slug = _NOT_LOCAL_PART.sub("-", external_id.lower()).strip("-") or "customer"
    phone = _phone(place, area_draw, line_draw) if phone_draw < PHONE_SHARE else None
    return GeneratedContact(
        first_name=first,
        last_name=last,
        email=f"{first.lower()}.{last.lower()}.{slug}@{_pick(RESERVED_EMAIL_DOMAINS, domain_draw)}",
        phone=phone,
        country=place.country,
        region=place.region,
        time_zone=place.time_zone,
    )


def generate_consents(external_id: str, *, has_phone: bool, since: datetime, until: datetime) -> list[GeneratedConsent]:
    """The consent log of ``external_id``: grants recorded at ``since`` (sign-up or first purchase) and,
    for some, a withdrawal at a moment between ``since`` and ``until``, in the order they happened."""
    email, email_out, email_when, sms, sms_out, sms_when, _, _ = _draws(external_id, "consent")
    log: list[GeneratedConsent] = []
    if email < EMAIL_CONSENT_SHARE:
        log += _grant_and_maybe_withdraw(Channel.EMAIL, email_out < EMAIL_WITHDRAWN_SHARE, since, until, email_when)
    if has_phone and sms < SMS_CONSENT_SHARE:
        log += _grant_and_maybe_withdraw(Channel.SMS, sms_out < SMS_WITHDRAWN_SHARE, since, until, sms_when)
    return log


def draw(key: str, topic: str) -> float:
    """One deterministic number in [0, 1) for ``key`` and ``topic`` (what the sample loaders use for dates)."""
    return _draws(key, topic)[0]


def _grant_and_maybe_withdraw(
    channel: Channel, withdrawn: bool, since: datetime, until: datetime, when: float
) -> list[GeneratedConsent]:
    granted = GeneratedConsent(channel, ConsentStatus.GRANTED, since)
    if not withdrawn or until <= since:
        return [granted]
    # Whole seconds, strictly after the grant, so "latest row wins" never sees a tie.
    span = int((until - since).total_seconds())
    withdrawn_at = since + timedelta(seconds=1 + int(when * max(span - 1, 1)))
    return [granted, GeneratedConsent(channel, ConsentStatus.WITHDRAWN, withdrawn_at)]


def _draws(key: str, topic: str) -> tuple[float, ...]:
    """Eight independent numbers in [0, 1) from one 64-byte BLAKE2b digest of ``topic`` and ``key``."""
    digest = hashlib.blake2b(f"{topic}\x00{key}".encode(), digest_size=64).digest()
    return tuple(value / 2**64 for value in struct.unpack(">8Q", digest))


def _pick(options: tuple[str, ...], draw: float) -> str:
    return options[int(draw * len(options))]


def _place(draw: float) -> Place:
    point = draw * sum(place.weight for place in PLACES)
    for place in PLACES:
        point -= place.weight
        if point < 0:
            return place
    return PLACES[-1]


def _phone(place: Place, area_draw: float, line_draw: float) -> str:
    if not place.area_codes:  # UK: Ofcom's drama range 07700 900000-900999
        return f"+447700900{int(line_draw * 1000):03d}"
    area = _pick(place.area_codes, area_draw)
    return f"+1{area}55501{int(line_draw * 100):02d}"  # NANP fiction range 555-0100-0199
