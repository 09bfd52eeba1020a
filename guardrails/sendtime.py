"""The checks a worker runs on each recipient at the moment of sending: suppression, consent, quiet hours and
frequency caps, cheapest first (compliance reference §1.10, steps 2–5).

Pure and fast: no database, no clock. The worker loads a ``Recipient`` snapshot (``guardrails.repository``),
passes the time, and gets a ``SendDecision``: allowed, blocked (do not send, record why) or deferred until a
UTC instant (try again then: a message outside quiet hours or over a cap is delayed, never dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo

from core.models import Channel, ConsentBasis, ConsentPurpose, ConsentStatus
from core.settings import Settings
from guardrails.jurisdictions import (
    STRICTEST_SMS_WINDOW,
    consent_rule,
    fallback_zones,
    is_commercial,
    legal_sms_cap,
    legal_sms_window,
    zone,
)
from guardrails.windows import FrequencyCap, LocalWindow, is_inside, next_inside

# CASL implied consent lasts 2 years after a purchase but 6 months after an inquiry (s.10(10)); a record that does
# not say when it lapses is given the shorter.
IMPLIED_CONSENT_DEFAULT_LIFETIME = timedelta(days=183)

# The consent purposes whose records speak for a message of each purpose; the latest of them decides. A cart
# reminder is marketing, so a marketing opt-in covers it, not the other way round (CTIA: one opt-in per program).
CONSENT_COVERS: Mapping[ConsentPurpose, frozenset[ConsentPurpose]] = MappingProxyType(
    {
        ConsentPurpose.MARKETING: frozenset({ConsentPurpose.MARKETING}),
        ConsentPurpose.CART: frozenset({ConsentPurpose.CART, ConsentPurpose.MARKETING}),
        ConsentPurpose.TRANSACTIONAL: frozenset(ConsentPurpose),
    }
)

DAY = timedelta(hours=24)
WEEK = timedelta(days=7)
# Reference §1.8: 1 a day and 4 in 7 days for both e-mail and SMS marketing; SMS 08:00–21:00 local.
DEFAULT_CAPS = (FrequencyCap(1, DAY), FrequencyCap(4, WEEK))
DEFAULT_SMS_WINDOW = LocalWindow(time(8), time(21))
_MAX_ROUNDS = 8  # quiet hours and caps agree after two rounds; more means a bug, so stop rather than spin


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DEFERRED = "deferred"
    BLOCKED = "blocked"


class RuleId(StrEnum):
    """Stable ids for the send log and metrics."""

    ALLOWED = "send.allowed"
    NO_ADDRESS = "send.no_address"
    SUPPRESSED = "send.suppressed"
    CONSENT_MISSING = "send.consent.missing"
    CONSENT_WITHDRAWN = "send.consent.withdrawn"
    CONSENT_PURPOSE = "send.consent.purpose"
    CONSENT_EXPIRED = "send.consent.expired"
    CONSENT_BASIS = "send.consent.basis"
    QUIET_HOURS = "send.quiet_hours"
    UNKNOWN_TIME_ZONE = "send.quiet_hours.unknown_zone"
    NO_COMMON_WINDOW = "send.quiet_hours.no_common_window"
    FREQUENCY_CAP = "send.frequency_cap"
    STATE_FREQUENCY_CAP = "send.frequency_cap.state"


@dataclass(frozen=True, slots=True)
class SendDecision:
    """What to do with one message now: ``until`` (UTC) is set only when the verdict is deferred."""

    verdict: Verdict
    rule: RuleId
    reason: str
    until: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOWED


ALLOWED = SendDecision(Verdict.ALLOWED, RuleId.ALLOWED, "every send-time check passed")


def _block(rule: RuleId, reason: str) -> SendDecision:
    return SendDecision(Verdict.BLOCKED, rule, reason)


def _defer(rule: RuleId, reason: str, until: datetime) -> SendDecision:
    return SendDecision(Verdict.DEFERRED, rule, reason, until.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """The current consent row for the recipient's channel and purpose, as plain data."""

    status: ConsentStatus
    purpose: ConsentPurpose
    basis: ConsentBasis
    recorded_at: datetime
    expires_at: datetime | None = None
    disclosure_version: str | None = None

    @property
    def lapses_at(self) -> datetime | None:
        """When the consent stops counting: ``expires_at``, else a default for implied consent, else never."""
        if self.expires_at is None and self.basis is ConsentBasis.IMPLIED_EBR:
            return self.recorded_at + IMPLIED_CONSENT_DEFAULT_LIFETIME
        return self.expires_at


