"""Benchmark: CLV fit time on CDNOW (the 1/10 sample and the full file) and scoring throughput.

- fit: ``rfm_summary`` + BG/NBD + Gamma-Gamma MLE, calibration 1997-09-30 (FHL 2005's 39 weeks) on
  both files, best of 5 runs;
- scoring: P(alive), expected purchases over 52 weeks and the discounted 52-week CLV for 1,000,000
  synthetic customers drawn from the BG/NBD and Gamma-Gamma processes with the sample's fitted
  parameters (ages and purchase times on whole days, as real data are), best of 3 runs.

Not a test: it prints figures (``make bench``).

    .venv/bin/python bench/clv.py
"""

# T is the customer's age, as in the papers.
# ruff: noqa: N806

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the repository's tests.support importable

from ml.clv import BetaGeo, ClvConfig, ClvModel, GammaGamma, noncontractual_clv  # noqa: E402
from tests.support.cdnow import CALIBRATION_END, master_orders, sample_orders  # noqa: E402

Result = TypeVar("Result")
Floats = npt.NDArray[np.float64]
CUSTOMERS = 1_000_000
HORIZON_WEEKS = 52


def best_of(runs: int, work: Callable[[], Result]) -> tuple[float, Result]:
    """The fastest wall time of ``runs`` calls, and the last call's result."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def bench_fit(name: str, orders: pd.DataFrame) -> ClvModel:
    seconds, model = best_of(5, lambda: ClvModel().fit(orders, CALIBRATION_END))
    assert model.beta_geo is not None
    assert model.gamma_gamma is not None
    assert model.report is not None
    bg, gg, report = model.beta_geo, model.gamma_gamma, model.report
    print(f"fit {name}: {report.customers:,} customers ({report.repeat_customers:,} repeat), {seconds:.3f} s")
    print(
        f"    BG/NBD r {bg.r:.4f} α {bg.alpha:.4f} a {bg.a:.4f} b {bg.b:.4f} LL {report.beta_geo_log_likelihood:.2f}; "
        f"Gamma-Gamma p {gg.p:.4f} q {gg.q:.4f} v {gg.v:.4f} LL {report.gamma_gamma_log_likelihood:.2f}"
    )
    return model


def synthetic_customers(bg: BetaGeo, gg: GammaGamma, n: int, seed: int = 0) -> tuple[Floats, Floats, Floats, Floats]:
    """(x, t_x, T, m̄) drawn from the models: x = min(repeat purchases until dropout, Poisson arrivals by T)."""
    rng = np.random.default_rng(seed)
    T = rng.integers(0, 273, n) / 7.0  # first purchase up to 39 weeks before the scoring day
    rate = rng.gamma(bg.r, 1.0 / bg.alpha, n)
    dropout = rng.beta(bg.a, bg.b, n)
    arrivals = rng.poisson(rate * T)
    x = np.minimum(rng.geometric(dropout), arrivals).astype(np.float64)  # the J-th repeat purchase is the last
    # Given n arrivals in (0, T], the x-th arrival time is T × Beta(x, n − x + 1); round to whole days.
    last = np.where(x > 0, rng.beta(np.maximum(x, 1), arrivals - x + 1), 0.0) * T
    t_x = np.minimum(np.round(last * 7.0) / 7.0, T)
    spend_rate = rng.gamma(gg.q, 1.0 / gg.v, n)
    m = np.where(x > 0, rng.gamma(gg.p * np.maximum(x, 1), 1.0 / (spend_rate * np.maximum(x, 1))), 0.0)
    return x, t_x, T, m


def bench_scoring(model: ClvModel) -> None:
    assert model.beta_geo is not None
    assert model.gamma_gamma is not None
    bg, gg, config = model.beta_geo, model.gamma_gamma, model.config
    x, t_x, T, m = synthetic_customers(bg, gg, CUSTOMERS)
    print(f"scoring {CUSTOMERS:,} synthetic customers ({int((x > 0).sum()):,} repeat, max x {int(x.max())}):")
    alive_s, _ = best_of(3, lambda: bg.p_alive(x, t_x, T))
    purchases_s, _ = best_of(3, lambda: bg.expected_purchases(HORIZON_WEEKS, x, t_x, T))
    clv_s, clv = best_of(
        3,
        lambda: noncontractual_clv(
            bg,
            gg,
            x,
            t_x,
            T,
            m,
            horizon_units=HORIZON_WEEKS,
            margin=config.margin,
            discount_rate_per_unit=config.discount_rate_per_unit,
        ),
    )
    total = alive_s + purchases_s + clv_s
    for label, seconds in (("p_alive", alive_s), ("expected_purchases(52)", purchases_s), ("CLV 52 weeks", clv_s)):
        print(f"    {label:<24} {seconds:7.3f} s  {CUSTOMERS / seconds:>13,.0f} customers/s")
    print(f"    {'all three':<24} {total:7.3f} s  {CUSTOMERS / total:>13,.0f} customers/s")
    print(f"    finite: {bool(np.all(np.isfinite(clv)))}; mean CLV {clv.mean():.2f}")


def main() -> None:
    sample = bench_fit("CDNOW_sample", sample_orders())
    master = master_orders()
    bench_fit("CDNOW_master", master)
    seconds, predictions = best_of(3, lambda: sample.predict(master, as_of=CALIBRATION_END))
    rate = len(predictions) / seconds
    print(
        f"ClvModel.predict on CDNOW_master's orders: {len(predictions):,} customers in {seconds:.3f} s ({rate:,.0f}/s)"
    )
    bench_scoring(ClvModel(ClvConfig()).fit(sample_orders(), CALIBRATION_END))


if __name__ == "__main__":
    main()
