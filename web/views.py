"""The queries behind the pages: each returns plain rows for one page, in as few statements as it can.

Lists are paged (``PAGE_SIZE`` rows, keyed by offset) and aggregate in the database, so a page costs the
same with ten drafts or ten thousand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from campaigns import repository
from campaigns.report import METRICS, CampaignReport, build_report, format_effect, format_value
from core.models import (
    Assignment,
    AuditEntry,
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignVariant,
    CreativeItem,
    Message,
    MessageStatus,
    ModelVersion,
    OutboxMessage,
    Outcome,
)
from core.settings import Settings
from ml.decision import curve_points

PAGE_SIZE = 50
# Campaigns waiting for a person, first the ones a reviewer acts on.
QUEUE_STATES = (CampaignState.IN_REVIEW, CampaignState.DRAFTED, CampaignState.CHANGES_REQUESTED)


@dataclass(frozen=True, slots=True)
class QueueRow:
    key: str
    name: str
    kind: CampaignKind
    state: CampaignState
    channel: str
    variants: int
    blocked: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Any]
    number: int
    has_next: bool


def _paged(rows: list[Any], number: int) -> Page:
    return Page(rows[:PAGE_SIZE], number, len(rows) > PAGE_SIZE)


def queue(
    session: Session, *, states: tuple[CampaignState, ...], kind: CampaignKind | None = None, page: int = 1
) -> Page:
    """Campaigns in ``states`` with their variant and blocked counts, most recently changed first.

    The page of campaigns is chosen first; variants are counted for those campaigns only (by the
    ``(campaign_id, segment, variant)`` index), so the cost does not grow with the drafts in the database.
    """
    query = (
        # The columns the row shows, not whole campaigns: a campaign's plan is a JSON document per row.
        select(
            Campaign.id,
            Campaign.key,
            Campaign.name,
            Campaign.kind,
            Campaign.state,
            Campaign.channel,
            Campaign.updated_at,
        )
        .where(Campaign.state.in_(states))
        .order_by(Campaign.updated_at.desc(), Campaign.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    if kind is not None:
        query = query.where(Campaign.kind == kind)
    campaigns = session.execute(query).all()
    counts = {
        campaign_id: (int(n), int(blocked or 0))
        for campaign_id, n, blocked in session.execute(
            select(
                CampaignVariant.campaign_id,
                func.count(),
                func.sum(case((CampaignVariant.blocked, 1), else_=0)),
            )
            .where(CampaignVariant.campaign_id.in_([c.id for c in campaigns]))
            .group_by(CampaignVariant.campaign_id)
        )
    }
    rows = [
        QueueRow(c.key, c.name, c.kind, c.state, c.channel.value, *counts.get(c.id, (0, 0)), c.updated_at)
        for c in campaigns
    ]
    return _paged(rows, page)


def states_count(session: Session) -> dict[str, int]:
    query = select(Campaign.state, func.count()).group_by(Campaign.state)
    counts = {state.value: int(n) for state, n in session.execute(query)}
    return {state.value: counts.get(state.value, 0) for state in CampaignState}


def recent_outcomes(session: Session, limit: int = 10) -> list[tuple[Outcome, Message]]:
    query = (
        select(Outcome, Message)
        .join(Message, Message.id == Outcome.message_id)
        .order_by(Outcome.occurred_at.desc(), Outcome.id.desc())
        .limit(limit)
    )
    return [(outcome, message) for outcome, message in session.execute(query)]


def alerts(session: Session, *, now: datetime) -> list[str]:
    """What needs a person's attention: blocked drafts in review, messages refused in the last day."""
    found = []
    blocked = session.scalar(
        select(func.count(func.distinct(CampaignVariant.campaign_id)))
        .join(Campaign, Campaign.id == CampaignVariant.campaign_id)
        .where(CampaignVariant.blocked.is_(True), Campaign.state.in_(QUEUE_STATES))
    )
    if blocked:
        found.append(f"{blocked} campaign(s) waiting for review have a variant blocked by its guardrails")
    failed = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.status == MessageStatus.REJECTED,
            Message.updated_at >= now - timedelta(days=1),
        )
    )
    if failed:
        found.append(f"{failed} message(s) were rejected by a provider in the last 24 hours")
    return found


def profit_curve(session: Session, campaign_id: int) -> list[tuple[int, float]]:
    """Cumulative expected profit of the campaign's assigned targets, best EV first: for a campaign planned before
    its plan kept the curve (``campaign.plan["curve"]``)."""
    values = session.scalars(select(Assignment.expected_value).where(Assignment.campaign_id == campaign_id)).all()
    ev = np.sort(np.asarray([float(v) for v in values if v is not None], dtype=np.float64))[::-1]
    return curve_points(np.concatenate([[0.0], np.cumsum(ev)]))


def recent_audit(session: Session, campaign_id: int, limit: int = 10) -> list[AuditEntry]:
    """The campaign's last ``limit`` audit entries, oldest first (a long-lived campaign's trail is not read whole)."""
    query = (
        select(AuditEntry)
        .where(AuditEntry.campaign_id == campaign_id)
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))[::-1]


def creative_titles(session: Session, external_ids: list[str]) -> dict[str, str]:
    if not external_ids:
        return {}
    query = select(CreativeItem.external_id, CreativeItem.title).where(CreativeItem.external_id.in_(external_ids))
    return dict(session.execute(query).all())


