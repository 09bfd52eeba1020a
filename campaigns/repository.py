"""Every query of the campaign lifecycle, so ``campaigns.lifecycle`` and ``campaigns.service`` hold only rules.

Assignments are written with ``INSERT … ON CONFLICT (campaign_id, customer_id) DO NOTHING`` in multi-row
statements: a customer's first assignment is the one that stands, however often planning is retried.
Splitting treated customers into variants is an ``UPDATE`` per bucket range, so it runs in the database
without loading the assignments.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.bulk import chunks, insert_for, table_of
from core.errors import NotFound
from core.models import Assignment, AuditEntry, Campaign, CampaignState, CampaignVariant, Cart, CartStatus, Message

# Seven columns a row: 7,000 parameters a statement, well under SQLite's 32,766.
ASSIGNMENT_CHUNK = 1000


def get_campaign(session: Session, key: str) -> Campaign:
    """The campaign with ``key``; ``NotFound`` otherwise."""
    campaign = session.scalar(select(Campaign).where(Campaign.key == key))
    if campaign is None:
        raise NotFound(f"no campaign {key!r}")
    return campaign


def campaign_exists(session: Session, key: str) -> bool:
    return session.scalar(select(Campaign.id).where(Campaign.key == key)) is not None


def list_campaigns(session: Session) -> list[Campaign]:
    """Every campaign, newest first."""
    return list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())))


def move_state(session: Session, campaign_id: int, source: CampaignState, target: CampaignState) -> bool:
    """Set the state to ``target`` only if it is still ``source``; False when another transaction moved it first."""
    statement = (
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.state == source)
        .values(state=target)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def variants(session: Session, campaign_id: int) -> list[CampaignVariant]:
    """The campaign's variants by segment, then variant."""
    query = (
        select(CampaignVariant)
        .where(CampaignVariant.campaign_id == campaign_id)
        .order_by(CampaignVariant.segment, CampaignVariant.variant)
    )
    return list(session.scalars(query))


def delete_variants(session: Session, campaign_id: int) -> None:
    session.query(CampaignVariant).filter(CampaignVariant.campaign_id == campaign_id).delete()


def assigned_segments(session: Session, campaign_id: int) -> list[str]:
    """The segments the campaign's customers are assigned to, sorted."""
    query = select(Assignment.segment).where(Assignment.campaign_id == campaign_id).distinct()
    return sorted(session.scalars(query))


def insert_assignments(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert assignment rows, keeping any existing row for the same (campaign, customer) untouched."""
    insert = insert_for(session)
    table = table_of(Assignment)
    for chunk in chunks(rows, ASSIGNMENT_CHUNK):
        statement = insert(table).values(list(chunk))
        session.execute(statement.on_conflict_do_nothing(index_elements=["campaign_id", "customer_id"]))


def set_arm(
    session: Session, campaign_id: int, segment: str, arm: str, start: int, stop: int, *, keep: Collection[str]
) -> None:
    """Give ``arm`` to the segment's customers with a bucket in ``[start, stop)``, except those in the arms ``keep``."""
    statement = (
        update(Assignment)
        .where(
            Assignment.campaign_id == campaign_id,
            Assignment.segment == segment,
            Assignment.arm.not_in(keep),
            Assignment.bucket >= start,
            Assignment.bucket < stop,
        )
        .values(arm=arm)
        .execution_options(synchronize_session=False)
    )
    session.execute(statement)


def arm_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Customers per arm."""
    query = (
        select(Assignment.arm, func.count())
        .where(Assignment.campaign_id == campaign_id)
        .group_by(Assignment.arm)
        .order_by(Assignment.arm)
    )
    return {str(arm): int(count) for arm, count in session.execute(query)}


def message_counts(session: Session, campaign_key: str) -> dict[str, int]:
    """The campaign's messages per status."""
    query = (
        select(Message.status, func.count())
        .where(Message.campaign_key == campaign_key)
        .group_by(Message.status)
        .order_by(Message.status)
    )
    return {status.value: int(count) for status, count in session.execute(query)}


def audit_trail(session: Session, campaign_id: int) -> list[AuditEntry]:
    """The campaign's audit entries, oldest first."""
    query = (
        select(AuditEntry).where(AuditEntry.campaign_id == campaign_id).order_by(AuditEntry.created_at, AuditEntry.id)
    )
    return list(session.scalars(query))


def open_carts(session: Session) -> int:
    """Carts open now (a trigger's plan shows how many shoppers it may reach)."""
    return session.scalar(select(func.count()).select_from(Cart).where(Cart.status == CartStatus.OPEN)) or 0
