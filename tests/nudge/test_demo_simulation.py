"""The demo's simulated outcomes: the ground truth file is validated, the draws follow it, the true effects are
what the README says, the signature is SendGrid's, and the truth check reads the report's own intervals."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import ValidationFailed
from nudge.demo.simulation import (
    GROUND_TRUTH,
    Assigned,
    GroundTruth,
    TruthCheck,
    Unit,
    simulate,
    true_effects,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SENT = NOW - timedelta(minutes=5)


def customer(n: int, arm: str, sent: bool) -> Assigned:
    key = f"mk-{n}" if sent else None
    return Assigned(n, f"c-{n}", arm, SENT, key, f"c{n}@example.com" if sent else None, SENT if sent else None)


def crowd(arm: str, n: int, sent: bool = True, start: int = 0) -> list[Assigned]:
    return [customer(start + i, arm, sent) for i in range(n)]


@pytest.fixture(scope="module")
def truth() -> GroundTruth:
    return GroundTruth.load()


def test_the_shipped_ground_truth_is_valid_and_says_it_is_simulated(truth: GroundTruth) -> None:
    assert "SIMULATED" in truth.about
    assert {"v1", "v2"} <= set(truth.variants)
    assert all(arm.conversion > truth.untreated.conversion for arm in truth.variants.values())


def test_a_broken_ground_truth_file_is_refused_with_its_path(tmp_path: Path) -> None:
    data = json.loads(GROUND_TRUTH.read_text())
    data["untreated"]["conversion"] = 1.5
    broken = tmp_path / "simulation.json"
    broken.write_text(json.dumps(data))

    with pytest.raises(ValidationFailed, match=r"simulation\.json: not a valid ground truth file"):
        GroundTruth.load(broken)
    with pytest.raises(ValidationFailed, match="not a valid ground truth file"):
        GroundTruth.load(tmp_path / "missing.json")


def test_a_variant_the_truth_does_not_name_is_an_error(truth: GroundTruth) -> None:
    with pytest.raises(ValidationFailed, match="names no variant 'v9'"):
        simulate(truth, [customer(1, "v9", sent=True)], {}, NOW)


def test_draws_follow_the_truth_and_are_the_same_on_every_run(truth: GroundTruth) -> None:
    customers = crowd("holdout", 20_000, sent=False) + crowd("v2", 20_000, start=20_000)

    first = simulate(truth, customers, {"v2": "LOYAL20"}, NOW)
    again = simulate(truth, customers, {"v2": "LOYAL20"}, NOW + timedelta(hours=1))

    orders = {order["userId"]: order for order in first.orders}
    held = sum(orders.get(c.external_id) is not None for c in customers[:20_000]) / 20_000
    treated = sum(orders.get(c.external_id) is not None for c in customers[20_000:]) / 20_000
    v2 = truth.of("v2")
    assert held == pytest.approx(truth.untreated.conversion, abs=0.006)
    assert treated == pytest.approx(v2.conversion, abs=0.008)
    values = [order["properties"]["total"] for order in first.orders]
    assert sum(values) / len(values) == pytest.approx(v2.order_value, rel=0.03)
    coupons = [order for order in first.orders if "coupon" in order["properties"]]
    assert len(coupons) == first.coupons
    assert {
        orders[c.external_id].get("properties", {}).get("coupon") for c in customers[:20_000] if c.external_id in orders
    } == {None}
    assert len(coupons) / (treated * 20_000) == pytest.approx(v2.coupon, abs=0.03)
    opens = sum(event["event"] == "open" for event in first.events) / 20_000
    assert opens == pytest.approx(v2.open, abs=0.01)
    assert [order["messageId"] for order in again.orders] == [order["messageId"] for order in first.orders]
    assert [event["sg_event_id"] for event in again.events] == [event["sg_event_id"] for event in first.events]


def test_every_event_and_order_happens_between_the_send_and_now(truth: GroundTruth) -> None:
    simulated = simulate(truth, crowd("v1", 2_000), {}, NOW)

    stamps = [event["timestamp"] for event in simulated.events]
    assert min(stamps) >= int(SENT.timestamp())
    assert max(stamps) <= int(NOW.timestamp())
    ordered = [datetime.fromisoformat(order["timestamp"]) for order in simulated.orders]
    assert all(SENT <= moment <= NOW for moment in ordered)
    kinds = {event["event"] for event in simulated.events}
    assert kinds == {"processed", "delivered", "open", "click", "unsubscribe"}
    assert all(event["message_key"].startswith("mk-") for event in simulated.events)


def test_the_true_effect_is_diluted_by_the_share_whose_email_went_out(truth: GroundTruth) -> None:
    customers = crowd("holdout", 10, sent=False) + crowd("v1", 30, start=10) + crowd("v1", 10, sent=False, start=40)

    (effect,) = true_effects(truth, customers)

    v1, base = truth.of("v1"), truth.untreated
    assert (effect.arm, effect.customers, effect.sent_share) == ("v1", 40, 0.75)
    assert effect.conversion == pytest.approx(0.75 * (v1.conversion - base.conversion))
    assert effect.revenue == pytest.approx(0.75 * (v1.conversion * v1.order_value - base.conversion * base.order_value))


def test_a_truth_check_holds_only_when_the_interval_contains_the_truth() -> None:
    check = TruthCheck("conversion per customer vs holdout", "v1", 0.05, 0.04, 0.01, 0.07, Unit.POINTS)

    assert check.inside
    assert not replace(check, truth=0.08).inside
    assert replace(check, truth=0.01).inside  # the bounds belong to the interval


def test_naive_times_from_sqlite_are_read_as_utc_whatever_the_machines_time_zone(
    truth: GroundTruth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        naive = [
            replace(c, assigned_at=SENT.replace(tzinfo=None), sent_at=SENT.replace(tzinfo=None))
            for c in crowd("v1", 50)
        ]
        simulated = simulate(truth, naive, {}, NOW)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()

    delivered = [event["timestamp"] for event in simulated.events if event["event"] == "delivered"]
    assert set(delivered) == {int(SENT.timestamp())}
