"""Every query of the guardrails, so the checks themselves stay pure.

- ``load_recipients``: ``Recipient`` snapshots for a batch of customers, in three queries per thousand
  customers (contact details, current consent, suppressions), for the send-time checks.
- ``check_context``: the offer catalog and the brand's rules, for the content and compliance checks (the
  catalog is read from the database on every call; the rules file only when it has changed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from core.bulk import among, chunks
from core.models import Channel, Consent, ConsentPurpose, Customer, Offer, Suppression
from core.settings import Settings
from guardrails.context import BrandRules, CatalogOffer, CheckContext
from guardrails.sendtime import CONSENT_COVERS, ConsentRecord, Recipient

ADDRESS_COLUMN = {Channel.EMAIL: Customer.email, Channel.SMS: Customer.phone}


def load_recipients(
    session: Session,
    customer_ids: Sequence[int],
    channel: Channel,
    *,
    purpose: ConsentPurpose = ConsentPurpose.MARKETING,
    recent_sends: Mapping[int, Sequence[datetime]] | None = None,
) -> dict[int, Recipient]:
    """Snapshots of ``customer_ids`` on ``channel`` for a message of ``purpose``, keyed by customer id.

    Parameters
    ----------
    session
        An open session; nothing is written.
    customer_ids
        Customers to load; ids with no customer are left out of the result.
    channel
        The channel about to be used: it picks the address, the consent log and the suppression list.
    purpose
        What the message is for. The consent is the latest record among the purposes that cover it
        (``guardrails.sendtime.CONSENT_COVERS``): a marketing opt-in covers a cart reminder.
    recent_sends
        Times of the commercial messages already sent to each customer on ``channel``. There is no sends
        table yet, so the caller supplies them; the Workers issue adds the table and this function will read
        it instead. Missing customers have sent nothing.

    Returns
    -------
    dict[int, Recipient]
        One snapshot per existing customer.
    """
    sends = recent_sends or {}
    found: dict[int, Recipient] = {}
    for chunk in chunks(list(dict.fromkeys(customer_ids))):
        contacts = _contacts(session, chunk, channel)
        consents = _current_consents(session, chunk, channel, purpose)
        suppressed = _suppressed(session, channel, [row.address for row in contacts if row.address])
        for row in contacts:
            found[row.id] = Recipient(
                customer_id=row.id,
                channel=channel,
                address=row.address,
                country=row.country,
                region=row.region,
                time_zone=row.time_zone,
                consent=consents.get(row.id),
                suppressed=row.address in suppressed,
                recent_sends=tuple(sends.get(row.id, ())),
                purpose=purpose,
            )
    return found


def _contacts(
    session: Session, ids: Sequence[int], channel: Channel
) -> Sequence[Row[int, str | None, str | None, str | None, str | None]]:
    """Id, address on ``channel``, country, region and time zone."""
    address = ADDRESS_COLUMN[channel].label("address")
    query = select(Customer.id, address, Customer.country, Customer.region, Customer.time_zone)
    return session.execute(query.where(among(Customer.id, ids))).all()


def _current_consents(
    session: Session, ids: Sequence[int], channel: Channel, purpose: ConsentPurpose
) -> dict[int, ConsentRecord]:
    """The latest consent row per customer among the purposes covering ``purpose`` (ties: the later id)."""
    rank = func.row_number().over(
        partition_by=Consent.customer_id, order_by=(Consent.recorded_at.desc(), Consent.id.desc())
    )
    ranked = (
        select(
            Consent.customer_id,
            Consent.status,
            Consent.purpose,
            Consent.basis,
            Consent.recorded_at,
            Consent.expires_at,
            Consent.disclosure_version,
            rank.label("rank"),
        )
        .where(among(Consent.customer_id, ids))
        .where(Consent.channel == channel, Consent.purpose.in_(sorted(CONSENT_COVERS[purpose])))
        .subquery()
    )
    latest = session.execute(select(ranked).where(ranked.c.rank == 1)).all()
    return {
        row.customer_id: ConsentRecord(
            status=row.status,
            purpose=row.purpose,
            basis=row.basis,
            recorded_at=row.recorded_at,
            expires_at=row.expires_at,
            disclosure_version=row.disclosure_version,
        )
        for row in latest
    }


def _suppressed(session: Session, channel: Channel, addresses: Sequence[str]) -> set[str]:
    if not addresses:
        return set()
    query = select(Suppression.address).where(Suppression.channel == channel, among(Suppression.address, addresses))
    return set(session.scalars(query))


def check_context(session: Session, settings: Settings, *, now: datetime) -> CheckContext:
    """The context drafts are checked in: the whole offer catalog, the brand's rules, the SMS limits."""
    return CheckContext(
        catalog=catalog(session),
        brand=BrandRules.cached(settings.brand_rules_path),  # read again only when rules.json changes
        now=now,
        own_origin=_origin(settings.public_base_url),
        max_sms_segments=settings.sms_max_segments,
        sms_segment_price=settings.sms_segment_price_usd,
    )


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def catalog(session: Session) -> dict[str, CatalogOffer]:
    """Every offer in the catalog, by code (expired ones too: naming one in copy is still a finding)."""
    return {offer.code: _catalog_offer(offer) for offer in session.scalars(select(Offer))}


def _catalog_offer(offer: Offer) -> CatalogOffer:
    return CatalogOffer(
        code=offer.code,
        name=offer.name,
        kind=offer.kind,
        value=offer.value,
        currency=offer.currency,
        terms=offer.terms,
        valid_from=_utc(offer.valid_from),
        valid_until=_utc(offer.valid_until) if offer.valid_until is not None else None,
    )


def _utc(instant: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored instant is UTC.
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
