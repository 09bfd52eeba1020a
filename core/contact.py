"""Normalise and validate contact data: e-mail addresses, phone numbers (E.164), time zones, countries.

Every intake path (CSV import, event intake) and every sender uses these, so an address is
spelled one way across customers, consents and suppressions.
"""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from core.errors import BadRequest

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def normalize_email(value: str) -> str:
    """Trim and lower-case the domain; reject anything that is not one address (max 254 chars)."""
    value = value.strip()
    if len(value) > 254 or not _EMAIL.match(value):
        raise BadRequest(f"not an e-mail address: {value!r}")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def normalize_phone(value: str) -> str:
    """E.164 (``+15555550123``). Separators are dropped; a national number without ``+`` is refused,
    because guessing its country would text the wrong person."""
    compact = _PHONE_SEPARATORS.sub("", value.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _E164.match(compact):
        raise BadRequest(f"not an E.164 phone number (+ and 8-15 digits): {value!r}")
    return compact


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_time_zone(value: str) -> str:
    """An IANA time zone name such as ``America/New_York``."""
    value = value.strip()
    if value not in _time_zones():
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise BadRequest(f"not an IANA time zone: {value!r}") from error
    return value


def normalize_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased."""
    value = value.strip().upper()
    if not _COUNTRY.match(value):
        raise BadRequest(f"not an ISO 3166-1 alpha-2 country code: {value!r}")
    return value
