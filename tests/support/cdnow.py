"""The CDNOW transaction logs in ``data/samples/`` as order frames (``customer_id``, ``ordered_at``, ``amount``),
for the CLV tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SAMPLES = Path(__file__).resolve().parent.parent.parent / "data" / "samples"
# Fader, Hardie & Lee (2005): 39 weeks of calibration, then a 39-week holdout to the end of the file.
CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"


def sample_orders() -> pd.DataFrame:
    """The 1/10 sample (2,357 customers), keyed by its ``sample_id`` (1…2,357, the published summary's ID)."""
    columns = ["master_id", "customer_id", "date", "cds", "amount"]
    frame = pd.read_csv(SAMPLES / "CDNOW_sample.txt", sep=r"\s+", header=None, names=columns)
    return _orders(frame)


def master_orders() -> pd.DataFrame:
    """All 23,570 customers of the CDNOW file, keyed by their ``customer_id``."""
    frame = pd.read_csv(SAMPLES / "CDNOW_master.txt", sep=r"\s+")
    return _orders(frame.rename(columns={"dollar_value": "amount"}))


def _orders(frame: pd.DataFrame) -> pd.DataFrame:
    ordered_at = pd.to_datetime(frame["date"].astype(str), format="%Y%m%d")
    return pd.DataFrame({"customer_id": frame["customer_id"], "ordered_at": ordered_at, "amount": frame["amount"]})
