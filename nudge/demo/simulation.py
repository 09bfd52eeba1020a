"""Simulated outcomes for the demo's campaign: a documented ground truth, drawn per customer, sent back for real.

Nothing here is real customer behaviour. ``data/samples/simulation.json`` states, per arm, how likely a customer
is to order within the attribution window and what the order is worth, and how recipients treat the e-mail;
``data/samples/README.md`` documents it. The draws (fixed seed, customers in id order) become what providers
and shops send: SendGrid Event Webhook batches signed with an ECDSA key made for this run (the API is configured
to trust only that key while the demo runs), and Segment ``Order Completed`` calls through the intake with a
one-off write key. They reach the real endpoints over HTTP and are processed by the same code as production's.

Since the outcome depends on the arm only through whether the e-mail went out, the true effect of a variant on
its assigned customers (intention to treat) is ``sent share × (treated − untreated)``: ``true_effects`` computes
it from the run's own sent shares, for the report to be checked against.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from audience.commerce import ORDER_COMPLETED
from campaigns.report import CampaignReport
from channels.events import SENDGRID_MESSAGE_KEY_ARG
from core.bulk import chunks
from core.errors import ValidationFailed
from core.models import Assignment, Campaign, CampaignVariant, Customer, Message, MessageStatus
from experiments.assignment import GLOBAL_HOLDOUT, HOLDOUT
from experiments.incrementality import INCREMENTAL_CUPED
from experiments.outcomes import CONVERSION, REVENUE
from web.serving import serving
from web.webhooks import sendgrid_signed_headers

GROUND_TRUTH = Path(__file__).resolve().parents[2] / "data" / "samples" / "simulation.json"
WEBHOOK_BATCH = 1000  # events per SendGrid POST (SendGrid batches up to 768 KB)
ORDER_BATCH = 500  # calls per /v1/batch
UNTREATED = (HOLDOUT, GLOBAL_HOLDOUT)
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class ArmTruth(BaseModel):
    """What a customer in one arm does: the order (everyone) and, for recipients, what they do with the e-mail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conversion: Probability
    order_value: float = Field(gt=0.0)
    open: Probability = 0.0
    click: Probability = 0.0  # of those who opened
    unsubscribe: Probability = 0.0
    coupon: Probability = 0.0  # of the recipients who order: they use the variant's offer code


class GroundTruth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    about: str
    seed: int
    order_value_shape: float = Field(gt=0.0)
    currency: str = Field(min_length=3, max_length=3)
    untreated: ArmTruth
    variants: dict[str, ArmTruth]

    @classmethod
    def load(cls, path: Path = GROUND_TRUTH) -> GroundTruth:
        """The ground truth file, validated; ``ValidationFailed`` names what is wrong with it."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as error:
            raise ValidationFailed(f"{path}: not a valid ground truth file ({error})") from None

    def of(self, variant: str) -> ArmTruth:
        if variant not in self.variants:
            raise ValidationFailed(f"the ground truth names no variant {variant!r} (it has {sorted(self.variants)})")
        return self.variants[variant]


@dataclass(frozen=True, slots=True)
class Assigned:
    """One customer the campaign assigned, and the e-mail that went to them, if one did."""

    customer_id: int
    external_id: str
    arm: str
    assigned_at: datetime
    message_key: str | None
    email: str | None
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Effect:
    """A true effect per assigned customer (intention to treat), against the untreated."""

    arm: str
    customers: int
    sent_share: float
    conversion: float
    revenue: float


@dataclass(frozen=True, slots=True)
class Simulated:
    """What the draws became: SendGrid events and Segment calls, ready to post."""

    events: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    customers: int
    conversions: int
    coupons: int


@dataclass(frozen=True, slots=True)
class Posted:
    """What the endpoints answered, summed over every request."""

    event_requests: int
    events_stored: int
    order_requests: int
    orders_stored: int
    duplicates: int


def assigned_customers(session: Session, campaign: Campaign) -> list[Assigned]:
    """Everyone the campaign assigned, in customer id order, with the e-mail each got (sent ones only)."""
    sent = and_(
        Message.customer_id == Assignment.customer_id,
        Message.campaign_key == campaign.key,
        Message.status == MessageStatus.SENT,
    )
    rows = session.execute(
        select(
            Assignment.customer_id,
            Customer.external_id,
            Assignment.arm,
            Assignment.assigned_at,
            Message.message_key,
            Message.address,
            Message.sent_at,
        )
        .join(Customer, Customer.id == Assignment.customer_id)
        .outerjoin(Message, sent)
        .where(Assignment.campaign_id == campaign.id)
        .order_by(Assignment.customer_id)
    )
    return [Assigned(*row) for row in rows]


def offer_codes(session: Session, campaign: Campaign) -> dict[str, str]:
    """Each approved variant's first offer code: the one its converting recipients may redeem."""
    approved = CampaignVariant.approved_at.is_not(None)
    variants = session.scalars(select(CampaignVariant).where(CampaignVariant.campaign_id == campaign.id, approved))
    return {v.variant: codes[0] for v in variants if (codes := v.content.get("offer_codes"))}


