"""Hashed assignment is deterministic, holds out the configured share, respects weights and ignores arm order."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from core.errors import BadRequest
from experiments.assignment import BUCKETS, HOLDOUT, ArmRange, arm_ranges, assign, bucket, buckets

IDS = list(range(1, 100_001))


def shares(pairs: list[tuple[int, str]]) -> dict[str, int]:
    names, counts = np.unique([arm for _, arm in pairs], return_counts=True)
    return dict(zip(names.tolist(), counts.tolist(), strict=True))


def within_binomial(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_a_bucket_is_the_sha256_prefix_of_salt_and_id_modulo_the_bucket_count() -> None:
    expected = int.from_bytes(hashlib.sha256(b"s3cret:42").digest()[:8], "big") % BUCKETS

    assert bucket("s3cret", 42) == expected
    assert buckets("s3cret", [42, 7]).tolist() == [expected, bucket("s3cret", 7)]


def test_the_same_inputs_give_the_same_arms_and_another_salt_gives_others() -> None:
    arms = [("v1", 1.0), ("v2", 1.0)]

    first = assign("salt-a", IDS[:1000], arms, 0.1)

    assert assign("salt-a", IDS[:1000], arms, 0.1) == first
    assert assign("salt-b", IDS[:1000], arms, 0.1) != first
    assert [b for b, _ in first] == buckets("salt-a", IDS[:1000]).tolist()


@pytest.mark.parametrize("salt", ["campaign-1", "campaign-2", "campaign-3"])
def test_the_holdout_share_is_the_configured_fraction_within_binomial_tolerance(salt: str) -> None:
    counts = shares(assign(salt, IDS, [("treatment", 1.0)], 0.1))

    assert within_binomial(counts[HOLDOUT], len(IDS), 0.1)
    assert counts[HOLDOUT] + counts["treatment"] == len(IDS)


def test_holdout_customers_are_exactly_those_with_a_bucket_below_the_holdout_fraction() -> None:
    pairs = assign("salt", IDS[:5000], [("treatment", 1.0)], 0.05)

    assert all((arm == HOLDOUT) == (b < 500) for b, arm in pairs)


def test_weights_are_respected_and_a_zero_weight_arm_gets_nobody() -> None:
    counts = shares(assign("salt", IDS, [("v1", 1.0), ("v2", 3.0), ("v3", 0.0)], 0.2))

    assert "v3" not in counts
    assert within_binomial(counts["v1"], len(IDS), 0.8 * 0.25)
    assert within_binomial(counts["v2"], len(IDS), 0.8 * 0.75)
    assert within_binomial(counts[HOLDOUT], len(IDS), 0.2)


def test_listing_the_arms_in_another_order_changes_no_customers_arm() -> None:
    arms = [("v1", 1.0), ("v2", 2.0), ("v3", 1.0)]

    assert assign("salt", IDS[:20_000], arms[::-1], 0.1) == assign("salt", IDS[:20_000], arms, 0.1)


def test_the_holdout_does_not_depend_on_the_arms() -> None:
    before = assign("salt", IDS[:20_000], [("treatment", 1.0)], 0.1)
    after = assign("salt", IDS[:20_000], [("v1", 1.0), ("v2", 1.0), ("v3", 5.0)], 0.1)

    assert [arm == HOLDOUT for _, arm in after] == [arm == HOLDOUT for _, arm in before]


def test_arm_ranges_are_contiguous_integer_ranges_sorted_by_arm_name() -> None:
    assert arm_ranges([("v2", 1.0), ("v1", 1.0), ("v0", 0.0)], 0.1) == (
        ArmRange(HOLDOUT, 0, 1000),
        ArmRange("v0", 1000, 1000),
        ArmRange("v1", 1000, 5500),
        ArmRange("v2", 5500, BUCKETS),
    )


def test_uneven_weights_still_cover_every_bucket() -> None:
    ranges = arm_ranges([("a", 1 / 3), ("b", 1 / 3), ("c", 1 / 3)], 0.07)

    assert [(r.start, r.stop) for r in ranges] == [(0, 700), (700, 3800), (3800, 6900), (6900, BUCKETS)]


@pytest.mark.parametrize(
    ("arms", "fraction", "message"),
    [
        ([("v1", 1.0)], 1.0, r"^holdout_fraction must be in \[0, 1\), not 1.0$"),
        ([("v1", 1.0)], -0.1, r"^holdout_fraction must be in \[0, 1\), not -0.1$"),
        ([], 0.1, "^at least one arm is needed$"),
        (
            [("v1", 1.0), ("v1", 2.0)],
            0.1,
            r"^arm names must be unique and not 'holdout' or 'global_holdout': \['v1', 'v1'\]$",
        ),
        ([("holdout", 1.0)], 0.1, r"^arm names must be unique and not 'holdout'"),
        ([("v1", 0.0)], 0.1, r"^arm weights must be finite, non-negative and not all zero: \[0.0\]$"),
        ([("v1", -1.0), ("v2", 2.0)], 0.1, "^arm weights must be finite"),
        ([("v1", math.nan)], 0.1, "^arm weights must be finite"),
    ],
)
def test_invalid_arms_or_holdouts_are_refused(arms: list[tuple[str, float]], fraction: float, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        assign("salt", [1, 2], arms, fraction)
