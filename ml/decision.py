"""The decision engine: which customers get a retention offer, which offer, by which channel, within which budget.

It consumes model *outputs* as plain arrays — a calibrated churn probability ``p`` and a ``clv`` per
customer, plus which channels each customer has consented to — never a model object.

Expected value
--------------
For customer *i* and option *k* = (offer *o*, channel *c*)::

    EV_ik = p_i · (s_k · CLV_i − C_tp,k) − (1 − p_i) · C_fp,k

- ``p_i``: the probability that customer *i* churns if left alone. It must be *calibrated*: a
  class-balanced classifier overstates p by about 1.5× in the targeting band (ml-anchors §2.2).
- ``CLV_i``: the value kept if the customer is retained (expected future margin, in the budget's
  currency). Negative CLV is allowed: it describes a customer who costs more than they bring, whose
  EV is then negative, so the engine correctly never spends money to keep them.
- ``s_k = offer.success_rate × channel.success_factor``: the probability that the offer, sent by
  that channel, retains a customer who would otherwise churn. This is a **treatment effect** (uplift),
  not a redemption rate: estimate it from a randomized holdout of past campaigns, never assume it
  (real campaign effects are a few percentage points, ml-anchors §5.4).
- ``contact_c = channel.unit_price × channel.units + channel.llm_cost_per_recipient``: the price of
  one message (e-mail: price per message × 1; SMS: price per segment × segments of the message) plus
  this recipient's share of the LLM tokens spent drafting the campaign (drafting cost ÷ recipients,
  computed by the caller).
- ``C_tp,k = contact_c + offer.unit_cost``: the cost when the customer was going to churn. They take
  the offer, so it is paid in full. This is conservative: Verbeke et al. (2012) charge the offer only
  to the churners it retains; charging every contacted churner overstates cost by
  ``p·(1 − s)·unit_cost``, which errs towards contacting fewer people.
- ``C_fp,k = contact_c + offer.unit_cost × offer.stayer_redemption``: the cost when the customer was
  not going to churn: the contact, plus the offer for the share of stayers who redeem it anyway
  (default 1.0: every stayer redeems, as Verbeke et al. assume).

Rearranged, ``EV = p·s·CLV − cost`` with the **expected cost** ``cost = p·C_tp + (1 − p)·C_fp``
(contact + offer × (p + (1 − p) · stayer_redemption)). That ``cost`` is the one number used
everywhere: it is the ``cost`` column of the action plan, it is what counts against the budget, and
ROI = Σ EV / Σ cost. The budget caps *expected* spend because it is a plan, made before anyone
redeems anything, and because EV per dollar and ROI are then measured in the very dollars the
budget caps. With ``stayer_redemption = 1`` the expected cost equals the worst case (contact + full
offer for everyone), so a budget that must hold however many redeem is obtained that way.

Each customer gets the option with the highest EV among the channels they can be reached on
(vectorised: a running argmax over the options; ties go to the first option in ``offers`` ×
``channels`` order). A customer with no reachable channel is never targeted.

Targeting rules
---------------
A customer is *eligible* when reachable, ``band[0] ≤ p ≤ band[1]`` (default 0.30–0.90) and EV > 0.
The band exists because a constant treatment effect is least true at the ends: below it the customer
is most likely staying anyway (the offer mostly subsidises stayers, and a small p is where the model
is least reliable); above it they are most likely lost whatever we do (the offer's real effect on
customers who have decided is smallest, so ``s`` overstates it).

Two modes, side by side
-----------------------
- **Unconstrained** — the profit curve: reachable in-band candidates sorted by EV descending, cumulative
  profit ``profit[N] = Σ_{j ≤ N} EV_(j)`` with ``profit[0] = 0``. Its maximum is at ``N*`` = the number
  of candidates with EV > 0 (the sum rises exactly while EV is positive; it is counted that way so
  float rounding of the running sum cannot cut it short). Its threshold is stated two ways:
  ``ev_threshold`` = the EV of the N*-th customer (the decision boundary is EV > 0, and every target
  has EV ≥ it), and ``min_p`` = the lowest p among the N* targets. ``min_p`` is descriptive, *not* a
  cutoff: a customer with p ≥ min_p can be left out because their CLV is too small to pay for contact.
- **Production** — a budget gate on the eligible customers: ``max_budget`` (dollars of expected cost,
  as above) and ``max_customers``. Customers are ranked by ``ranking``:

  - ``"ev_per_cost"``: EV ÷ expected cost. With a dollar budget and costs that differ between
    customers (SMS vs e-mail, offers of different value, redemption that depends on p), the prefix of
    this order is the greedy solution of the fractional knapsack — optimal if the last customer could
    be taken in part and, with the dollar cap alone, short of the 0/1 optimum by at most the EV of
    the first customer left out.
  - ``"ev"``: EV alone. Optimal when only ``max_customers`` binds (the best N customers are the N
    largest EVs); identical to EV per dollar when every customer costs the same.
  - ``"best"`` (default): gate both orders and keep the one with the higher expected profit (EV per
    dollar on a tie). With both caps set neither greedy order is optimal — EV per dollar fills a
    customer cap with cheap, low-value contacts; EV spends a dollar cap on a few expensive ones — and
    which cap binds depends on the data, not on the configuration. Trying both costs one more running
    sum (the EV order exists anyway for the profit curve) and never does worse than either rule; the
    plan records which order it used. The price: as the budget grows the winning order can switch,
    so a bigger budget's plan need not contain a smaller one's — pick a fixed rule where that matters.

  Ties keep input order. The plan is the **longest prefix** of the ranking within both caps: it stops
  at the first customer who does not fit, rather than skipping them and trying cheaper ones further
  down. A prefix is a rank cutoff a marketer can read ("everyone above #k"), under a fixed rule it only
  grows when the budget grows, and with EV per dollar it already is the knapsack greedy whose loss is
  bounded above.

Exclusions are counted in order, each customer once: no reachable channel, then below / above the
band, then EV ≤ 0, then (per mode) left out by the budget gate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import BadRequest

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

Ranking = Literal["ev_per_cost", "ev"]
RankingRule = Literal["best", "ev_per_cost", "ev"]
Mode = Literal["production", "unconstrained"]
StopReason = Literal["max_budget", "max_customers"]

DEFAULT_BAND = (0.30, 0.90)
ACTION_COLUMNS = ["customer_id", "p", "clv", "ev", "cost", "offer", "channel", "rank"]
SUMMARY_ROWS = [
    "ranking",
    "n",
    "total_cost",
    "expected_profit",
    "roi",
    "excluded_by_budget",
    "stopped_by",
    "budget_left",
    "ev_threshold",
    "min_p",
]


# --- the cost model ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelCost:
    """What one message on a channel costs, and how well the channel delivers an offer's effect.

    Parameters
    ----------
    name : str
        The channel's name, as used in ``reachable`` (e.g. ``"email"``, ``"sms"``).
    unit_price : float
        Price per billed unit: per message for e-mail, per segment for SMS.
    units : int
        Billed units per message: 1 for e-mail, the message's segment count for SMS.
    llm_cost_per_recipient : float
        This channel's drafting cost (LLM tokens) divided by its expected recipients.
    success_factor : float
        Multiplies the offer's success rate for this channel, in [0, 1]; 1.0 when the offer's rate
        was measured on this channel.
    """

    name: str
    unit_price: float
    units: int = 1
    llm_cost_per_recipient: float = 0.0
    success_factor: float = 1.0

    def __post_init__(self) -> None:
        where = f"channel {self.name!r}"
        _require_name(self.name, "channel name")
        _require_amount(self.unit_price, f"{where}: unit_price")
        _require_amount(self.llm_cost_per_recipient, f"{where}: llm_cost_per_recipient")
        _require_rate(self.success_factor, f"{where}: success_factor")
        if isinstance(self.units, bool) or not isinstance(self.units, int) or self.units < 1:
            raise BadRequest(f"{where}: units must be an integer >= 1 (segments per message), got {self.units!r}")

    @classmethod
    def email(
        cls, price_per_message: float, *, llm_cost_per_recipient: float = 0.0, name: str = "email"
    ) -> ChannelCost:
        """An e-mail channel billed per message."""
        return cls(name, price_per_message, 1, llm_cost_per_recipient)

    @classmethod
    def sms(
        cls, price_per_segment: float, segments: int, *, llm_cost_per_recipient: float = 0.0, name: str = "sms"
    ) -> ChannelCost:
        """An SMS channel billed per segment; ``segments`` is the drafted message's segment count."""
        return cls(name, price_per_segment, segments, llm_cost_per_recipient)

    @property
    def contact_cost(self) -> float:
        """The certain cost of contacting one customer: message price plus LLM drafting share."""
        return self.unit_price * self.units + self.llm_cost_per_recipient


