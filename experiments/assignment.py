"""Deterministic assignment of customers to arms (variants or the holdout) by hashing.

A customer's bucket is ``sha256(f"{salt}:{customer_id}")`` read as an integer, modulo ``BUCKETS``; the salt
is the campaign's, fixed at creation, so the same customer lands in the same bucket however often (and on
whichever machine) it is computed, and a retried task never re-randomises. Buckets map to arms by fixed
integer ranges (``arm_ranges``):

- ``[0, H)`` is the holdout, with ``H = round(holdout_fraction × BUCKETS)``;
- ``[H, BUCKETS)`` is split over the arms **sorted by name**, in proportion to their weights, so listing
  the arms in another order changes nothing, and a zero-weight arm gets an empty range (nobody).

The ranges are plain integers so the same split can run in numpy (``assign``) or in SQL
(``bucket BETWEEN …``) and agree exactly. The holdout range does not depend on the arms: a customer held
out stays held out whatever variants are drafted later, and the treated customers can be split into
variants afterwards by the same buckets.

The **global holdout** (``global_holdout``) is a second, program-wide layer: customers whose bucket under
one fixed global salt (not the campaign's) falls in ``[0, round(fraction × BUCKETS))`` get no marketing at
all, in every campaign. Because its salt differs from every campaign's, it is independent of each
campaign's own split; a campaign records its global-holdout targets under the arm ``GLOBAL_HOLDOUT`` so
they stay measurable.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.errors import BadRequest

BUCKETS = 10_000
HOLDOUT = "holdout"
GLOBAL_HOLDOUT = "global_holdout"
RESERVED_ARMS = frozenset({HOLDOUT, GLOBAL_HOLDOUT})


@dataclass(frozen=True, slots=True)
class ArmRange:
    """The buckets ``[start, stop)`` that belong to ``arm`` (empty when ``start == stop``)."""

    arm: str
    start: int
    stop: int


def bucket(salt: str, customer_id: int) -> int:
    """The customer's bucket in ``[0, BUCKETS)`` for ``salt``.

    Parameters
    ----------
    salt : str
        The campaign's salt.
    customer_id : int

    Returns
    -------
    int
        The first 8 bytes of ``sha256(f"{salt}:{customer_id}")``, big-endian, modulo ``BUCKETS``.
    """
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def buckets(salt: str, customer_ids: Iterable[int]) -> npt.NDArray[np.int64]:
    """``bucket`` for many customers at once, as an int64 array in input order."""
    # sha256 itself cannot be vectorised; joining the 8-byte prefixes and reading them as one uint64
    # array keeps the per-customer Python work to the hash call (about 1 s for a million customers).
    prefixes = b"".join(hashlib.sha256(f"{salt}:{int(cid)}".encode()).digest()[:8] for cid in customer_ids)
    return (np.frombuffer(prefixes, dtype=">u8") % BUCKETS).astype(np.int64)


def arm_ranges(arms: Sequence[tuple[str, float]], holdout_fraction: float) -> tuple[ArmRange, ...]:
    """The bucket range of the holdout and of every arm: holdout first, then the arms sorted by name.

    Parameters
    ----------
    arms : sequence of (name, weight)
        The treatment arms and their relative weights (any non-negative numbers with a positive sum).
    holdout_fraction : float
        Share of buckets kept out, in [0, 1).

    Returns
    -------
    tuple of ArmRange
        Contiguous ranges covering ``[0, BUCKETS)`` exactly.

    Raises
    ------
    core.errors.BadRequest
        On no arms, a duplicate or reserved name, a negative or non-finite weight, weights summing to 0,
        or a holdout fraction outside [0, 1).
    """
    _validate(arms, holdout_fraction)
    held = round(holdout_fraction * BUCKETS)
    ordered = sorted(arms, key=lambda arm: arm[0])
    total = math.fsum(weight for _, weight in ordered)
    ranges = [ArmRange(HOLDOUT, 0, held)]
    cumulative = 0.0
    for name, weight in ordered:
        cumulative += weight
        stop = held + math.floor(cumulative / total * (BUCKETS - held))
        ranges.append(ArmRange(name, ranges[-1].stop, stop))
    last = ranges[-1]
    ranges[-1] = ArmRange(last.arm, last.start, BUCKETS)  # float rounding must never leave a bucket unassigned
    return tuple(ranges)


def arm_index(bucket_values: npt.ArrayLike, ranges: Sequence[ArmRange]) -> npt.NDArray[np.intp]:
    """For each bucket, the index in ``ranges`` of the range holding it."""
    stops = np.array([arm_range.stop for arm_range in ranges], dtype=np.int64)
    # The first range whose stop is above the bucket; an empty range has stop == its start, so it is skipped.
    return np.searchsorted(stops, np.asarray(bucket_values, dtype=np.int64), side="right")


def assign(
    salt: str, customer_ids: Sequence[int], arms: Sequence[tuple[str, float]], holdout_fraction: float
) -> list[tuple[int, str]]:
    """Each customer's bucket and arm (an arm's name or ``HOLDOUT``), in input order.

    Parameters
    ----------
    salt : str
        The campaign's salt.
    customer_ids : sequence of int
    arms : sequence of (name, weight)
        See ``arm_ranges``; sorted by name before splitting, so their order does not matter.
    holdout_fraction : float
        Share of buckets held out, in [0, 1).

    Returns
    -------
    list of (bucket, arm)
        One pair per customer. The same inputs always give the same pairs.
    """
    ranges = arm_ranges(arms, holdout_fraction)
    values = buckets(salt, customer_ids)
    names = np.array([arm_range.arm for arm_range in ranges], dtype=object)
    chosen = names[arm_index(values, ranges)]
    return list(zip(values.tolist(), chosen.tolist(), strict=True))


def global_holdout_buckets(fraction: float) -> int:
    """How many buckets, from 0, the global holdout takes for ``fraction`` in [0, 1)."""
    if not (math.isfinite(fraction) and 0.0 <= fraction < 1.0):
        raise BadRequest(f"the global holdout fraction must be in [0, 1), not {fraction}")
    return round(fraction * BUCKETS)


def in_global_holdout(
    global_salt: str, customer_ids: Sequence[int], fraction: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Which customers are in the global holdout, and their bucket under the global salt, in input order.

    Parameters
    ----------
    global_salt : str
        The program's fixed global salt (never a campaign's).
    customer_ids : sequence of int
    fraction : float
        The global holdout's share in [0, 1); 0 holds out nobody.

    Returns
    -------
    (mask, buckets)
        ``mask[i]`` is True when customer ``i`` gets no marketing; ``buckets[i]`` is its global bucket.
    """
    held = global_holdout_buckets(fraction)
    values = buckets(global_salt, customer_ids)
    return values < held, values


def _validate(arms: Sequence[tuple[str, float]], holdout_fraction: float) -> None:
    if not 0.0 <= holdout_fraction < 1.0:
        raise BadRequest(f"holdout_fraction must be in [0, 1), not {holdout_fraction}")
    names = [name for name, _ in arms]
    if not names:
        raise BadRequest("at least one arm is needed")
    if len(set(names)) != len(names) or RESERVED_ARMS & set(names):
        raise BadRequest(f"arm names must be unique and not {HOLDOUT!r} or {GLOBAL_HOLDOUT!r}: {names}")
    weights = [weight for _, weight in arms]
    if any(not math.isfinite(weight) or weight < 0 for weight in weights) or math.fsum(weights) <= 0:
        raise BadRequest(f"arm weights must be finite, non-negative and not all zero: {weights}")
