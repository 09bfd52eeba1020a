"""The local outbox: the embedded default's e-mail and SMS senders, which send nothing and keep everything.

Each message handed to ``OutboxEmailSender`` or ``OutboxSmsSender`` becomes an ``OutboxMessage`` row linked
to its ``Message`` (found by ``message_key``), so the UI, the CLI (``nudge outbox``) and the demo can show
exactly what would have gone out. The receipt is ``ACCEPTED`` with ``provider_message_id`` ``outbox-<id>``.

Storing is idempotent, as a provider call must be for a retried task: a message stored before (the
``message_id`` column is unique) keeps its row and its receipt names that row again. A ``message_key`` with no
``Message`` row, or one of the other channel, is ``REJECTED``: the send path writes the ``Message`` first, so
this is a bug in the caller, and a retry would not fix it.

A batch costs two queries and one insert, whatever its size up to ``max_batch``: one query finds the
batch's messages and any rows already stored for them, the insert adds the rest (``ON CONFLICT DO NOTHING``,
so a concurrent worker storing the same message loses quietly), and one query fetches the ids the insert
did not return — in the race, and only then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from channels.ports import OutboundEmail, OutboundSms, ReceiptStatus, SendReceipt
from core.bulk import among, chunks, insert_for
from core.clock import utcnow
from core.errors import NotFound
from core.models import Channel, Message, OutboxMessage, Provider

MAX_BATCH = 1000
PROVIDER_ID_PREFIX = "outbox-"
UNKNOWN_MESSAGE = "unknown_message"
WRONG_CHANNEL = "wrong_channel"


class OutboxEmailSender:
    """``EmailSender`` for the embedded default: keeps each e-mail in the outbox.

    Parameters
    ----------
    session : Session
        The caller's unit of work; rows are flushed, never committed.
    """

    provider = Provider.OUTBOX
    max_batch = MAX_BATCH

    def __init__(self, session: Session) -> None:
        self.session = session

    def send_batch(self, messages: Sequence[OutboundEmail]) -> list[SendReceipt]:
        """Store ``messages``; one receipt per message, in order (see the module docstring)."""
        return _store(self.session, Channel.EMAIL, [(email.message_key, _email_row(email)) for email in messages])


class OutboxSmsSender:
    """``SmsSender`` for the embedded default: keeps each text in the outbox.

    Parameters
    ----------
    session : Session
        The caller's unit of work; rows are flushed, never committed.
    """

    provider = Provider.OUTBOX
    max_batch = MAX_BATCH

    def __init__(self, session: Session) -> None:
        self.session = session

    def send_batch(self, messages: Sequence[OutboundSms]) -> list[SendReceipt]:
        """Store ``messages``; one receipt per message, in order (see the module docstring)."""
        return _store(self.session, Channel.SMS, [(sms.message_key, _sms_row(sms)) for sms in messages])


def _email_row(email: OutboundEmail) -> dict[str, Any]:
    # The outbox has no columns for the display names; From and To headers keep them as the e-mail would.
    headers = {"From": formataddr((email.from_name, email.from_address))}
    if email.to_name:
        headers["To"] = formataddr((email.to_name, email.to_address))
    return {
        "to_address": email.to_address,
        "from_address": email.from_address,
        "subject": email.subject,
        "body_text": email.body_text,
        "body_html": email.body_html,
        "sms_text": None,
        "headers": {**headers, **email.headers},
    }


def _sms_row(sms: OutboundSms) -> dict[str, Any]:
    return {
        "to_address": sms.to_phone,
        "from_address": None,
        "subject": None,
        "body_text": None,
        "body_html": None,
        "sms_text": sms.body,
        "headers": {},
    }


@dataclass(frozen=True, slots=True)
class _Known:
    """A batch message's ``Message`` row, and its outbox row if it has one already."""

    message_id: int
    channel: Channel
    outbox_id: int | None


def _store(session: Session, channel: Channel, batch: list[tuple[str, dict[str, Any]]]) -> list[SendReceipt]:
    stored: dict[str, int] = {}
    refused: dict[str, SendReceipt] = {}
    for part in chunks(batch, MAX_BATCH):
        known = _lookup(session, [key for key, _ in part])
        refused.update(_refusals(part, known, channel))
        accepted = [(key, row) for key, row in part if key not in refused]
        stored.update(_insert_new(session, channel, accepted, known))
    return [refused.get(key) or _accepted(key, stored[key]) for key, _ in batch]


def _lookup(session: Session, keys: Sequence[str]) -> dict[str, _Known]:
    query = (
        select(Message.message_key, Message.id, Message.channel, OutboxMessage.id)
        .outerjoin(OutboxMessage, OutboxMessage.message_id == Message.id)
        .where(among(Message.message_key, sorted(set(keys))))
    )
    return {key: _Known(message_id, chan, outbox_id) for key, message_id, chan, outbox_id in session.execute(query)}