@dataclass(frozen=True, slots=True)
class OfferOption:
    """A retention offer from the catalog.

    Parameters
    ----------
    code : str
        The offer's catalog code.
    unit_cost : float
        What the offer costs us when redeemed (discount given, free month, …); 0 for a message only.
    success_rate : float
        Probability, in [0, 1], that the offer retains a customer who would otherwise churn — a
        treatment effect measured on a randomized holdout, not a redemption rate.
    stayer_redemption : float
        Share, in [0, 1], of customers who were *not* going to churn but redeem the offer anyway.
    """

    code: str
    unit_cost: float
    success_rate: float
    stayer_redemption: float = 1.0

    def __post_init__(self) -> None:
        where = f"offer {self.code!r}"
        _require_name(self.code, "offer code")
        _require_amount(self.unit_cost, f"{where}: unit_cost")
        _require_rate(self.success_rate, f"{where}: success_rate")
        _require_rate(self.stayer_redemption, f"{where}: stayer_redemption")


@dataclass(frozen=True, slots=True)
class DecisionConfig:
    """Offers, channels, targeting band and the production budget gate.

    Parameters
    ----------
    offers, channels : tuple
        The option grid is every offer × every channel.
    band : tuple of float
        Inclusive bounds ``(low, high)`` on p, with ``0 <= low <= high <= 1``.
    max_budget : float or None
        Production cap on the total expected cost (contact + expected offer cost); None for no cap.
    max_customers : int or None
        Production cap on the number of customers contacted; None for no cap.
    ranking : {"best", "ev_per_cost", "ev"}
        The production order; "best" gates both and keeps the more profitable (see the module docstring).
    """

    offers: tuple[OfferOption, ...]
    channels: tuple[ChannelCost, ...]
    band: tuple[float, float] = DEFAULT_BAND
    max_budget: float | None = None
    max_customers: int | None = None
    ranking: RankingRule = "best"

    def __post_init__(self) -> None:
        if not self.offers or not self.channels:
            raise BadRequest("the configuration needs at least one offer and one channel")
        _require_unique([offer.code for offer in self.offers], "offer code")
        _require_unique([channel.name for channel in self.channels], "channel name")
        _require_band(self.band)
        if self.max_budget is not None:
            _require_amount(self.max_budget, "max_budget")
        if self.max_customers is not None and (
            isinstance(self.max_customers, bool) or not isinstance(self.max_customers, int) or self.max_customers < 0
        ):
            raise BadRequest(f"max_customers must be an integer >= 0, got {self.max_customers!r}")
        if self.ranking not in get_args(RankingRule):
            raise BadRequest(f"ranking must be one of {list(get_args(RankingRule))}, got {self.ranking!r}")


