"""Decision engine throughput: a full campaign plan for 1,000,000 customers against a bare numpy baseline.

The inputs are seeded and shaped like real ones: p ~ Beta(2, 5) (mean 0.29, near the Telco base rate
of 0.265), CLV ~ lognormal (median about $150, a long right tail), three offers with success rates of a
few points (treatment effects, ml-anchors §5.4), e-mail at SendGrid's overage price and a 2-segment SMS
at Twilio's all-in price per segment (compliance-and-providers §2.2–2.3), plus an LLM drafting share,
with 80 % e-mail and 35 % SMS consent drawn independently (so about 13 % cannot be reached).

Timed, median of ``--runs``:

- **plan**: ``plan_campaign`` — validation, EV over every offer × channel with reachability, band,
  profit curve, production budget gate, both plans and their action-plan DataFrames.
- **baseline**: the same arrays, one option, plain numpy: EV, argsort descending, cumsum, argmax.

    .venv/bin/python bench/plan_million.py [--customers 1000000] [--runs 7] [--ranking best|ev_per_cost|ev]
                                           [--budget 50000] [--max-customers 100000] [--band 0.30 0.90]

``--band 0 1`` is the engine's worst case: every reachable customer is a candidate to score and sort.

Target: plan < 5 s and ≤ 3× the baseline. Measured on a 2-core machine (numpy 2.4, pandas 3.1): plan
80 ms, baseline 91 ms (0.88×) — the plan sorts only the 37 % of customers who are reachable and in
the band; with ``--band 0 1`` (87 % candidates, an 866,000-row unconstrained action plan) 204 ms
against 92 ms (2.2×).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ml.decision import ChannelCost, DecisionConfig, OfferOption, PlanComparison, plan_campaign

OFFERS = (
    OfferOption("message_only", unit_cost=0.0, success_rate=0.005),
    OfferOption("ten_percent", unit_cost=6.0, success_rate=0.04, stayer_redemption=0.30),
    OfferOption("free_month", unit_cost=25.0, success_rate=0.08, stayer_redemption=0.60),
)
CHANNELS = (
    ChannelCost.email(0.0009, llm_cost_per_recipient=0.0004),
    ChannelCost("sms", unit_price=0.0118, units=2, llm_cost_per_recipient=0.0002, success_factor=1.0),
)


def main() -> None:
    args = _arguments()
    ids, p, clv, reachable = _population(args.customers, args.seed)
    config = DecisionConfig(
        offers=OFFERS,
        channels=CHANNELS,
        max_budget=args.budget,
        max_customers=args.max_customers,
        ranking=args.ranking,
        band=(args.band[0], args.band[1]),
    )
    (plan_seconds, result), (baseline_seconds, baseline_n) = _medians(
        [lambda: plan_campaign(ids, p, clv, reachable, config), lambda: _baseline(p, clv)], args.runs
    )
    _report(args, result, plan_seconds, baseline_seconds, baseline_n)


def _population(n: int, seed: int) -> tuple[Any, Any, Any, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1, dtype=np.int64)
    p = rng.beta(2.0, 5.0, n)
    clv = rng.lognormal(mean=5.0, sigma=1.0, size=n)
    reachable = {"email": rng.random(n) < 0.80, "sms": rng.random(n) < 0.35}
    return ids, p, clv, reachable


def _baseline(p: Any, clv: Any) -> int:
    # One option (ten_percent by e-mail), no band, no channels, no budget: the least a profit curve costs.
    contact = CHANNELS[0].contact_cost
    ev = p * (0.04 * clv - (contact + 6.0)) - (1.0 - p) * (contact + 6.0 * 0.30)
    order = np.argsort(-ev)
    profit = np.cumsum(ev[order])
    return int(np.argmax(profit)) + 1


def _medians(works: list[Callable[[], Any]], runs: int) -> list[tuple[float, Any]]:
    """Median time and last result of each piece of work; the runs alternate so load drift hits both alike."""
    results = [work() for work in works]  # warm-up: first-touch page faults and imports are not measured
    times: list[list[float]] = [[] for _ in works]
    for _ in range(runs):
        for index, work in enumerate(works):
            started = time.perf_counter()
            results[index] = work()
            times[index].append(time.perf_counter() - started)
    return [(statistics.median(spent), result) for spent, result in zip(times, results, strict=True)]


def _report(args: argparse.Namespace, result: PlanComparison, plan: float, baseline: float, baseline_n: int) -> None:
    funnel = result.funnel
    print(
        f"customers {funnel.customers:,}: no channel {funnel.no_channel:,}, below band {funnel.below_band:,}, "
        f"above band {funnel.above_band:,}, EV <= 0 {funnel.ev_not_positive:,}, eligible {funnel.eligible:,}"
    )
    for mode in (result.production, result.unconstrained):
        roi = "n/a" if mode.roi is None else f"{mode.roi:.2f}"
        print(
            f"{mode.mode:>13} (by {mode.ranking}): N {mode.n:,}  cost ${mode.total_cost:,.2f}  "
            f"profit ${mode.expected_profit:,.2f}  ROI {roi}  left out by the gate {mode.excluded_by_budget:,} "
            f"({mode.stopped_by})"
        )
    for mode in (result.production, result.unconstrained):
        print(f"{mode.mode:>13} offers × channels: {_mix(mode.actions)}")
    print(f"plan     {plan * 1000:8.1f} ms  (median of {args.runs}, ranking={args.ranking})")
    print(f"baseline {baseline * 1000:8.1f} ms  (one option: EV, argsort, cumsum, argmax; N* {baseline_n:,})")
    print(f"ratio    {plan / baseline:8.2f}×  (target ≤ 3×, and plan < 5 s)")


def _mix(actions: Any) -> dict[str, int]:
    counts = actions.groupby(["offer", "channel"], observed=True).size()
    return {f"{offer}/{channel}": int(count) for (offer, channel), count in counts.items()}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--budget", type=float, default=50_000.0)
    parser.add_argument("--max-customers", type=int, default=100_000)
    parser.add_argument("--ranking", choices=["best", "ev_per_cost", "ev"], default="best")
    parser.add_argument("--band", type=float, nargs=2, default=[0.30, 0.90], metavar=("LOW", "HIGH"))
    return parser.parse_args()


if __name__ == "__main__":
    main()
