"""An experiment's analysis from per-arm sufficient statistics: every arm against the control on every metric,
frequentist, CUPED, always-valid and Bayesian, corrected for multiple testing, and the decision.

The input is what SQL aggregates give (``ArmStats``: n and, per metric, Σy, Σy², and for CUPED the
pre-period Σx, Σx², Σxy), so a million customers cost no more than a thousand. The output is plain
dataclasses (``ExperimentAnalysis``) that a terminal, the web UI or an HTML report renders as they are; every
number carries the name of the method that produced it.

**Decision rule** (``experimentation.md`` §2.13, simplified): a treatment wins only if at least one success
metric is significantly better after the multiple-testing correction (Holm by default, across treatments ×
success metrics) **and** no guardrail metric is significantly worse (uncorrected, which makes "not worse"
harder to pass). A sample-ratio mismatch voids the decision. Otherwise: "no winner yet", with the sample
still needed to detect a target lift on the first success metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from core.errors import BadRequest
from experiments import bayesian, frequentist, power, sequential
from experiments.frequentist import Comparison, CovariateMoments, SrmResult
from experiments.multiple import CORRECTION_NAMES, Correction, adjust


class MetricKind(StrEnum):
    RATE = "rate"  # a 0/1 outcome per customer (converted, unsubscribed …)
    MEAN = "mean"  # an amount per customer (revenue)


class Role(StrEnum):
    SUCCESS = "success"  # can make a treatment win
    GUARDRAIL = "guardrail"  # must not be significantly worse
    DIAGNOSTIC = "diagnostic"  # shown, never decides (opens: Apple MPP inflates them)


class Scale(StrEnum):
    ABSOLUTE = "absolute"  # treatment − control (rate points or currency per customer)
    RELATIVE = "relative"  # (treatment − control) / |control|


class Status(StrEnum):
    WINNER = "winner"
    NO_WINNER_YET = "no_winner_yet"
    SAMPLE_RATIO_MISMATCH = "sample_ratio_mismatch"


@dataclass(frozen=True, slots=True)
class Metric:
    """What is measured per customer, how it is tested and what it may decide."""

    name: str
    label: str
    kind: MetricKind
    role: Role
    higher_is_better: bool = True
    cuped: bool = False  # adjust with the metric's pre-period covariate (Moments.pre_*)


@dataclass(frozen=True, slots=True)
class Moments:
    """One metric's sufficient statistics in one arm: Σy, Σy² and, for CUPED, Σx, Σx², Σxy of the covariate.

    For a rate Σy² = Σy (each y is 0 or 1).
    """

    total: float
    total_sq: float
    pre_total: float = 0.0
    pre_total_sq: float = 0.0
    cross: float = 0.0

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            self.total + other.total,
            self.total_sq + other.total_sq,
            self.pre_total + other.pre_total,
            self.pre_total_sq + other.pre_total_sq,
            self.cross + other.cross,
        )


@dataclass(frozen=True, slots=True)
class ArmStats:
    """Everyone assigned to one arm (intention to treat) and their metrics' sufficient statistics."""

    arm: str
    n: int
    metrics: Mapping[str, Moments]


def pooled(name: str, arms: Sequence[ArmStats]) -> ArmStats:
    """Several arms as one (e.g. every variant as "treated"): sufficient statistics add up."""
    if not arms:
        raise BadRequest("nothing to pool")
    metrics = {key: sum((arm.metrics[key] for arm in arms[1:]), arms[0].metrics[key]) for key in arms[0].metrics}
    return ArmStats(name, sum(arm.n for arm in arms), metrics)


@dataclass(frozen=True, slots=True)
class Options:
    alpha: float = 0.05
    correction: Correction = Correction.HOLM
    power: float = 0.8
    target_lift: float = 0.10  # relative lift the "sample still needed" is sized for
    tuning_n: float = sequential.TUNING_N
    beta_prior: tuple[int, int] = (1, 1)


