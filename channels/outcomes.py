"""Stored provider events become outcomes, suppressions, consent records and keyword replies.

``process_pending`` claims a batch of unprocessed ``ProviderEvent`` rows and, for each:

- links it to its ``Message``: by our ``message_key`` when the event carries it, else by the provider's
  message id (SendGrid ``sg_message_id``, Twilio ``MessageSid``);
- writes one ``Outcome`` (SendGrid processed … unsubscribe; Twilio sent, delivered, undelivered, failed;
  inbound STOP and START). The unique ``event_id`` of an outcome makes a second run a no-op, and the events
  are claimed (``processed_at`` set) in the same transaction, so each is processed once. Outcomes are a log,
  one per event in any order: a ``delivered`` before its ``processed``, or a ``click`` before its ``open``,
  is recorded as it is;
- suppresses at once — never later, since opt-outs must be honoured in minutes (reference §0.2): a hard
  bounce, a drop for a bounced, unsubscribed or spam-reporting address, a spam report, an unsubscribe, and
  Twilio's 21610 (the recipient had replied STOP to the sender);
- records an unsubscribe (SendGrid's own link or group) in the consent log as a withdrawal of what the recipient
  had granted on e-mail, as of when they clicked, as a one-click unsubscribe through Nudge is;
- for an inbound SMS, acts on its keyword (``channels.keywords``): STOP suppresses the phone for every later
  SMS, whoever it belongs to, and appends a withdrawal to the consent log of every customer with that phone
  (TCPA revoke-all, §1.2 T5–T7); START lifts that suppression and records an express opt-in; HELP changes
  nothing. Each gets its one reply (§1.2 T8, §1.3), sent through the ``SmsSender`` so it is recorded as a
  ``Message``.

An event whose message is unknown is kept, marked processed, and gets no outcome; the log says why.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from channels import repository
from channels.events import INBOUND, twilio_status_callback_url
from channels.keywords import KeywordAction, KeywordKind, SmsProgram, classify, keyword_action
from channels.ports import OutboundSms, ReceiptStatus, SendReceipt, SmsSender
from core.bulk import chunks
from core.contact import normalize_email, normalize_phone
from core.errors import BadRequest
from core.models import (
    Channel,
    Consent,
    ConsentBasis,
    ConsentPurpose,
    ConsentStatus,
    Message,
    MessageStatus,
    OutcomeKind,
    Provider,
    ProviderEvent,
    SuppressionReason,
)
from core.settings import Settings

logger = logging.getLogger(__name__)

BATCH = 500  # events per call: one transaction stays short, whatever the backlog
KEYWORD_SOURCE = "sms_keyword"  # Consent.source and Suppression.source of a keyword
REPLY_CAMPAIGN = "sms_keyword_reply"  # Message.campaign_key of a STOP/START/HELP reply
SENDGRID_SOURCE = "sendgrid_webhook"
TWILIO_SOURCE = "twilio_webhook"
OPTED_OUT = "21610"  # Twilio: "Attempt to send to unsubscribed recipient"
# Nudge sends marketing mail in one ASM group, so leaving the group is leaving all of it.
UNSUBSCRIBES = frozenset({"unsubscribe", "group_unsubscribe"})

SENDGRID_KINDS = {
    "processed": OutcomeKind.PROCESSED,
    "delivered": OutcomeKind.DELIVERED,
    "deferred": OutcomeKind.DEFERRED,
    "bounce": OutcomeKind.BOUNCE,
    "dropped": OutcomeKind.DROPPED,
    "open": OutcomeKind.OPEN,
    "click": OutcomeKind.CLICK,
    "spamreport": OutcomeKind.SPAM_REPORT,
    "unsubscribe": OutcomeKind.UNSUBSCRIBE,
    "group_unsubscribe": OutcomeKind.UNSUBSCRIBE,
}
TWILIO_KINDS = {
    "sent": OutcomeKind.SMS_SENT,
    "delivered": OutcomeKind.SMS_DELIVERED,
    "undelivered": OutcomeKind.SMS_UNDELIVERED,
    "failed": OutcomeKind.SMS_FAILED,
}
# SendGrid's drop reasons for an address already on its own suppression lists (reference §3.2).
_DROP_REASONS = {
    "bounced address": SuppressionReason.BOUNCED,
    "unsubscribed address": SuppressionReason.UNSUBSCRIBED,
    "spam reporting address": SuppressionReason.COMPLAINED,
}
# What an outcome keeps of a SendGrid event (the rest stays in the stored event).
_SENDGRID_DATA = ("url", "reason", "type", "status", "response", "attempt", "asm_group_id")
_KEYWORD_OUTCOMES = {KeywordKind.OPT_OUT: OutcomeKind.SMS_STOP, KeywordKind.OPT_IN: OutcomeKind.SMS_START}


@dataclass(slots=True)
class ProcessResult:
    """What one ``process_pending`` call did.

    Attributes
    ----------
    events : int
        Events claimed and processed (a full batch means more may be waiting).
    outcomes : int
        Outcome rows written.
    unmatched : int
        Events whose message is unknown: kept without an outcome.
    suppressed : int
        Addresses newly suppressed.
    consents : int
        Consent records appended (STOP withdrawals, START opt-ins).
    replies : int
        Keyword replies the SMS sender accepted.
    """

    events: int = 0
    outcomes: int = 0
    unmatched: int = 0
    suppressed: int = 0
    consents: int = 0
    replies: int = 0


def process_pending(
    session: Session,
    settings: Settings,
    now: datetime,
    sms_sender: SmsSender | None = None,
    *,
    program: SmsProgram | None = None,
    limit: int = BATCH,
) -> ProcessResult:
    """Process up to ``limit`` stored, unprocessed events (see the module docstring).

    Parameters
    ----------
    session : Session
        The caller's unit of work; not committed here. A rollback returns the events to the queue.
    settings : Settings
        ``public_base_url`` for the status callback of replies.
    now : datetime
        Marks the events processed and dates the replies.
    sms_sender : SmsSender, optional
        Sends the STOP/START/HELP replies; without one they are logged and not sent.
    program : SmsProgram, optional
        The brand's facts the replies quote; without it the keywords are acted on and nothing is replied.
    limit : int
        Events to take at most.

    Returns
    -------
    ProcessResult
    """
    events = repository.claim_pending_events(session, now=now, limit=limit)
    batch = _Batch(session, now, _linked_messages(session, events), program)
    for event in events:
        batch.process(event)
    batch.result.events = len(events)
    batch.result.outcomes = repository.insert_outcomes(session, batch.outcomes)
    batch.result.replies = _send_replies(session, settings, sms_sender, batch.replies, now)
    return batch.result


# --- linking events to messages -----------------------------------------------------------------------------


def _linked_messages(session: Session, events: Sequence[ProviderEvent]) -> dict[int, Message]:
    """The message of each event that has one, by event id: two queries for the whole batch."""
    by_key = repository.messages_by_key(session, [event.message_key for event in events if event.message_key])
    unkeyed = [event for event in events if event.message_key is None and event.kind != INBOUND]
    by_provider_id: dict[Provider, dict[str, Message]] = {}
    for provider in {event.provider for event in unkeyed}:
        ids = [id_ for event in unkeyed if event.provider is provider for id_ in _provider_ids(event)]
        by_provider_id[provider] = repository.messages_by_provider_id(session, provider, ids)
    linked: dict[int, Message] = {}
    for event in events:
        message = _message_of(event, by_key, by_provider_id.get(event.provider, {}))
        if message is not None:
            linked[event.id] = message
    return linked


def _provider_ids(event: ProviderEvent) -> list[str]:
    if event.provider is Provider.SENDGRID:
        # sg_message_id is the X-Message-Id the send returned, then ".filter…" and more.
        full = str(event.payload.get("sg_message_id") or "")
        return [full, full.split(".", 1)[0]] if full else []
    sid = event.payload.get("MessageSid") or event.payload.get("SmsSid")
    return [str(sid)] if sid else []


def _message_of(event: ProviderEvent, by_key: dict[str, Message], by_id: dict[str, Message]) -> Message | None:
    if event.message_key is not None:
        message = by_key.get(event.message_key)
    else:
        message = next((by_id[id_] for id_ in _provider_ids(event) if id_ in by_id), None)
    expected = Channel.EMAIL if event.provider is Provider.SENDGRID else Channel.SMS
    # A key from another channel is not this event's message: an e-mail event cannot describe a text.
    return message if message is not None and message.channel is expected else None


# --- the batch ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reply:
    event: ProviderEvent
    phone: str
    text: str
    customer_id: int | None  # whose Message the reply is recorded as; None: nobody has this phone


@dataclass
class _Batch:
    """One batch's state: the messages linked to its events and what processing them produced."""

    session: Session
    now: datetime
    messages: dict[int, Message]
    program: SmsProgram | None
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    replies: list[_Reply] = field(default_factory=list)
    result: ProcessResult = field(default_factory=ProcessResult)

    def process(self, event: ProviderEvent) -> None:
        if event.provider is Provider.SENDGRID:
            self._sendgrid(event)
        elif event.kind == INBOUND:
            self._inbound(event)
        else:
            self._twilio_status(event)

    # SendGrid

    def _sendgrid(self, event: ProviderEvent) -> None:
        message = self.messages.get(event.id)
        if reason := _email_suppression(event.kind, event.payload):
            self._suppress_email(event, message, reason)
        if event.kind in UNSUBSCRIBES and message is not None:
            self._unsubscribed(event, message)
        kind = SENDGRID_KINDS.get(event.kind)
        if kind is None:
            logger.info("sendgrid event %s: %r has no outcome; kept as received", event.id, event.kind)
        elif message is None:
            self._unmatched(event)
        else:
            self._outcome(event, message.id, kind, _occurred_at(event), _sendgrid_data(event.payload))

    def _unsubscribed(self, event: ProviderEvent, message: Message) -> None:
        """An unsubscribe through SendGrid is the recipient's opt-out as much as a one-click one: the consent log
        records it (the experiments' unsubscribe guardrail reads withdrawals), not only the suppression list."""
        owner = message.customer_id
        latest = repository.latest_consents(self.session, [owner], Channel.EMAIL)
        at, proof = _occurred_at(event), f"sendgrid {event.kind} event {event.event_id}"
        withdrawn = [
            _consent(owner, ConsentStatus.WITHDRAWN, purpose, basis, at, proof, Channel.EMAIL, SENDGRID_SOURCE)
            for purpose, basis in _granted(latest, owner)
        ]
        self._add_consents(withdrawn)

    def _suppress_email(self, event: ProviderEvent, message: Message | None, reason: SuppressionReason) -> None:
        address = _email(event.payload.get("email")) or (message.address if message else None)
        if address is None:
            logger.warning("sendgrid event %s (%s) names no address to suppress", event.id, event.kind)
            return
        self._suppress(Channel.EMAIL, address, reason, SENDGRID_SOURCE)

    # Twilio status callbacks

    def _twilio_status(self, event: ProviderEvent) -> None:
        message = self.messages.get(event.id)
        error_code = str(event.payload.get("ErrorCode") or "")
        if event.kind in ("failed", "undelivered") and error_code == OPTED_OUT:
            # The recipient replied STOP to Twilio before: Twilio refuses them, so must we, for every sender.
            if address := message.address if message else _phone(event.payload.get("To")):
                self._suppress(Channel.SMS, address, SuppressionReason.STOP_KEYWORD, TWILIO_SOURCE)
            else:
                logger.warning("twilio event %s (21610) names no phone to suppress", event.id)
        kind = TWILIO_KINDS.get(event.kind)
        if kind is None:
            logger.debug("twilio status %r of event %s has no outcome", event.kind, event.id)
        elif message is None:
            self._unmatched(event)
        else:
            data = {"error_code": error_code} if error_code else {}
            self._outcome(event, message.id, kind, event.received_at, data)

    # Inbound SMS

    def _inbound(self, event: ProviderEvent) -> None:
        phone, text = _phone(event.payload.get("From")), str(event.payload.get("Body") or "")
        action = self._keyword(text)
        if action.kind is KeywordKind.OTHER:
            logger.info("inbound sms event %s is not a keyword: nothing to do", event.id)
            return
        customers = repository.customer_ids_with_phone(self.session, phone)
        latest = repository.latest_message_to(self.session, Channel.SMS, phone, excluding_campaign=REPLY_CAMPAIGN)
        proof = f"{event.payload.get('MessageSid') or event.payload.get('SmsSid')}: {text}"
        if action.kind is KeywordKind.OPT_OUT:
            self._stop(event, phone, customers, proof)
        elif action.kind is KeywordKind.OPT_IN:
            self._start(event, phone, customers, proof)
        if action.kind in _KEYWORD_OUTCOMES and latest is not None:
            self._outcome(event, latest.id, _KEYWORD_OUTCOMES[action.kind], event.received_at, {"text": text})
        if action.reply_text:
            owner = latest.customer_id if latest is not None else next(iter(customers), None)
            self.replies.append(_Reply(event, phone, action.reply_text, owner))

    def _keyword(self, text: str) -> KeywordAction:
        if self.program is None:
            # Without the brand's facts no reply can be written; the opt-out or opt-in still counts.
            return KeywordAction(classify(text), None)
        return keyword_action(text, self.program)

    def _stop(self, event: ProviderEvent, phone: str, customers: list[int], proof: str) -> None:
        self._suppress(Channel.SMS, phone, SuppressionReason.STOP_KEYWORD, KEYWORD_SOURCE)
        latest = repository.latest_consents(self.session, customers, Channel.SMS)
        self._add_consents(
            [
                _consent(owner, ConsentStatus.WITHDRAWN, purpose, basis, event.received_at, proof)
                for owner in customers
                for purpose, basis in _granted(latest, owner)
            ]
        )

    def _start(self, event: ProviderEvent, phone: str, customers: list[int], proof: str) -> None:
        repository.unsuppress(self.session, Channel.SMS, phone, SuppressionReason.STOP_KEYWORD)
        latest = repository.latest_consents(self.session, customers, Channel.SMS)
        self._add_consents(
            [
                _consent(owner, ConsentStatus.GRANTED, purpose, ConsentBasis.EXPRESS, event.received_at, proof)
                for owner in customers
                for purpose in _withdrawn_by_keyword(latest, owner)
            ]
        )

    # Effects

    def _outcome(
        self, event: ProviderEvent, message_id: int, kind: OutcomeKind, occurred_at: datetime, data: dict[str, Any]
    ) -> None:
        row = {
            "message_id": message_id,
            "event_id": event.id,
            "event_received_at": event.received_at,  # with the id, the key of a partitioned table
            "kind": kind,
            "occurred_at": occurred_at,
            "data": data,
        }
        self.outcomes.append(row)

    def _unmatched(self, event: ProviderEvent) -> None:
        why = f"no message has key {event.message_key!r}" if event.message_key else "it names no message of ours"
        logger.info("%s event %s (%s): %s; kept without an outcome", event.provider, event.id, event.kind, why)
        self.result.unmatched += 1

    def _suppress(self, channel: Channel, address: str, reason: SuppressionReason, source: str) -> None:
        if repository.suppress(self.session, channel, address, reason, source=source, now=self.now):
            self.result.suppressed += 1

    def _add_consents(self, consents: list[Consent]) -> None:
        repository.add_consents(self.session, consents)
        self.result.consents += len(consents)


