"""What the law of the recipient's country (and US state) asks of a send: the consent bases it accepts, the local
hours SMS may go out, extra frequency caps, and the time zones to assume when the recipient's own is unknown.

From the compliance reference, §1.2 (TCPA), §1.4 (CASL), §1.5 (GDPR and ePrivacy), §1.7 (Florida, Oklahoma).
An engineering table, not legal advice: counsel signs off on it before launch. A country with no entry here gets
the strictest of the rules below, so an unknown place is never treated more loosely than a known one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.models import Channel, ConsentBasis, ConsentPurpose
from guardrails.windows import FrequencyCap, LocalWindow

US = "US"
CANADA = "CA"
UK = "GB"

# EU member states, the EEA's Iceland, Liechtenstein and Norway, and the UK (UK GDPR and PECR differ little here),
# each with the zones of its territory in Europe; EU outermost regions with their own ISO code are listed too.
EEA_AND_UK_ZONES: dict[str, tuple[str, ...]] = {
    "AT": ("Europe/Vienna",),
    "BE": ("Europe/Brussels",),
    "BG": ("Europe/Sofia",),
    "CY": ("Asia/Nicosia",),
    "CZ": ("Europe/Prague",),
    "DE": ("Europe/Berlin",),
    "DK": ("Europe/Copenhagen",),
    "EE": ("Europe/Tallinn",),
    "ES": ("Europe/Madrid", "Atlantic/Canary"),
    "FI": ("Europe/Helsinki",),
    "FR": ("Europe/Paris",),
    "GR": ("Europe/Athens",),
    "HR": ("Europe/Zagreb",),
    "HU": ("Europe/Budapest",),
    "IE": ("Europe/Dublin",),
    "IT": ("Europe/Rome",),
    "LT": ("Europe/Vilnius",),
    "LU": ("Europe/Luxembourg",),
    "LV": ("Europe/Riga",),
    "MT": ("Europe/Malta",),
    "NL": ("Europe/Amsterdam",),
    "PL": ("Europe/Warsaw",),
    "PT": ("Europe/Lisbon", "Atlantic/Madeira", "Atlantic/Azores"),
    "RO": ("Europe/Bucharest",),
    "SE": ("Europe/Stockholm",),
    "SI": ("Europe/Ljubljana",),
    "SK": ("Europe/Bratislava",),
    "AX": ("Europe/Mariehamn",),
    "GF": ("America/Cayenne",),
    "GP": ("America/Guadeloupe",),
    "MF": ("America/Marigot",),
    "MQ": ("America/Martinique",),
    "RE": ("Indian/Reunion",),
    "YT": ("Indian/Mayotte",),
    "IS": ("Atlantic/Reykjavik",),
    "LI": ("Europe/Vaduz",),
    "NO": ("Europe/Oslo",),
    UK: ("Europe/London",),
}
EEA_AND_UK = frozenset(EEA_AND_UK_ZONES)

# When a US recipient's zone is unknown the window must hold in every continental zone at once: with 08:00–21:00
# that leaves 11:00–21:00 Eastern. Alaska and Hawaii would shrink it to seven or eight hours, so they are assumed
# only for customers whose region says AK or HI.
US_CONTINENTAL_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
)
US_REGION_ZONES = {"AK": ("America/Anchorage", "America/Adak"), "HI": ("Pacific/Honolulu",)}
CANADA_ZONES = (
    "America/St_Johns",
    "America/Halifax",
    "America/Toronto",
    "America/Winnipeg",
    "America/Regina",
    "America/Edmonton",
    "America/Vancouver",
)
COUNTRY_ZONES: dict[str, tuple[str, ...]] = {US: US_CONTINENTAL_ZONES, CANADA: CANADA_ZONES, **EEA_AND_UK_ZONES}

# 47 CFR 64.1200(c)(1): no telephone solicitation (texts included) before 8 a.m. or after 9 p.m. local time.
US_SMS_WINDOW = LocalWindow(time(8), time(21))
_FLORIDA = "Florida FTSA"
_OKLAHOMA = "Oklahoma OTSA"
# FTSA: 8 a.m.–8 p.m. and at most 3 solicitations per 24 h on the same subject (counted here on any subject).
# OTSA's hours and cap are UNVERIFIED in the reference; Florida's are the conservative choice until counsel confirms.
US_STATE_SMS_WINDOWS = {
    "FL": (_FLORIDA, LocalWindow(time(8), time(20))),
    "OK": (_OKLAHOMA, LocalWindow(time(8), time(20))),
}
US_STATE_SMS_CAPS = {
    "FL": (_FLORIDA, FrequencyCap(3, timedelta(hours=24))),
    "OK": (_OKLAHOMA, FrequencyCap(3, timedelta(hours=24))),
}
# The narrowest legal SMS window of all: a configured window must overlap it, or some recipients could never be texted.
STRICTEST_SMS_WINDOW = LocalWindow(time(8), time(20))

_EXPRESS = frozenset({ConsentBasis.EXPRESS_WRITTEN, ConsentBasis.EXPRESS})
_WRITTEN = frozenset({ConsentBasis.EXPRESS_WRITTEN})


@dataclass(frozen=True, slots=True)
class ConsentRule:
    """The consent bases a law accepts for one kind of message, and how to say what it needs."""

    law: str
    accepted: frozenset[ConsentBasis]
    needs: str


def is_commercial(purpose: ConsentPurpose) -> bool:
    """Marketing and abandoned-cart messages are commercial (the reference treats cart reminders as marketing)."""
    return purpose is not ConsentPurpose.TRANSACTIONAL


def consent_rule(country: str | None, channel: Channel, purpose: ConsentPurpose) -> ConsentRule:
    """The consent bases the recipient's country accepts for a message on ``channel`` for ``purpose``.

    Parameters
    ----------
    country
        ISO 3166-1 alpha-2 code of the recipient, or ``None`` when unknown (the strictest rule then applies).
    channel
        E-mail or SMS.
    purpose
        What the message is for; commercial SMS to the US needs written consent, a transactional one does not.
    """
    code = (country or "").upper()
    if code == US:
        return _us_rule(channel, purpose)
    if code == CANADA:
        return ConsentRule("CASL", _EXPRESS | {ConsentBasis.IMPLIED_EBR}, "express or unexpired implied consent")
    if code in EEA_AND_UK:
        return _european_rule(code, channel)
    law = f"no rule for {code or 'an unknown country'}"
    if channel is Channel.SMS:
        return ConsentRule(law, _WRITTEN, "written consent (the strictest rule)")
    return ConsentRule(law, _EXPRESS, "express consent (the strictest rule)")


def _us_rule(channel: Channel, purpose: ConsentPurpose) -> ConsentRule:
    if channel is Channel.EMAIL:
        return ConsentRule("CAN-SPAM", frozenset(ConsentBasis), "any consent (e-mail is opt-out)")
    if is_commercial(purpose):
        # T1/T2: automated marketing texts need PEWC; an existing business relationship never replaces it.
        return ConsentRule("TCPA", _WRITTEN, "prior express written consent")
    return ConsentRule("TCPA", _EXPRESS, "prior express consent")


def _european_rule(code: str, channel: Channel) -> ConsentRule:
    law = "UK GDPR/PECR" if code == UK else "GDPR/ePrivacy"
    if channel is Channel.EMAIL:
        # Art. 13(2): the soft opt-in covers e-mail to customers about similar products.
        return ConsentRule(law, _EXPRESS | {ConsentBasis.SOFT_OPT_IN}, "opt-in consent or the soft opt-in")
    return ConsentRule(law, _EXPRESS, "opt-in consent (the soft opt-in is for e-mail here)")


def legal_sms_window(country: str | None, region: str | None) -> tuple[str, LocalWindow] | None:
    """The law's SMS hours for the recipient (and the law's name), or ``None`` where no law sets any.

    A recipient with no country gets the strictest US state's hours: the place is unknown, so assume the worst.
    """
    code = (country or "").upper()
    if not code:
        return "strictest US state rule (country unknown)", STRICTEST_SMS_WINDOW
    if code != US:
        return None
    return US_STATE_SMS_WINDOWS.get((region or "").upper(), ("TCPA", US_SMS_WINDOW))


def legal_sms_cap(country: str | None, region: str | None) -> tuple[str, FrequencyCap] | None:
    """A state's hard cap on commercial texts (and the law's name), or ``None``."""
    if (country or "").upper() != US:
        return None
    return US_STATE_SMS_CAPS.get((region or "").upper())


@lru_cache(maxsize=1024)
def zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone called ``name``, or ``None`` if it is empty or not a zone."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=1024)
def fallback_zones(country: str | None, region: str | None) -> tuple[ZoneInfo, ...]:
    """Every zone a recipient of ``country`` (and ``region``) may be in; empty when there is no table for it."""
    code, state = (country or "").upper(), (region or "").upper()
    names = US_REGION_ZONES.get(state, US_CONTINENTAL_ZONES) if code == US else COUNTRY_ZONES.get(code, ())
    return tuple(ZoneInfo(name) for name in names)
