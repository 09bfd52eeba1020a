"""The public unsubscribe endpoint, ``/u/{token}``: RFC 8058 one-click ``POST`` and a small preference page.

No login, by law and by design: CAN-SPAM (16 CFR 316.5) allows asking for nothing but the address and the
preferences, on a single page; CASL wants the opt-out "readily performed"; a mail client's one-click ``POST``
carries no cookie or credential at all (RFC 8058). The **signed token in the path is the credential**
(``channels.tokens``): it names the message (or customer) and channel, and cannot be forged.

- ``POST /u/{token}`` with ``List-Unsubscribe=One-Click`` (form-urlencoded or multipart), or with any other
  or no body: unsubscribes the token's channel and answers a short ``200 text/plain``. Never a redirect
  (RFC 8058 forbids it: the client would not follow it, and the opt-out would look failed).
- ``GET /u/{token}`` unsubscribes **nothing**: link scanners and preloading clients follow every GET. It
  shows the page, whose form posts back to the same URL with ``form=preferences`` and the chosen channels,
  and gets the confirmation page.

Why the form has no CSRF token: CSRF abuses a credential the browser adds by itself (a cookie). Here no
cookie is set or read; the only credential is the token in the URL, which a forging site would have to
know — and whoever knows it may POST it directly anyway: that is exactly what one-click grants.

Unsubscribing writes, per channel, a ``Suppression`` of the address (reason ``unsubscribed``; an address
already suppressed keeps its row) and appends a withdrawn ``Consent`` for marketing, and for cart reminders
when the customer had consented to them (both are commercial messages, and one opt-out stops them all),
unless the latest record already is a withdrawal. So repeating the request writes nothing new. An invalid
token answers 404 and writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from channels.tokens import TokenSubject, read_token, signing_key
from core.bulk import insert_for
from core.clock import utcnow
from core.errors import NotFound, ValidationFailed
from core.models import (
    Channel,
    Consent,
    ConsentBasis,
    ConsentPurpose,
    ConsentStatus,
    Customer,
    Message,
    Suppression,
    SuppressionReason,
)
from core.settings import Settings
from guardrails.context import BrandRules
from web.deps import SessionDep, SettingsDep, read_body

log = logging.getLogger(__name__)
router = APIRouter(prefix="/u", tags=["unsubscribe"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

ONE_CLICK_SOURCE = "one_click"
PAGE_SOURCE = "preference_page"
PAGE_FORM = "preferences"  # the page's hidden `form` field: what tells its POST from a one-click POST
MAX_FORM_BYTES = 8 * 1024  # the one-click body is 26 bytes; the page's form a few dozen
LABELS = {Channel.EMAIL: "e-mail", Channel.SMS: "texts"}
# The page holds a credential in its URL: no caching, no Referer, no search index.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
_ONE_CLICK_BODY = {
    "requestBody": {
        "required": False,
        "description": "`List-Unsubscribe=One-Click` (RFC 8058), or the preference page's form; may be empty.",
        "content": {
            media: {"schema": {"type": "object", "properties": {"List-Unsubscribe": {"const": "One-Click"}}}}
            for media in ("application/x-www-form-urlencoded", "multipart/form-data")
        },
    }
}


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom a token unsubscribes: the customer, the token's channel, and the customer's address per channel."""

    customer_id: int
    channel: Channel
    addresses: dict[Channel, str]


def token_subject(token: str, settings: SettingsDep) -> TokenSubject | None:
    """The verified token, or ``None`` (the handler answers the "not valid" page, not a JSON error)."""
    try:
        return read_token(signing_key(settings), token)
    except NotFound:
        return None


async def form_body(request: Request) -> FormData:
    """The form, at most ``MAX_FORM_BYTES``; an empty body or another content type is an empty form."""
    body = await read_body(request, MAX_FORM_BYTES)

    async def replay() -> dict[str, Any]:  # read_body consumed the stream: hand the bytes to the form parser
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(request.scope, replay).form(max_files=0, max_fields=16)