# --- event details ------------------------------------------------------------------------------------------


def _email_suppression(kind: str, payload: dict[str, Any]) -> SuppressionReason | None:
    """Why a SendGrid event suppresses its address, if it does (reference §3.3)."""
    if kind == "bounce":
        # type "blocked" is a soft bounce (the receiving server refused for now): no suppression.
        return SuppressionReason.BOUNCED if payload.get("type") == "bounce" else None
    if kind == "dropped":
        reason = str(payload.get("reason") or "").lower()
        return next((value for text, value in _DROP_REASONS.items() if text in reason), None)
    if kind == "spamreport":
        return SuppressionReason.COMPLAINED
    if kind in UNSUBSCRIBES:
        return SuppressionReason.UNSUBSCRIBED
    return None


def _sendgrid_data(payload: dict[str, Any]) -> dict[str, Any]:
    data = {name: payload[name] for name in _SENDGRID_DATA if payload.get(name) is not None}
    if "sg_machine_open" in payload:
        # Privacy proxies (Apple MPP) open every message: A/B analysis excludes these opens.
        data["machine_open"] = bool(payload["sg_machine_open"])
    return data


def _occurred_at(event: ProviderEvent) -> datetime:
    timestamp = event.payload.get("timestamp")
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool) and timestamp > 0:
        return datetime.fromtimestamp(timestamp, UTC)
    return event.received_at