@dataclass(frozen=True, slots=True)
class OptionGrid:
    """The (offer × channel) options flattened, offers outer: per-option constants as arrays."""

    offer_index: IndexArray
    channel_index: IndexArray
    success: FloatArray
    cost_churner: FloatArray  # C_tp
    cost_stayer: FloatArray  # C_fp

    @classmethod
    def from_config(cls, config: DecisionConfig) -> OptionGrid:
        pairs = [(o, c) for o in range(len(config.offers)) for c in range(len(config.channels))]
        offers = [config.offers[o] for o, _ in pairs]
        channels = [config.channels[c] for _, c in pairs]
        contact = np.array([channel.contact_cost for channel in channels])
        unit = np.array([offer.unit_cost for offer in offers])
        return cls(
            offer_index=np.array([o for o, _ in pairs], dtype=np.intp),
            channel_index=np.array([c for _, c in pairs], dtype=np.intp),
            success=np.array([o.success_rate * c.success_factor for o, c in zip(offers, channels, strict=True)]),
            cost_churner=contact + unit,
            cost_stayer=contact + unit * np.array([offer.stayer_redemption for offer in offers]),
        )

    def __len__(self) -> int:
        return len(self.offer_index)


# --- expected value --------------------------------------------------------------------------------


def expected_value(
    p: npt.ArrayLike, clv: npt.ArrayLike, success_rate: float, cost_churner: float, cost_stayer: float
) -> FloatArray:
    """EV of contacting each customer with one option: ``p·(s·CLV − C_tp) − (1 − p)·C_fp``.

    Parameters
    ----------
    p, clv : array_like
        Churn probability and CLV per customer.
    success_rate : float
        ``s``, the probability the option retains a would-be churner.
    cost_churner, cost_stayer : float
        ``C_tp`` and ``C_fp`` as defined in the module docstring.

    Returns
    -------
    numpy.ndarray
        EV per customer, float64.
    """
    p_ = np.asarray(p, dtype=np.float64)
    clv_ = np.asarray(clv, dtype=np.float64)
    result: FloatArray = p_ * (success_rate * clv_ - cost_churner) - (1.0 - p_) * cost_stayer
    return result