@dataclass(frozen=True, slots=True)
class Result:
    """One effect of one arm against the control on one metric, with its interval, p-value and method.

    ``primary`` marks the result the decision reads (per metric: the two-proportion test for rates, CUPED
    when available else Welch for means). ``p_adjusted`` is set on primary results of success and guardrail
    metrics, with the correction's name in ``correction``.
    """

    metric: str
    arm: str
    control: str
    scale: Scale
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    primary: bool = False
    p_adjusted: float | None = None
    correction: str | None = None


@dataclass(frozen=True, slots=True)
class BayesianResult:
    metric: str
    arm: str
    control: str
    scale: Scale
    chance_to_win: float
    expected_loss: float
    ci_low: float
    ci_high: float
    method: str


@dataclass(frozen=True, slots=True)
class ArmSummary:
    arm: str
    n: int
    means: dict[str, float]
    expected_share: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    arm: str
    wins: bool
    better: tuple[str, ...]  # success metrics significantly better after correction
    worse: tuple[str, ...]  # guardrail metrics significantly worse


@dataclass(frozen=True, slots=True)
class SampleNeeded:
    """Customers per arm needed to detect ``target_lift`` on ``metric`` at the current split, and what is
    detectable now (relative), both at α divided by the number of success tests (Bonferroni, conservative)."""

    arm: str
    metric: str
    target_lift: float
    n_control: int
    n_treatment: int
    more_control: int
    more_treatment: int
    detectable_now: float
    method: str


@dataclass(frozen=True, slots=True)
class Decision:
    status: Status
    winner: str | None
    verdicts: tuple[Verdict, ...]
    sample_needed: tuple[SampleNeeded, ...]
    rule: str


RULE = (
    "wins if a success metric is significantly better after {correction} at α = {alpha:g} and no guardrail "
    "is significantly worse (uncorrected)"
)


@dataclass(frozen=True, slots=True)
class ExperimentAnalysis:
    control: str
    treatments: tuple[str, ...]
    metrics: tuple[Metric, ...]
    alpha: float
    arms: tuple[ArmSummary, ...]
    srm: SrmResult | None
    results: tuple[Result, ...]
    bayesian: tuple[BayesianResult, ...]
    decision: Decision
    notes: tuple[str, ...] = field(default=())

    def primary(self, metric: str, arm: str) -> Result:
        """The result the decision reads for ``metric`` and ``arm``."""
        return next(r for r in self.results if r.primary and r.metric == metric and r.arm == arm)


def analyze(
    arms: Sequence[ArmStats],
    metrics: Sequence[Metric],
    *,
    control: str,
    treatments: Sequence[str] | None = None,
    weights: Mapping[str, float] | None = None,
    options: Options | None = None,
    diagnostics: bool = True,
) -> ExperimentAnalysis:
    """Compare every treatment arm with ``control`` on every metric and decide.

    Parameters
    ----------
    arms : sequence of ArmStats
        Every arm, including the control; each carries every metric's moments.
    metrics : sequence of Metric
    control : str
        The arm the others are compared with (the holdout, or the first variant in a pure A/B test).
    treatments : sequence of str, optional
        The arms compared with the control; by default every other arm.
    weights : mapping, optional
        The configured split (any scale) for the SRM check; without it, no SRM check.
    options : Options, optional
    diagnostics : bool
        Compare diagnostic metrics too (False against a holdout that cannot open a message it never got).

    Raises
    ------
    core.errors.BadRequest
        An unknown control or treatment, an arm with fewer than 2 customers, or a metric missing from an arm.
    """
    options = options or Options()
    by_name = {arm.arm: arm for arm in arms}
    chosen = tuple(treatments) if treatments is not None else tuple(a.arm for a in arms if a.arm != control)
    _validate(by_name, metrics, control, chosen)
    srm = frequentist.srm_check({a.arm: a.n for a in arms}, weights) if weights is not None else None
    results: list[Result] = []
    beliefs: list[BayesianResult] = []
    for arm in chosen:
        for metric in metrics:
            if metric.role is Role.DIAGNOSTIC and not diagnostics:
                continue
            found, belief = _compare(by_name[control], by_name[arm], metric, options)
            results += found
            beliefs += belief
    results = _corrected(results, metrics, options)
    decision = _decide(results, metrics, chosen, by_name, control, srm, options)
    return ExperimentAnalysis(
        control=control,
        treatments=chosen,
        metrics=tuple(metrics),
        alpha=options.alpha,
        arms=tuple(_summary(arm, metrics, srm) for arm in arms),
        srm=srm,
        results=tuple(results),
        bayesian=tuple(beliefs),
        decision=decision,
    )


