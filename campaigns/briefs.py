"""Drafting briefs: one per segment a retention plan targets, or the abandoned-cart template's one brief, each
described by aggregates.

The plan's production targets are split by the churn model that scored them — subscribers (contractual)
and buyers (non-contractual) need different copy and are offered different things — and each group
becomes a ``Brief`` whose segment carries only aggregates (size, risk band, averages, top plans), never
a customer. The segment's name is the catalog's segment vocabulary, so ``eligible_offers`` picks the
offers the brand allows it; at most ``MAX_OFFERS`` of them, those that expire soonest last.

LLM calls therefore scale with segments × variants, never with recipients.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from agents.catalog import eligible_offers
from agents.retrieval import guidelines
from agents.schemas import MAX_OFFERS, MIN_SEGMENT_SIZE, Brief, Goal, OfferData, RiskBand, SegmentProfile
from campaigns.planning import PlanInputs
from core.errors import NudgeError
from core.models import Channel, ModelKind, Offer
from ml import repository
from ml.decision import PlanComparison

GUIDELINES_MAX = 2000  # Brief.brand_guidelines
CART_SEGMENT = "cart_abandoners"  # the abandoned-cart template's one segment


def segment_briefs(
    session: Session,
    comparison: PlanComparison,
    inputs: PlanInputs,
    *,
    campaign_key: str,
    channel: Channel,
    n_variants: int,
    tone: str,
    at: datetime,
) -> list[Brief]:
    """One brief per targeted population with at least ``MIN_SEGMENT_SIZE`` customers."""
    actions = comparison.production.actions
    population = pd.Series(inputs.population, index=inputs.customer_ids)
    targets = actions.assign(population=population.reindex(actions["customer_id"]).to_numpy())
    rules = guidelines(session, channel)[:GUIDELINES_MAX] or None
    briefs = []
    for kind, group in targets.groupby("population"):
        if len(group) < MIN_SEGMENT_SIZE:
            continue
        as_of = inputs.scored_as_of[str(kind)]
        segment = segment_profile(session, ModelKind(str(kind)), group, as_of)
        offers = _offers(session, segment.name, at)
        briefs.append(
            Brief(
                campaign_key=campaign_key,
                goal=Goal.RETENTION,
                segment=segment,
                channel=channel,
                tone=tone,
                n_variants=n_variants,
                offers=offers,
                brand_guidelines=rules,
            )
        )
    return briefs


def cart_brief(
    session: Session, *, campaign_key: str, channel: Channel, n_variants: int, tone: str, at: datetime
) -> Brief:
    """The abandoned-cart template's brief: the shoppers it may reach, as order-history aggregates.

    Raises
    ------
    core.errors.NudgeError
        Fewer than ``MIN_SEGMENT_SIZE`` customers have ordered: too few to describe without describing someone.
    """
    orders = repository.orders_before(session, at)
    per_customer = orders.groupby("customer_id")["amount"].size()
    if len(per_customer) < MIN_SEGMENT_SIZE:
        raise NudgeError(f"only {len(per_customer)} customers have ordered: too few to draft a cart reminder for")
    segment = SegmentProfile(
        name=CART_SEGMENT,
        size=len(per_customer),
        avg_orders=round(float(per_customer.mean()), 1),
        avg_order_value=round(float(orders["amount"].mean()), 2),
        currency="USD",
    )
    return Brief(
        campaign_key=campaign_key,
        goal=Goal.CART_RECOVERY,
        segment=segment,
        channel=channel,
        tone=tone,
        n_variants=n_variants,
        offers=_offers(session, CART_SEGMENT, at),
        brand_guidelines=guidelines(session, channel)[:GUIDELINES_MAX] or None,
    )


def segment_profile(session: Session, kind: ModelKind, group: pd.DataFrame, as_of: datetime) -> SegmentProfile:
    """The aggregates of one targeted group (its name is the segment key campaigns assign customers to)."""
    ids = group["customer_id"].astype(int).tolist()
    risk = _risk(float(group["p"].mean()))
    if kind is ModelKind.CHURN_CONTRACTUAL:
        subscriptions = repository.subscriptions_before(session, as_of, ids)
        active = subscriptions[subscriptions["ended_at"].isna()]
        tenure = (pd.Timestamp(as_of) - active["started_at"]).dt.days / 30.44
        plans = active["plan"].value_counts()
        return SegmentProfile(
            name=f"subscribers_{_slug(str(plans.index[0]))}",
            size=len(ids),
            churn_risk=risk,
            avg_tenure_months=round(float(tenure.mean()), 1),
            avg_monthly_charges=round(float(active["monthly_charge"].mean()), 2),
            currency="USD",
            top_plans=tuple(str(plan) for plan in plans.index[:3]),
        )
    orders = repository.orders_before(session, as_of, ids)
    per_customer = orders.groupby("customer_id").agg(count=("amount", "size"), last=("ordered_at", "max"))
    return SegmentProfile(
        name="music_buyers_lapsed",
        size=len(ids),
        churn_risk=risk,
        avg_orders=round(float(per_customer["count"].mean()), 1),
        avg_order_value=round(float(orders["amount"].mean()), 2),
        avg_days_since_last_order=round(float((pd.Timestamp(as_of) - per_customer["last"]).dt.days.mean()), 1),
        currency="USD",
    )


def _risk(mean_p: float) -> RiskBand:
    return RiskBand.HIGH if mean_p >= 0.6 else RiskBand.MEDIUM if mean_p >= 0.3 else RiskBand.LOW


def _slug(plan: str) -> str:
    return "_".join(plan.lower().replace("-", " ").split())


def _offers(session: Session, segment: str, at: datetime) -> tuple[OfferData, ...]:
    """The catalog's offers for the segment; segment-specific ones first, then the soonest to expire last."""
    offers = eligible_offers(session, segment, at)
    ranked = sorted(offers, key=lambda offer: (not offer.eligible_segments, _expiry(offer)))
    return tuple(_offer_data(offer) for offer in ranked[:MAX_OFFERS])


def _expiry(offer: Offer) -> float:
    return -offer.valid_until.timestamp() if offer.valid_until else -np.inf


def _offer_data(offer: Offer) -> OfferData:
    return OfferData(
        code=offer.code,
        name=offer.name,
        kind=offer.kind,
        value=offer.value,
        currency=offer.currency,
        terms=offer.terms,
        valid_until=offer.valid_until,
    )