def _refusals(
    batch: Iterable[tuple[str, dict[str, Any]]], known: dict[str, _Known], channel: Channel
) -> dict[str, SendReceipt]:
    refused: dict[str, SendReceipt] = {}
    for key, _ in batch:
        if key not in known:
            error = f"no message with key {key!r}: the Message row must be written before the sender is called"
            refused[key] = _rejected(key, error, UNKNOWN_MESSAGE)
        elif known[key].channel is not channel:
            error = f"message {key!r} is a {known[key].channel} message, not {channel}"
            refused[key] = _rejected(key, error, WRONG_CHANNEL)
    return refused


def _insert_new(
    session: Session, channel: Channel, batch: list[tuple[str, dict[str, Any]]], known: dict[str, _Known]
) -> dict[str, int]:
    """Outbox ids by message key: existing rows as they are, new rows inserted (the first of repeated keys)."""
    ids = {key: entry.outbox_id for key, entry in known.items() if entry.outbox_id is not None}
    new: dict[int, tuple[str, dict[str, Any]]] = {}
    for key, row in batch:
        if key not in ids:
            new.setdefault(known[key].message_id, (key, row))
    if not new:
        return ids
    now = utcnow()
    rows = [{**row, "message_id": id_, "channel": channel, "created_at": now} for id_, (_, row) in new.items()]
    statement = insert_for(session)(OutboxMessage).values(rows).on_conflict_do_nothing(index_elements=["message_id"])
    inserted = dict(session.execute(statement.returning(OutboxMessage.message_id, OutboxMessage.id)).all())
    raced = [message_id for message_id in new if message_id not in inserted]
    if raced:  # another worker stored these between our lookup and our insert: its rows stand
        inserted.update(session.execute(_outbox_ids(raced)).all())
    return ids | {key: inserted[message_id] for message_id, (key, _) in new.items()}


def _outbox_ids(message_ids: Sequence[int]) -> Select[int, int]:
    return select(OutboxMessage.message_id, OutboxMessage.id).where(among(OutboxMessage.message_id, message_ids))


def _accepted(key: str, outbox_id: int) -> SendReceipt:
    return SendReceipt(key, ReceiptStatus.ACCEPTED, provider_message_id=f"{PROVIDER_ID_PREFIX}{outbox_id}")


def _rejected(key: str, error: str, code: str) -> SendReceipt:
    return SendReceipt(key, ReceiptStatus.REJECTED, error=error, error_code=code)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox message with what the UI and the CLI show beside it.

    Attributes
    ----------
    id : int
        The outbox row's id (``provider_message_id`` is ``outbox-<id>``).
    message_key, campaign_key, variant : str
        From the ``Message`` it belongs to.
    channel : Channel
    to_address, from_address : str
        The recipient (e-mail or E.164 phone) and, for an e-mail, the sender.
    subject, body_text, body_html : str, optional
        The e-mail (``None`` for a text).
    sms_text : str, optional
        The text (``None`` for an e-mail).
    headers : dict of str to str
        The e-mail's headers, ``From`` and ``To`` with display names included.
    created_at : datetime
        When it was stored, i.e. "sent".
    """

    id: int
    message_key: str
    campaign_key: str
    variant: str | None
    channel: Channel
    to_address: str
    from_address: str | None
    subject: str | None
    body_text: str | None
    body_html: str | None
    sms_text: str | None
    headers: dict[str, Any]
    created_at: datetime

    @property
    def summary(self) -> str:
        """The subject of an e-mail, the text of an SMS."""
        return (self.subject if self.channel is Channel.EMAIL else self.sms_text) or ""


def list_outbox(
    session: Session, *, channel: Channel | None = None, campaign_key: str | None = None, limit: int = 50
) -> list[OutboxEntry]:
    """The newest outbox messages first, optionally of one channel or one campaign.

    Parameters
    ----------
    session : Session
    channel : Channel, optional
        Only e-mails or only texts.
    campaign_key : str, optional
        Only this campaign's messages.
    limit : int
        At most this many.
    """
    query = _entries().order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit)
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    if campaign_key is not None:
        query = query.where(Message.campaign_key == campaign_key)
    return [_entry(outbox, message) for outbox, message in session.execute(query)]


def get_outbox_message(session: Session, outbox_id: int) -> OutboxEntry:
    """One outbox message by its id; ``NotFound`` if there is none."""
    row = session.execute(_entries().where(OutboxMessage.id == outbox_id)).first()
    if row is None:
        raise NotFound(f"no outbox message {outbox_id}")
    return _entry(*row)


def _entries() -> Select[OutboxMessage, Message]:
    return select(OutboxMessage, Message).join(Message, Message.id == OutboxMessage.message_id)


def _entry(outbox: OutboxMessage, message: Message) -> OutboxEntry:
    return OutboxEntry(
        id=outbox.id,
        message_key=message.message_key,
        campaign_key=message.campaign_key,
        variant=message.variant,
        channel=outbox.channel,
        to_address=outbox.to_address,
        from_address=outbox.from_address,
        subject=outbox.subject,
        body_text=outbox.body_text,
        body_html=outbox.body_html,
        sms_text=outbox.sms_text,
        headers=dict(outbox.headers),
        created_at=outbox.created_at,
    )
