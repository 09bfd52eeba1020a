"""The send-time checks, rule by rule, with exact decisions: suppression, consent and its basis per country,
quiet hours in the recipient's local time (Florida, Oklahoma, unknown zones, daylight-saving changes) and
rolling frequency caps. Pure functions: no database, a fixed clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from core.models import Channel, ConsentBasis, ConsentPurpose, ConsentStatus
from core.settings import Settings
from guardrails.sendtime import (
    ALLOWED,
    DEFAULT_CAPS,
    ConsentRecord,
    Recipient,
    RuleId,
    SendDecision,
    SendPolicy,
    Verdict,
    check_send,
)
from guardrails.windows import FrequencyCap, LocalWindow

POLICY = SendPolicy()
SIGNED_UP = datetime(2026, 1, 1, tzinfo=UTC)
# Wednesday 10 June 2026, 12:00 in New York (EDT, UTC-4): inside every sending window.
NOON = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
WRITTEN = ConsentRecord(ConsentStatus.GRANTED, ConsentPurpose.MARKETING, ConsentBasis.EXPRESS_WRITTEN, SIGNED_UP)
TEXTER = Recipient(
    customer_id=7,
    channel=Channel.SMS,
    address="+12125550101",
    country="US",
    region="NY",
    time_zone="America/New_York",
    consent=WRITTEN,
)
MAILER = replace(TEXTER, channel=Channel.EMAIL, address="ana@example.com")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def with_basis(recipient: Recipient, basis: ConsentBasis, **changes: object) -> Recipient:
    assert recipient.consent is not None
    return replace(recipient, consent=replace(recipient.consent, basis=basis, **changes))


def blocked(rule: RuleId, reason: str) -> SendDecision:
    return SendDecision(Verdict.BLOCKED, rule, reason)


def deferred(rule: RuleId, reason: str, until: datetime) -> SendDecision:
    return SendDecision(Verdict.DEFERRED, rule, reason, until)


# --- suppression, address, order of the checks -------------------------------------------------------


def test_a_recipient_who_passes_every_check_is_allowed() -> None:
    assert check_send(TEXTER, NOON, POLICY) == ALLOWED
    assert check_send(MAILER, NOON, POLICY).allowed


def test_a_customer_without_an_address_on_the_channel_is_blocked() -> None:
    decision = check_send(replace(TEXTER, address=None), NOON, POLICY)

    assert decision == blocked(RuleId.NO_ADDRESS, "no sms address on file")


def test_a_suppressed_address_is_blocked_even_with_written_consent() -> None:
    decision = check_send(replace(TEXTER, suppressed=True), NOON, POLICY)

    assert decision == blocked(RuleId.SUPPRESSED, "the sms address is on the suppression list")


def test_the_cheapest_failing_check_decides() -> None:
    suppressed_without_consent = replace(TEXTER, suppressed=True, consent=None)
    withdrawn_at_night = replace(TEXTER, consent=replace(WRITTEN, status=ConsentStatus.WITHDRAWN))

    assert check_send(suppressed_without_consent, NOON, POLICY).rule is RuleId.SUPPRESSED
    assert check_send(withdrawn_at_night, utc(2026, 6, 10, 7, 0), POLICY).rule is RuleId.CONSENT_WITHDRAWN


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_send(TEXTER, datetime(2026, 6, 10, 12, 0), POLICY)


# --- consent ---------------------------------------------------------------------------------------


def test_no_consent_on_record_blocks() -> None:
    decision = check_send(replace(TEXTER, consent=None), NOON, POLICY)

    assert decision == blocked(RuleId.CONSENT_MISSING, "no marketing consent on record for sms")


def test_withdrawn_consent_blocks() -> None:
    withdrawal = replace(WRITTEN, status=ConsentStatus.WITHDRAWN, recorded_at=utc(2026, 2, 1, 9, 30))

    decision = check_send(replace(TEXTER, consent=withdrawal), NOON, POLICY)

    assert decision == blocked(RuleId.CONSENT_WITHDRAWN, "sms consent withdrawn at 2026-02-01 09:30")


def test_consent_blocks_from_the_instant_it_expires() -> None:
    expiring = replace(TEXTER, consent=replace(WRITTEN, expires_at=NOON))

    just_before = check_send(expiring, NOON - timedelta(seconds=1), POLICY)
    at_expiry = check_send(expiring, NOON, POLICY)

    assert just_before == ALLOWED
    assert at_expiry == blocked(RuleId.CONSENT_EXPIRED, "express_written consent lapsed at 2026-06-10 16:00 UTC")


@pytest.mark.parametrize("basis", [ConsentBasis.EXPRESS, ConsentBasis.IMPLIED_EBR, ConsentBasis.SOFT_OPT_IN])
def test_marketing_texts_to_the_us_need_prior_express_written_consent(basis: ConsentBasis) -> None:
    decision = check_send(with_basis(TEXTER, basis), NOON, POLICY)

    assert decision == blocked(
        RuleId.CONSENT_BASIS, f"TCPA: a marketing sms needs prior express written consent, not {basis}"
    )


def test_a_cart_reminder_text_to_the_us_needs_written_consent_too() -> None:
    reminder = replace(with_basis(TEXTER, ConsentBasis.EXPRESS), purpose=ConsentPurpose.CART)

    assert check_send(reminder, NOON, POLICY).rule is RuleId.CONSENT_BASIS


def test_a_transactional_text_to_the_us_needs_only_express_consent() -> None:
    receipt = replace(with_basis(TEXTER, ConsentBasis.EXPRESS), purpose=ConsentPurpose.TRANSACTIONAL)

    assert check_send(receipt, NOON, POLICY) == ALLOWED
    assert check_send(with_basis(receipt, ConsentBasis.IMPLIED_EBR), NOON, POLICY) == blocked(
        RuleId.CONSENT_BASIS, "TCPA: a transactional sms needs prior express consent, not implied_ebr"
    )


@pytest.mark.parametrize("basis", list(ConsentBasis))
def test_us_email_accepts_any_granted_basis_because_can_spam_is_opt_out(basis: ConsentBasis) -> None:
    assert check_send(with_basis(MAILER, basis), NOON, POLICY) == ALLOWED


def test_a_marketing_consent_covers_a_cart_reminder_but_a_cart_consent_does_not_cover_marketing() -> None:
    reminder = replace(TEXTER, purpose=ConsentPurpose.CART)
    cart_only = replace(TEXTER, consent=replace(WRITTEN, purpose=ConsentPurpose.CART))

    assert check_send(reminder, NOON, POLICY) == ALLOWED
    assert check_send(cart_only, NOON, POLICY) == blocked(
        RuleId.CONSENT_PURPOSE, "a cart consent does not cover a marketing message"
    )


# --- Canada (CASL) ---------------------------------------------------------------------------------

CANADIAN = replace(MAILER, country="CA", region="ON", time_zone="America/Toronto")


def test_canada_accepts_express_and_unexpired_implied_consent_on_both_channels() -> None:
    implied = with_basis(CANADIAN, ConsentBasis.IMPLIED_EBR, expires_at=utc(2028, 1, 1))

    assert check_send(with_basis(CANADIAN, ConsentBasis.EXPRESS), NOON, POLICY) == ALLOWED
    assert check_send(implied, NOON, POLICY) == ALLOWED
    assert check_send(replace(implied, channel=Channel.SMS, address="+14165550101"), NOON, POLICY) == ALLOWED


def test_canadian_implied_consent_is_blocked_once_its_two_years_are_over() -> None:
    purchase = utc(2024, 6, 1)
    implied = with_basis(CANADIAN, ConsentBasis.IMPLIED_EBR, recorded_at=purchase, expires_at=utc(2026, 6, 1))

    decision = check_send(implied, NOON, POLICY)

    assert decision == blocked(RuleId.CONSENT_EXPIRED, "implied_ebr consent lapsed at 2026-06-01 00:00 UTC")


def test_implied_consent_without_an_expiry_lapses_after_the_shorter_casl_window_of_six_months() -> None:
    implied = with_basis(CANADIAN, ConsentBasis.IMPLIED_EBR)  # recorded 2026-01-01, no expiry given

    assert check_send(implied, utc(2026, 7, 2, 23, 59), POLICY) == ALLOWED
    assert check_send(implied, utc(2026, 7, 3), POLICY) == blocked(
        RuleId.CONSENT_EXPIRED, "implied_ebr consent lapsed at 2026-07-03 00:00 UTC"
    )


def test_canada_does_not_know_the_soft_opt_in() -> None:
    decision = check_send(with_basis(CANADIAN, ConsentBasis.SOFT_OPT_IN), NOON, POLICY)

    assert decision == blocked(
        RuleId.CONSENT_BASIS, "CASL: a marketing email needs express or unexpired implied consent, not soft_opt_in"
    )


# --- EEA and UK (GDPR, ePrivacy, PECR) -------------------------------------------------------------

GERMAN = replace(MAILER, country="DE", region=None, time_zone="Europe/Berlin")
BRITON = replace(MAILER, country="GB", region="ENG", time_zone="Europe/London")


def test_the_soft_opt_in_allows_marketing_email_in_the_eea_and_the_uk() -> None:
    assert check_send(with_basis(GERMAN, ConsentBasis.SOFT_OPT_IN), NOON, POLICY) == ALLOWED
    assert check_send(with_basis(BRITON, ConsentBasis.SOFT_OPT_IN), NOON, POLICY) == ALLOWED


def test_the_soft_opt_in_does_not_allow_marketing_texts_in_the_eea_or_the_uk() -> None:
    german_text = replace(with_basis(GERMAN, ConsentBasis.SOFT_OPT_IN), channel=Channel.SMS, address="+4915100000")
    british_text = replace(with_basis(BRITON, ConsentBasis.SOFT_OPT_IN), channel=Channel.SMS, address="+447700900001")

    assert check_send(german_text, NOON, POLICY) == blocked(
        RuleId.CONSENT_BASIS,
        "GDPR/ePrivacy: a marketing sms needs opt-in consent (the soft opt-in is for e-mail here), not soft_opt_in",
    )
    assert check_send(british_text, NOON, POLICY).reason.startswith("UK GDPR/PECR: a marketing sms needs opt-in")
    assert check_send(with_basis(german_text, ConsentBasis.EXPRESS), NOON, POLICY) == ALLOWED


def test_an_existing_business_relationship_is_no_consent_in_the_eea() -> None:
    french = replace(with_basis(GERMAN, ConsentBasis.IMPLIED_EBR), country="FR", time_zone="Europe/Paris")

    assert check_send(french, NOON, POLICY).rule is RuleId.CONSENT_BASIS


def test_a_country_without_rules_gets_the_strictest_consent_rule() -> None:
    unknown_text = with_basis(replace(TEXTER, country=None), ConsentBasis.EXPRESS)
    japanese_mail = with_basis(replace(MAILER, country="JP", time_zone="Asia/Tokyo"), ConsentBasis.SOFT_OPT_IN)

    assert check_send(unknown_text, NOON, POLICY) == blocked(
        RuleId.CONSENT_BASIS,
        "no rule for an unknown country: a marketing sms needs written consent (the strictest rule), not express",
    )
    assert check_send(japanese_mail, NOON, POLICY) == blocked(
        RuleId.CONSENT_BASIS,
        "no rule for JP: a marketing email needs express consent (the strictest rule), not soft_opt_in",
    )
    assert check_send(with_basis(japanese_mail, ConsentBasis.EXPRESS), NOON, POLICY) == ALLOWED


# --- quiet hours -----------------------------------------------------------------------------------

TCPA_NEW_YORK = "outside the sending window 08:00–21:00 (TCPA) in America/New_York"


def test_a_text_at_nine_pm_local_waits_for_eight_the_next_morning() -> None:
    nine_pm = utc(2026, 6, 11, 1, 0)  # 21:00 EDT on 10 June

    decision = check_send(TEXTER, nine_pm, POLICY)

    assert decision == deferred(RuleId.QUIET_HOURS, TCPA_NEW_YORK, utc(2026, 6, 11, 12, 0))


def test_the_window_includes_its_start_and_excludes_its_end() -> None:
    assert check_send(TEXTER, utc(2026, 6, 10, 12, 0), POLICY) == ALLOWED  # 08:00:00
    assert check_send(TEXTER, utc(2026, 6, 11, 0, 59, 59), POLICY) == ALLOWED  # 20:59:59
    assert check_send(TEXTER, utc(2026, 6, 10, 11, 59, 59), POLICY) == deferred(
        RuleId.QUIET_HOURS, TCPA_NEW_YORK, utc(2026, 6, 10, 12, 0)
    )


def test_florida_stops_texts_at_eight_pm() -> None:
    floridian = replace(TEXTER, region="FL")
    half_past_eight_pm = utc(2026, 6, 11, 0, 30)

    assert check_send(TEXTER, half_past_eight_pm, POLICY) == ALLOWED
    assert check_send(floridian, half_past_eight_pm, POLICY) == deferred(
        RuleId.QUIET_HOURS,
        "outside the sending window 08:00–20:00 (Florida FTSA) in America/New_York",
        utc(2026, 6, 11, 12, 0),
    )


def test_oklahoma_is_held_to_floridas_hours_until_its_own_are_verified() -> None:
    oklahoman = replace(TEXTER, region="OK", time_zone="America/Chicago")

    decision = check_send(oklahoman, utc(2026, 6, 11, 1, 30), POLICY)  # 20:30 CDT

    assert decision == deferred(
        RuleId.QUIET_HOURS,
        "outside the sending window 08:00–20:00 (Oklahoma OTSA) in America/Chicago",
        utc(2026, 6, 11, 13, 0),
    )


def test_without_a_time_zone_a_us_text_goes_only_when_it_is_inside_the_window_in_every_continental_zone() -> None:
    somewhere = replace(TEXTER, time_zone=None)
    reason = "outside the sending window 08:00–21:00 (TCPA) in every zone of US NY (time zone unknown)"

    # 10:00 in New York is 07:00 in Los Angeles: wait for 08:00 there, 11:00 in New York.
    assert check_send(somewhere, utc(2026, 6, 10, 14, 0), POLICY) == deferred(
        RuleId.QUIET_HOURS, reason, utc(2026, 6, 10, 15, 0)
    )
    assert check_send(somewhere, utc(2026, 6, 11, 0, 30), POLICY) == ALLOWED  # 20:30 New York, 17:30 LA
    assert check_send(somewhere, utc(2026, 6, 11, 1, 0), POLICY) == deferred(
        RuleId.QUIET_HOURS, reason, utc(2026, 6, 11, 15, 0)
    )


def test_an_unknown_time_zone_in_florida_gets_florida_hours_in_every_continental_zone() -> None:
    decision = check_send(replace(TEXTER, region="FL", time_zone=None), utc(2026, 6, 11, 0, 0), POLICY)

    assert decision.until == utc(2026, 6, 11, 15, 0)
    assert decision.reason == (
        "outside the sending window 08:00–20:00 (Florida FTSA) in every zone of US FL (time zone unknown)"
    )


def test_an_alaskan_without_a_time_zone_waits_for_alaskan_mornings() -> None:
    alaskan = replace(TEXTER, region="AK", time_zone=None)
    half_past_nine_in_los_angeles = utc(2026, 6, 10, 16, 30)  # 08:30 in Anchorage, 07:30 on Adak

    decision = check_send(alaskan, half_past_nine_in_los_angeles, POLICY)

    assert decision.until == utc(2026, 6, 10, 17, 0)


def test_an_invalid_time_zone_counts_as_unknown() -> None:
    decision = check_send(replace(TEXTER, time_zone="Mars/Olympus_Mons"), utc(2026, 6, 10, 14, 0), POLICY)

    assert decision.until == utc(2026, 6, 10, 15, 0)


def test_no_time_zone_and_no_zone_table_for_the_country_blocks() -> None:
    decision = check_send(replace(TEXTER, country="JP", region=None, time_zone=None), NOON, POLICY)

    assert decision == blocked(RuleId.UNKNOWN_TIME_ZONE, "no time zone for the customer and none known for JP")


def test_email_has_no_quiet_hours_unless_the_policy_gives_it_some() -> None:
    three_am = utc(2026, 6, 10, 7, 0)
    held = SendPolicy(email_window=LocalWindow(time(8), time(21)))

    assert check_send(MAILER, three_am, POLICY) == ALLOWED
    assert check_send(MAILER, three_am, held) == deferred(
        RuleId.QUIET_HOURS,
        "outside the sending window 08:00–21:00 (policy) in America/New_York",
        utc(2026, 6, 10, 12, 0),
    )


def test_a_transactional_text_is_not_held_by_quiet_hours() -> None:
    receipt = replace(TEXTER, purpose=ConsentPurpose.TRANSACTIONAL)

    assert check_send(receipt, utc(2026, 6, 10, 7, 0), POLICY) == ALLOWED


def test_outside_the_us_the_policy_window_applies_and_inside_it_can_only_narrow_the_law() -> None:
    wide = SendPolicy(sms_window=LocalWindow(time(7), time(22)))
    narrow = SendPolicy(sms_window=LocalWindow(time(9), time(20)))
    british = replace(TEXTER, country="GB", region="ENG", time_zone="Europe/London", address="+447700900001")
    canadian = replace(TEXTER, country="CA", region="ON", time_zone="America/Toronto", address="+14165550101")

    assert check_send(british, utc(2026, 6, 10, 6, 30), wide) == ALLOWED  # 07:30 BST
    assert check_send(TEXTER, utc(2026, 6, 10, 11, 30), wide).until == utc(2026, 6, 10, 12, 0)  # 07:30 EDT
    assert check_send(canadian, utc(2026, 6, 10, 11, 0), POLICY) == deferred(
        RuleId.QUIET_HOURS,
        "outside the sending window 08:00–21:00 (policy) in America/Toronto",
        utc(2026, 6, 10, 12, 0),
    )
    assert check_send(TEXTER, utc(2026, 6, 10, 12, 30), narrow) == deferred(
        RuleId.QUIET_HOURS,
        "outside the sending window 09:00–20:00 (policy, within TCPA) in America/New_York",
        utc(2026, 6, 10, 13, 0),
    )


def test_a_window_that_misses_the_strictest_legal_hours_is_refused() -> None:
    with pytest.raises(ValueError, match="must overlap 08:00–20:00"):
        SendPolicy(sms_window=LocalWindow(time(20, 30), time(23)))


# --- quiet hours across daylight-saving changes -----------------------------------------------------


def test_on_the_spring_forward_night_eight_am_is_reckoned_in_daylight_time() -> None:
    one_am_est = utc(2026, 3, 8, 6, 0)  # clocks go from 02:00 EST to 03:00 EDT at 07:00 UTC

    assert check_send(TEXTER, one_am_est, POLICY).until == utc(2026, 3, 8, 12, 0)  # 08:00 EDT


def test_on_the_fall_back_night_eight_am_is_reckoned_in_standard_time() -> None:
    half_past_one_edt = utc(2026, 11, 1, 5, 30)  # clocks go from 02:00 EDT back to 01:00 EST at 06:00 UTC

    assert check_send(TEXTER, half_past_one_edt, POLICY).until == utc(2026, 11, 1, 13, 0)  # 08:00 EST


BRITISH_NIGHT_OWL = replace(TEXTER, country="GB", region="ENG", time_zone="Europe/London", address="+447700900001")
HALF_PAST_ONE = SendPolicy(sms_window=LocalWindow(time(1, 30), time(21)))


def test_a_window_start_that_does_not_exist_that_night_opens_at_the_clock_change() -> None:
    # 29 March 2026: London goes from 01:00 GMT straight to 02:00 BST at 01:00 UTC; 01:30 never happens.
    decision = check_send(BRITISH_NIGHT_OWL, utc(2026, 3, 29, 0, 30), HALF_PAST_ONE)

    assert decision.until == utc(2026, 3, 29, 1, 0)


def test_a_window_start_that_happens_twice_that_night_opens_at_the_next_occurrence() -> None:
    # 25 October 2026: London goes from 02:00 BST back to 01:00 GMT at 01:00 UTC; 01:30 happens twice.
    first_pass = check_send(BRITISH_NIGHT_OWL, utc(2026, 10, 25, 0, 10), HALF_PAST_ONE)  # 01:10 BST
    second_pass = check_send(BRITISH_NIGHT_OWL, utc(2026, 10, 25, 1, 10), HALF_PAST_ONE)  # 01:10 GMT

    assert first_pass.until == utc(2026, 10, 25, 0, 30)  # 01:30 BST
    assert second_pass.until == utc(2026, 10, 25, 1, 30)  # 01:30 GMT


# --- frequency caps --------------------------------------------------------------------------------


def test_a_second_text_within_24_hours_waits_until_the_first_leaves_the_window() -> None:
    decision = check_send(replace(TEXTER, recent_sends=(NOON - timedelta(hours=23),)), NOON, POLICY)

    assert decision == deferred(
        RuleId.FREQUENCY_CAP,
        "the cap of 1 per 24 h (policy) is reached: 1 sms sent in the window",
        NOON + timedelta(hours=1),
    )


def test_a_send_exactly_24_hours_ago_has_left_the_window() -> None:
    assert check_send(replace(TEXTER, recent_sends=(NOON - timedelta(hours=24),)), NOON, POLICY) == ALLOWED


def test_a_fifth_email_in_seven_days_waits_until_the_oldest_is_a_week_old() -> None:
    sends = tuple(NOON - timedelta(days=days) for days in (6, 5, 4, 2))

    decision = check_send(replace(MAILER, recent_sends=sends), NOON, POLICY)

    assert decision == deferred(
        RuleId.FREQUENCY_CAP,
        "the cap of 4 per 7 days (policy) is reached: 4 email sent in the window",
        NOON + timedelta(days=1),
    )


def test_with_more_sends_than_the_cap_allows_it_waits_for_enough_of_them_to_leave() -> None:
    sends = (NOON - timedelta(hours=20), NOON - timedelta(hours=10), NOON - timedelta(hours=1))

    decision = check_send(replace(TEXTER, recent_sends=sends), NOON, POLICY)

    assert decision.until == NOON + timedelta(hours=23)


def test_floridas_three_texts_a_day_hold_even_when_the_policy_allows_more() -> None:
    generous = SendPolicy(sms_caps=(FrequencyCap(5, timedelta(hours=24)),))
    sends = (NOON - timedelta(hours=20), NOON - timedelta(hours=10), NOON - timedelta(hours=1))

    floridian = check_send(replace(TEXTER, region="FL", recent_sends=sends), NOON, generous)
    oklahoman = check_send(
        replace(TEXTER, region="OK", time_zone="America/Chicago", recent_sends=sends), NOON, generous
    )

    assert check_send(replace(TEXTER, recent_sends=sends), NOON, generous) == ALLOWED
    assert floridian == deferred(
        RuleId.STATE_FREQUENCY_CAP,
        "the cap of 3 per 24 h (Florida FTSA) is reached: 3 sms sent in the window",
        NOON + timedelta(hours=4),
    )
    assert (oklahoman.rule, oklahoman.until) == (RuleId.STATE_FREQUENCY_CAP, NOON + timedelta(hours=4))


def test_floridas_cap_is_for_texts_only() -> None:
    generous = SendPolicy(email_caps=(FrequencyCap(5, timedelta(hours=24)),))
    sends = (NOON - timedelta(hours=3), NOON - timedelta(hours=2), NOON - timedelta(hours=1))

    assert check_send(replace(MAILER, region="FL", recent_sends=sends), NOON, generous) == ALLOWED


def test_transactional_messages_are_not_capped() -> None:
    receipt = replace(TEXTER, purpose=ConsentPurpose.TRANSACTIONAL, recent_sends=(NOON - timedelta(minutes=5),) * 9)

    assert check_send(receipt, NOON, POLICY) == ALLOWED


# --- quiet hours and caps together ------------------------------------------------------------------


def test_a_deferral_out_of_quiet_hours_also_waits_for_the_cap() -> None:
    seven_am = utc(2026, 6, 10, 11, 0)
    yesterday_nine_am = utc(2026, 6, 9, 13, 0)

    decision = check_send(replace(TEXTER, recent_sends=(yesterday_nine_am,)), seven_am, POLICY)

    assert decision == deferred(RuleId.QUIET_HOURS, TCPA_NEW_YORK, utc(2026, 6, 10, 13, 0))


def test_a_cap_that_frees_up_at_night_waits_for_the_morning() -> None:
    late_last_night = utc(2026, 6, 10, 2, 0)  # 22:00 EDT on 9 June (the customer was in another zone then)

    decision = check_send(replace(TEXTER, recent_sends=(late_last_night,)), NOON, POLICY)

    assert decision == deferred(
        RuleId.FREQUENCY_CAP,
        "the cap of 1 per 24 h (policy) is reached: 1 sms sent in the window",
        utc(2026, 6, 11, 12, 0),
    )


# --- the policy from settings -----------------------------------------------------------------------


def test_the_policy_is_built_from_the_send_settings() -> None:
    settings = Settings(send_sms_max_per_day=2, send_sms_window_start=time(9), send_email_quiet_hours=True)

    policy = SendPolicy.from_settings(settings)

    assert SendPolicy.from_settings(Settings()) == SendPolicy()
    assert policy == SendPolicy(
        email_caps=DEFAULT_CAPS,
        sms_caps=(FrequencyCap(2, timedelta(hours=24)), FrequencyCap(4, timedelta(days=7))),
        sms_window=LocalWindow(time(9), time(21)),
        email_window=LocalWindow(time(9), time(21)),
    )


def test_send_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_SEND_SMS_WINDOW_END", "20:30")
    monkeypatch.setenv("NUDGE_SEND_EMAIL_MAX_PER_WEEK", "3")

    policy = SendPolicy.from_settings(Settings())

    assert policy.sms_window == LocalWindow(time(8), time(20, 30))
    assert policy.email_caps == (FrequencyCap(1, timedelta(hours=24)), FrequencyCap(3, timedelta(days=7)))