def expected_cost(p: npt.ArrayLike, cost_churner: float, cost_stayer: float) -> FloatArray:
    """Expected cost of contacting each customer: ``p·C_tp + (1 − p)·C_fp`` — what the budget counts."""
    p_ = np.asarray(p, dtype=np.float64)
    result: FloatArray = p_ * cost_churner + (1.0 - p_) * cost_stayer
    return result


@dataclass(frozen=True, slots=True)
class BestOptions:
    """Each customer's best option. ``option`` is -1, ``ev`` -inf and ``cost`` NaN where no channel reaches them."""

    option: IndexArray
    ev: FloatArray
    cost: FloatArray


def best_options(
    p: npt.ArrayLike, clv: npt.ArrayLike, reachable: Mapping[str, npt.ArrayLike], config: DecisionConfig
) -> BestOptions:
    """The highest-EV (offer × channel) option for every customer, among their reachable channels.

    Parameters
    ----------
    p, clv : array_like
        Churn probability and CLV, one per customer.
    reachable : mapping of str to boolean array_like
        One boolean array per configured channel name: True where the customer may be contacted on it.
    config : DecisionConfig
        Offers and channels (the band and budget are not used here).

    Returns
    -------
    BestOptions
        Index into ``OptionGrid.from_config(config)``, EV and expected cost per customer.
    """
    inputs = _validated(np.arange(np.size(p)), p, clv, reachable, config)
    grid = OptionGrid.from_config(config)
    return _best_options(inputs.p, inputs.clv, inputs.reachable, grid)


def _best_options(p: FloatArray, clv: FloatArray, reachable: Sequence[BoolArray], grid: OptionGrid) -> BestOptions:
    # A running argmax over the few options keeps memory at a few vectors instead of a customers × options matrix.
    n = len(p)
    p_clv = p * clv
    best = np.full(n, -np.inf)
    option = np.full(n, -1, dtype=np.intp)
    ev = np.empty(n)
    scratch = np.empty(n)
    for k in range(len(grid)):
        _option_ev(p, p_clv, grid, k, out=ev, scratch=scratch)
        better = ev > best  # strict: ties keep the earlier option
        better &= reachable[grid.channel_index[k]]
        np.copyto(best, ev, where=better)
        np.copyto(option, k, where=better)
    reached = option >= 0
    if reached.all():  # always so inside plan_campaign, which only scores reachable candidates
        return BestOptions(option=option, ev=best, cost=_expected_cost_of(p, option, grid))
    cost = np.full(n, np.nan)
    cost[reached] = _expected_cost_of(p[reached], option[reached], grid)
    return BestOptions(option=option, ev=best, cost=cost)


def _option_ev(
    p: FloatArray, p_clv: FloatArray, grid: OptionGrid, k: int, *, out: FloatArray, scratch: FloatArray
) -> None:
    # EV = s·(p·CLV) − [C_fp + p·(C_tp − C_fp)]: the module's formula regrouped so that p·CLV is computed once.
    np.multiply(p, grid.cost_churner[k] - grid.cost_stayer[k], out=scratch)
    scratch += grid.cost_stayer[k]
    np.multiply(p_clv, grid.success[k], out=out)
    out -= scratch


def _expected_cost_of(p: FloatArray, option: IndexArray, grid: OptionGrid) -> FloatArray:
    stayer = grid.cost_stayer[option]
    cost: FloatArray = stayer + p * (grid.cost_churner[option] - stayer)
    return cost