def _validate(by_name: Mapping[str, ArmStats], metrics: Sequence[Metric], control: str, chosen: Sequence[str]) -> None:
    unknown = [arm for arm in (control, *chosen) if arm not in by_name]
    if unknown:
        raise BadRequest(f"no arm {unknown[0]!r}; arms: {sorted(by_name)}")
    small = [arm for arm in (control, *chosen) if by_name[arm].n < 2]
    if small:
        raise BadRequest(f"arms need at least 2 customers to be compared: {small}")
    missing = [(arm.arm, m.name) for arm in by_name.values() for m in metrics if m.name not in arm.metrics]
    if missing:
        raise BadRequest(f"metrics missing from arms: {missing}")


def _summary(arm: ArmStats, metrics: Sequence[Metric], srm: SrmResult | None) -> ArmSummary:
    share = None
    if srm is not None and arm.arm in srm.expected:
        total = sum(srm.expected.values())
        share = srm.expected[arm.arm] / total if total else None
    means = {m.name: arm.metrics[m.name].total / arm.n if arm.n else math.nan for m in metrics}
    return ArmSummary(arm.arm, arm.n, means, share)


def _compare(
    control: ArmStats, treatment: ArmStats, metric: Metric, options: Options
) -> tuple[list[Result], list[BayesianResult]]:
    c, t = control.metrics[metric.name], treatment.metrics[metric.name]
    if metric.kind is MetricKind.RATE:
        return _compare_rates(control.n, c, treatment.n, t, metric, control.arm, treatment.arm, options)
    return _compare_means(control.n, c, treatment.n, t, metric, control.arm, treatment.arm, options)


def _result(
    comparison: Comparison, metric: Metric, arm: str, control: str, scale: Scale, *, primary: bool = False
) -> Result:
    return Result(
        metric=metric.name,
        arm=arm,
        control=control,
        scale=scale,
        estimate=float(comparison.estimate),
        ci_low=float(comparison.ci_low),
        ci_high=float(comparison.ci_high),
        p_value=float(comparison.p_value),
        method=comparison.method,
        primary=primary,
    )


def _compare_rates(
    n_c: int, c: Moments, n_t: int, t: Moments, metric: Metric, control: str, arm: str, options: Options
) -> tuple[list[Result], list[BayesianResult]]:
    alpha = options.alpha
    absolute = frequentist.two_proportions(c.total, n_c, t.total, n_t, alpha)
    results = [
        _result(absolute, metric, arm, control, Scale.ABSOLUTE, primary=True),
        _result(_sequential(absolute, n_c + n_t, options), metric, arm, control, Scale.ABSOLUTE),
    ]
    if c.total > 0:
        relative = frequentist.relative_rate_lift(c.total, n_c, t.total, n_t, alpha)
        results.append(_result(relative, metric, arm, control, Scale.RELATIVE))
    if metric.higher_is_better:
        belief = bayesian.beta_binomial(round(c.total), n_c, round(t.total), n_t, options.beta_prior, alpha)
    else:  # winning is being lower: P(p_c > p_t), and the loss of shipping is E[max(p_t − p_c, 0)]
        swapped = bayesian.beta_binomial(round(t.total), n_t, round(c.total), n_c, options.beta_prior, alpha)
        belief = replace(swapped, ci_low=-swapped.ci_high, ci_high=-swapped.ci_low)
    return results, [_belief(belief, metric, arm, control, Scale.ABSOLUTE)]