def library(session: Session, search: str, *, page: int = 1) -> Page:
    """Creative items whose title, subject, body or tags hold ``search`` (all when empty), by conversions."""
    query = select(CreativeItem).order_by(CreativeItem.conversions.desc(), CreativeItem.external_id)
    if search.strip():
        like = f"%{search.strip()}%"
        query = query.where(
            or_(
                CreativeItem.external_id.ilike(like),
                CreativeItem.title.ilike(like),
                CreativeItem.subject.ilike(like),
                CreativeItem.body.ilike(like),
            )
        )
    rows = list(session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return _paged(rows, page)


def messages(session: Session, *, campaign_key: str | None = None, page: int = 1) -> Page:
    """Messages newest first, each with its outcomes' kinds."""
    query = select(Message).order_by(Message.created_at.desc(), Message.id.desc())
    if campaign_key:
        query = query.where(Message.campaign_key == campaign_key)
    rows = list(session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    ids = [message.id for message in rows[:PAGE_SIZE]]
    outcomes: dict[int, list[str]] = {}
    if ids:
        for message_id, kind in session.execute(
            select(Outcome.message_id, Outcome.kind).where(Outcome.message_id.in_(ids)).order_by(Outcome.occurred_at)
        ):
            outcomes.setdefault(message_id, []).append(kind.value)
    return _paged([(message, outcomes.get(message.id, [])) for message in rows], page)


def outbox(session: Session, *, page: int = 1) -> Page:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).offset((page - 1) * PAGE_SIZE)
    return _paged(list(session.scalars(query.limit(PAGE_SIZE + 1))), page)


def model_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.kind, ModelVersion.version.desc())))


def audit_log(session: Session, *, actor: str = "", page: int = 1) -> Page:
    """Audit entries newest first, with their campaign's key."""
    query = (
        select(AuditEntry, Campaign.key)
        .outerjoin(Campaign, Campaign.id == AuditEntry.campaign_id)
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    )
    if actor:
        query = query.where(AuditEntry.actor == actor)
    rows = list(session.execute(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all())
    return _paged(rows, page)


def experiment_arms(session: Session) -> list[tuple[str, str, CampaignState, dict[str, int]]]:
    """Every campaign with assignments: its key, name, state and customers per arm.

    The integration point for ``experiments/`` analysis: the page shows these counts, and a campaign's
    results (lift, intervals) belong next to them once the Experiments issue provides them.
    """
    query = (
        select(Campaign.key, Campaign.name, Campaign.state, Assignment.arm, func.count())
        .join(Assignment, Assignment.campaign_id == Campaign.id)
        .group_by(Campaign.key, Campaign.name, Campaign.state, Assignment.arm)
        .order_by(Campaign.key, Assignment.arm)
    )
    found: dict[str, tuple[str, str, CampaignState, dict[str, int]]] = {}
    for key, name, state, arm, count in session.execute(query):
        found.setdefault(key, (key, name, state, {}))[3][arm] = int(count)
    return list(found.values())


def token_cost(usage: dict[str, Any], prices: dict[str, tuple[float, float]]) -> Decimal | None:
    """What a draft's LLM calls cost at list prices, when its (first) model has a price; ``None`` otherwise."""
    models = usage.get("models") or []
    price = next((prices[model] for model in models if model in prices), None)
    if price is None:
        return None
    usd = (usage.get("prompt_tokens", 0) * price[0] + usage.get("completion_tokens", 0) * price[1]) / 1_000_000
    return Decimal(str(round(usd, 6)))


REPORT_TTL = timedelta(seconds=60)  # as long as the plots' Cache-Control: the page and its two images share one
_REPORTS: dict[tuple[str, str], CampaignReport] = {}  # by database and campaign key, in this process


def experiment_report(session: Session, settings: Settings, key: str, now: datetime) -> CampaignReport:
    """The campaign's experiment report, built at most once a minute: the page and each of its plots ask for it,
    and on a large campaign the SQL aggregation behind it takes seconds.

    Raises
    ------
    core.errors.NotFound
        No campaign with this key.
    """
    cache_key = (str(session.get_bind().engine.url), key)
    cached = _REPORTS.get(cache_key)
    if cached is not None and now - cached.generated_at < REPORT_TTL:
        return cached
    report = build_report(session, repository.get_campaign(session, key), settings, now)
    if len(_REPORTS) >= 64:  # a handful of campaigns are looked at at once; forget the oldest
        _REPORTS.pop(next(iter(_REPORTS)))
    _REPORTS[cache_key] = report
    return report


def experiment_tables(report: CampaignReport) -> dict[str, Any]:
    """The report's rows as the experiment page shows them, numbers formatted as the CLI formats them."""
    analysis = report.analysis
    shares = {arm.arm: arm.expected_share for arm in analysis.arms} if analysis else {}
    arms = [
        (
            arm.arm,
            arm.n,
            shares.get(arm.arm),
            [format_value(METRICS[name], arm.metrics[name].total / arm.n) if arm.n else "—" for name in METRICS],
        )
        for arm in report.arms
    ]
    effects = [
        (result, METRICS[result.metric].label, format_effect(METRICS[result.metric], result))
        for result in (analysis.results if analysis else ())
    ]
    return {"metric_labels": [metric.label for metric in METRICS.values()], "arm_rows": arms, "effects": effects}
