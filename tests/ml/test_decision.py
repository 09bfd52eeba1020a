"""The decision engine targets exactly the customers worth money: EV by hand, band, channels, budget gate, optimum."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import BadRequest
from ml.decision import (
    ACTION_COLUMNS,
    ChannelCost,
    DecisionConfig,
    OfferOption,
    Plan,
    Ranking,
    RankingRule,
    best_options,
    curve_points,
    expected_cost,
    expected_value,
    plan_campaign,
)
from ml.plots import profit_curve

EMAIL = ChannelCost("email", unit_price=2.0)  # contact cost 2
SMS = ChannelCost.sms(5.0, segments=2)  # contact cost 10
NUDGE = OfferOption("nudge", unit_cost=0.0, success_rate=0.5)


def _config(**changes: Any) -> DecisionConfig:
    values: dict[str, Any] = {"offers": (NUDGE,), "channels": (EMAIL, SMS)} | changes
    return DecisionConfig(**values)


def _reach(email: list[bool], sms: list[bool]) -> dict[str, Any]:
    return {"email": np.array(email), "sms": np.array(sms)}


def _ids(plan: Plan) -> list[Any]:
    return list(plan.actions["customer_id"])


# --- expected value, by hand ---------------------------------------------------------------------------


def test_ev_and_cost_match_a_hand_computed_example() -> None:
    # Given contact = 0.5 + 0.5 (LLM share) = 1, an offer of 4 with s = 0.5 that a quarter of stayers redeem:
    # C_tp = 1 + 4 = 5 and C_fp = 1 + 4 · 0.25 = 2
    channel = ChannelCost("email", unit_price=0.5, llm_cost_per_recipient=0.5)
    offer = OfferOption("credit", unit_cost=4.0, success_rate=0.5, stayer_redemption=0.25)
    config = DecisionConfig(offers=(offer,), channels=(channel,), band=(0.0, 1.0))
    p, clv = [0.5, 0.75, 0.25, 0.5], [100.0, 20.0, 8.0, -40.0]

    # When
    best = best_options(p, clv, {"email": np.ones(4, dtype=bool)}, config)
    result = plan_campaign(["a", "b", "c", "d"], p, clv, {"email": np.ones(4, dtype=bool)}, config)

    # Then EV = p·(s·CLV − 5) − (1 − p)·2, e.g. a: 0.5·(50 − 5) − 0.5·2 = 21.5; cost = p·5 + (1 − p)·2
    assert best.ev.tolist() == [21.5, 3.25, -1.75, -13.5]
    assert best.cost.tolist() == [3.5, 4.25, 2.75, 3.5]
    assert expected_value(p, clv, 0.5, 5.0, 2.0).tolist() == [21.5, 3.25, -1.75, -13.5]
    assert expected_cost(p, 5.0, 2.0).tolist() == [3.5, 4.25, 2.75, 3.5]
    plan = result.unconstrained
    assert _ids(plan) == ["a", "b"]
    assert (plan.n, plan.total_cost, plan.expected_profit) == (2, 7.75, 24.75)
    assert plan.roi == 24.75 / 7.75
    assert (plan.ev_threshold, plan.min_p) == (3.25, 0.5)


def test_channel_cost_counts_segments_and_the_llm_share() -> None:
    sms = ChannelCost.sms(0.0118, segments=2, llm_cost_per_recipient=0.0002)
    email = ChannelCost.email(0.0009, llm_cost_per_recipient=0.0004)

    assert sms.contact_cost == 0.0118 * 2 + 0.0002
    assert email.contact_cost == 0.0009 + 0.0004


# --- targeting rules -------------------------------------------------------------------------------------


def test_band_keeps_only_customers_with_p_inside_it_bounds_included() -> None:
    p = [0.29, 0.30, 0.90, 0.91]

    result = plan_campaign([1, 2, 3, 4], p, [1000.0] * 4, _reach([True] * 4, [False] * 4), _config())

    assert _ids(result.unconstrained) == [3, 2]  # EV descending: p 0.90 before 0.30
    assert (result.funnel.below_band, result.funnel.above_band, result.funnel.eligible) == (1, 1, 2)


def test_customers_with_ev_zero_or_negative_are_never_targeted() -> None:
    # EV = 0.5·0.5·CLV − 2: zero at CLV 8, negative below; a negative CLV is accepted and simply loses money
    clv = [8.0, 4.0, -100.0, 17.0]

    result = plan_campaign([1, 2, 3, 4], [0.5] * 4, clv, _reach([True] * 4, [False] * 4), _config())

    assert _ids(result.unconstrained) == [4]
    assert _ids(result.production) == [4]
    assert result.funnel.ev_not_positive == 3


def test_a_customer_without_any_reachable_channel_is_never_targeted() -> None:
    result = plan_campaign([1, 2], [0.5, 0.5], [1e6, 100.0], _reach([False, True], [False, False]), _config())

    assert _ids(result.unconstrained) == [2]
    assert result.funnel.no_channel == 1


def test_funnel_partitions_the_customers_and_the_gate_accounts_for_every_eligible_one() -> None:
    ids, p, clv, reachable, config = _random_case(np.random.default_rng(7), 2_000)
    config = DecisionConfig(offers=config.offers, channels=config.channels, max_budget=300.0)

    result = plan_campaign(ids, p, clv, reachable, config)

    funnel = result.funnel
    parts = funnel.no_channel + funnel.below_band + funnel.above_band + funnel.ev_not_positive + funnel.eligible
    assert parts == funnel.customers == 2_000
    assert result.production.n + result.production.excluded_by_budget == funnel.eligible
    assert result.unconstrained.n == funnel.eligible
    assert result.unconstrained.excluded_by_budget == 0


# --- choosing offer and channel ------------------------------------------------------------------------


def test_the_cheaper_channel_wins_at_equal_success_and_availability_is_respected() -> None:
    # Given customers reachable by both channels, e-mail only, SMS only, and neither
    reachable = _reach([True, True, False, False], [True, False, True, False])

    best = best_options([0.5] * 4, [100.0] * 4, reachable, _config())

    assert best.option.tolist() == [0, 0, 1, -1]  # option 0 = nudge by e-mail, 1 = nudge by SMS
    assert best.ev.tolist() == [23.0, 23.0, 15.0, -math.inf]  # 0.25·100 − 2 and 0.25·100 − 10
    assert best.cost.tolist()[:3] == [2.0, 2.0, 10.0]
    assert math.isnan(best.cost[3])


def test_a_more_effective_channel_wins_only_where_its_extra_effect_pays_for_its_price() -> None:
    # E-mail delivers half the offer's effect for 2; SMS all of it for 10: SMS pays once 0.125·CLV > 8, CLV > 64
    email = ChannelCost("email", unit_price=2.0, success_factor=0.5)
    config = DecisionConfig(offers=(NUDGE,), channels=(email, SMS))

    best = best_options([0.5, 0.5], [200.0, 40.0], _reach([True, True], [True, True]), config)

    assert best.option.tolist() == [1, 0]
    assert best.ev.tolist() == [40.0, 3.0]


def test_each_customer_gets_the_offer_with_the_highest_ev() -> None:
    # credit: EV = p·(CLV − 10) − (1 − p)·2 beats the free nudge (0.25·CLV − 2) once CLV > 16
    credit = OfferOption("credit", unit_cost=8.0, success_rate=1.0, stayer_redemption=0.0)
    config = DecisionConfig(offers=(NUDGE, credit), channels=(EMAIL,))

    result = plan_campaign(["rich", "modest"], [0.5, 0.5], [100.0, 12.0], {"email": np.array([True, True])}, config)

    actions = result.unconstrained.actions
    assert list(actions["offer"]) == ["credit", "nudge"]
    assert list(actions["channel"]) == ["email", "email"]
    assert actions["ev"].tolist() == [44.0, 1.0]
    assert actions["cost"].tolist() == [6.0, 2.0]  # 2 + 8·(0.5 + 0.5·0)


def test_equal_options_go_to_the_first_in_configuration_order() -> None:
    twin = ChannelCost("email_b", unit_price=2.0)
    config = DecisionConfig(offers=(NUDGE,), channels=(EMAIL, twin))

    best = best_options([0.5], [100.0], {"email": np.array([True]), "email_b": np.array([True])}, config)

    assert best.option.tolist() == [0]


# --- production mode: the budget gate -----------------------------------------------------------------

# Five customers at p = 0.5 with the free nudge (s = 0.5): EV = 0.25·CLV − contact, cost = contact.
#   A by SMS:   EV 10, cost 10 (1.0 per $)      B, C by e-mail: EV 6, cost 2 (3.0 per $)
#   D by e-mail: EV 3, cost 2 (1.5 per $)       E by e-mail:    EV 1, cost 2 (0.5 per $)
# By EV: A B C D E.  By EV per dollar: B C D A E.
GATE_IDS = ["A", "B", "C", "D", "E"]
GATE_CLV = [80.0, 32.0, 32.0, 20.0, 12.0]
GATE_REACH = _reach([False, True, True, True, True], [True, False, False, False, False])


def _gate(**changes: Any) -> Plan:
    return plan_campaign(GATE_IDS, [0.5] * 5, GATE_CLV, GATE_REACH, _config(**changes)).production


@pytest.mark.parametrize(
    ("ranking", "expected", "profit", "cost"),
    [("ev", ["A"], 10.0, 10.0), ("ev_per_cost", ["B", "C", "D"], 15.0, 6.0), ("best", ["B", "C", "D"], 15.0, 6.0)],
)
def test_a_dollar_budget_takes_the_longest_prefix_of_each_ranking(
    ranking: RankingRule, expected: list[str], profit: float, cost: float
) -> None:
    plan = _gate(max_budget=10.0, ranking=ranking)

    assert _ids(plan) == expected
    assert (plan.expected_profit, plan.total_cost, plan.stopped_by) == (profit, cost, "max_budget")
    assert plan.actions["rank"].tolist() == list(range(1, len(expected) + 1))


@pytest.mark.parametrize(
    ("ranking", "expected"), [("ev", ["A"]), ("ev_per_cost", ["B"]), ("best", ["A"])]
)  # with one seat, the biggest EV wins
def test_a_customer_cap_takes_exactly_that_many_customers(ranking: RankingRule, expected: list[str]) -> None:
    plan = _gate(max_customers=1, ranking=ranking)

    assert _ids(plan) == expected
    assert (plan.n, plan.excluded_by_budget, plan.stopped_by) == (1, 4, "max_customers")


def test_best_ranking_reports_the_order_it_used() -> None:
    assert _gate(max_budget=10.0).ranking == "ev_per_cost"
    assert _gate(max_customers=1).ranking == "ev"


def test_a_budget_met_exactly_is_spent_in_full() -> None:
    plan = _gate(max_budget=6.0, ranking="ev_per_cost")

    assert _ids(plan) == ["B", "C", "D"]
    assert (plan.total_cost, plan.budget_left) == (6.0, 0.0)


def test_the_gate_stops_at_the_first_customer_who_does_not_fit_instead_of_skipping_ahead() -> None:
    # B C D cost 6; A would make 16 > 11, so the plan stops there although E (cost 2) would still fit.
    plan = _gate(max_budget=11.0, ranking="ev_per_cost")

    assert _ids(plan) == ["B", "C", "D"]
    assert (plan.budget_left, plan.excluded_by_budget) == (5.0, 2)


def test_a_zero_budget_contacts_nobody() -> None:
    plan = _gate(max_budget=0.0)

    assert plan.n == 0
    assert list(plan.actions.columns) == ACTION_COLUMNS
    assert (plan.total_cost, plan.expected_profit, plan.roi, plan.ev_threshold) == (0.0, 0.0, None, None)


def test_without_caps_production_selects_every_eligible_customer() -> None:
    result = plan_campaign(GATE_IDS, [0.5] * 5, GATE_CLV, GATE_REACH, _config())

    assert _ids(result.unconstrained) == ["A", "B", "C", "D", "E"]
    assert _ids(result.production) == ["B", "C", "D", "A", "E"]  # a tie between the orders keeps EV per dollar
    assert (result.production.expected_profit, result.production.total_cost) == (26.0, 18.0)
    assert result.production.stopped_by is None


def test_ties_keep_input_order_whether_or_not_the_ranking_is_partitioned() -> None:
    reach = {"email": np.ones(10, dtype=bool), "sms": np.zeros(10, dtype=bool)}
    for ranking, cap in itertools.product(("ev", "ev_per_cost"), (3, 8)):  # 3 of 10 takes the partition path
        plan = plan_campaign(
            list(range(10)), [0.5] * 10, [100.0] * 10, reach, _config(max_customers=cap, ranking=ranking)
        )

        assert _ids(plan.production) == list(range(cap))


# --- unconstrained mode: the profit curve ----------------------------------------------------------------


def test_the_unconstrained_optimum_equals_brute_force_over_every_n() -> None:
    ids, p, clv, reachable, config = _random_case(np.random.default_rng(11), 400)

    result = plan_campaign(ids, p, clv, reachable, config)

    ev = _reference_ev(p, clv, reachable, config)
    low, high = config.band
    candidates = sorted((e for e, q in zip(ev, p, strict=True) if low <= q <= high and e > -math.inf), reverse=True)
    totals = [math.fsum(candidates[:n]) for n in range(len(candidates) + 1)]
    n_star = max(range(len(totals)), key=lambda n: (totals[n], -n))
    assert result.curve.n_star == result.unconstrained.n == n_star
    assert 0 < n_star < len(candidates)
    assert result.unconstrained.expected_profit == pytest.approx(totals[n_star], rel=1e-12)
    assert result.curve.profit.tolist() == pytest.approx(totals, rel=1e-12, abs=1e-9)
    assert result.curve.ev.tolist() == pytest.approx(candidates, rel=1e-12)


def test_no_subset_of_customers_beats_the_unconstrained_plan() -> None:
    # Given 14 reachable in-band candidates, 9 of them with EV < 0 (no free offer): 2^14 subsets to try
    ids, p, clv, reachable, config = _random_case(np.random.default_rng(2), 36, free_offer=False)

    result = plan_campaign(ids, p, clv, reachable, config)

    ev = _reference_ev(p, clv, reachable, config)
    low, high = config.band
    pool = [e for e, q in zip(ev, p, strict=True) if low <= q <= high and e > -math.inf]
    assert (len(pool), sum(e <= 0 for e in pool)) == (14, 9)
    best = max(math.fsum(subset) for size in range(len(pool) + 1) for subset in itertools.combinations(pool, size))
    assert result.unconstrained.expected_profit == pytest.approx(best, rel=1e-12)


def test_the_threshold_is_the_smallest_targeted_ev_and_min_p_the_lowest_targeted_p() -> None:
    ids, p, clv, reachable, config = _random_case(np.random.default_rng(5), 500)

    plan = plan_campaign(ids, p, clv, reachable, config).unconstrained

    assert plan.ev_threshold == plan.actions["ev"].min() > 0.0
    assert plan.min_p == plan.actions["p"].min() >= config.band[0]
    assert plan.actions["ev"].is_monotonic_decreasing


# --- property: the production plan never exceeds its caps ----------------------------------------------


@pytest.mark.parametrize("seed", range(60))
def test_the_production_plan_never_exceeds_its_budget_and_is_the_greedy_prefix(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Odd seeds: no free offer, so every contact costs dollars and a small budget bounds the ranking (partitioned).
    ids, p, clv, reachable, config = _random_case(rng, int(rng.integers(1, 600)), free_offer=seed % 2 == 0)
    full = plan_campaign(ids, p, clv, reachable, config).unconstrained
    share = 0.3 if seed % 2 else 1.2
    budget = float(rng.uniform(0.0, share * max(full.total_cost, 1.0)))
    cap = None if rng.random() < 0.4 else int(rng.integers(0, full.n + 2))
    ranking: Ranking = "ev" if rng.random() < 0.5 else "ev_per_cost"
    config = DecisionConfig(
        offers=config.offers, channels=config.channels, max_budget=budget, max_customers=cap, ranking=ranking
    )

    plan = plan_campaign(ids, p, clv, reachable, config).production

    assert plan.total_cost <= budget
    assert math.fsum(plan.actions["cost"]) <= budget + 1e-9
    assert cap is None or plan.n <= cap
    assert _ids(plan) == _reference_gate(full, budget, cap, ranking)


# --- bad input -------------------------------------------------------------------------------------------


def _plan_with(**changes: Any) -> None:
    arguments: dict[str, Any] = {
        "customer_ids": [1, 2, 3, 4],
        "p": [0.5, 0.5, 0.5, 0.5],
        "clv": [10.0, 10.0, 10.0, 10.0],
        "reachable": _reach([True] * 4, [True] * 4),
        "config": _config(),
    } | changes
    plan_campaign(**arguments)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"clv": [1.0, 2.0, 3.0]}, "clv has 3 values but p has 4: one per customer"),
        ({"customer_ids": [1, 2]}, "customer_ids has 2 values but p has 4: one per customer"),
        (
            {"reachable": _reach([True] * 3, [True] * 4)},
            "reachable['email'] has 3 values but p has 4: one per customer",
        ),
        ({"p": [[0.5, 0.5], [0.5, 0.5]]}, "p must be a 1-D array, got shape (2, 2)"),
        ({"p": []}, "no customers to plan for: p is empty"),
        ({"p": [0.5, 0.5, math.nan, 0.5]}, "p has 1 NaN or infinite value(s), first at position 2"),
        ({"clv": [math.inf, 1.0, 1.0, -math.inf]}, "clv has 2 NaN or infinite value(s), first at position 0"),
        ({"p": [0.5, 0.5, 0.5, 1.5]}, "p must lie in [0, 1]: 1 value(s) outside, first at position 3 (1.5)"),
        ({"p": [-0.1, 0.5, 0.5, 0.5]}, "p must lie in [0, 1]: 1 value(s) outside, first at position 0 (-0.1)"),
        ({"clv": ["a", "b", "c", "d"]}, "clv must be numeric, got <U1"),
        (
            {"reachable": {"email": np.ones(4, dtype=int), "sms": np.ones(4, dtype=bool)}},
            "reachable['email'] must be a boolean array, got int64",
        ),
        (
            {"reachable": {"email": np.ones(4, dtype=bool), "push": np.ones(4, dtype=bool)}},
            "reachable must name exactly the configured channels: missing ['sms'], unknown ['push']",
        ),
    ],
)
def test_bad_input_is_refused_with_a_precise_message(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest, match=f"^{re.escape(message)}$"):
        _plan_with(**changes)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _config(max_budget=-1.0), "max_budget must be a finite amount >= 0, got -1.0"),
        (lambda: _config(max_budget=math.nan), "max_budget must be a finite amount >= 0, got nan"),
        (lambda: _config(max_customers=-1), "max_customers must be an integer >= 0, got -1"),
        (lambda: _config(max_customers=2.5), "max_customers must be an integer >= 0, got 2.5"),
        (lambda: _config(band=(0.9, 0.3)), "band must satisfy 0 <= low <= high <= 1, got (0.9, 0.3)"),
        (lambda: _config(band=(0.3, 1.2)), "band must satisfy 0 <= low <= high <= 1, got (0.3, 1.2)"),
        (lambda: _config(ranking="profit"), "ranking must be one of ['best', 'ev_per_cost', 'ev'], got 'profit'"),
        (lambda: _config(offers=()), "the configuration needs at least one offer and one channel"),
        (lambda: _config(offers=(NUDGE, NUDGE)), "each offer code must be unique, repeated: ['nudge']"),
        (lambda: OfferOption("x", 1.0, 1.5), "offer 'x': success_rate must lie in [0, 1], got 1.5"),
        (lambda: OfferOption("x", 1.0, -0.1), "offer 'x': success_rate must lie in [0, 1], got -0.1"),
        (lambda: OfferOption("x", 1.0, 0.1, 2.0), "offer 'x': stayer_redemption must lie in [0, 1], got 2.0"),
        (lambda: OfferOption("x", -5.0, 0.1), "offer 'x': unit_cost must be a finite amount >= 0, got -5.0"),
        (lambda: OfferOption("", 1.0, 0.1), "offer code must be a non-empty string, got ''"),
        (lambda: ChannelCost("email", -0.001), "channel 'email': unit_price must be a finite amount >= 0, got -0.001"),
        (
            lambda: ChannelCost.sms(0.0083, segments=0),
            "channel 'sms': units must be an integer >= 1 (segments per message), got 0",
        ),
        (
            lambda: ChannelCost("sms", 0.01, success_factor=1.2),
            "channel 'sms': success_factor must lie in [0, 1], got 1.2",
        ),
    ],
)
def test_bad_configuration_is_refused_with_a_precise_message(build: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=f"^{re.escape(message)}$"):
        build()


# --- outputs ---------------------------------------------------------------------------------------------


def test_summary_puts_both_modes_side_by_side() -> None:
    result = plan_campaign(GATE_IDS, [0.5] * 5, GATE_CLV, GATE_REACH, _config(max_budget=10.0))

    summary = result.summary()

    assert list(summary.columns) == ["production", "unconstrained"]
    assert list(summary.loc["n"]) == [3, 5]
    assert list(summary.loc["expected_profit"]) == [15.0, 26.0]
    assert list(summary.loc["stopped_by"]) == ["max_budget", None]


def test_profit_curve_is_written_as_a_png(tmp_path: Path) -> None:
    result = plan_campaign(GATE_IDS, [0.5] * 5, GATE_CLV, GATE_REACH, _config(max_budget=10.0))

    path = profit_curve(
        tmp_path / "plots" / "profit.png",
        result.curve.profit,
        result.curve.n_star,
        production_n=result.production.n,
        production_profit=result.production.expected_profit,
    )

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- helpers -------------------------------------------------------------------------------------------------


def _random_case(
    rng: np.random.Generator, n: int, *, free_offer: bool = True
) -> tuple[Any, Any, Any, dict[str, Any], DecisionConfig]:
    """Customers with heterogeneous costs: offers with partial stayer redemption, two channels, partial consent."""
    offers = (
        *([OfferOption("nudge", 0.0, 0.01)] if free_offer else []),
        OfferOption("ten_percent", 6.0, 0.04, stayer_redemption=0.3),
        OfferOption("free_month", 25.0, 0.08, stayer_redemption=0.6),
    )
    channels = (ChannelCost.email(0.0009, llm_cost_per_recipient=0.0004), ChannelCost.sms(0.0118, segments=2))
    p = rng.beta(2.0, 5.0, n)
    clv = rng.lognormal(5.0, 1.0, n) - 20.0  # a few negative CLVs on purpose
    reachable = {"email": rng.random(n) < 0.8, "sms": rng.random(n) < 0.35}
    return np.arange(n), p, clv, reachable, DecisionConfig(offers=offers, channels=channels)


def _reference_ev(p: Any, clv: Any, reachable: dict[str, Any], config: DecisionConfig) -> list[float]:
    """Each customer's best EV, one customer and one option at a time, straight from the formula."""
    result = []
    for i in range(len(p)):
        values = [
            float(p[i] * (offer.success_rate * channel.success_factor * clv[i] - cost_tp) - (1 - p[i]) * cost_fp)
            for offer in config.offers
            for channel in config.channels
            if reachable[channel.name][i]
            for cost_tp, cost_fp in [
                (
                    channel.contact_cost + offer.unit_cost,
                    channel.contact_cost + offer.unit_cost * offer.stayer_redemption,
                )
            ]
        ]
        result.append(max(values, default=-math.inf))
    return result


