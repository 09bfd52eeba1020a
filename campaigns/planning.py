"""Plan a retention campaign: join who may be contacted (audience) with the production models' newest
scores (ml), value every customer, and hand plain arrays to the decision engine.

Per customer:

- ``p`` — the churn probability from whichever churn model scored them (contractual for active
  subscribers, non-contractual for customers who buy without a contract);
- ``clv`` — *profit* kept if they stay: for subscribers, monthly charge × margin × the discounted
  expected remaining lifetime (capped at ``clv_horizon_months``) at the **typical** hazard — the
  median monthly hazard of the scored subscribers — not at the customer's own: EV already weighs
  the customer by their churn probability, and what a successful offer protects is the value of a
  customer who stays, so valuing them at their own (high) hazard would count their churn twice.
  For the others, the BG/NBD + Gamma-Gamma revenue CLV × margin (unconditional, so conservative for
  buyers at risk). The margin is applied here, once;
- reachability per channel — an address, current consent and no suppression.

Customers with a churn score but no CLV (e.g. a buyer the CLV model has not scored) are left out and
counted in ``PlanInputs.missing_clv``.

The defaults in ``RetentionAssumptions`` are assumptions, not measurements: prices are the
providers' list prices (SendGrid ≈ $0.001 an e-mail; Twilio US SMS $0.0083 a segment plus carrier fees
≈ $0.012 all-in), and the offer's success rate is a placeholder until holdouts measure it (the
Experiments issue). Override them per plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from audience.consent import reachable
from core.errors import BadRequest, NudgeError
from core.models import Channel, ModelKind
from ml import registry, repository
from ml.clv import contractual_clv, monthly_churn_hazard
from ml.decision import ChannelCost, DecisionConfig, OfferOption, PlanComparison, plan_campaign
from ml.scoring import latest_scores

CHURN_KINDS = (ModelKind.CHURN_CONTRACTUAL, ModelKind.CHURN_NONCONTRACTUAL)


@dataclass(frozen=True, slots=True)
class RetentionAssumptions:
    """The business numbers a plan rests on; every one is a CLI option."""

    margin: float = 0.30
    annual_discount_rate: float = 0.10
    clv_horizon_months: int = 36
    offer: OfferOption = field(
        default_factory=lambda: OfferOption("SAVE10", unit_cost=10.0, success_rate=0.10, stayer_redemption=0.5)
    )
    email_price: float = 0.001
    sms_segment_price: float = 0.012
    sms_segments: int = 1
    llm_cost_per_recipient: float = 0.0002
    band: tuple[float, float] = (0.30, 0.90)

    def channels(self) -> tuple[ChannelCost, ...]:
        llm = self.llm_cost_per_recipient
        return (
            ChannelCost.email(self.email_price, llm_cost_per_recipient=llm, name=Channel.EMAIL.value),
            ChannelCost.sms(
                self.sms_segment_price, self.sms_segments, llm_cost_per_recipient=llm, name=Channel.SMS.value
            ),
        )


@dataclass(frozen=True, slots=True)
class PlanInputs:
    customer_ids: np.ndarray
    p: np.ndarray
    clv: np.ndarray
    reachable: dict[str, np.ndarray]
    population: np.ndarray  # the churn model kind's value per customer
    missing_clv: int
    scored_as_of: dict[str, datetime]


def gather_inputs(session: Session, assumptions: RetentionAssumptions) -> PlanInputs:
    """Every scored customer's p, profit CLV and reachability, from the production models' newest scores."""
    parts = [_population(session, kind, assumptions) for kind in CHURN_KINDS]
    found = [part for part in parts if part is not None]
    if not found:
        raise BadRequest("no churn scores from a production model: train, promote and `nudge score` first")
    frame = pd.concat([part for part, _ in found])
    with_clv = frame[frame["clv"].notna()]
    ids = with_clv.index.to_numpy(np.int64)
    masks = reachable(session, ids.tolist())
    return PlanInputs(
        customer_ids=ids,
        p=with_clv["p"].to_numpy(np.float64),
        clv=with_clv["clv"].to_numpy(np.float64),
        reachable={channel.value: mask for channel, mask in masks.items()},
        population=with_clv["population"].to_numpy(),
        missing_clv=len(frame) - len(with_clv),
        scored_as_of={kind: as_of for _, (kind, as_of) in found},
    )


def _population(
    session: Session, kind: ModelKind, assumptions: RetentionAssumptions
) -> tuple[pd.DataFrame, tuple[str, datetime]] | None:
    try:
        scores = latest_scores(session, kind)
    except NudgeError:
        return None  # that population has no production model or no scores: plan with the others
    as_of = scores["as_of"].iloc[0].to_pydatetime()
    frame = pd.DataFrame({"p": scores["value"], "population": kind.value}, index=scores.index)
    if kind is ModelKind.CHURN_CONTRACTUAL:
        frame["clv"] = _subscription_clv(session, kind, frame["p"], as_of, assumptions)
    else:
        frame["clv"] = _purchase_clv(session, frame.index) * assumptions.margin
    return frame, (kind.value, as_of)


def _subscription_clv(
    session: Session, kind: ModelKind, p: pd.Series, as_of: datetime, assumptions: RetentionAssumptions
) -> pd.Series:
    """Monthly charge × margin × discounted expected remaining months of a retained customer."""
    horizon_days = int(registry.production(session, kind).training_window["horizon_days"])
    subscriptions = repository.subscriptions_before(session, as_of, p.index.tolist())
    active = subscriptions[subscriptions["ended_at"].isna()].sort_values("started_at")
    monthly = active.groupby("customer_id")["monthly_charge"].last().reindex(p.index)
    typical = float(np.median(monthly_churn_hazard(p.to_numpy(np.float64), horizon_days)))
    hazard = np.full(len(p), typical)
    monthly_discount = (1.0 + assumptions.annual_discount_rate) ** (1 / 12) - 1.0
    value = contractual_clv(
        monthly.fillna(0.0).to_numpy(np.float64),
        hazard,
        margin=assumptions.margin,
        monthly_discount_rate=monthly_discount,
        horizon_months=assumptions.clv_horizon_months,
    )
    return pd.Series(value, index=p.index).where(monthly.notna())


def _purchase_clv(session: Session, customer_ids: pd.Index) -> pd.Series:
    try:
        clv = latest_scores(session, ModelKind.CLV)["value"]
    except NudgeError:
        return pd.Series(np.nan, index=customer_ids)
    return clv.reindex(customer_ids)


def plan_retention(
    session: Session,
    *,
    max_budget: float | None,
    max_customers: int | None = None,
    assumptions: RetentionAssumptions | None = None,
) -> tuple[PlanComparison, PlanInputs]:
    """Both modes of a retention plan (production under the caps, and the unconstrained optimum)."""
    assumptions = assumptions or RetentionAssumptions()
    inputs = gather_inputs(session, assumptions)
    config = DecisionConfig(
        offers=(assumptions.offer,),
        channels=assumptions.channels(),
        band=assumptions.band,
        max_budget=max_budget,
        max_customers=max_customers,
    )
    return plan_campaign(inputs.customer_ids, inputs.p, inputs.clv, inputs.reachable, config), inputs
