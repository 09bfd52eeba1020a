"""The global holdout: a fixed share of all customers, by a fixed global salt, held out of every campaign and
recorded as ``global_holdout`` so it stays measurable; the other targets are split by the campaign's own salt."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from campaigns.service import _assignment_rows
from core.errors import BadRequest
from core.models import Campaign
from core.settings import Settings
from experiments.assignment import GLOBAL_HOLDOUT, HOLDOUT, assign, bucket, in_global_holdout

IDS = list(range(1, 50_001))
NOW = datetime(2026, 11, 2, tzinfo=UTC)
SETTINGS = Settings(global_holdout_fraction=0.05, global_holdout_salt="global")


def test_the_global_holdout_is_the_customers_whose_global_bucket_is_below_the_share() -> None:
    held, buckets = in_global_holdout("global", IDS[:2_000], 0.05)

    assert buckets.tolist() == [bucket("global", customer) for customer in IDS[:2_000]]
    assert held.tolist() == [value < 500 for value in buckets.tolist()]
    assert abs(in_global_holdout("global", IDS, 0.05)[0].mean() - 0.05) < 4 * np.sqrt(0.05 * 0.95 / len(IDS))


def test_a_zero_share_holds_out_nobody_and_a_share_of_one_is_refused() -> None:
    assert not in_global_holdout("global", IDS[:1_000], 0.0)[0].any()
    with pytest.raises(BadRequest, match=r"^the global holdout fraction must be in \[0, 1\), not 1.0$"):
        in_global_holdout("global", IDS[:10], 1.0)


def rows(salt: str, settings: Settings = SETTINGS) -> list[dict[str, object]]:
    campaign = Campaign(id=7, key=salt, salt=salt, holdout_fraction=0.1)
    targets = pd.DataFrame({"customer_id": IDS[:5_000], "segment": "s1", "ev": 1.0})
    return _assignment_rows(campaign, targets, NOW, settings)


def test_planning_records_the_global_holdout_and_splits_only_the_others_by_the_campaign_salt() -> None:
    planned = rows("winter")

    held, global_buckets = in_global_holdout("global", IDS[:5_000], 0.05)
    campaign_arms = assign("winter", IDS[:5_000], [("treatment", 1.0)], 0.1)
    expected = [
        (int(b), GLOBAL_HOLDOUT) if h else pair
        for h, b, pair in zip(held.tolist(), global_buckets.tolist(), campaign_arms, strict=True)
    ]
    assert [(row["bucket"], row["arm"]) for row in planned] == expected
    assert {row["arm"] for row in planned} == {GLOBAL_HOLDOUT, HOLDOUT, "treatment"}


def test_the_same_customers_are_globally_held_out_in_every_campaign() -> None:
    winter = {row["customer_id"] for row in rows("winter") if row["arm"] == GLOBAL_HOLDOUT}
    spring = {row["customer_id"] for row in rows("spring") if row["arm"] == GLOBAL_HOLDOUT}

    assert winter == spring
    assert len(winter) > 0


def test_with_the_global_holdout_disabled_planning_is_the_campaign_split_alone() -> None:
    planned = rows("winter", Settings(global_holdout_fraction=0.0))

    assert [(row["bucket"], row["arm"]) for row in planned] == assign("winter", IDS[:5_000], [("treatment", 1.0)], 0.1)
