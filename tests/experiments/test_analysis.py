"""The decision: a variant wins only on a significantly better success metric with no significantly worse
guardrail; an SRM voids the decision; otherwise "no winner yet" with the sample still needed. And A/A tests
of the fixed-horizon Welch test keep false positives near α."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import BadRequest
from experiments.analysis import ArmStats, Metric, MetricKind, Moments, Options, Role, Status, analyze, pooled
from experiments.frequentist import mean_and_variance, welch
from experiments.multiple import Correction
from experiments.power import sample_size_rates

METRICS = [
    Metric("conversion", "Converted", MetricKind.RATE, Role.SUCCESS),
    Metric("revenue", "Revenue", MetricKind.MEAN, Role.SUCCESS, cuped=True),
    Metric("unsubscribe", "Unsubscribed", MetricKind.RATE, Role.GUARDRAIL, higher_is_better=False),
    Metric("open", "Opened", MetricKind.RATE, Role.DIAGNOSTIC),
]


def arm(name: str, n: int, conversions: int, unsubscribes: int, revenue_per: float = 2.0) -> ArmStats:
    revenue = conversions * revenue_per * 50
    return ArmStats(
        name,
        n,
        {
            "conversion": Moments(conversions, conversions),
            "revenue": Moments(revenue, conversions * (revenue_per * 50) ** 2 * 1.5, n * 3.0, n * 30.0, revenue * 3.1),
            "unsubscribe": Moments(unsubscribes, unsubscribes),
            "open": Moments(n // 5, n // 5),
        },
    )


def test_a_better_variant_with_unharmed_guardrails_wins() -> None:
    arms = [arm("holdout", 10_000, 200, 20), arm("v1", 45_000, 1_400, 95), arm("v2", 45_000, 920, 88)]

    result = analyze(arms, METRICS, control="holdout", weights={"holdout": 0.1, "v1": 0.45, "v2": 0.45})

    assert (result.decision.status, result.decision.winner) == (Status.WINNER, "v1")
    assert result.decision.verdicts[0].better == ("conversion", "revenue")
    assert not result.decision.verdicts[1].wins


def test_right_after_the_send_when_nobody_has_bought_every_test_says_no_evidence_instead_of_failing() -> None:
    nothing = {metric.name: Moments(0.0, 0.0) for metric in METRICS}
    arms = [ArmStats("holdout", 60, nothing), ArmStats("v1", 540, nothing)]

    result = analyze(arms, METRICS, control="holdout", weights={"holdout": 0.1, "v1": 0.9})

    assert result.decision.status is Status.NO_WINNER_YET
    assert {r.metric: r.p_value for r in result.results if r.primary} == {
        "conversion": 1.0,
        "revenue": 1.0,
        "unsubscribe": 1.0,
        "open": 1.0,
    }


def test_a_variant_that_raises_unsubscribes_significantly_does_not_win() -> None:
    arms = [arm("holdout", 10_000, 200, 20), arm("v1", 45_000, 1_400, 400)]

    result = analyze(arms, METRICS, control="holdout")

    verdict = result.decision.verdicts[0]
    assert (verdict.wins, verdict.better, verdict.worse) == (False, ("conversion", "revenue"), ("unsubscribe",))
    assert (result.decision.status, result.decision.winner) == (Status.NO_WINNER_YET, None)


def test_a_sample_ratio_mismatch_voids_the_decision() -> None:
    arms = [arm("holdout", 10_000, 200, 20), arm("v1", 40_000, 1_400, 95)]

    result = analyze(arms, METRICS, control="holdout", weights={"holdout": 0.1, "v1": 0.9})

    assert result.srm is not None
    assert result.srm.flagged
    assert (result.decision.status, result.decision.winner) == (Status.SAMPLE_RATIO_MISMATCH, None)


def test_no_winner_yet_says_how_many_customers_a_ten_percent_lift_needs() -> None:
    arms = [arm("holdout", 2_000, 60, 4), arm("v1", 18_000, 560, 40)]

    result = analyze(arms, METRICS, control="holdout", options=Options(target_lift=0.10))

    needed = result.decision.sample_needed[0]
    size = sample_size_rates(0.03, 0.033, alpha=0.05 / 2, power=0.8, ratio=9.0)  # 2 success tests: α/2
    assert result.decision.status is Status.NO_WINNER_YET
    assert (needed.metric, needed.n_control, needed.n_treatment) == (
        "conversion",
        math.ceil(size.n_control),
        math.ceil(size.n_treatment),
    )
    assert (needed.more_control, needed.more_treatment) == (needed.n_control - 2_000, needed.n_treatment - 18_000)
    assert needed.detectable_now > 0.10


def test_benjamini_hochberg_can_be_chosen_and_is_named_on_the_results() -> None:
    arms = [arm("holdout", 10_000, 200, 20), arm("v1", 45_000, 1_400, 95)]

    result = analyze(arms, METRICS, control="holdout", options=Options(correction=Correction.BENJAMINI_HOCHBERG))

    assert result.primary("conversion", "v1").correction == "Benjamini–Hochberg (false discovery rate)"
    assert result.primary("unsubscribe", "v1").correction == "no correction"
    assert result.primary("open", "v1").p_adjusted is None  # diagnostics never decide


def test_pooled_arms_add_their_sufficient_statistics() -> None:
    treated = pooled("treated", [arm("v1", 100, 5, 1), arm("v2", 300, 7, 2)])

    assert (treated.n, treated.metrics["conversion"], treated.metrics["unsubscribe"]) == (
        400,
        Moments(12, 12),
        Moments(3, 3),
    )


def test_an_unknown_control_is_refused() -> None:
    with pytest.raises(BadRequest, match=r"^no arm 'holdout'; arms: \['v1', 'v2'\]$"):
        analyze([arm("v1", 10, 1, 0), arm("v2", 10, 1, 0)], METRICS, control="holdout")


def test_aa_welch_tests_on_zero_inflated_revenue_reject_at_about_alpha() -> None:
    experiments, customers = 4_000, 400
    rng = np.random.default_rng(99)
    buys = rng.random((2, experiments, customers)) < 0.08
    revenue = np.where(buys, rng.lognormal(3.5, 0.8, (2, experiments, customers)), 0.0)
    (mean_c, var_c), (mean_t, var_t) = (
        mean_and_variance(customers, side.sum(axis=1), (side**2).sum(axis=1)) for side in revenue
    )

    p_values = welch(mean_c, var_c, customers, mean_t, var_t, customers).p_value

    assert abs((p_values < 0.05).mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / experiments)


def test_for_a_lower_is_better_metric_winning_means_lower_and_the_loss_is_the_rise() -> None:
    arms = [arm("holdout", 10_000, 200, 20), arm("v1", 10_000, 200, 60)]

    result = analyze(arms, METRICS, control="holdout")

    belief = next(b for b in result.bayesian if b.metric == "unsubscribe")
    assert belief.chance_to_win < 1e-4
    assert belief.expected_loss == pytest.approx(0.004, rel=0.01)  # 0.6 % − 0.2 % of customers
    assert belief.ci_low > 0  # the interval is of p_t − p_c, which is positive here


def test_diagnostics_can_be_left_out_of_the_comparisons() -> None:
    arms = [arm("holdout", 1_000, 20, 2), arm("v1", 1_000, 30, 2)]

    result = analyze(arms, METRICS, control="holdout", diagnostics=False)

    assert "open" not in {r.metric for r in result.results}
    assert result.arms[0].means["open"] == 0.2
