"""Contact data is spelled one way everywhere, and anything ambiguous is refused."""

from __future__ import annotations

import pytest

from core.contact import normalize_country, normalize_email, normalize_phone, validate_time_zone
from core.errors import BadRequest


def test_email_domain_is_lower_cased_and_local_part_kept() -> None:
    assert normalize_email("  Ana.Lopez+News@Example.COM ") == "Ana.Lopez+News@example.com"


@pytest.mark.parametrize("value", ["", "no-at-sign", "a@b", "a@@example.com", "a b@example.com", "x" * 250 + "@ex.com"])
def test_not_an_email_is_refused(value: str) -> None:
    with pytest.raises(BadRequest, match="not an e-mail address"):
        normalize_email(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+1 (212) 555-0123", "+12125550123"),
        ("0044 7700 900123", "+447700900123"),
        ("+33.1.23.45.67.89", "+33123456789"),
    ],
)
def test_phone_numbers_become_e164(value: str, expected: str) -> None:
    assert normalize_phone(value) == expected


@pytest.mark.parametrize("value", ["212-555-0123", "+0123456789", "+1", "+1212555012345678", "call me"])
def test_phone_without_country_or_malformed_is_refused(value: str) -> None:
    with pytest.raises(BadRequest, match=r"not an E\.164 phone number"):
        normalize_phone(value)


def test_time_zone_must_be_iana() -> None:
    assert validate_time_zone("America/New_York") == "America/New_York"
    with pytest.raises(BadRequest, match="not an IANA time zone"):
        validate_time_zone("Eastern Time")


def test_country_is_alpha2_upper_case() -> None:
    assert normalize_country("us") == "US"
    with pytest.raises(BadRequest, match="ISO 3166-1 alpha-2"):
        normalize_country("USA")