# --- plans ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Funnel:
    """Where the customers went; the counts partition ``customers`` (each customer counted once, in this order)."""

    customers: int
    no_channel: int
    below_band: int
    above_band: int
    ev_not_positive: int
    eligible: int


@dataclass(frozen=True, slots=True)
class ProfitCurve:
    """The unconstrained profit curve over the reachable in-band candidates, sorted by EV descending.

    ``positions[j]`` is the input position of the (j+1)-th candidate and ``ev[j]`` its EV;
    ``profit[N]`` and ``cost[N]`` are the totals of the first N (so both have ``len(ev) + 1`` entries
    and start at 0); ``n_star`` maximises ``profit``.
    """

    positions: IndexArray
    ev: FloatArray
    profit: FloatArray
    cost: FloatArray
    n_star: int

    def points(self, max_points: int = 400) -> list[tuple[int, float]]:
        """(N, profit of the first N) at most ``max_points`` evenly spaced N, ends and N* included: a chart's worth."""
        return curve_points(self.profit, max_points, keep=self.n_star)


def curve_points(profit: FloatArray, max_points: int = 400, keep: int | None = None) -> list[tuple[int, float]]:
    """``profit[N]`` thinned to at most ``max_points`` (+1 for ``keep``) evenly spaced N, both ends included."""
    n = len(profit) - 1
    xs = np.unique(np.linspace(0, max(n, 0), min(n + 1, max_points)).round().astype(np.int64))
    if keep is not None and 0 <= keep <= n:
        xs = np.union1d(xs, [keep])
    return [(int(x), float(profit[x])) for x in xs]


@dataclass(frozen=True, slots=True)
class Plan:
    """One mode's target list and totals.

    ``actions`` has one row per selected customer in rank order (columns ``ACTION_COLUMNS``; ``cost``
    is the expected cost, ``rank`` starts at 1). ``roi`` is ``expected_profit / total_cost`` (None
    when nothing is spent). ``excluded_by_budget`` counts eligible customers the gate left out, and
    ``stopped_by`` names the cap that stopped it (None when everyone eligible fits); ``budget_left`` is
    ``max_budget − total_cost`` in production mode with a dollar cap, else None. ``ev_threshold`` is
    the smallest EV selected and ``min_p`` the lowest p selected (None when empty).
    ``ranking`` is the order the rows are ranked by (always ``"ev"`` in unconstrained mode).
    """

    mode: Mode
    ranking: Ranking
    actions: pd.DataFrame
    n: int
    total_cost: float
    expected_profit: float
    roi: float | None
    excluded_by_budget: int
    stopped_by: StopReason | None
    budget_left: float | None
    ev_threshold: float | None
    min_p: float | None


@dataclass(frozen=True, slots=True)
class PlanComparison:
    """Both modes side by side, the funnel they share, and the profit curve."""

    production: Plan
    unconstrained: Plan
    funnel: Funnel
    curve: ProfitCurve
    config: DecisionConfig

    def summary(self) -> pd.DataFrame:
        """One row per figure, one column per mode."""
        return pd.DataFrame(
            {plan.mode: [getattr(plan, row) for row in SUMMARY_ROWS] for plan in (self.production, self.unconstrained)},
            index=SUMMARY_ROWS,
            dtype=object,
        )