Subject = Annotated[TokenSubject | None, Depends(token_subject)]
Form = Annotated[FormData, Depends(form_body)]


@router.get("/{token}", response_class=HTMLResponse, summary="The unsubscribe page (changes nothing)")
def preferences(request: Request, subject: Subject, session: SessionDep, settings: SettingsDep) -> Response:
    """The preference page: the brand, the masked addresses, a form to unsubscribe. A GET never unsubscribes."""
    recipient = find_recipient(session, subject)
    if recipient is None:
        return _invalid(request, settings)
    return _preferences_page(request, settings, session, recipient)


@router.post(
    "/{token}",
    summary="Unsubscribe: RFC 8058 one-click, or the page's form",
    response_class=PlainTextResponse,
    openapi_extra=_ONE_CLICK_BODY,
    responses={404: {"description": "The link is not valid; nothing was changed."}},
)
def unsubscribe(request: Request, subject: Subject, form: Form, session: SessionDep, settings: SettingsDep) -> Response:
    """Unsubscribe and answer 200, never a redirect; repeating it changes nothing more."""
    recipient = find_recipient(session, subject)
    if subject is None or recipient is None:
        return _invalid(request, settings)
    if form.get("form") != PAGE_FORM:  # one-click, whatever the body: a client's opt-out is never refused
        unsubscribe_channels(session, recipient, [subject.channel], source=ONE_CLICK_SOURCE, proof=subject.reference)
        what = f"marketing {LABELS[subject.channel]} from {brand_name(settings)}"
        answer = f"Unsubscribed: {mask(recipient.addresses[subject.channel])} gets no more {what}.\n"
        return PlainTextResponse(answer, headers=PRIVATE)
    chosen = [channel for channel in recipient.addresses if channel.value in form.getlist("channel")]
    if not chosen:
        notice = "Choose what to unsubscribe from."
        return _preferences_page(request, settings, session, recipient, notice=notice, status_code=400)
    unsubscribe_channels(session, recipient, chosen, source=PAGE_SOURCE, proof=subject.reference)
    done = [{"address": mask(recipient.addresses[channel]), "label": LABELS[channel]} for channel in chosen]
    return _render(request, "confirmed.html", {"brand": brand_name(settings), "done": done})


def find_recipient(session: Session, subject: TokenSubject | None) -> Recipient | None:
    """The token's customer and addresses; ``None`` when the token or what it names does not exist (any more)."""
    if subject is None:
        return None
    addresses: dict[Channel, str] = {}
    customer_id = subject.customer_id
    if subject.message_key is not None:
        message = session.scalar(select(Message).where(Message.message_key == subject.message_key))
        if message is None or message.channel is not subject.channel:
            return None
        # The address the message went to, even if the customer's has changed since: that is the one opting out.
        addresses[subject.channel] = message.address
        customer_id = message.customer_id
    customer = session.get(Customer, customer_id)
    if customer is None:
        return None
    for channel, address in ((Channel.EMAIL, customer.email), (Channel.SMS, customer.phone)):
        if address:
            addresses.setdefault(channel, address)
    return Recipient(customer.id, subject.channel, addresses) if subject.channel in addresses else None


def unsubscribe_channels(
    session: Session, recipient: Recipient, channels: list[Channel], *, source: str, proof: str
) -> None:
    """Suppress the recipient's address on each channel and withdraw their marketing consent there.

    Parameters
    ----------
    session : Session
        The request's unit of work (it commits).
    recipient : Recipient
    channels : list of Channel
        Channels the recipient has an address on.
    source : str
        How the request came: ``one_click`` or ``preference_page``.
    proof : str
        The token's message key (or ``customer:<id>``), kept on the consent record.
    """
    for channel in channels:
        _suppress(session, channel, recipient.addresses[channel], source)
        _withdraw(session, recipient.customer_id, channel, source, proof)


