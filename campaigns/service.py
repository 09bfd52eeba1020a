"""The campaign lifecycle as services: create, plan and assign, store drafts, review, schedule, cancel, status.

Every function takes a session and never commits; the command, request or task that calls it does.
State changes go through ``campaigns.lifecycle.transition``, which writes the audit log.

Assignment happens in two steps, both by the campaign's salted hash (``experiments.assignment``):

1. ``plan_campaign`` assigns every production-mode target reachable on the campaign's channel to its
   segment (the drafting brief's segment key) and to the holdout or to ``"treatment"``; the rows are
   stored once and never re-inserted (``UNIQUE (campaign, customer)``, ``ON CONFLICT DO NOTHING``).
2. ``split_variants``, run when drafts are stored, splits each segment's treated customers over its
   variants v1…vN by the same buckets and the variants' weights.

The holdout is decided in step 1 only: its bucket range does not depend on the arms, so step 2 (and a
redraft that changes the variants) never moves anyone in or out of the holdout. Variants are split once
they exist because the arms are not known before drafting.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sqlalchemy.orm import Session

from agents.schemas import MIN_SEGMENT_SIZE, Draft
from campaigns import repository
from campaigns.briefs import segment_profile
from campaigns.drafting import ReviewedDrafts
from campaigns.lifecycle import Action, target_state, transition
from campaigns.planning import PlanInputs, plan_retention
from core.errors import Conflict, ValidationFailed, field_errors
from core.models import AuditEntry, Campaign, CampaignKind, CampaignState, CampaignVariant, Channel, ModelKind
from core.settings import Settings
from experiments.assignment import GLOBAL_HOLDOUT, HOLDOUT, RESERVED_ARMS, arm_ranges, assign, in_global_holdout
from guardrails.report import Report
from ml.decision import PlanComparison

TREATMENT = "treatment"
# A key names the campaign everywhere: messages, the cost ledger and its briefs (agents.schemas.CampaignKey).
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
EDITABLE = frozenset({CampaignState.DRAFTED, CampaignState.IN_REVIEW, CampaignState.CHANGES_REQUESTED})
FIXED_DRAFT_FIELDS = ("variant", "channel")


@dataclass(frozen=True, slots=True)
class VariantStatus:
    segment: str
    variant: str
    blocked: bool
    weight: float
    approved_by: str | None


@dataclass(frozen=True, slots=True)
class AuditLine:
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    comment: str | None


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    """Where a campaign is: its state, who is in which arm, its variants, its messages and its audit trail."""

    key: str
    name: str
    kind: CampaignKind
    state: CampaignState
    channel: Channel
    budget: Decimal | None
    holdout_fraction: float
    scheduled_at: datetime | None
    arms: dict[str, int]
    variants: tuple[VariantStatus, ...]
    messages: dict[str, int]
    audit: tuple[AuditLine, ...]


def create_campaign(
    session: Session,
    *,
    key: str,
    name: str,
    channel: Channel,
    budget: Decimal | None,
    holdout_fraction: float,
    actor: str,
    now: datetime,
    kind: CampaignKind = CampaignKind.RETENTION,
    salt: str | None = None,
) -> Campaign:
    """A new campaign in state ``draft`` with a random salt (or ``salt``, to reproduce an assignment: the demo),
    and its ``create`` audit entry.

    A retention campaign is planned, drafted per segment and sent once; an abandoned-cart (``trigger``)
    campaign's one template is drafted and approved once, and then sends per cart (``campaigns.triggers``).

    Raises
    ------
    core.errors.ValidationFailed
        A key that is not 1–64 letters, digits and ``._:-``, a negative budget, or a holdout outside [0, 1).
    core.errors.Conflict
        The key is taken.
    """
    _validate_new(key, budget, holdout_fraction)
    if repository.campaign_exists(session, key):
        raise Conflict(f"campaign {key!r} already exists")
    campaign = Campaign(
        key=key,
        name=name,
        kind=kind,
        state=CampaignState.DRAFT,
        channel=channel,
        budget=budget,
        holdout_fraction=holdout_fraction,
        salt=salt or secrets.token_hex(16),
        plan={},
        created_by=actor,
        created_at=now,
    )
    session.add(campaign)
    session.flush()
    _record(session, campaign, "create", actor=actor, now=now, from_state=None, to_state=CampaignState.DRAFT)
    return campaign


def _validate_new(key: str, budget: Decimal | None, holdout_fraction: float) -> None:
    problems = []
    if not KEY_PATTERN.match(key):
        problems.append(f"key {key!r}: 1–64 letters, digits and . _ : -, starting with a letter or digit")
    if budget is not None and budget < 0:
        problems.append(f"budget must not be negative, not {budget}")
    if not (math.isfinite(holdout_fraction) and 0.0 <= holdout_fraction < 1.0):
        problems.append(f"holdout_fraction must be in [0, 1), not {holdout_fraction}")
    if problems:
        raise ValidationFailed("the campaign is not valid", details=problems)


def plan_campaign(session: Session, settings: Settings, campaign: Campaign, *, actor: str, now: datetime) -> Campaign:
    """Plan a retention campaign under its budget, assign its targets to a segment and to treatment or holdout.

    A trigger campaign has no targets to assign: its plan records how many carts are open.

    The plan's figures (both modes and the funnel) are stored in ``campaign.plan`` with how many targets
    were assigned and why the others were not (not reachable on the campaign's channel, or in a segment too
    small to draft for, which could never be sent).

    Raises
    ------
    core.errors.Conflict
        Not in state ``draft``.
    core.errors.BadRequest
        No production churn scores to plan from.
    """
    _ensure_allowed(campaign, Action.PLAN)
    if campaign.kind is CampaignKind.TRIGGER:
        return _plan_trigger(session, campaign, actor=actor, now=now)
    budget = None if campaign.budget is None else float(campaign.budget)
    comparison, inputs = plan_retention(session, max_budget=budget)
    targets = _segmented_targets(session, comparison, inputs)
    reachable = _reachable_on(inputs, targets["customer_id"], campaign.channel)
    assigned = targets[targets["segment"].notna() & reachable]
    rows = _assignment_rows(campaign, assigned, now, settings)
    repository.insert_assignments(session, rows)
    figures = {
        "not_reachable": int((~reachable).sum()),
        "segment_too_small": int((targets["segment"].isna() & reachable).sum()),
        "assigned": len(rows),
        "holdout": sum(row["arm"] == HOLDOUT for row in rows),
        "global_holdout": sum(row["arm"] == GLOBAL_HOLDOUT for row in rows),
    }
    campaign.plan = {**_plan_figures(comparison), "assignment": figures}
    return transition(session, campaign, Action.PLAN, actor=actor, detail=figures, now=now)


def _plan_trigger(session: Session, campaign: Campaign, *, actor: str, now: datetime) -> Campaign:
    """A trigger has no target list: its audience is whoever abandons a cart. Planning records the carts so far."""
    figures = {"open_carts": repository.open_carts(session)}
    campaign.plan = {"trigger": figures}
    return transition(session, campaign, Action.PLAN, actor=actor, detail=figures, now=now)


def _segmented_targets(session: Session, comparison: PlanComparison, inputs: PlanInputs) -> pd.DataFrame:
    """The production targets with their segment key: the brief's, as ``campaigns.briefs`` names it.

    Segments are formed exactly as ``segment_briefs`` forms them — one per churn population, named from
    all its targets, none below ``MIN_SEGMENT_SIZE`` (those customers get no brief, so ``segment`` is None).
    """
    actions = comparison.production.actions
    population = pd.Series(inputs.population, index=inputs.customer_ids).reindex(actions["customer_id"])
    targets = actions.assign(population=population.to_numpy(), segment=None)
    for kind, group in targets.groupby("population"):
        if len(group) >= MIN_SEGMENT_SIZE:
            profile = segment_profile(session, ModelKind(str(kind)), group, inputs.scored_as_of[str(kind)])
            targets.loc[group.index, "segment"] = profile.name
    return targets


def _reachable_on(inputs: PlanInputs, customer_ids: pd.Series, channel: Channel) -> pd.Series:
    mask = pd.Series(inputs.reachable[channel.value], index=inputs.customer_ids)
    return pd.Series(mask.reindex(customer_ids).fillna(False).to_numpy(bool), index=customer_ids.index)


def _assignment_rows(
    campaign: Campaign, targets: pd.DataFrame, now: datetime, settings: Settings
) -> list[dict[str, Any]]:
    """One assignment row per target: the global holdout first, then the campaign's holdout or treatment.

    A target in the global holdout (``NUDGE_GLOBAL_HOLDOUT_FRACTION`` of all customers, hashed with the fixed
    ``NUDGE_GLOBAL_HOLDOUT_SALT``, the same in every campaign) gets the arm ``global_holdout`` and its global
    bucket: it is never treated, and stays measurable. The others are hashed with the campaign's salt.
    """
    ids = targets["customer_id"].astype(np.int64).tolist()
    held, global_buckets = in_global_holdout(settings.global_holdout_salt, ids, settings.global_holdout_fraction)
    arms = assign(campaign.salt, ids, [(TREATMENT, 1.0)], campaign.holdout_fraction)
    chosen = [
        (int(global_bucket), GLOBAL_HOLDOUT) if is_held else pair
        for is_held, global_bucket, pair in zip(held.tolist(), global_buckets.tolist(), arms, strict=True)
    ]
    return [
        {
            "campaign_id": campaign.id,
            "customer_id": customer_id,
            "segment": segment,
            "arm": arm,
            "bucket": bucket,
            "expected_value": Decimal(str(round(ev, 4))),
            "assigned_at": now,
        }
        for customer_id, segment, ev, (bucket, arm) in zip(
            ids, targets["segment"], targets["ev"].astype(float), chosen, strict=True
        )
    ]


def _plan_figures(comparison: PlanComparison) -> dict[str, Any]:
    """Both modes' summary figures, the funnel and the profit curve (thinned to a chart's worth), JSON-safe."""
    summary = comparison.summary()
    modes = {mode: {row: _plain(value) for row, value in summary[mode].items()} for mode in summary.columns}
    funnel = {name: int(value) for name, value in asdict(comparison.funnel).items()}
    return {**modes, "funnel": funnel, "curve": comparison.curve.points()}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    return float(value)


def store_drafts(
    session: Session, campaign: Campaign, drafted: list[ReviewedDrafts], *, actor: str, now: datetime
) -> Campaign:
    """Store every draft as a variant with its guardrail report, split treatment over them, mark it drafted.

    From ``planned`` this is the ``draft`` action; from ``changes_requested`` it is ``redraft`` and the new
    drafts replace the old variants (the holdout is untouched; treated customers are split again).

    Raises
    ------
    core.errors.Conflict
        The state allows neither action.
    core.errors.ValidationFailed
        A draft for another channel, a draft without a report, or nothing drafted.
    """
    action = Action.REDRAFT if campaign.state is CampaignState.CHANGES_REQUESTED else Action.DRAFT
    _ensure_allowed(campaign, action)
    variants = [variant for drafts in drafted for variant in _variants(campaign, drafts)]
    if not variants:
        raise ValidationFailed(f"nothing drafted for campaign {campaign.key!r}")
    repository.delete_variants(session, campaign.id)
    session.add_all(variants)
    session.flush()
    split_variants(session, campaign)
    detail = {"variants": len(variants), "blocked": sum(variant.blocked for variant in variants)}
    return transition(session, campaign, action, actor=actor, detail=detail, now=now)


def _variants(campaign: Campaign, drafts: ReviewedDrafts) -> list[CampaignVariant]:
    draft_set = drafts.draft_set
    if draft_set.brief.channel is not campaign.channel:
        raise ValidationFailed(
            f"drafts for {draft_set.brief.channel} cannot be stored in the {campaign.channel} campaign {campaign.key!r}"
        )
    segment = draft_set.brief.segment.name
    missing = [draft.variant for draft in draft_set.drafts if draft.variant not in drafts.reports]
    if missing:
        raise ValidationFailed(f"segment {segment!r}: no guardrail report for {', '.join(missing)}")
    return [_variant(campaign, segment, draft, drafts.reports[draft.variant]) for draft in draft_set.drafts]


def _variant(campaign: Campaign, segment: str, draft: Draft, report: Report) -> CampaignVariant:
    return CampaignVariant(
        campaign_id=campaign.id,
        segment=segment,
        variant=draft.variant,
        channel=draft.channel,
        content=draft.model_dump(mode="json"),
        report=report.model_dump(mode="json"),
        blocked=report.blocked,
        weight=1.0,
    )


def split_variants(session: Session, campaign: Campaign) -> None:
    """Give each segment's treated customers one of its variants, by bucket and the variants' weights.

    Holdout customers (the campaign's and the global one) are never touched; a segment without variants goes back
    to ``treatment``.
    """
    by_segment: dict[str, list[tuple[str, float]]] = {}
    for variant in repository.variants(session, campaign.id):
        by_segment.setdefault(variant.segment, []).append((variant.variant, variant.weight))
    for segment in repository.assigned_segments(session, campaign.id):
        arms = by_segment.get(segment, [(TREATMENT, 1.0)])
        for arm_range in arm_ranges(arms, campaign.holdout_fraction)[1:]:  # [0] is the holdout
            repository.set_arm(
                session, campaign.id, segment, arm_range.arm, arm_range.start, arm_range.stop, keep=RESERVED_ARMS
            )


def submit(session: Session, campaign: Campaign, *, actor: str, now: datetime) -> Campaign:
    """Send the drafted (or edited) campaign for review."""
    return transition(session, campaign, Action.SUBMIT, actor=actor, now=now)


def approve(session: Session, campaign: Campaign, *, actor: str, now: datetime, comment: str | None = None) -> Campaign:
    """Approve the campaign and record the approver on every variant."""
    transition(session, campaign, Action.APPROVE, actor=actor, comment=comment, now=now)
    for variant in repository.variants(session, campaign.id):
        variant.approved_by, variant.approved_at = actor, now
    return campaign


def reject(session: Session, campaign: Campaign, *, actor: str, comment: str, now: datetime) -> Campaign:
    """Reject the campaign for good; ``comment`` says why."""
    return transition(session, campaign, Action.REJECT, actor=actor, comment=comment, now=now)


def request_changes(session: Session, campaign: Campaign, *, actor: str, comment: str, now: datetime) -> Campaign:
    """Send the campaign back for edits or a redraft; ``comment`` says what to change."""
    return transition(session, campaign, Action.REQUEST_CHANGES, actor=actor, comment=comment, now=now)


def schedule(session: Session, campaign: Campaign, at: datetime, *, actor: str, now: datetime) -> Campaign:
    """Schedule the approved campaign to send at ``at``, which must not be in the past."""
    if at < now:
        raise ValidationFailed(f"cannot schedule campaign {campaign.key!r} in the past ({at.isoformat()})")
    transition(session, campaign, Action.SCHEDULE, actor=actor, detail={"at": at.isoformat()}, now=now)
    campaign.scheduled_at = at
    return campaign


def start(session: Session, campaign: Campaign, *, actor: str, now: datetime) -> Campaign:
    """Start sending a scheduled campaign now, whatever its scheduled time; the workers send it
    (``campaigns.sending.start_sending`` continues a campaign already ``sending``)."""
    return transition(session, campaign, Action.START, actor=actor, now=now)


def cancel(session: Session, campaign: Campaign, *, actor: str, now: datetime, comment: str | None = None) -> Campaign:
    """Cancel the campaign (any state before sending)."""
    return transition(session, campaign, Action.CANCEL, actor=actor, comment=comment, now=now)


def edit_variant(
    session: Session,
    variant: CampaignVariant,
    new_content: dict[str, Any],
    report: Report,
    *,
    actor: str,
    now: datetime,
) -> CampaignVariant:
    """Replace a variant's content and report in place and audit which fields changed.

    The caller re-runs the guardrails on ``new_content`` and passes the new ``report``. The content must
    still be a valid ``Draft`` for the same variant and channel. Any approval of the variant is cleared.

    Raises
    ------
    core.errors.Conflict
        The campaign is not drafted, in review or sent back for changes.
    core.errors.ValidationFailed
        The content is not a valid draft, or changes the variant id or the channel.
    """
    campaign = session.get_one(Campaign, variant.campaign_id)
    if campaign.state not in EDITABLE:
        allowed = ", ".join(sorted(EDITABLE))
        raise Conflict(f"cannot edit campaign {campaign.key!r}: it is {campaign.state}; edits are allowed in {allowed}")
    content = _valid_content(variant, new_content)
    changed = sorted(
        name for name in content.keys() | variant.content.keys() if content.get(name) != variant.content.get(name)
    )
    variant.content, variant.report, variant.blocked = content, report.model_dump(mode="json"), report.blocked
    variant.approved_by = variant.approved_at = None
    detail = {"segment": variant.segment, "variant": variant.variant, "changed": changed, "blocked": report.blocked}
    state = campaign.state
    _record(session, campaign, "edit", actor=actor, now=now, from_state=state, to_state=state, detail=detail)
    return variant


def _valid_content(variant: CampaignVariant, new_content: dict[str, Any]) -> dict[str, Any]:
    try:
        draft = Draft.model_validate(new_content)
    except ValidationError as error:
        raise ValidationFailed(
            "the edited content is not a valid draft", details=field_errors(error.errors())
        ) from error
    content = draft.model_dump(mode="json")
    fixed = [name for name in FIXED_DRAFT_FIELDS if content[name] != variant.content.get(name)]
    if fixed:
        raise ValidationFailed(f"an edit cannot change {', '.join(fixed)}")
    return content


def campaign_status(session: Session, campaign: Campaign) -> CampaignStatus:
    """The campaign's state, arms, variants, messages by status and audit trail."""
    variants = tuple(
        VariantStatus(v.segment, v.variant, v.blocked, v.weight, v.approved_by)
        for v in repository.variants(session, campaign.id)
    )
    audit = tuple(
        AuditLine(e.created_at, e.actor, e.action, e.from_state, e.to_state, e.comment)
        for e in repository.audit_trail(session, campaign.id)
    )
    return CampaignStatus(
        key=campaign.key,
        name=campaign.name,
        kind=campaign.kind,
        state=campaign.state,
        channel=campaign.channel,
        budget=campaign.budget,
        holdout_fraction=campaign.holdout_fraction,
        scheduled_at=campaign.scheduled_at,
        arms=repository.arm_counts(session, campaign.id),
        variants=variants,
        messages=repository.message_counts(session, campaign.key),
        audit=audit,
    )


def _ensure_allowed(campaign: Campaign, action: Action) -> None:
    # Checked before the expensive part (planning, storing drafts), and again by ``transition``.
    target_state(campaign, action)


def _record(
    session: Session,
    campaign: Campaign,
    action: str,
    *,
    actor: str,
    now: datetime,
    from_state: CampaignState | None,
    to_state: CampaignState,
    detail: dict[str, Any] | None = None,
) -> None:
    """An audit entry for an action that is not a transition (create, edit)."""
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            campaign_id=campaign.id,
            from_state=from_state and from_state.value,
            to_state=to_state.value,
            detail=detail or {},
            created_at=now,
        )
    )
