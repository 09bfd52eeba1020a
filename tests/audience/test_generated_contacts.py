"""Generated contact details are the same on every call and can never reach a real person:
reserved e-mail domains, fictional phone ranges, a place whose time zone and area code agree."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from audience.generated_contacts import (
    PLACES,
    RESERVED_EMAIL_DOMAINS,
    GeneratedConsent,
    GeneratedContact,
    consent_terms,
    generate_consents,
    generate_contact,
)
from core.contact import normalize_email, normalize_phone, validate_time_zone
from core.models import Channel, ConsentBasis, ConsentStatus

IDS = [f"test-{number}" for number in range(3000)]
NANP_FICTION = re.compile(r"^\+1(\d{3})55501\d{2}$")
OFCOM_DRAMA = re.compile(r"^\+447700900\d{3}$")


def test_the_same_external_id_always_gets_the_same_contact() -> None:
    random.seed(12345)  # no global random state is involved
    first = generate_contact("cdnow-00001")
    random.seed(54321)

    assert (
        generate_contact("cdnow-00001")
        == first
        == GeneratedContact(
            first_name="Oliver",
            last_name="Lopez",
            email="oliver.lopez.cdnow-00001@example.org",
            phone="+13035550167",
            country="US",
            region="CO",
            time_zone="America/Denver",
        )
    )
    assert generate_contact("telco-3668-QPYBK") == GeneratedContact(
        first_name="Grace",
        last_name="Rodriguez",
        email="grace.rodriguez.telco-3668-qpybk@example.net",
        phone=None,
        country="US",
        region="AZ",
        time_zone="America/Phoenix",
    )


@pytest.mark.parametrize("external_id", [*IDS[:1], "odd id/with spaces & ümlauts", "ID-UPPER"])
def test_emails_are_valid_addresses_at_reserved_domains(external_id: str) -> None:
    email = generate_contact(external_id).email

    assert normalize_email(email) == email
    assert email.rsplit("@", 1)[1] in RESERVED_EMAIL_DOMAINS


def test_every_generated_contact_is_fictional_and_consistent() -> None:
    contacts = [generate_contact(external_id) for external_id in IDS]

    places = {(place.country, place.region): place for place in PLACES}
    for contact in contacts:
        place = places[(contact.country, contact.region)]
        assert contact.time_zone == place.time_zone == validate_time_zone(contact.time_zone)
        assert contact.email.rsplit("@", 1)[1] in RESERVED_EMAIL_DOMAINS
        if contact.phone is None:
            continue
        assert normalize_phone(contact.phone) == contact.phone
        if contact.country == "GB":
            assert OFCOM_DRAMA.match(contact.phone)
        else:
            match = NANP_FICTION.match(contact.phone)
            assert match is not None
            assert match.group(1) in place.area_codes
    assert len({contact.email for contact in contacts}) == len(contacts)


def test_places_and_phones_come_in_the_documented_shares() -> None:
    contacts = [generate_contact(external_id) for external_id in IDS]

    assert Counter(contact.country for contact in contacts) == {"US": 2397, "CA": 321, "GB": 282}
    assert sum(contact.phone is not None for contact in contacts) == 2264  # 75 % expected
    assert {contact.time_zone for contact in contacts if contact.country == "US"} == {
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
        "America/Anchorage",
        "Pacific/Honolulu",
    }
    assert sum(place.weight for place in PLACES) == 100


def test_consents_are_granted_at_sign_up_and_withdrawn_strictly_later() -> None:
    since, until = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)

    logs = {
        external_id: generate_consents(external_id, has_phone=True, since=since, until=until) for external_id in IDS
    }

    statuses = Counter((consent.channel, consent.status) for log in logs.values() for consent in log)
    assert statuses == {
        (Channel.EMAIL, ConsentStatus.GRANTED): 2566,  # 85 % expected
        (Channel.EMAIL, ConsentStatus.WITHDRAWN): 146,  # 6 % of those
        (Channel.SMS, ConsentStatus.GRANTED): 1523,  # 50 % expected
        (Channel.SMS, ConsentStatus.WITHDRAWN): 105,  # 8 % of those
    }
    for log in logs.values():
        for channel in Channel:
            mine = [consent for consent in log if consent.channel is channel]
            assert [consent.status for consent in mine] in ([], [ConsentStatus.GRANTED], list(ConsentStatus))
            assert all(since <= consent.recorded_at < until for consent in mine)
            if len(mine) == 2:
                assert mine[1].recorded_at > mine[0].recorded_at == since
    assert logs["test-38"] == [
        GeneratedConsent(Channel.EMAIL, ConsentStatus.GRANTED, since),
        GeneratedConsent(Channel.EMAIL, ConsentStatus.WITHDRAWN, datetime(2024, 6, 6, 21, 31, 46, tzinfo=UTC)),
        GeneratedConsent(Channel.SMS, ConsentStatus.GRANTED, since),
    ]


def test_no_sms_consent_without_a_phone() -> None:
    since, until = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)

    logs = [generate_consents(external_id, has_phone=False, since=since, until=until) for external_id in IDS]

    assert all(consent.channel is Channel.EMAIL for log in logs for consent in log)
    assert logs[0] == [GeneratedConsent(Channel.EMAIL, ConsentStatus.GRANTED, since)]


def test_generated_texts_record_written_consent_and_email_an_opt_in_or_the_uk_soft_opt_in() -> None:
    terms = {
        (channel, country): (consent_terms(channel, country).basis, consent_terms(channel, country).disclosure_version)
        for channel in Channel
        for country in ("US", "CA", "GB")
    }

    assert terms == {
        (Channel.SMS, "US"): (ConsentBasis.EXPRESS_WRITTEN, "sample-sms-pewc-v1"),
        (Channel.SMS, "CA"): (ConsentBasis.EXPRESS_WRITTEN, "sample-sms-pewc-v1"),
        (Channel.SMS, "GB"): (ConsentBasis.EXPRESS_WRITTEN, "sample-sms-pewc-v1"),
        (Channel.EMAIL, "US"): (ConsentBasis.EXPRESS, "sample-email-opt-in-v1"),
        (Channel.EMAIL, "CA"): (ConsentBasis.EXPRESS, "sample-email-opt-in-v1"),
        (Channel.EMAIL, "GB"): (ConsentBasis.SOFT_OPT_IN, "sample-email-soft-opt-in-notice-v1"),
    }