def plan_campaign(
    customer_ids: npt.ArrayLike,
    p: npt.ArrayLike,
    clv: npt.ArrayLike,
    reachable: Mapping[str, npt.ArrayLike],
    config: DecisionConfig,
) -> PlanComparison:
    """Choose who gets which offer by which channel, in production mode and unconstrained.

    Parameters
    ----------
    customer_ids : array_like
        One id per customer, carried into the action plans unchanged.
    p : array_like of float
        Calibrated churn probability per customer, in [0, 1].
    clv : array_like of float
        Customer lifetime value per customer (may be negative).
    reachable : mapping of str to boolean array_like
        For every configured channel name, True where the customer may be contacted on it (consent).
    config : DecisionConfig
        Offers, channels, band, budget caps and ranking rule.

    Returns
    -------
    PlanComparison
        The production and unconstrained plans, the exclusion funnel and the profit curve.

    Raises
    ------
    core.errors.BadRequest
        On empty input, arrays of different lengths or not 1-D, NaN or infinite values, p outside
        [0, 1], or ``reachable`` not naming exactly the configured channels with boolean arrays.
    """
    inputs = _validated(customer_ids, p, clv, reachable, config)
    grid = OptionGrid.from_config(config)
    low, high = config.band
    reached = np.logical_or.reduce(inputs.reachable)
    in_band = (inputs.p >= low) & (inputs.p <= high)
    candidates = np.flatnonzero(reached & in_band)  # ascending, so local order is input order
    p_, clv_ = inputs.p[candidates], inputs.clv[candidates]
    best = _best_options(p_, clv_, [r[candidates] for r in inputs.reachable], grid)
    by_ev = _Rows.take(candidates, best, _descending(best.ev, len(best.ev)))
    curve = _profit_curve(by_ev)
    selection = _Selection(inputs, candidates, p_, clv_, best, by_ev, grid, config)
    return PlanComparison(
        production=_production(selection),
        unconstrained=_unconstrained(selection, curve),
        funnel=_funnel(inputs.p, reached, config.band, curve),
        curve=curve,
        config=config,
    )


def _profit_curve(by_ev: _Rows) -> ProfitCurve:
    profit = np.zeros(len(by_ev.ev) + 1)
    np.cumsum(by_ev.ev, out=profit[1:])
    cost = np.zeros(len(by_ev.ev) + 1)
    np.cumsum(by_ev.cost, out=cost[1:])
    n_star = int(np.count_nonzero(by_ev.ev > 0.0))
    return ProfitCurve(positions=by_ev.positions, ev=by_ev.ev, profit=profit, cost=cost, n_star=n_star)


def _funnel(p: FloatArray, reached: BoolArray, band: tuple[float, float], curve: ProfitCurve) -> Funnel:
    reached_count = int(np.count_nonzero(reached))
    below = int(np.count_nonzero(reached & (p < band[0])))
    candidates = len(curve.ev)
    return Funnel(
        customers=len(p),
        no_channel=len(p) - reached_count,
        below_band=below,
        above_band=reached_count - candidates - below,
        ev_not_positive=candidates - curve.n_star,
        eligible=curve.n_star,
    )


@dataclass(frozen=True, slots=True)
class _Inputs:
    customer_ids: npt.NDArray[Any]
    p: FloatArray
    clv: FloatArray
    reachable: list[BoolArray]  # in config.channels order


@dataclass(frozen=True, slots=True)
class _Rows:
    """Customers in rank order: candidate-local indices, input positions, EV and cost, gathered once."""

    local: IndexArray
    positions: IndexArray
    ev: FloatArray
    cost: FloatArray

    @classmethod
    def take(cls, candidates: IndexArray, best: BestOptions, local: IndexArray) -> _Rows:
        return cls(local, candidates[local], best.ev[local], best.cost[local])

    def head(self, n: int) -> _Rows:
        return _Rows(self.local[:n], self.positions[:n], self.ev[:n], self.cost[:n])


@dataclass(frozen=True, slots=True)
class _Selection:
    """Everything a plan is cut from; indices called *local* point into ``candidates``."""

    inputs: _Inputs
    candidates: IndexArray
    p: FloatArray  # of the candidates
    clv: FloatArray  # of the candidates
    best: BestOptions
    by_ev: _Rows  # every candidate, EV descending, ties in input order
    grid: OptionGrid
    config: DecisionConfig

    @property
    def eligible_count(self) -> int:
        return int(np.count_nonzero(self.best.ev > 0.0))


def _unconstrained(selection: _Selection, curve: ProfitCurve) -> Plan:
    n = curve.n_star
    # The totals are read off the curve, so the plan and the plotted optimum are the same numbers.
    rows = selection.by_ev.head(n)
    return _plan("unconstrained", selection, rows, float(curve.cost[n]), float(curve.profit[n]), None, "ev")


@dataclass(frozen=True, slots=True)
class _Gate:
    """One ranking's longest prefix within the caps (``local`` indices in rank order)."""

    ranking: Ranking
    rows: _Rows
    total_cost: float
    profit: float