def _reference_gate(full: Plan, budget: float, cap: int | None, ranking: Ranking) -> list[int]:
    """The greedy prefix, one customer at a time, over the eligible customers (the unconstrained plan)."""
    rows = full.actions
    keys = rows["ev"] if ranking == "ev" else rows["ev"] / rows["cost"]
    order = sorted(range(len(rows)), key=lambda j: (-keys.iloc[j], rows["customer_id"].iloc[j]))
    chosen: list[int] = []
    spent = 0.0
    for j in order:
        if (cap is not None and len(chosen) == cap) or spent + rows["cost"].iloc[j] > budget:
            break
        spent += rows["cost"].iloc[j]
        chosen.append(int(rows["customer_id"].iloc[j]))
    return chosen


def test_a_curve_is_thinned_to_a_charts_worth_keeping_both_ends_and_the_optimum() -> None:
    profit = np.concatenate([[0.0], np.cumsum(np.linspace(5.0, -5.0, 10_000))])
    n_star = int(np.argmax(profit))

    points = curve_points(profit, max_points=50, keep=n_star)

    assert len(points) <= 51
    assert points[0] == (0, 0.0)
    assert points[-1] == (10_000, pytest.approx(profit[-1]))
    assert (n_star, pytest.approx(profit[n_star])) in points
    assert [n for n, _ in points] == sorted({n for n, _ in points})
    assert curve_points(profit[:3], max_points=50) == [(0, 0.0), (1, 5.0), (2, pytest.approx(profit[2]))]