@dataclass(frozen=True, slots=True)
class Recipient:
    """One customer on one channel as the send-time checks see them.

    ``recent_sends`` are the times of the commercial messages already sent to this customer on this channel
    (enough history for the longest cap window; older ones are ignored). ``purpose`` is the purpose of the
    message about to be sent.
    """

    customer_id: int
    channel: Channel
    address: str | None
    country: str | None
    region: str | None
    time_zone: str | None
    consent: ConsentRecord | None
    suppressed: bool = False
    recent_sends: tuple[datetime, ...] = ()
    purpose: ConsentPurpose = ConsentPurpose.MARKETING


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """The tunable part of the checks; the law's part (US hours, Florida's cap) applies whatever is set here.

    A configured SMS window can only narrow the legal one, and must overlap the strictest state's hours.
    ``email_window`` is ``None`` by default: e-mail has no quiet hours.
    """

    email_caps: tuple[FrequencyCap, ...] = DEFAULT_CAPS
    sms_caps: tuple[FrequencyCap, ...] = DEFAULT_CAPS
    sms_window: LocalWindow = DEFAULT_SMS_WINDOW
    email_window: LocalWindow | None = field(default=None)

    def __post_init__(self) -> None:
        for window in (self.sms_window, self.email_window):
            if window is not None and not window.overlaps(STRICTEST_SMS_WINDOW):
                raise ValueError(
                    f"a sending window must overlap {STRICTEST_SMS_WINDOW}, or no US text could go: {window}"
                )

    @classmethod
    def from_settings(cls, settings: Settings) -> SendPolicy:
        """The policy the ``NUDGE_SEND_*`` settings describe."""
        sms_window = LocalWindow(settings.send_sms_window_start, settings.send_sms_window_end)
        return cls(
            email_caps=(
                FrequencyCap(settings.send_email_max_per_day, DAY),
                FrequencyCap(settings.send_email_max_per_week, WEEK),
            ),
            sms_caps=(
                FrequencyCap(settings.send_sms_max_per_day, DAY),
                FrequencyCap(settings.send_sms_max_per_week, WEEK),
            ),
            sms_window=sms_window,
            email_window=sms_window if settings.send_email_quiet_hours else None,
        )

    def caps(self, channel: Channel) -> tuple[FrequencyCap, ...]:
        return self.sms_caps if channel is Channel.SMS else self.email_caps

    def window(self, channel: Channel) -> LocalWindow | None:
        return self.sms_window if channel is Channel.SMS else self.email_window


Rule = Callable[[Recipient, datetime, SendPolicy], SendDecision]


def check_address(recipient: Recipient, now: datetime, policy: SendPolicy) -> SendDecision:
    """Block when the customer has no address on the channel."""
    if not recipient.address:
        return _block(RuleId.NO_ADDRESS, f"no {recipient.channel} address on file")
    return ALLOWED


def check_suppression(recipient: Recipient, now: datetime, policy: SendPolicy) -> SendDecision:
    """Block a suppressed address (unsubscribed, bounced, complained, STOP), whoever it belongs to."""
    if recipient.suppressed:
        return _block(RuleId.SUPPRESSED, f"the {recipient.channel} address is on the suppression list")
    return ALLOWED


def check_consent(recipient: Recipient, now: datetime, policy: SendPolicy) -> SendDecision:
    """Block unless the current consent is granted, covers the purpose, has not lapsed, and stands on a basis
    the recipient's country accepts for this channel (``guardrails.jurisdictions.consent_rule``)."""
    consent, purpose = recipient.consent, recipient.purpose
    if consent is None:
        return _block(RuleId.CONSENT_MISSING, f"no {purpose} consent on record for {recipient.channel}")
    if consent.status is ConsentStatus.WITHDRAWN:
        return _block(
            RuleId.CONSENT_WITHDRAWN, f"{recipient.channel} consent withdrawn at {consent.recorded_at:%Y-%m-%d %H:%M}"
        )
    if consent.purpose not in CONSENT_COVERS[purpose]:
        return _block(RuleId.CONSENT_PURPOSE, f"a {consent.purpose} consent does not cover a {purpose} message")
    lapses_at = consent.lapses_at
    if lapses_at is not None and lapses_at <= now:
        return _block(RuleId.CONSENT_EXPIRED, f"{consent.basis} consent lapsed at {lapses_at:%Y-%m-%d %H:%M} UTC")
    rule = consent_rule(recipient.country, recipient.channel, purpose)
    if consent.basis not in rule.accepted:
        reason = f"{rule.law}: a {purpose} {recipient.channel} needs {rule.needs}, not {consent.basis}"
        return _block(RuleId.CONSENT_BASIS, reason)
    return ALLOWED


def check_quiet_hours(recipient: Recipient, now: datetime, policy: SendPolicy) -> SendDecision:
    """Defer a commercial message until the recipient's local time is inside the sending window.

    SMS always has a window (the policy's, narrowed by US federal and state law); e-mail only if the policy
    gives one. With no usable time zone the window must hold in every zone of the recipient's country (see
    ``guardrails.jurisdictions.fallback_zones``); a country without a zone table blocks the send.
    """
    if not is_commercial(recipient.purpose):
        return ALLOWED
    window = _sending_window(recipient, policy)
    if window is None:
        return ALLOWED
    law, hours = window
    zones, where = _zones(recipient)
    if not zones:
        return _block(RuleId.UNKNOWN_TIME_ZONE, f"no time zone for the customer and none known for {_place(recipient)}")
    if is_inside(now, zones, hours):
        return ALLOWED
    until = next_inside(now, zones, hours)
    if until is None:
        return _block(RuleId.NO_COMMON_WINDOW, f"no hour is inside {hours} in every zone of {where}")
    return _defer(RuleId.QUIET_HOURS, f"outside the sending window {hours} ({law}) in {where}", until)