def _production(selection: _Selection) -> Plan:
    config = selection.config
    if config.ranking == "best":
        # With both caps neither greedy order is optimal; trying both costs one more cumsum.
        gates = [_gate(selection, "ev_per_cost"), _gate(selection, "ev")]
        gate = max(gates, key=lambda candidate: candidate.profit)  # a tie keeps EV per dollar
    else:
        gate = _gate(selection, config.ranking)
    stopped_by = _stop_reason(len(gate.rows.local), selection.eligible_count, config.max_customers)
    return _plan("production", selection, gate.rows, gate.total_cost, gate.profit, stopped_by, gate.ranking)


def _gate(selection: _Selection, ranking: Ranking) -> _Gate:
    ranked = _production_ranking(selection, ranking)
    cumulative_cost = np.cumsum(ranked.cost)
    budget = selection.config.max_budget
    taken = len(ranked.cost) if budget is None else int(np.searchsorted(cumulative_cost, budget, side="right"))
    # The total is the running sum the cap was checked against, so it never reads above the budget.
    total_cost = float(cumulative_cost[taken - 1]) if taken else 0.0
    rows = ranked.head(taken)
    return _Gate(ranking, rows, total_cost, float(rows.ev.sum()))


def _production_ranking(selection: _Selection, ranking: Ranking) -> _Rows:
    """The eligible customers in ``ranking`` order, cut to the most that could fit the caps."""
    best = selection.best
    eligible = np.flatnonzero(best.ev > 0.0)  # input order, which settles ties
    limit = _fit_bound(best.cost[eligible], selection.config)
    if ranking == "ev":
        return selection.by_ev.head(limit)  # the eligible customers lead the EV order
    ev, cost = best.ev[eligible], best.cost[eligible]
    per_dollar = np.full(len(eligible), np.inf)  # free contacts rank first: they use no budget
    np.divide(ev, cost, out=per_dollar, where=cost > 0.0)
    return _Rows.take(selection.candidates, best, eligible[_descending(per_dollar, limit)[:limit]])


def _fit_bound(costs: FloatArray, config: DecisionConfig) -> int:
    """How many customers the caps could admit at most; only that many need sorting."""
    limit = len(costs)
    if config.max_customers is not None:
        limit = min(limit, config.max_customers)
    if config.max_budget is not None and limit:
        cheapest = float(costs.min())
        # No more than budget / cheapest customers can fit; +2 absorbs float rounding of the running sum.
        if cheapest > 0.0 and config.max_budget / cheapest < limit:
            limit = min(limit, math.floor(config.max_budget / cheapest) + 2)
    return limit


def _stop_reason(taken: int, eligible: int, max_customers: int | None) -> StopReason | None:
    if taken == eligible:
        return None
    if max_customers is not None and taken == max_customers:
        return "max_customers"
    return "max_budget"


def _descending(key: FloatArray, k: int) -> IndexArray:
    """Indices of at least the ``k`` largest keys, sorted descending with ties in index order.

    When ``k`` is a small share of the keys, a partition finds the k-th largest value first and
    only the keys at or above it are sorted; keeping every tie of that value keeps the tie rule exact.
    """
    if k < len(key) // 2:
        if k == 0:
            return np.empty(0, dtype=np.intp)
        kth = np.partition(key, len(key) - k)[len(key) - k]
        indices = np.flatnonzero(key >= kth)
    else:
        indices = np.arange(len(key))
    negated = -key[indices]
    order = np.argsort(negated)  # introsort: about 1.6× faster than a stable sort, but ties land anywhere
    ordered = negated[order]
    if (ordered[1:] == ordered[:-1]).any():
        order = np.argsort(negated, kind="stable")  # only equal keys need the slower sort to keep index order
    result: IndexArray = indices[order]
    return result


def _plan(
    mode: Mode,
    selection: _Selection,
    rows: _Rows,
    total_cost: float,
    profit: float,
    stopped_by: StopReason | None,
    ranking: Ranking,
) -> Plan:
    columns = _action_columns(selection, rows)
    ev, p = columns["ev"], columns["p"]
    budget = selection.config.max_budget if mode == "production" else None
    return Plan(
        mode=mode,
        ranking=ranking,
        actions=pd.DataFrame(columns, columns=ACTION_COLUMNS),
        n=len(rows.local),
        total_cost=total_cost,
        expected_profit=profit,
        roi=profit / total_cost if total_cost > 0.0 else None,
        excluded_by_budget=selection.eligible_count - len(rows.local),
        stopped_by=stopped_by,
        budget_left=None if budget is None else budget - total_cost,
        ev_threshold=float(ev.min()) if len(ev) else None,
        min_p=float(p.min()) if len(p) else None,
    )