def _email(value: Any) -> str | None:
    try:
        return normalize_email(str(value)) if value else None
    except BadRequest:
        return None


def _phone(value: Any) -> str:
    # Twilio sends E.164; anything else is kept as sent, so the suppression still matches what Twilio sends.
    text = str(value or "").strip()
    try:
        return normalize_phone(text)
    except BadRequest:
        return text


def _granted(
    latest: dict[tuple[int, ConsentPurpose], Consent], owner: int
) -> list[tuple[ConsentPurpose, ConsentBasis]]:
    """The purposes to withdraw for a STOP: every one currently granted; with none, marketing, as the record
    that this person said STOP (a withdrawal carries the basis of the consent it withdraws)."""
    granted = [
        (purpose, consent.basis)
        for (customer, purpose), consent in latest.items()
        if customer == owner and consent.status is ConsentStatus.GRANTED
    ]
    return granted or [(ConsentPurpose.MARKETING, ConsentBasis.EXPRESS)]


def _withdrawn_by_keyword(latest: dict[tuple[int, ConsentPurpose], Consent], owner: int) -> list[ConsentPurpose]:
    """The purposes a START restores: those a STOP withdrew; with none, marketing (a START is an opt-in)."""
    withdrawn = [
        purpose
        for (customer, purpose), consent in latest.items()
        if customer == owner and consent.status is ConsentStatus.WITHDRAWN and consent.source == KEYWORD_SOURCE
    ]
    return withdrawn or [ConsentPurpose.MARKETING]


