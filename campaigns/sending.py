"""The send pipeline: an approved, scheduled campaign handed to the providers, batch by batch, at most once each.

The Celery tasks (``workers``) call three functions, each with its own session; the task commits:

- ``start_sending``: a due scheduled campaign moves to ``sending`` and its treatment customers without a
  message come back in batches of ``send_batch_size``;
- ``send_batch``: one batch through the send-time checks, rendering, the final guardrail re-check and the
  sender port, every outcome recorded on a ``Message`` row;
- ``finish_if_done``: ``sending`` → ``sent`` once nobody is left to hand over.

The per-recipient core (``SendPlan`` in, ``Prepared`` out, then ``write_ahead``, ``hand_over`` and
``record``) is shared with the abandoned-cart trigger (``campaigns.triggers``): one way to send.

**Exactly once.** Neither SendGrid nor Twilio takes an idempotency key (compliance reference §0.6, §5), so
Nudge's own is the ``Message`` row: its unique ``idempotency_key`` (``<campaign>:<customer>:<channel>``, or
``<campaign>:cart:<cart>:<channel>`` for a trigger) is inserted, and **committed**, before the provider is
called. A flush is not enough: a crash after the provider call would roll the row back and a retried task
would send again. So ``send_batch`` commits twice — the one place a service does, because the provider call
is a side effect no rollback undoes:

1. *write-ahead*: new rows (``PENDING``, or ``BLOCKED`` with the rule ids) inserted with ``ON CONFLICT DO
   NOTHING``; only the rows this call inserted are sent, so two workers given the same batch send each
   message once. A row whose last attempt was refused for a transient reason (``error`` starting
   ``retry:``) is *claimed* by a conditional update clearing the mark, in the same commit;
2. the provider call, then the receipts recorded and committed before ``ServiceUnavailable`` is raised
   for the ones to retry (the task's rollback must not lose the others' ``SENT``).

An existing row means the message was handed over or is in flight: this path never sends it again. The one
exception is a ``PENDING`` row marked ``retry:`` — nothing was sent. A row left ``PENDING`` without the mark
(a worker killed between the two commits) may or may not have gone out: ``campaigns.reconcile`` settles it
from the provider's own record — ``SENT``, or marked for retry when the provider reports no such message —
and until then it holds its campaign in ``sending``.

A deferred recipient (quiet hours, a full cap) gets no row: it comes back in ``BatchResult.deferred`` by
the instant it may go, and the task schedules it again then.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import String, cast, exists, literal, or_, select, update
from sqlalchemy.orm import Session

from campaigns import lifecycle
from channels.events import twilio_status_callback_url
from channels.factory import email_sender as configured_email_sender
from channels.factory import sms_sender as configured_sms_sender
from channels.ports import EmailSender, OutboundEmail, OutboundSms, ReceiptStatus, SendReceipt, SmsSender
from channels.rendering import (
    EmailDraftCopy,
    EmailTemplate,
    RecipientValues,
    RenderError,
    SmsDraftCopy,
    SmsTemplate,
    first_name_or_neutral,
)
from channels.repository import suppress
from channels.tokens import message_token, signing_key, unsubscribe_url
from core import ledger
from core.bulk import among, chunks, insert_for, table_of
from core.errors import Conflict, NotFound, ServiceUnavailable
from core.models import (
    Assignment,
    Campaign,
    CampaignState,
    CampaignVariant,
    Channel,
    ConsentPurpose,
    Customer,
    Message,
    MessageStatus,
    Provider,
    SuppressionReason,
)
from core.settings import Settings
from experiments.assignment import GLOBAL_HOLDOUT, HOLDOUT
from guardrails.context import BrandRules, CatalogOffer, CheckContext, RecipientData
from guardrails.context import Message as CheckedMessage
from guardrails.repository import check_context, load_recipients
from guardrails.sendtime import SendPolicy, Verdict, check_send
from guardrails.service import check

logger = logging.getLogger(__name__)

ACTOR = "system:sending"
TREATMENT = "treatment"  # an arm that names no variant: the segment's one approved variant
NOT_SENT_ARMS = (HOLDOUT, GLOBAL_HOLDOUT)  # measured, never messaged
RETRY_MARK = "retry:"  # Message.error of a PENDING row whose last provider call sent nothing
NO_APPROVED_VARIANT = "campaign.no_approved_variant"
RENDER_FAILED = "render.failed"


@dataclass
class BatchResult:
    """What one batch came to.

    Attributes
    ----------
    sent : int
        Accepted by the provider now.
    blocked : dict of rule id to count
        Stopped before the provider, by rule (send-time check, guardrail re-check, no approved variant);
        each has a ``BLOCKED`` row and is never retried.
    deferred : dict of ISO instant to customer ids
        Not yet allowed (quiet hours, a full cap): no row written; send them again at that instant (UTC).
    rejected : int
        Refused for good by the provider (recorded, never retried).
    retry : int
        Refused for a transient reason: left ``PENDING`` and marked, sent again by the task's retry.
    skipped : int
        Customers with nothing to do: a message exists already (sent, final or in flight), or not in treatment.
    retry_after : float
        The longest wait the provider asked for with a transient refusal (seconds; 0 when it named none).
    """

    sent: int = 0
    blocked: dict[str, int] = field(default_factory=dict)
    deferred: dict[str, list[int]] = field(default_factory=dict)
    rejected: int = 0
    retry: int = 0
    skipped: int = 0
    retry_after: float = 0.0


# --- the campaign pipeline --------------------------------------------------------------------------------------


def due_campaigns(session: Session, now: datetime) -> list[int]:
    """Ids of the scheduled campaigns whose time has come (``scheduled_at`` ≤ ``now``), oldest first."""
    query = select(Campaign.id).where(Campaign.state == CampaignState.SCHEDULED, Campaign.scheduled_at <= now)
    return list(session.scalars(query.order_by(Campaign.scheduled_at, Campaign.id)))


def start_sending(session: Session, settings: Settings, campaign_id: int, now: datetime) -> list[list[int]]:
    """Start a due campaign and return its treatment customers still without a message, in batches.

    Parameters
    ----------
    session : Session
        The task's unit of work (not committed here).
    settings : Settings
        ``send_batch_size``.
    campaign_id : int
        A campaign in ``scheduled`` whose ``scheduled_at`` has passed, or already ``sending`` (a redelivered
        task: the remaining customers come back, nothing moves).
    now : datetime
        The current time.

    Returns
    -------
    list of list of int
        Customer ids (not in the holdout, with no ``Message`` for the campaign), ascending, in batches.

    Raises
    ------
    NotFound
        No such campaign.
    Conflict
        The campaign is in another state, or not due yet.
    """
    campaign = _campaign(session, campaign_id, lock=True)
    if campaign.state is CampaignState.SCHEDULED:
        if campaign.scheduled_at is None or campaign.scheduled_at > now:
            raise Conflict(f"campaign {campaign.key} is scheduled for {campaign.scheduled_at}, not yet due at {now}")
        lifecycle.transition(session, campaign, lifecycle.Action.START, actor=ACTOR, now=now)
    elif campaign.state is not CampaignState.SENDING:
        raise Conflict(f"campaign {campaign.key} is {campaign.state}: only a scheduled campaign starts sending")
    waiting = list(session.scalars(_unsent_customers(campaign).order_by(Assignment.customer_id)))
    return [list(batch) for batch in chunks(waiting, settings.send_batch_size)]


def send_batch(
    session: Session,
    settings: Settings,
    campaign_id: int,
    customer_ids: Sequence[int],
    now: datetime,
    *,
    email_sender: EmailSender | None = None,
    sms_sender: SmsSender | None = None,
) -> BatchResult:
    """Send one batch of a campaign in ``sending``; commits before and after the provider call (module docstring).

    Parameters
    ----------
    session : Session
        The task's session. Committed twice here; the task commits what follows.
    settings : Settings
        Send policy, providers, public URL, SMS price.
    campaign_id : int
    customer_ids : sequence of int
        Customers of the campaign; holdout customers and those without an assignment are skipped.
    now : datetime
        The moment of sending (checks, ``sent_at``).
    email_sender, sms_sender : optional
        The senders; by default the configured ones (``channels.factory``).

    Returns
    -------
    BatchResult

    Raises
    ------
    Conflict
        The campaign is not ``sending`` (cancelled meanwhile: nothing more goes out).
    ServiceUnavailable
        Some messages got a transient refusal: they are recorded ``PENDING`` and marked, everything else is
        committed; the task retries the batch and only those are sent again.
    """
    campaign = _campaign(session, campaign_id)
    if campaign.state is not CampaignState.SENDING:
        raise Conflict(f"campaign {campaign.key} is {campaign.state}, not sending: the batch is not sent")
    sender = _sender(settings, session, campaign.channel, email_sender, sms_sender)
    kit = SendKit.load(session, settings, campaign.channel, sender.provider, now=now)
    plans, skipped = _campaign_plans(session, campaign, customer_ids, kit)
    result = deliver(session, kit, sender, plans, campaign_key=campaign.key)
    result.skipped += skipped
    raise_for_retry(result, f"campaign {campaign.key}")
    return result


def finish_if_done(session: Session, campaign_id: int, now: datetime) -> bool:
    """Move a ``sending`` campaign to ``sent`` when no treatment customer is left to hand over.

    Left to hand over: no ``Message`` yet (not sent, or deferred — a deferred customer has no row), or a
    ``PENDING`` row: marked for retry, or in flight (a live worker's, or one ``campaigns.reconcile`` settles).

    Returns
    -------
    bool
        Whether the campaign was finished now.
    """
    campaign = _campaign(session, campaign_id, lock=True)
    if campaign.state is not CampaignState.SENDING:
        return False
    if session.scalar(select(exists(_outstanding(campaign)))):  # stops at the first one left
        return False
    lifecycle.transition(session, campaign, lifecycle.Action.FINISH, actor=ACTOR, now=now)
    return True


def unsettled(session: Session, campaign_key: str) -> list[str]:
    """Message keys of the campaign's rows ``PENDING`` without a retry mark: in flight, or handed to the provider
    by a worker that died before recording the answer, until ``campaigns.reconcile`` settles them."""
    query = select(Message.message_key).where(
        Message.campaign_key == campaign_key, Message.status == MessageStatus.PENDING, _not_marked()
    )
    return list(session.scalars(query.order_by(Message.id)))


def _campaign(session: Session, campaign_id: int, *, lock: bool = False) -> Campaign:
    query = select(Campaign).where(Campaign.id == campaign_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # two beat ticks must not start (or finish) one campaign twice
    campaign = session.scalars(query).first()
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


def _unsent_customers(campaign: Campaign) -> Any:
    # By the unique idempotency key: one index probe per customer, a plan that does not depend on statistics
    # (a campaign's messages grow by thousands while it sends, faster than PostgreSQL re-analyses the table).
    key = literal(f"{campaign.key}:") + cast(Assignment.customer_id, String) + literal(f":{campaign.channel.value}")
    sent = select(Message.id).where(Message.idempotency_key == key)
    return select(Assignment.customer_id).where(
        Assignment.campaign_id == campaign.id, Assignment.arm.not_in(NOT_SENT_ARMS), ~exists(sent)
    )


def _outstanding(campaign: Campaign) -> Any:
    retrying = select(Message.id).where(
        Message.campaign_key == campaign.key,
        Message.customer_id == Assignment.customer_id,
        Message.channel == campaign.channel,
        Message.status == MessageStatus.PENDING,
    )
    return _unsent_customers(campaign).union_all(
        select(Assignment.customer_id).where(
            Assignment.campaign_id == campaign.id, Assignment.arm.not_in(NOT_SENT_ARMS), exists(retrying)
        )
    )


def campaign_idempotency_key(campaign_key: str, customer_id: int, channel: Channel) -> str:
    """One message per campaign, customer and channel."""
    return f"{campaign_key}:{customer_id}:{channel.value}"


def _campaign_plans(
    session: Session, campaign: Campaign, customer_ids: Sequence[int], kit: SendKit
) -> tuple[list[SendPlan], int]:
    """A plan per treatment customer still to send; and how many were skipped (holdout, unassigned, done)."""
    ids = sorted(set(customer_ids))
    arms = _arms(session, campaign.id, ids)
    keys = {customer: campaign_idempotency_key(campaign.key, customer, campaign.channel) for customer in arms}
    existing = existing_messages(session, list(keys.values()))
    templates = TemplateCache(kit, campaign.key, _approved_variants(session, campaign))
    plans = []
    for customer, (segment, arm) in arms.items():
        previous = existing.get(keys[customer])
        if previous is not None and not is_marked_for_retry(previous):
            continue
        template = templates.get(segment, arm)
        plans.append(SendPlan(customer, keys[customer], template, previous))
    return plans, len(ids) - len(plans)


def _arms(session: Session, campaign_id: int, customer_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """(segment, arm) of the batch's customers outside the holdout, by customer."""
    arms: dict[int, tuple[str, str]] = {}
    for chunk in chunks(customer_ids):
        query = select(Assignment.customer_id, Assignment.segment, Assignment.arm).where(
            Assignment.campaign_id == campaign_id,
            Assignment.arm.not_in(NOT_SENT_ARMS),
            among(Assignment.customer_id, chunk),
        )
        arms.update((customer, (segment, arm)) for customer, segment, arm in session.execute(query))
    return dict(sorted(arms.items()))


def _approved_variants(session: Session, campaign: Campaign) -> list[CampaignVariant]:
    query = select(CampaignVariant).where(
        CampaignVariant.campaign_id == campaign.id,
        CampaignVariant.channel == campaign.channel,
        CampaignVariant.approved_at.is_not(None),
        CampaignVariant.blocked.is_(False),
    )
    return list(session.scalars(query.order_by(CampaignVariant.segment, CampaignVariant.variant)))


# --- the shared per-recipient core ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendKit:
    """What every message of one batch is checked and rendered with, loaded once per batch.

    ``verdicts`` remembers the final guardrail check per ``CheckKey`` for the batch (``_rendered``)."""

    session: Session
    settings: Settings
    channel: Channel
    provider: Provider
    policy: SendPolicy
    context: CheckContext
    key: bytes
    now: datetime
    verdicts: dict[CheckKey, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(
        cls, session: Session, settings: Settings, channel: Channel, provider: Provider, *, now: datetime
    ) -> SendKit:
        return cls(
            session=session,
            settings=settings,
            channel=channel,
            provider=provider,
            policy=SendPolicy.from_settings(settings),
            context=check_context(session, settings, now=now),
            key=signing_key(settings),
            now=now,
        )


@dataclass(frozen=True, slots=True)
class Template:
    """An approved variant compiled once for a batch (``error`` set when it cannot be compiled)."""

    variant: str
    email: EmailTemplate | None = None
    sms: SmsTemplate | None = None
    offer_codes: tuple[str, ...] = ()
    error: str | None = None


class TemplateCache:
    """The approved variants of one campaign, each compiled on first use (once per variant per batch)."""

    def __init__(self, kit: SendKit, campaign_key: str, variants: Sequence[CampaignVariant]) -> None:
        self._kit, self._campaign_key = kit, campaign_key
        self._rows = {(row.segment, row.variant): row for row in variants}
        self._compiled: dict[tuple[str, str], Template] = {}

    def get(self, segment: str, arm: str) -> Template | None:
        """The template of ``arm`` in ``segment``; ``None`` when no such variant is approved and unblocked."""
        row = self._rows.get((segment, arm)) or self._treatment(segment, arm)
        if row is None:
            return None
        key = (row.segment, row.variant)
        if key not in self._compiled:
            self._compiled[key] = compile_variant(self._kit, self._campaign_key, row.variant, row.content)
        return self._compiled[key]

    def _treatment(self, segment: str, arm: str) -> CampaignVariant | None:
        # An arm that names no variant is a single-variant treatment: only an unambiguous variant may stand in.
        candidates = [row for (seg, _), row in self._rows.items() if seg == segment]
        return candidates[0] if arm == TREATMENT and len(candidates) == 1 else None


def compile_variant(kit: SendKit, campaign_key: str, variant: str, content: Mapping[str, Any]) -> Template:
    """Compile a stored draft (``CampaignVariant.content``) for ``kit``'s channel, brand and catalog."""
    codes = tuple(str(code) for code in content.get("offer_codes", ()))
    offer = kit.context.catalog.get(codes[0]) if codes else None
    brand = kit.context.brand
    url = offer_url(brand, offer)
    try:
        if kit.channel is Channel.SMS:
            copy = SmsDraftCopy(sms_text=str(content.get("sms_text", "")))
            sms = SmsTemplate.from_draft(
                copy, brand, offer, segment_price=kit.settings.sms_segment_price_usd, offer_url=url
            )
            return Template(variant, sms=sms, offer_codes=codes)
        email = EmailTemplate.from_draft(
            _email_copy(content), brand, offer, campaign_key=campaign_key, variant=variant, offer_url=url
        )
        return Template(variant, email=email, offer_codes=codes)
    except RenderError as error:
        logger.warning("campaign %s variant %s cannot be compiled: %s", campaign_key, variant, error)
        return Template(variant, offer_codes=codes, error=RENDER_FAILED)


def _email_copy(content: Mapping[str, Any]) -> EmailDraftCopy:
    return EmailDraftCopy(
        subject=str(content.get("subject", "")),
        body_text=str(content.get("body_text", "")),
        body_html=str(content.get("body_html", "")),
        preheader=str(content.get("preheader", "")),
    )


def offer_url(brand: BrandRules, offer: CatalogOffer | None) -> str | None:
    """The offer's landing link on the brand's first link domain (the only domains a message may link to)."""
    return f"https://{brand.link_domains[0]}/o/{offer.code}" if offer is not None else None


@dataclass(frozen=True, slots=True)
class SendPlan:
    """One message to try: whom, under which key, with which template (``None``: no approved variant), and
    the row already there (a ``PENDING`` row marked for retry) if any."""

    customer_id: int
    idempotency_key: str
    template: Template | None
    existing: Message | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A plan after the checks: ``blocked`` rule ids, or a ``deferred`` instant, or a rendered ``outbound``."""

    plan: SendPlan
    message_key: str
    address: str
    blocked: tuple[str, ...] = ()
    deferred: datetime | None = None
    outbound: OutboundEmail | OutboundSms | None = None
    segments: int | None = None
    cost: Decimal | None = None
    message_id: int | None = None


def prepare(
    kit: SendKit, plans: Sequence[SendPlan], *, purpose: ConsentPurpose = ConsentPurpose.MARKETING
) -> list[Prepared]:
    """Run the send-time checks on each plan, render the allowed ones and re-check what was rendered.

    Parameters
    ----------
    kit : SendKit
    plans : sequence of SendPlan
    purpose : ConsentPurpose
        What the messages are for (a cart reminder is ``cart``: a marketing opt-in covers it too).

    Returns
    -------
    list of Prepared
        One per plan, in order: nothing is written yet.
    """
    ids = [plan.customer_id for plan in plans]
    recent = recent_sends(kit.session, ids, kit.channel, kit.policy, kit.now)
    recipients = load_recipients(kit.session, ids, kit.channel, purpose=purpose, recent_sends=recent)
    people = _people(kit.session, ids)
    prepared = []
    for plan in plans:
        message_key = plan.existing.message_key if plan.existing is not None else new_message_key()
        recipient = recipients.get(plan.customer_id)
        address = (recipient.address if recipient is not None else None) or ""
        draft = Prepared(plan, message_key, address)
        if recipient is None:
            prepared.append(replace(draft, blocked=("send.no_customer",)))
            continue
        decision = check_send(recipient, kit.now, kit.policy)
        if decision.verdict is Verdict.BLOCKED:
            prepared.append(replace(draft, blocked=(decision.rule.value,)))
        elif decision.verdict is Verdict.DEFERRED:
            prepared.append(replace(draft, deferred=decision.until))
        else:
            prepared.append(_rendered(kit, draft, people.get(plan.customer_id, RecipientData())))
    return prepared


CheckKey = tuple[str, str, str | None, str | None]
"""What a rendered message's guardrail verdict can depend on, within one batch: the variant, the name as
rendered, and the recipient's country and region (jurisdiction rules). Everything else a rendering holds for
one recipient and not another is Nudge's own: the unsubscribe and status-callback links on the brand's own
origin (checked as links, whatever their token) and the message key in the headers."""


def _rendered(kit: SendKit, draft: Prepared, person: RecipientData) -> Prepared:
    """Render an allowed plan and re-check the result; a block or a render error blocks it.

    The re-check runs once per ``CheckKey`` in a batch, not once per recipient: recipients who share a
    variant, a first name and a jurisdiction get renderings that differ only in Nudge's own links, so their
    verdict is the same. Real audiences repeat first names, which makes this the largest saving of a send."""
    template = draft.plan.template
    if template is None:
        return replace(draft, blocked=(NO_APPROVED_VARIANT,))
    if template.error is not None:
        return replace(draft, blocked=(template.error,))
    try:
        rendered = _render(kit, template, person, draft.message_key)
    except RenderError as error:
        logger.warning("message %s cannot be rendered: %s", draft.message_key, error)
        return replace(draft, blocked=(RENDER_FAILED,))
    outbound, segments, cost, checked = rendered
    key = (template.variant, first_name_or_neutral(person.first_name), person.country, person.region)
    if (blocking := kit.verdicts.get(key)) is None:
        report = check(checked, replace(kit.context, recipient=person))
        blocking = kit.verdicts[key] = tuple(dict.fromkeys(finding.rule for finding in report.blocking()))
    if blocking:
        return replace(draft, blocked=blocking)
    return replace(draft, outbound=outbound, segments=segments, cost=cost)


def _render(
    kit: SendKit, template: Template, person: RecipientData, message_key: str
) -> tuple[OutboundEmail | OutboundSms, int | None, Decimal | None, CheckedMessage]:
    if template.sms is not None:
        callback = twilio_status_callback_url(kit.settings.public_base_url, message_key)
        values = RecipientValues(first_name=person.first_name, phone=person.phone)
        sms = template.sms.render(values, message_key, status_callback_url=callback)
        checked = CheckedMessage(
            Channel.SMS, sms_text=sms.message.body, offer_codes=template.offer_codes, rendered=True
        )
        return sms.message, sms.segments, sms.cost, checked
    assert template.email is not None
    link = unsubscribe_url(kit.settings, message_token(kit.key, message_key, Channel.EMAIL))
    email = template.email.render(
        RecipientValues(first_name=person.first_name, email=person.email, unsubscribe_url=link), message_key
    )
    checked = CheckedMessage(
        Channel.EMAIL,
        subject=email.subject,
        body_text=email.body_text,
        body_html=email.body_html,  # the preheader is inside it: checked once, not twice
        offer_codes=template.offer_codes,
        rendered=True,
        from_name=email.from_name,
        from_address=email.from_address,
        headers=email.headers,
    )
    return email, None, None, checked


def _people(session: Session, ids: Sequence[int]) -> dict[int, RecipientData]:
    """What the renderer and the re-check know of each recipient: their own data only."""
    people = {}
    for chunk in chunks(list(dict.fromkeys(ids))):
        query = select(
            Customer.id, Customer.email, Customer.phone, Customer.first_name, Customer.country, Customer.region
        ).where(among(Customer.id, chunk))
        for row in session.execute(query):
            people[row.id] = RecipientData(row.email, row.phone, row.first_name, row.country, row.region)
    return people


def recent_sends(
    session: Session, customer_ids: Sequence[int], channel: Channel, policy: SendPolicy, now: datetime
) -> dict[int, list[datetime]]:
    """When each customer was last sent to on ``channel``, within the longest cap window (frequency caps)."""
    longest = max((cap.window for cap in policy.caps(channel)), default=timedelta(days=7))
    since = now - max(longest, timedelta(days=1))  # a state's 24 h cap (Florida) needs at least a day
    sends: dict[int, list[datetime]] = {}
    for chunk in chunks(list(dict.fromkeys(customer_ids))):
        query = select(Message.customer_id, Message.sent_at).where(
            among(Message.customer_id, chunk),
            Message.channel == channel,
            Message.status == MessageStatus.SENT,
            Message.sent_at > since,
        )
        for customer, sent_at in session.execute(query):
            if sent_at is not None:  # the filter excludes NULL; this tells the type checker
                sends.setdefault(customer, []).append(sent_at)
    return sends


def new_message_key() -> str:
    """A fresh opaque id for a message (it travels to the provider and back in webhooks)."""
    return secrets.token_urlsafe(18)


def existing_messages(session: Session, idempotency_keys: Sequence[str]) -> dict[str, Message]:
    """The rows already written for these keys, by key."""
    found: dict[str, Message] = {}
    for chunk in chunks(list(dict.fromkeys(idempotency_keys))):
        found.update(
            (row.idempotency_key, row)
            for row in session.scalars(select(Message).where(among(Message.idempotency_key, chunk)))
        )
    return found


def is_marked_for_retry(message: Message) -> bool:
    """A ``PENDING`` row whose last provider call got a transient refusal: nothing was sent, send it again."""
    return message.status is MessageStatus.PENDING and (message.error or "").startswith(RETRY_MARK)


def _not_marked() -> Any:
    return or_(Message.error.is_(None), ~Message.error.like(f"{RETRY_MARK}%"))


def deliver(
    session: Session, kit: SendKit, sender: EmailSender | SmsSender, plans: Sequence[SendPlan], *, campaign_key: str
) -> BatchResult:
    """Prepare, write ahead and commit, hand over, record: the whole send of ``plans`` (module docstring)."""
    result = BatchResult()
    written = write_ahead(session, kit, prepare(kit, plans), campaign_key=campaign_key, result=result)
    session.commit()  # the write-ahead commit: from here on a crash leaves rows that are never sent again
    hand_over(session, kit, sender, written, result)
    if result.retry:
        session.commit()  # the task rolls back on the error it retries on: the receipts must survive it
    return result


def write_ahead(
    session: Session, kit: SendKit, prepared: Sequence[Prepared], *, campaign_key: str, result: BatchResult
) -> list[Prepared]:
    """Write the rows of ``prepared`` (not committed): ``BLOCKED`` ones final, ``PENDING`` ones to send.

    New rows are inserted with ``ON CONFLICT DO NOTHING`` on the idempotency key, retry-marked rows are claimed
    by clearing the mark; deferred plans write nothing and are added to ``result.deferred``.

    Returns
    -------
    list of Prepared
        The ones this call may hand to the provider (inserted or claimed here), with their row ids.
    """
    for item in prepared:
        if item.deferred is not None:
            result.deferred.setdefault(item.deferred.isoformat(), []).append(item.plan.customer_id)
        for rule in item.blocked:
            result.blocked[rule] = result.blocked.get(rule, 0) + 1
    new = [item for item in prepared if item.deferred is None and item.plan.existing is None]
    inserted = _insert(session, kit, campaign_key, new)
    claimed = _claim_or_block(session, [item for item in prepared if item.deferred is None and item.plan.existing])
    return [
        replace(item, message_id=ids[item.plan.idempotency_key])
        for ids in (inserted, claimed)
        for item in prepared
        if item.outbound is not None and item.plan.idempotency_key in ids
    ]


def _insert(session: Session, kit: SendKit, campaign_key: str, items: Sequence[Prepared]) -> dict[str, int]:
    """Insert new rows; ids of those inserted now, by idempotency key (a row another worker wrote is not ours)."""
    if not items:
        return {}
    table = table_of(Message)
    statement = insert_for(session)(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
    # An executemany (batched into multi-row INSERTs by the driver layer): compiled once, not once per row.
    returned = session.execute(
        statement.returning(table.c.id, table.c.idempotency_key), [_row(kit, campaign_key, item) for item in items]
    )
    return {key: id_ for id_, key in returned}


def _row(kit: SendKit, campaign_key: str, item: Prepared) -> dict[str, Any]:
    template = item.plan.template
    return {
        "message_key": item.message_key,
        "idempotency_key": item.plan.idempotency_key,
        "campaign_key": campaign_key,
        "variant": template.variant if template is not None else None,
        "customer_id": item.plan.customer_id,
        "channel": kit.channel,
        "address": item.address,
        "provider": kit.provider,
        "provider_message_id": None,
        "status": MessageStatus.BLOCKED if item.blocked else MessageStatus.PENDING,
        "attempts": 0,
        "error": ",".join(item.blocked) or None,
        "segments": item.segments,
        "cost": item.cost,
        "sent_at": None,
        "created_at": kit.now,
        "updated_at": kit.now,
    }


def _claim_or_block(session: Session, items: Sequence[Prepared]) -> dict[str, int]:
    """Claim the retry-marked rows to send again (the mark cleared only if still there: one worker wins), or
    block those a check now stops; the claimed rows' ids by idempotency key."""
    claimed: dict[str, int] = {}
    for item in items:
        assert item.plan.existing is not None
        values: dict[str, Any] = {"error": None}
        if item.blocked:
            values = {"status": MessageStatus.BLOCKED, "error": ",".join(item.blocked)}
        statement = (
            update(Message)
            .where(Message.id == item.plan.existing.id, Message.status == MessageStatus.PENDING)
            .where(Message.error.like(f"{RETRY_MARK}%"))
            .values(**values)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
        if (id_ := session.scalar(statement)) is not None and not item.blocked:
            claimed[item.plan.idempotency_key] = id_
    return claimed


def hand_over(
    session: Session, kit: SendKit, sender: EmailSender | SmsSender, written: Sequence[Prepared], result: BatchResult
) -> list[tuple[Prepared, SendReceipt]]:
    """Hand the written messages to ``sender`` in its batch size, record each receipt (not committed)."""
    outcomes: list[tuple[Prepared, SendReceipt]] = []
    for chunk in chunks(list(written), sender.max_batch):
        receipts = _send(sender, [item.outbound for item in chunk if item.outbound is not None])
        outcomes.extend(zip(chunk, receipts, strict=True))
    record(session, kit, outcomes, result)
    return outcomes


def _send(sender: EmailSender | SmsSender, messages: list[Any]) -> list[SendReceipt]:
    # The channel picked the sender and rendered the matching DTO, so the pairing holds by construction.
    return sender.send_batch(messages)


def record(
    session: Session, kit: SendKit, outcomes: Iterable[tuple[Prepared, SendReceipt]], result: BatchResult
) -> None:
    """Write each receipt on its row: ``SENT``, ``REJECTED`` (an opt-out also suppressed) or marked for retry."""
    updates = []
    for item, receipt in outcomes:
        attempts = (item.plan.existing.attempts if item.plan.existing is not None else 0) + 1
        updates.append(
            {"id": item.message_id, "attempts": attempts, "updated_at": kit.now, **_receipt_values(kit, receipt)}
        )
        _count(result, receipt)
        if receipt.status is ReceiptStatus.REJECTED and receipt.opted_out and item.address:
            source = f"{kit.provider.value}:{receipt.error_code or 'opted_out'}"[:64]
            suppress(session, kit.channel, item.address, SuppressionReason.STOP_KEYWORD, source=source, now=kit.now)
    for chunk in _same_keys(updates):
        session.execute(update(Message), chunk)
    ledger.record_sends(session, kit.settings, [row["id"] for row in updates])  # once per message, in this commit


def _receipt_values(kit: SendKit, receipt: SendReceipt) -> dict[str, Any]:
    if receipt.status is ReceiptStatus.ACCEPTED:
        return {
            "status": MessageStatus.SENT,
            "provider_message_id": receipt.provider_message_id,
            "sent_at": kit.now,
            "error": None,
        }
    detail = ": ".join(part for part in (receipt.error_code, receipt.error) if part) or receipt.status.value
    if receipt.status is ReceiptStatus.REJECTED:
        return {"status": MessageStatus.REJECTED, "error": detail}
    return {"status": MessageStatus.PENDING, "error": f"{RETRY_MARK} {detail}"}


def _count(result: BatchResult, receipt: SendReceipt) -> None:
    if receipt.status is ReceiptStatus.ACCEPTED:
        result.sent += 1
    elif receipt.status is ReceiptStatus.REJECTED:
        result.rejected += 1
    else:
        result.retry += 1
        result.retry_after = max(result.retry_after, receipt.retry_after or 0.0)


def _same_keys(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    # A bulk UPDATE by primary key needs every row of one call to set the same columns.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    yield from groups.values()


def raise_for_retry(result: BatchResult, what: str) -> None:
    """Raise ``ServiceUnavailable`` when some messages are to be retried (after their rows were recorded)."""
    if result.retry:
        raise ServiceUnavailable(
            f"{what}: {result.retry} message(s) refused for now by the provider; recorded for retry",
            details={
                "sent": result.sent,
                "retry": result.retry,
                "rejected": result.rejected,
                "retry_after": result.retry_after,
            },
        )


def _sender(
    settings: Settings,
    session: Session,
    channel: Channel,
    email_sender: EmailSender | None,
    sms_sender: SmsSender | None,
) -> EmailSender | SmsSender:
    if channel is Channel.SMS:
        return sms_sender if sms_sender is not None else configured_sms_sender(settings, session)
    return email_sender if email_sender is not None else configured_email_sender(settings, session)
