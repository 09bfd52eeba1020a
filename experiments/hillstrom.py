"""The real Hillstrom e-mail experiment (``data/hillstrom/``) through Nudge's own analysis.

64,000 customers randomised into a men's e-mail, a women's e-mail or none, followed for two weeks: visits,
conversions and spend, with last year's spend as CUPED's covariate. The analysis reads only per-arm
sufficient statistics, as a campaign's report does. The tests check it against scipy and statsmodels; the
demo shows it beside the campaign's simulated experiment, as the real-data counterpart.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.analysis import ArmStats, ExperimentAnalysis, Metric, MetricKind, Moments, Role, analyze

HILLSTROM_CSV = Path(__file__).resolve().parent.parent / "data" / "hillstrom" / "hillstrom.csv"
CONTROL = "No E-Mail"
EMAILS = ("Mens E-Mail", "Womens E-Mail")
METRICS = (
    Metric("visit", "Visited", MetricKind.RATE, Role.SUCCESS),
    Metric("conversion", "Converted", MetricKind.RATE, Role.SUCCESS),
    Metric("spend", "Spend ($)", MetricKind.MEAN, Role.SUCCESS, cuped=True),
)
OUTCOMES = ["visit", "conversion", "spend", "spend_sq", "history", "history_sq", "spend_history"]


def load(path: Path = HILLSTROM_CSV) -> pd.DataFrame:
    return pd.read_csv(path)


def arm_statistics(data: pd.DataFrame) -> list[ArmStats]:
    """Per arm: counts, sums of the outcomes and their squares, and the spend–history cross-products."""
    frame = data.assign(
        spend_sq=data.spend**2, history_sq=data.history**2, spend_history=data.spend * data.history
    ).groupby("segment")
    sums, sizes = frame[OUTCOMES].sum(), frame.size().to_dict()
    return [
        ArmStats(
            str(arm),
            int(sizes[arm]),
            {
                "visit": Moments(row.visit, row.visit),
                "conversion": Moments(row.conversion, row.conversion),
                "spend": Moments(row.spend, row.spend_sq, row.history, row.history_sq, row.spend_history),
            },
        )
        for arm, row in sums.iterrows()
    ]


def hillstrom_analysis(data: pd.DataFrame | None = None) -> ExperimentAnalysis:
    """Each e-mail against no e-mail on visits, conversions and spend (equal thirds by design)."""
    arms = arm_statistics(load() if data is None else data)
    return analyze(arms, METRICS, control=CONTROL, weights=dict.fromkeys([CONTROL, *EMAILS], 1.0))