def true_effects(truth: GroundTruth, customers: Sequence[Assigned]) -> list[Effect]:
    """Each variant's true effect per assigned customer: its sent share times the recipients' effect."""
    base = truth.untreated
    effects = []
    for arm in sorted({c.arm for c in customers} - set(UNTREATED)):
        members = [c for c in customers if c.arm == arm]
        share = sum(c.message_key is not None for c in members) / len(members)
        treated = truth.of(arm)
        effects.append(
            Effect(
                arm,
                len(members),
                share,
                share * (treated.conversion - base.conversion),
                share * (treated.conversion * treated.order_value - base.conversion * base.order_value),
            )
        )
    return effects


def simulate(truth: GroundTruth, customers: Sequence[Assigned], codes: dict[str, str], now: datetime) -> Simulated:
    """Draw every customer's outcome from the ground truth; times fall between their send (or assignment) and now."""
    rng = np.random.default_rng(truth.seed)
    arms = [truth.of(c.arm) if c.message_key is not None else truth.untreated for c in customers]
    n = len(customers)

    def rate(name: str) -> npt.NDArray[np.float64]:
        return np.array([getattr(arm, name) for arm in arms], dtype=np.float64)

    converts = rng.random(n) < rate("conversion")
    values = rng.gamma(truth.order_value_shape, rate("order_value") / truth.order_value_shape)
    uses_coupon = rng.random(n) < rate("coupon")
    opens = rng.random(n) < rate("open")
    clicks = opens & (rng.random(n) < rate("click"))
    unsubscribes = rng.random(n) < rate("unsubscribe")
    moments = rng.random((n, 3))  # where in [start, now) the open, the click (or unsubscribe) and the order fall
    events: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    coupons = 0
    for i, customer in enumerate(customers):
        start = _utc(customer.sent_at or customer.assigned_at)
        at = [start + (max(now, start) - start) * float(x) for x in sorted(moments[i])]
        if customer.message_key is not None:
            events += _email_events(customer, start, at, bool(opens[i]), bool(clicks[i]), bool(unsubscribes[i]))
        if converts[i]:
            code = codes.get(customer.arm) if customer.message_key is not None and uses_coupon[i] else None
            coupons += code is not None
            orders.append(_order(customer, at[2], round(float(values[i]), 2), truth.currency, code))
    return Simulated(events, orders, n, int(converts.sum()), coupons)


def _utc(moment: datetime) -> datetime:
    """SQLite gives back naive UTC; a naive datetime's timestamp() would read it as the machine's local time."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _email_events(
    customer: Assigned, sent: datetime, at: list[datetime], opened: bool, clicked: bool, unsubscribed: bool
) -> list[dict[str, Any]]:
    kinds = [("processed", sent), ("delivered", sent)]
    kinds += [("open", at[0])] if opened else []
    kinds += [("click", at[1])] if clicked else []
    kinds += [("unsubscribe", at[1])] if unsubscribed else []
    return [_sendgrid_event(customer, kind, moment) for kind, moment in kinds]


def _sendgrid_event(customer: Assigned, kind: str, at: datetime) -> dict[str, Any]:
    """One event as SendGrid's Event Webhook posts it, carrying our message key back in its custom args."""
    event: dict[str, Any] = {
        "email": customer.email,
        "timestamp": int(at.timestamp()),
        "event": kind,
        "sg_event_id": f"demo-sim-{customer.message_key}-{kind}",
        "sg_message_id": f"demo-sim.{customer.message_key}",
        SENDGRID_MESSAGE_KEY_ARG: customer.message_key,
    }
    if kind == "click":
        event["url"] = "https://fablewave.example/offers"
    return event


def _order(customer: Assigned, at: datetime, total: float, currency: str, coupon: str | None) -> dict[str, Any]:
    """A Segment ``Order Completed`` call, its ids fixed by the customer so a replay is a duplicate."""
    properties: dict[str, Any] = {"order_id": f"demo-sim-order-{customer.external_id}", "total": total}
    properties |= {"currency": currency} | ({"coupon": coupon} if coupon else {})
    return {
        "type": "track",
        "messageId": f"demo-sim-order-{customer.external_id}",
        "userId": customer.external_id,
        "event": ORDER_COMPLETED,
        "timestamp": at.isoformat(),
        "properties": properties,
    }


# --- sending it back as the providers would -----------------------------------------------------------------------