def _compare_means(
    n_c: int, c: Moments, n_t: int, t: Moments, metric: Metric, control: str, arm: str, options: Options
) -> tuple[list[Result], list[BayesianResult]]:
    alpha = options.alpha
    mean_c, var_c = frequentist.mean_and_variance(n_c, c.total, c.total_sq)
    mean_t, var_t = frequentist.mean_and_variance(n_t, t.total, t.total_sq)
    plain = frequentist.welch(mean_c, var_c, n_c, mean_t, var_t, n_t, alpha)
    relative = frequentist.welch(mean_c, var_c, n_c, mean_t, var_t, n_t, alpha, relative=True)
    primary, primary_relative = plain, relative
    results = [_result(plain, metric, arm, control, Scale.ABSOLUTE, primary=not metric.cuped)]
    if float(mean_c) != 0:
        results.append(_result(relative, metric, arm, control, Scale.RELATIVE))
    if metric.cuped:
        moments_c, moments_t = _covariates(n_c, c), _covariates(n_t, t)
        primary = frequentist.cuped(moments_c, moments_t, alpha)
        primary_relative = frequentist.cuped(moments_c, moments_t, alpha, relative=True)
        results.append(_result(primary, metric, arm, control, Scale.ABSOLUTE, primary=True))
        if float(mean_c) != 0:
            results.append(_result(primary_relative, metric, arm, control, Scale.RELATIVE))
    results.append(_result(_sequential(primary, n_c + n_t, options), metric, arm, control, Scale.ABSOLUTE))
    if float(mean_c) == 0:
        return results, []
    sign = 1.0 if metric.higher_is_better else -1.0  # a lower-is-better lift wins when it is negative
    win, loss, low, high = bayesian.gaussian_lift(sign * primary_relative.estimate, primary_relative.se, alpha=alpha)
    if sign < 0:
        low, high = -high, -low
    method = bayesian.GAUSSIAN + (" (CUPED-adjusted)" if metric.cuped else "")
    belief = bayesian.BayesResult(method, float(win), float(loss), float(low), float(high))
    return results, [_belief(belief, metric, arm, control, Scale.RELATIVE)]


def _covariates(n: int, moments: Moments) -> CovariateMoments:
    return CovariateMoments(n, moments.total, moments.total_sq, moments.pre_total, moments.pre_total_sq, moments.cross)


def _sequential(comparison: Comparison, units: int, options: Options) -> Comparison:
    return sequential.confidence_sequence(comparison.estimate, comparison.se, units, options.alpha, options.tuning_n)


def _belief(result: bayesian.BayesResult, metric: Metric, arm: str, control: str, scale: Scale) -> BayesianResult:
    return BayesianResult(
        metric.name,
        arm,
        control,
        scale,
        result.chance_to_win,
        result.expected_loss,
        result.ci_low,
        result.ci_high,
        result.method,
    )


def _corrected(results: list[Result], metrics: Sequence[Metric], options: Options) -> list[Result]:
    roles = {m.name: m.role for m in metrics}
    success = [i for i, r in enumerate(results) if r.primary and roles[r.metric] is Role.SUCCESS]
    adjusted = adjust([results[i].p_value for i in success], options.correction).tolist() if success else []
    corrected = list(results)
    for i, p in zip(success, adjusted, strict=True):
        corrected[i] = replace(results[i], p_adjusted=float(p), correction=CORRECTION_NAMES[options.correction])
    for i, r in enumerate(results):
        if r.primary and roles[r.metric] is Role.GUARDRAIL:
            corrected[i] = replace(r, p_adjusted=r.p_value, correction=CORRECTION_NAMES[Correction.NONE])
    return corrected


