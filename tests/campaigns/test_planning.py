"""Retention planning joins scores, values and reachability exactly as documented, and refuses to plan
without scores."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy.orm import Session

from campaigns.planning import RetentionAssumptions, gather_inputs, plan_retention
from core.db import Database
from core.errors import BadRequest
from core.models import (
    Channel,
    Consent,
    ConsentStatus,
    Customer,
    ModelKind,
    ModelStage,
    ModelVersion,
    Prediction,
    Subscription,
)
from ml.clv import contractual_clv, monthly_churn_hazard

AS_OF = datetime(2026, 10, 1, tzinfo=UTC)
STARTED = datetime(2025, 1, 1, tzinfo=UTC)


def _version(session: Session, kind: ModelKind) -> ModelVersion:
    version = ModelVersion(
        kind=kind,
        version=1,
        stage=ModelStage.PRODUCTION,
        artifact_path="unused",
        config_hash="0" * 64,
        code_version="ml-1",
        training_window={"horizon_days": 30},
    )
    session.add(version)
    session.flush()
    return version


def _customers(db: Database) -> list[int]:
    """Two subscribers (p 0.5 at $60, p 0.2 at $90) and one buyer (p 0.6, revenue CLV 200, no SMS)."""
    with db.session() as session:
        contractual, noncontractual, clv = (_version(session, kind) for kind in ModelKind)
        ids = []
        for index, (monthly, p) in enumerate(((60, 0.5), (90, 0.2))):
            customer = Customer(external_id=f"sub-{index}", email=f"s{index}@example.com", phone=f"+1212555010{index}")
            session.add(customer)
            session.flush()
            session.add(
                Subscription(
                    customer_id=customer.id, plan="m", monthly_charge=monthly, currency="USD", started_at=STARTED
                )
            )
            session.add(Prediction(model_version_id=contractual.id, customer_id=customer.id, as_of=AS_OF, value=p))
            ids.append(customer.id)
        buyer = Customer(external_id="buyer", email="b@example.com")
        session.add(buyer)
        session.flush()
        session.add(Prediction(model_version_id=noncontractual.id, customer_id=buyer.id, as_of=AS_OF, value=0.6))
        session.add(Prediction(model_version_id=clv.id, customer_id=buyer.id, as_of=AS_OF, value=200.0))
        ids.append(buyer.id)
        for customer_id in ids:
            for channel in Channel:
                session.add(Consent(customer_id=customer_id, channel=channel, status=ConsentStatus.GRANTED, source="t"))
    return ids


def test_inputs_value_subscribers_at_the_typical_hazard_and_buyers_by_their_clv(db: Database) -> None:
    ids = _customers(db)
    assumptions = RetentionAssumptions(margin=0.3, annual_discount_rate=0.1, clv_horizon_months=36)

    with db.session() as session:
        inputs = gather_inputs(session, assumptions)

    typical = float(np.median(monthly_churn_hazard(np.array([0.5, 0.2]), 30)))
    monthly_discount = 1.1 ** (1 / 12) - 1
    expected = contractual_clv(
        np.array([60.0, 90.0]),
        np.full(2, typical),
        margin=0.3,
        monthly_discount_rate=monthly_discount,
        horizon_months=36,
    )
    order = np.argsort(inputs.customer_ids)
    assert inputs.customer_ids[order].tolist() == ids
    assert inputs.p[order].tolist() == [0.5, 0.2, 0.6]
    assert inputs.clv[order].tolist() == pytest.approx([*expected.tolist(), 200.0 * 0.3])
    assert inputs.reachable["email"][order].tolist() == [True, True, True]
    assert inputs.reachable["sms"][order].tolist() == [True, True, False]  # the buyer has no phone
    assert inputs.missing_clv == 0
    assert set(inputs.scored_as_of) == {"churn_contractual", "churn_noncontractual"}


def test_the_plan_keeps_within_the_budget_and_the_band(db: Database) -> None:
    _customers(db)

    with db.session() as session:
        comparison, _ = plan_retention(session, max_budget=7.0)

    production = comparison.production
    assert production.total_cost <= 7.0
    assert production.actions["p"].between(0.3, 0.9).all()
    assert comparison.unconstrained.n >= production.n


def test_planning_without_scores_is_refused(db: Database) -> None:
    with db.session() as session, pytest.raises(BadRequest, match=r"no churn scores.*nudge score"):
        plan_retention(session, max_budget=100.0)


def test_a_negative_budget_is_refused(db: Database) -> None:
    _customers(db)
    with db.session() as session, pytest.raises(BadRequest, match="max_budget"):
        plan_retention(session, max_budget=-1.0)