def _consent(
    owner: int,
    status: ConsentStatus,
    purpose: ConsentPurpose,
    basis: ConsentBasis,
    recorded_at: datetime,
    proof: str,
    channel: Channel = Channel.SMS,
    source: str = KEYWORD_SOURCE,
) -> Consent:
    return Consent(
        customer_id=owner,
        channel=channel,
        status=status,
        purpose=purpose,
        basis=basis,
        source=source,
        recorded_at=recorded_at,
        proof=proof,
    )


# --- keyword replies ----------------------------------------------------------------------------------------


def _send_replies(
    session: Session, settings: Settings, sender: SmsSender | None, replies: list[_Reply], now: datetime
) -> int:
    """Send each reply once, recorded as a ``Message`` keyed by its inbound event; the number accepted."""
    if not replies:
        return 0
    if sender is None:
        logger.warning("no SMS sender: %d keyword replies not sent", len(replies))
        return 0
    outbound = [
        sms for reply in replies if (sms := _reply_message(session, settings, sender.provider, reply)) is not None
    ]
    accepted = 0
    for part in chunks(outbound, sender.max_batch):
        receipts = sender.send_batch(part)
        accepted += sum(_record_receipt(session, receipt, now) for receipt in receipts)
    return accepted


def _reply_message(session: Session, settings: Settings, provider: Provider, reply: _Reply) -> OutboundSms | None:
    """The reply to send, after writing its ``Message``; ``None`` if one was written for this event before."""
    key = "reply-" + hashlib.sha256(f"{reply.event.provider}:{reply.event.event_id}".encode()).hexdigest()[:32]
    if reply.customer_id is None:
        logger.info("keyword reply %s goes to %s, whom no customer has: not recorded as a message", key, reply.phone)
    else:
        row = _reply_row(key, provider, reply)
        if repository.insert_message(session, row) is None:
            return None
    callback = twilio_status_callback_url(settings.public_base_url, key) if provider is Provider.TWILIO else None
    return OutboundSms(message_key=key, to_phone=reply.phone, body=reply.text, status_callback_url=callback)


def _reply_row(key: str, provider: Provider, reply: _Reply) -> dict[str, Any]:
    return {
        "message_key": key,
        # One reply per inbound event, whoever processes it and however often.
        "idempotency_key": f"{REPLY_CAMPAIGN}:{reply.event.provider}:{reply.event.event_id}",
        "campaign_key": REPLY_CAMPAIGN,
        "customer_id": reply.customer_id,
        "channel": Channel.SMS,
        "address": reply.phone,
        "provider": provider,
        "status": MessageStatus.PENDING,
        "attempts": 0,
    }


def _record_receipt(session: Session, receipt: SendReceipt, now: datetime) -> bool:
    message = repository.messages_by_key(session, [receipt.message_key]).get(receipt.message_key)
    accepted = receipt.status is ReceiptStatus.ACCEPTED
    if not accepted:
        logger.warning("keyword reply %s not sent: %s %s", receipt.message_key, receipt.status, receipt.error)
    if message is not None:
        message.attempts += 1
        message.provider_message_id = receipt.provider_message_id
        message.error = receipt.error
        if accepted:
            message.status, message.sent_at = MessageStatus.SENT, now
        elif receipt.status is ReceiptStatus.REJECTED:
            message.status = MessageStatus.REJECTED
    return accepted
