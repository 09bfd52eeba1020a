"""On the real Hillstrom randomised e-mail experiment, the analysis reproduces each e-mail arm's effect on visits,
conversions and spend against the no-e-mail arm — estimates, intervals and p-values computed independently from
the CSV with pandas, scipy and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from experiments.analysis import ExperimentAnalysis, Scale, Status
from experiments.hillstrom import CONTROL, EMAILS, hillstrom_analysis, load


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return load()


@pytest.fixture(scope="module")
def analysis(data: pd.DataFrame) -> ExperimentAnalysis:
    """The analysis from sufficient statistics only: per arm, sums of the outcomes, squares and cross-products."""
    return hillstrom_analysis(data)


def _arm(data: pd.DataFrame, arm: str) -> pd.DataFrame:
    return data[data.segment == arm]


def test_the_arms_are_the_published_sizes_and_pass_the_srm_check(analysis: ExperimentAnalysis) -> None:
    assert {a.arm: a.n for a in analysis.arms} == {"Mens E-Mail": 21_307, "No E-Mail": 21_306, "Womens E-Mail": 21_387}
    assert analysis.srm is not None
    assert not analysis.srm.flagged


@pytest.mark.parametrize("arm", EMAILS)
@pytest.mark.parametrize("metric", ["visit", "conversion"])
def test_rate_effects_match_statsmodels(
    data: pd.DataFrame, analysis: ExperimentAnalysis, arm: str, metric: str
) -> None:
    treated, control = _arm(data, arm)[metric], _arm(data, CONTROL)[metric]
    counts, sizes = [int(treated.sum()), int(control.sum())], [len(treated), len(control)]

    result = analysis.primary(metric, arm)

    _, p_value = proportions_ztest(counts, sizes)
    low, high = confint_proportions_2indep(counts[0], sizes[0], counts[1], sizes[1], method="newcomb")
    assert result.estimate == pytest.approx(treated.mean() - control.mean(), rel=1e-12)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-9)
    assert result.p_value == pytest.approx(p_value, rel=1e-6)


@pytest.mark.parametrize("arm", EMAILS)
def test_spend_effects_match_scipy_welch_plain_and_cuped_with_past_year_spend(
    data: pd.DataFrame, analysis: ExperimentAnalysis, arm: str
) -> None:
    treated, control = _arm(data, arm), _arm(data, CONTROL)
    pair = pd.concat([treated, control])
    theta = np.cov(pair.spend, pair.history)[0, 1] / pair.history.var()
    adjust = lambda frame: frame.spend - theta * (frame.history - pair.history.mean())  # noqa: E731

    welch = stats.ttest_ind(treated.spend, control.spend, equal_var=False)
    cuped = stats.ttest_ind(adjust(treated), adjust(control), equal_var=False)

    plain = next(r for r in analysis.results if r.arm == arm and r.metric == "spend" and r.method == "Welch t-test")
    adjusted = analysis.primary("spend", arm)
    for result, expected in ((plain, welch), (adjusted, cuped)):
        interval = expected.confidence_interval(0.95)
        assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high), rel=1e-9)
        assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    assert plain.estimate == pytest.approx(treated.spend.mean() - control.spend.mean(), rel=1e-12)


def test_the_published_effects_of_the_mens_email(analysis: ExperimentAnalysis) -> None:
    # Men's e-mail vs none: visits 18.3 % vs 10.6 %, conversions 1.25 % vs 0.57 %, spend $1.42 vs $0.65.
    means = {a.arm: a.means for a in analysis.arms}

    assert (round(means["Mens E-Mail"]["visit"], 3), round(means[CONTROL]["visit"], 3)) == (0.183, 0.106)
    assert (round(means["Mens E-Mail"]["conversion"], 4), round(means[CONTROL]["conversion"], 4)) == (0.0125, 0.0057)
    assert (round(means["Mens E-Mail"]["spend"], 2), round(means[CONTROL]["spend"], 2)) == (1.42, 0.65)


def test_both_emails_win_on_every_metric_after_holm_and_mens_is_the_winner(analysis: ExperimentAnalysis) -> None:
    primaries = [r for r in analysis.results if r.primary]

    expected = multipletests([r.p_value for r in primaries], method="holm")[1]
    assert [r.p_adjusted for r in primaries] == pytest.approx(expected.tolist(), rel=1e-12)
    assert analysis.decision.status is Status.WINNER
    assert analysis.decision.winner == "Mens E-Mail"
    assert all(v.better == ("visit", "conversion", "spend") for v in analysis.decision.verdicts)


def test_every_number_names_its_method(analysis: ExperimentAnalysis) -> None:
    relative = [r for r in analysis.results if r.scale is Scale.RELATIVE]

    assert all(r.method for r in analysis.results)
    assert all(b.method for b in analysis.bayesian)
    assert {r.method for r in relative} == {
        "relative lift of a rate, delta method (normal)",
        "relative lift, Welch t-test with delta-method SE",
        "relative lift, CUPED (θ pooled across arms), delta method",
    }