def _action_columns(selection: _Selection, rows: _Rows) -> dict[str, Any]:
    # Gathered for the selected rows only (from the candidates, not the whole population): the million
    # customers never go through pandas.
    grid, config = selection.grid, selection.config
    option = selection.best.option[rows.local]
    offers = [offer.code for offer in config.offers]
    channels = [channel.name for channel in config.channels]
    return {
        "customer_id": selection.inputs.customer_ids[rows.positions],
        "p": selection.p[rows.local],
        "clv": selection.clv[rows.local],
        "ev": rows.ev,
        "cost": rows.cost,
        "offer": pd.Categorical.from_codes(grid.offer_index[option], categories=pd.Index(offers), validate=False),
        "channel": pd.Categorical.from_codes(grid.channel_index[option], categories=pd.Index(channels), validate=False),
        "rank": np.arange(1, len(rows.local) + 1),
    }


# --- validation ------------------------------------------------------------------------------------------


def _validated(
    customer_ids: npt.ArrayLike,
    p: npt.ArrayLike,
    clv: npt.ArrayLike,
    reachable: Mapping[str, npt.ArrayLike],
    config: DecisionConfig,
) -> _Inputs:
    p_ = _floats(p, "p")
    n = len(p_)
    if n == 0:
        raise BadRequest("no customers to plan for: p is empty")
    ids = _vector(customer_ids, "customer_ids", n)
    clv_ = _floats(clv, "clv", n)
    _require_finite(p_, "p")
    _require_finite(clv_, "clv")
    _require_probabilities(p_)
    return _Inputs(customer_ids=ids, p=p_, clv=clv_, reachable=_reachability(reachable, config, n))


def _vector(values: npt.ArrayLike, name: str, length: int | None = None) -> npt.NDArray[Any]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise BadRequest(f"{name} must be a 1-D array, got shape {array.shape}")
    if length is not None and len(array) != length:
        raise BadRequest(f"{name} has {len(array)} values but p has {length}: one per customer")
    return array


def _floats(values: npt.ArrayLike, name: str, length: int | None = None) -> FloatArray:
    array = _vector(values, name, length)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise BadRequest(f"{name} must be numeric, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _reachability(reachable: Mapping[str, npt.ArrayLike], config: DecisionConfig, n: int) -> list[BoolArray]:
    names = [channel.name for channel in config.channels]
    missing, unknown = sorted(set(names) - set(reachable)), sorted(set(reachable) - set(names))
    if missing or unknown:
        raise BadRequest(f"reachable must name exactly the configured channels: missing {missing}, unknown {unknown}")
    arrays: list[BoolArray] = []
    for name in names:
        array = _vector(reachable[name], f"reachable[{name!r}]", n)
        if array.dtype != np.bool_:
            raise BadRequest(f"reachable[{name!r}] must be a boolean array, got {array.dtype}")
        arrays.append(array)
    return arrays


def _require_finite(values: FloatArray, name: str) -> None:
    if not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values))
        raise BadRequest(f"{name} has {len(bad)} NaN or infinite value(s), first at position {bad[0]}")


def _require_probabilities(p: FloatArray) -> None:
    if p.min() < 0.0 or p.max() > 1.0:
        bad = np.flatnonzero((p < 0.0) | (p > 1.0))
        raise BadRequest(f"p must lie in [0, 1]: {len(bad)} value(s) outside, first at position {bad[0]} ({p[bad[0]]})")


def _require_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(f"{what} must be a non-empty string, got {name!r}")


def _require_amount(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise BadRequest(f"{what} must be a finite amount >= 0, got {value!r}")


def _require_rate(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise BadRequest(f"{what} must lie in [0, 1], got {value!r}")


def _require_unique(names: list[str], what: str) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BadRequest(f"each {what} must be unique, repeated: {duplicates}")


def _require_band(band: tuple[float, float]) -> None:
    low, high = band
    if not (isinstance(low, int | float) and isinstance(high, int | float) and 0.0 <= low <= high <= 1.0):
        raise BadRequest(f"band must satisfy 0 <= low <= high <= 1, got {band!r}")