def check_frequency(recipient: Recipient, now: datetime, policy: SendPolicy) -> SendDecision:
    """Defer a commercial message while any cap is full, until enough earlier sends have left its window."""
    if not is_commercial(recipient.purpose):
        return ALLOWED
    caps: list[tuple[RuleId, str, FrequencyCap]] = [
        (RuleId.FREQUENCY_CAP, "policy", cap) for cap in policy.caps(recipient.channel)
    ]
    state_cap = legal_sms_cap(recipient.country, recipient.region) if recipient.channel is Channel.SMS else None
    if state_cap is not None:
        caps.append((RuleId.STATE_FREQUENCY_CAP, *state_cap))
    # Each cap frees up at its own instant and stays free (no new sends meanwhile): the latest one decides,
    # and on a tie the law's cap is named rather than the policy's.
    frees = [(cap.next_free(recipient.recent_sends, now), rule, law, cap) for rule, law, cap in caps]
    if not frees:
        return ALLOWED
    until, rule, law, cap = max(frees, key=lambda free: (free[0], free[1] is RuleId.STATE_FREQUENCY_CAP))
    if until <= now:
        return ALLOWED
    count = cap.sends_in_window(recipient.recent_sends, now)
    return _defer(rule, f"the cap of {cap} ({law}) is reached: {count} {recipient.channel} sent in the window", until)


BLOCKING_RULES: tuple[Rule, ...] = (check_address, check_suppression, check_consent)
DEFERRING_RULES: tuple[Rule, ...] = (check_quiet_hours, check_frequency)


def check_send(recipient: Recipient, now: datetime, policy: SendPolicy) -> SendDecision:
    """Every send-time check, cheapest first; the first that fails decides.

    Parameters
    ----------
    recipient
        The snapshot of the customer on the channel (``guardrails.repository.load_recipients``).
    now
        The moment of sending, timezone-aware.
    policy
        Caps and windows (``SendPolicy.from_settings``).

    Returns
    -------
    SendDecision
        Blocked by the first blocking rule that fails; else deferred by the first deferring rule that fails,
        with ``until`` the earliest instant at which *every* deferring rule passes (so a message deferred out of
        quiet hours does not land on a full cap); else allowed.
    """
    if now.tzinfo is None:
        raise ValueError(f"check_send needs a timezone-aware instant, not {now!r}")
    for rule in BLOCKING_RULES:
        decision = rule(recipient, now, policy)
        if not decision.allowed:
            return decision
    for rule in DEFERRING_RULES:
        decision = rule(recipient, now, policy)
        if decision.verdict is Verdict.BLOCKED:
            return decision
        if decision.verdict is Verdict.DEFERRED:
            return _settle(recipient, decision, policy)
    return ALLOWED


def _settle(recipient: Recipient, first: SendDecision, policy: SendPolicy) -> SendDecision:
    """Move ``first.until`` on until quiet hours and caps all pass at it; both only ever push it later."""
    until = first.until
    assert until is not None
    for _ in range(_MAX_ROUNDS):
        moved = False
        for rule in DEFERRING_RULES:
            decision = rule(recipient, until, policy)
            if decision.verdict is Verdict.BLOCKED:
                return decision
            if decision.verdict is Verdict.DEFERRED and decision.until is not None:
                until, moved = decision.until, True
        if not moved:
            return replace(first, until=until)
    return _block(RuleId.NO_COMMON_WINDOW, f"no instant passes both quiet hours and caps after {first.until:%Y-%m-%d}")


def _sending_window(recipient: Recipient, policy: SendPolicy) -> tuple[str, LocalWindow] | None:
    window = policy.window(recipient.channel)
    if window is None:
        return None
    legal = legal_sms_window(recipient.country, recipient.region) if recipient.channel is Channel.SMS else None
    if legal is None:
        return "policy", window
    law, hours = legal
    narrowed = window.narrowed(hours)
    return (law if narrowed == hours else f"policy, within {law}"), narrowed


def _zones(recipient: Recipient) -> tuple[tuple[ZoneInfo, ...], str]:
    """The zones to honour and a description of them for the reason text."""
    own = zone(recipient.time_zone)
    if own is not None:
        return (own,), own.key
    zones = fallback_zones(recipient.country, recipient.region)
    return zones, f"every zone of {_place(recipient)} (time zone unknown)"


def _place(recipient: Recipient) -> str:
    return " ".join(part for part in (recipient.country, recipient.region) if part) or "an unknown country"