def _decide(
    results: Sequence[Result],
    metrics: Sequence[Metric],
    treatments: Sequence[str],
    by_name: Mapping[str, ArmStats],
    control: str,
    srm: SrmResult | None,
    options: Options,
) -> Decision:
    rule = RULE.format(correction=CORRECTION_NAMES[options.correction], alpha=options.alpha)
    verdicts = tuple(_verdict(results, metrics, arm, options.alpha) for arm in treatments)
    success = [m for m in metrics if m.role is Role.SUCCESS]
    if srm is not None and srm.flagged:
        return Decision(Status.SAMPLE_RATIO_MISMATCH, None, verdicts, (), rule)
    winners = [v.arm for v in verdicts if v.wins]
    if winners and success:
        first = success[0].name
        best = max(winners, key=lambda arm: _primary(results, first, arm).estimate)
        return Decision(Status.WINNER, best, verdicts, (), rule)
    tests = max(1, len(success) * len(treatments))
    needed = tuple(
        sample
        for arm in treatments
        if success and (sample := _sample_needed(by_name[control], by_name[arm], success[0], tests, options))
    )
    return Decision(Status.NO_WINNER_YET, None, verdicts, needed, rule)


def _primary(results: Sequence[Result], metric: str, arm: str) -> Result:
    return next(r for r in results if r.primary and r.metric == metric and r.arm == arm)


def _verdict(results: Sequence[Result], metrics: Sequence[Metric], arm: str, alpha: float) -> Verdict:
    better, worse = [], []
    for metric in metrics:
        if metric.role is Role.DIAGNOSTIC:
            continue
        result = _primary(results, metric.name, arm)
        significant = result.p_adjusted is not None and result.p_adjusted < alpha
        improved = (result.estimate > 0) == metric.higher_is_better and result.estimate != 0
        if metric.role is Role.SUCCESS and significant and improved:
            better.append(metric.name)
        if metric.role is Role.GUARDRAIL and significant and not improved:
            worse.append(metric.name)
    return Verdict(arm, bool(better) and not worse, tuple(better), tuple(worse))


def _sample_needed(
    control: ArmStats, treatment: ArmStats, metric: Metric, tests: int, options: Options
) -> SampleNeeded | None:
    """Per-arm sizes to detect ``options.target_lift`` on ``metric`` at the current allocation; None when the
    control's mean is 0 (no relative lift to size for)."""
    c, t = control.metrics[metric.name], treatment.metrics[metric.name]
    mean_c = c.total / control.n
    if mean_c <= 0:
        return None
    alpha = options.alpha / tests
    ratio = treatment.n / control.n
    if metric.kind is MetricKind.RATE:
        if mean_c * (1 + options.target_lift) >= 1:
            return None
        size = power.sample_size_rates(mean_c, mean_c * (1 + options.target_lift), alpha, options.power, ratio)
        now = power.mde_rate(mean_c, control.n, treatment.n, alpha, options.power) / mean_c
    else:
        _, var_c = frequentist.mean_and_variance(control.n, c.total, c.total_sq)
        _, var_t = frequentist.mean_and_variance(treatment.n, t.total, t.total_sq)
        sd = math.sqrt((float(var_c) + float(var_t)) / 2)
        size = power.sample_size_means(sd, mean_c * options.target_lift, alpha, options.power, ratio)
        now = power.mde_mean(sd, sd, control.n, treatment.n, alpha, options.power) / mean_c
    n_c, n_t = math.ceil(size.n_control), math.ceil(size.n_treatment)
    return SampleNeeded(
        arm=treatment.arm,
        metric=metric.name,
        target_lift=options.target_lift,
        n_control=n_c,
        n_treatment=n_t,
        more_control=max(0, n_c - control.n),
        more_treatment=max(0, n_t - treatment.n),
        detectable_now=now,
        method=f"{size.method}, power {options.power:g}, α/{tests} = {alpha:.4g}",
    )