def post(app: FastAPI, simulated: Simulated, key: ec.EllipticCurvePrivateKey, write_key: str) -> Posted:
    """Serve ``app`` on a loopback port and post the events and orders to it as SendGrid and a shop would."""
    with serving(app) as url, httpx.Client(base_url=url, timeout=60.0) as client:
        events = [_send_events(client, key, batch) for batch in chunks(simulated.events, WEBHOOK_BATCH)]
        orders = [_send_orders(client, write_key, batch) for batch in chunks(simulated.orders, ORDER_BATCH)]
    return Posted(
        event_requests=len(events),
        events_stored=sum(stored for stored, _ in events),
        order_requests=len(orders),
        orders_stored=sum(stored for stored, _ in orders),
        duplicates=sum(duplicates for _, duplicates in events + orders),
    )


def _send_events(
    client: httpx.Client, key: ec.EllipticCurvePrivateKey, events: Sequence[dict[str, Any]]
) -> tuple[int, int]:
    body = json.dumps(events).encode() + b"\r\n"  # SendGrid ends its body with CRLF; the signature covers it
    headers = sendgrid_signed_headers(key, body, int(datetime.now(UTC).timestamp()))
    return _answer(client.post("/webhooks/sendgrid", content=body, headers=headers))


def _send_orders(client: httpx.Client, write_key: str, orders: Sequence[dict[str, Any]]) -> tuple[int, int]:
    return _answer(client.post("/v1/batch", json={"batch": list(orders)}, auth=(write_key, "")))


def _answer(response: httpx.Response) -> tuple[int, int]:
    if response.status_code not in (200, 202):
        raise ValidationFailed(f"{response.request.url.path} answered {response.status_code}: {response.text[:300]}")
    answer = response.json()
    return int(answer["stored"]), int(answer["duplicates"])


# --- did the report recover it? -----------------------------------------------------------------------------------


class Unit(StrEnum):
    POINTS = "points"  # a difference of rates, shown in percentage points
    DOLLARS = "dollars"
    COUNT = "count"
    SHARE = "share"  # a ratio shown in percent (ROI)

    def show(self, value: float) -> str:
        return {
            Unit.POINTS: f"{100 * value:+.2f} pp",
            Unit.DOLLARS: f"{'+' if value >= 0 else '-'}${abs(value):,.2f}",
            Unit.COUNT: f"{value:+,.1f}",
            Unit.SHARE: f"{value:+.1%}",
        }[self]


@dataclass(frozen=True, slots=True)
class TruthCheck:
    """One estimate of the report beside the true value it should recover, and whether its interval holds it."""

    what: str
    arm: str
    truth: float
    estimate: float
    ci_low: float
    ci_high: float
    unit: Unit

    @property
    def inside(self) -> bool:
        return self.ci_low <= self.truth <= self.ci_high


def check_against_truth(report: CampaignReport, effects: Sequence[Effect], margin: float) -> list[TruthCheck]:
    """Each variant's effect on conversion and revenue per customer, the incremental totals and the ROI, each
    beside its true value (95 % intervals as the report computes them)."""
    checks: list[TruthCheck] = []
    if report.analysis is None or report.control != HOLDOUT:
        return checks
    for effect in effects:
        for metric, truth, unit in (
            (CONVERSION, effect.conversion, Unit.POINTS),
            (REVENUE, effect.revenue, Unit.DOLLARS),
        ):
            result = report.analysis.primary(metric, effect.arm)
            what = f"{metric} per customer vs holdout"
            checks.append(TruthCheck(what, effect.arm, truth, result.estimate, result.ci_low, result.ci_high, unit))
    treated = [e for e in effects if e.arm in report.analysis.treatments]
    totals = {CONVERSION: sum(e.customers * e.conversion for e in treated)}
    totals[REVENUE] = sum(e.customers * e.revenue for e in treated)
    plain = {i.metric: i.estimate for i in report.incrementality if i.method != INCREMENTAL_CUPED}
    for increment in report.incrementality:
        cuped = increment.method == INCREMENTAL_CUPED
        if cuped and increment.estimate == plain.get(increment.metric):
            continue  # no pre-period orders to adjust with (Telco's subscribers): the same row twice
        what = "incremental " + ("conversions" if increment.metric == CONVERSION else "revenue")
        what += " (CUPED)" if cuped else ""
        low, high = increment.ci_low, increment.ci_high
        unit = Unit.COUNT if increment.metric == CONVERSION else Unit.DOLLARS
        checks.append(TruthCheck(what, "treated", totals[increment.metric], increment.estimate, low, high, unit))
    roi = report.roi
    if roi is not None and roi.roi is not None and roi.ci_low is not None and roi.ci_high is not None:
        true_roi = (totals[REVENUE] * margin - roi.total_cost) / roi.total_cost
        checks.append(TruthCheck("ROI", "treated", true_roi, roi.roi, roi.ci_low, roi.ci_high, Unit.SHARE))
    return checks