def _suppress(session: Session, channel: Channel, address: str, source: str) -> None:
    # An address suppressed before (a bounce, an earlier unsubscribe) keeps its row and reason.
    row = {
        "channel": channel,
        "address": address,
        "reason": SuppressionReason.UNSUBSCRIBED,
        "source": source,
        "created_at": utcnow(),
    }
    statement = insert_for(session)(Suppression).values(row)
    session.execute(statement.on_conflict_do_nothing(index_elements=["channel", "address"]))


def _withdraw(session: Session, customer_id: int, channel: Channel, source: str, proof: str) -> None:
    latest = _latest_consents(session, customer_id, channel)
    marketing_status, _ = latest.get(ConsentPurpose.MARKETING, (None, ConsentBasis.EXPRESS))
    cart_status, _ = latest.get(ConsentPurpose.CART, (None, ConsentBasis.EXPRESS))
    # Marketing is withdrawn even with no record (it records the request); cart only where it was granted.
    purposes = [ConsentPurpose.MARKETING] if marketing_status is not ConsentStatus.WITHDRAWN else []
    purposes += [ConsentPurpose.CART] if cart_status is ConsentStatus.GRANTED else []
    for purpose in purposes:
        basis = latest.get(purpose, (None, ConsentBasis.EXPRESS))[1]  # a withdrawal carries the withdrawn basis
        session.add(
            Consent(
                customer_id=customer_id,
                channel=channel,
                status=ConsentStatus.WITHDRAWN,
                purpose=purpose,
                basis=basis,
                source=source,
                proof=proof,
            )
        )


def _latest_consents(
    session: Session, customer_id: int, channel: Channel
) -> dict[ConsentPurpose, tuple[ConsentStatus, ConsentBasis]]:
    query = (
        select(Consent.purpose, Consent.status, Consent.basis)
        .where(Consent.customer_id == customer_id, Consent.channel == channel)
        .order_by(Consent.recorded_at, Consent.id)
    )
    return {purpose: (status, basis) for purpose, status, basis in session.execute(query)}


def _suppressed(session: Session, recipient: Recipient) -> set[Channel]:
    addresses = recipient.addresses.items()
    pairs = [and_(Suppression.channel == channel, Suppression.address == address) for channel, address in addresses]
    return set(session.scalars(select(Suppression.channel).where(or_(*pairs))))


def mask(address: str) -> str:
    """An address as the page shows it: ``j***@example.com``, ``+1******0123``."""
    if "@" in address:
        local, domain = address.rsplit("@", 1)
        return f"{local[:1]}***@{domain}"
    return f"{address[:2]}{'*' * max(len(address) - 6, 1)}{address[-4:]}"


def brand_name(settings: Settings) -> str:
    """The brand's name from its rules; a broken rules file must not break opting out, so it falls back."""
    try:
        return BrandRules.load(settings.brand_rules_path).brand_name
    except ValidationFailed as error:
        log.warning("unsubscribe page: brand rules unreadable (%s)", error.message)
        return "this sender"


def _preferences_page(
    request: Request,
    settings: Settings,
    session: Session,
    recipient: Recipient,
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    suppressed = _suppressed(session, recipient)
    options = [
        {
            "channel": channel.value,
            "label": LABELS[channel],
            "address": mask(address),
            "done": channel in suppressed,
            "checked": channel is recipient.channel,
        }
        for channel, address in recipient.addresses.items()
    ]
    context = {"brand": brand_name(settings), "options": options, "notice": notice}
    return _render(request, "preferences.html", context, status_code=status_code)


def _invalid(request: Request, settings: Settings) -> Response:
    return _render(request, "invalid.html", {"brand": brand_name(settings)}, status_code=404)


def _render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200) -> Response:
    return templates.TemplateResponse(request, f"unsubscribe/{name}", context, status_code=status_code, headers=PRIVATE)
