"""Customer lifetime value: BG/NBD + Gamma-Gamma for shops, a churn-hazard formula for subscriptions.

Non-contractual customers (a shop's buyers, who can leave without telling us) get the BG/NBD model
of Fader, Hardie & Lee (2005) for how often and how long they keep buying, and the Gamma-Gamma
model of Fader & Hardie (2013) for how much they spend per purchase; together they give a
discounted expected value over a horizon, computed the way lifetimes' ``customer_lifetime_value``
does. Subscribers (contractual) get ``contractual_clv``: monthly revenue × expected remaining
(discounted) lifetime from the churn hazard × margin.

Why our own small implementation rather than a library: ``lifetimes`` is archived and breaks on
pandas 3 (``calibration_and_holdout_data``) and on setuptools ≥ 81 (``pkg_resources``); current
``pymc-marketing`` releases need Python ≥ 3.12, install ~760 MB and take seconds per MAP fit. A
maximum-likelihood fit in scipy (closed-form log-likelihoods, analytic gradients, L-BFGS-B on the
log-parameters) reproduces the published CDNOW estimates in under a tenth of a second; ``tests/ml/test_clv.py``
pins it to the literature and to lifetimes' own numbers.

Notation is the papers': per customer ``x`` repeat purchases (purchase *days* after the first),
``t_x`` the time of the last one and ``T`` the age, both measured from the first purchase in time
units of ``unit_days`` days (weeks by default), and ``m̄`` (``monetary_value``) the mean spend of the
repeat purchases.
"""

# The papers' notation: T is the customer's age, as in every BG/NBD text; renaming it would hide that.
# ruff: noqa: N803, N806

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from core.errors import Conflict, ValidationFailed
from ml import artifacts

Floats = npt.NDArray[np.float64]
Moment = dt.date | dt.datetime | pd.Timestamp | str

ORDER_COLUMNS = ("customer_id", "ordered_at", "amount")
SUMMARY_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value")
PREDICTION_COLUMNS = ("customer_id", "expected_purchases", "p_alive", "expected_spend", "clv")

# |corr(x, m̄)| above this and Gamma-Gamma's independence assumption is doubtful (lifetimes' docs
# show 0.11 on CDNOW as "fine"); we warn rather than refuse, since the estimate is still usable.
DEPENDENCE_WARNING_THRESHOLD = 0.3
# Parameters live in [1e-6, 1e6]: wide enough for any time unit, narrow enough that a parameter
# running off to 0 or ∞ (a model the data cannot identify) shows up as a bound hit we can report.
_LOG_BOUND = math.log(1e6)
_GRADIENT_TOLERANCE = 1e-5


class FrequencyMonetaryDependence(UserWarning):
    """Gamma-Gamma assumes spend per purchase is independent of purchase frequency; the data disagree."""


# --- transactions → (x, t_x, T, m̄) -----------------------------------------------------------------


def rfm_summary(orders: pd.DataFrame, calibration_end: Moment, *, unit_days: int = 7) -> pd.DataFrame:
    """Per-customer frequency, recency, age and repeat spend from a transaction log.

    Parameters
    ----------
    orders
        One row per order with ``customer_id``, ``ordered_at`` (datetime64, naive = UTC, or
        tz-aware) and ``amount`` (numeric, ≥ 0).
    calibration_end
        The last day of the calibration period, inclusive: orders on any (UTC) day after it are
        ignored. Ages are measured up to this day.
    unit_days
        Days per time unit (7: weeks, as in Fader, Hardie & Lee 2005).

    Returns
    -------
    pandas.DataFrame
        One row per customer with a first order on or before ``calibration_end``, sorted by
        ``customer_id``; columns ``customer_id``, ``frequency`` (x: purchase days after the first;
        several orders on one day count once, as lifetimes does with ``freq='D'``), ``recency``
        (t_x: first to last purchase day), ``T`` (first purchase day to ``calibration_end``), both in
        units, and ``monetary_value`` (m̄: mean spend per repeat purchase day, the first day
        excluded; 0 when x = 0).

    Raises
    ------
    core.errors.ValidationFailed
        Missing or mistyped columns, missing values, negative amounts, or no order on or before
        ``calibration_end``.
    """
    if unit_days < 1:
        raise ValidationFailed(f"unit_days must be a whole number of days ≥ 1, not {unit_days}")
    end = _utc_day(calibration_end)
    daily = _daily_spend(_validated_orders(orders), end)
    if daily.empty:
        raise ValidationFailed(f"no orders on or before {end.date()}: nothing to summarise")
    return _summarise_days(daily, end, unit_days)


def _validated_orders(orders: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(orders, pd.DataFrame):
        raise ValidationFailed(f"orders must be a pandas DataFrame, not {type(orders).__name__}")
    problems = [
        {"path": column, "message": "missing column"} for column in ORDER_COLUMNS if column not in orders.columns
    ]
    if not problems:
        problems = _column_problems(orders)
    if problems:
        summary = "; ".join(f"{problem['path']}: {problem['message']}" for problem in problems)
        raise ValidationFailed(f"the orders cannot be used: {summary}", details=problems)
    return pd.DataFrame(
        {
            "customer_id": orders["customer_id"].to_numpy(),
            "day": _utc_days(orders["ordered_at"]).to_numpy(),
            "amount": orders["amount"].to_numpy(dtype=np.float64),
        }
    )


def _column_problems(orders: pd.DataFrame) -> list[dict[str, str]]:
    problems = []
    for column in ORDER_COLUMNS:
        if missing := int(orders[column].isna().sum()):
            problems.append({"path": column, "message": f"{missing} missing values"})
    if not pd.api.types.is_datetime64_any_dtype(orders["ordered_at"]):
        problems.append({"path": "ordered_at", "message": f"must be datetimes, not {orders['ordered_at'].dtype}"})
    amount = orders["amount"]
    if not pd.api.types.is_numeric_dtype(amount) or pd.api.types.is_bool_dtype(amount):
        message = f"must be numbers, not {amount.dtype} (convert Decimal values with .astype(float))"
        problems.append({"path": "amount", "message": message})
    else:
        values = amount.to_numpy(dtype=np.float64)
        if negative := int((values < 0).sum()):
            message = f"{negative} negative amounts (net refunds against their orders first)"
            problems.append({"path": "amount", "message": message})
        if infinite := int(np.isinf(values).sum()):
            problems.append({"path": "amount", "message": f"{infinite} infinite amounts"})
    return problems


def _utc_days(moments: pd.Series[Any]) -> pd.Series[Any]:
    # Days are UTC calendar days: naive times are taken as UTC, aware ones converted to it.
    if isinstance(moments.dtype, pd.DatetimeTZDtype):
        moments = moments.dt.tz_convert("UTC").dt.tz_localize(None)
    days: pd.Series[Any] = moments.dt.normalize()
    return days


def _utc_day(moment: Moment) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(moment)
    except (TypeError, ValueError) as error:
        raise ValidationFailed(f"not a date or time: {moment!r}") from error
    if pd.isna(stamp):
        raise ValidationFailed(f"not a date or time: {moment!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.normalize()


def _daily_spend(orders: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    # Same-day orders are one purchase occasion: a split basket is not a repeat purchase.
    kept = orders[orders["day"] <= end]
    return kept.groupby(["customer_id", "day"], sort=True)["amount"].sum().reset_index()


def _summarise_days(daily: pd.DataFrame, end: pd.Timestamp, unit_days: int) -> pd.DataFrame:
    by_customer = daily.groupby("customer_id", sort=True)
    first, last = by_customer["day"].min(), by_customer["day"].max()
    frequency = (by_customer.size() - 1).astype(np.float64)
    repeat_spend = by_customer["amount"].sum() - by_customer["amount"].first()  # days are sorted: first = first day
    monetary = (repeat_spend / frequency.where(frequency > 0)).fillna(0.0)
    return pd.DataFrame(
        {
            "customer_id": first.index.to_numpy(),
            "frequency": frequency.to_numpy(),
            "recency": (last - first).dt.days.to_numpy(dtype=np.float64) / unit_days,
            "T": (end - first).dt.days.to_numpy(dtype=np.float64) / unit_days,
            "monetary_value": monetary.to_numpy(dtype=np.float64),
        }
    )


# --- maximum likelihood --------------------------------------------------------------------------

# theta -> (log-likelihood per customer, its gradient in theta: one row per parameter)
LikelihoodTerms = Callable[[Floats], tuple[Floats, Floats]]


def _maximise(terms: LikelihoodTerms, start: Floats, penalizer: float, model: str) -> Floats:
    """The MLE of a positive parameter vector: L-BFGS-B on log-parameters, mean log-likelihood.

    The mean (not the sum) keeps the objective's scale, and so the tolerances, independent of the
    number of customers; the L2 penalty on the parameters is lifetimes' ``penalizer_coef``.
    """

    def objective(log_theta: Floats) -> tuple[float, Floats]:
        theta = np.exp(log_theta)
        log_likelihood, gradient = terms(theta)
        value = -float(log_likelihood.mean()) + penalizer * float(np.sum(theta**2))
        slope = -gradient.mean(axis=1) * theta + 2.0 * penalizer * theta**2  # chain rule: d/dlogθ = θ d/dθ
        return value, slope

    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(start)
    with np.errstate(all="ignore"):  # trial steps may overflow; the search backs off from them
        result = minimize(
            objective,
            np.log(start),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-10},
        )
        value, slope = objective(result.x)
    _check_converged(model, result, value, slope)
    return np.exp(np.asarray(result.x, dtype=np.float64))


def _check_converged(model: str, result: Any, value: float, slope: Floats) -> None:
    # L-BFGS-B reports a line-search failure when it cannot improve at machine precision; a flat
    # gradient means that is an optimum, so the gradient, not the message, decides.
    if not math.isfinite(value) or not np.all(np.isfinite(slope)):
        raise ValidationFailed(f"the {model} fit failed: the likelihood is not finite at its end point")
    if np.any(np.abs(result.x) >= _LOG_BOUND - 1e-6):
        raise ValidationFailed(
            f"the {model} fit ran a parameter to 0 or infinity: the data cannot identify the model "
            "(too few customers, or too few who bought again)"
        )
    if np.max(np.abs(slope)) > _GRADIENT_TOLERANCE:
        raise ValidationFailed(f"the {model} fit did not converge ({result.message}); more history may help")


def _as_floats(values: npt.ArrayLike) -> Floats:
    return np.asarray(values, dtype=np.float64)


def _check_rfm(x: Floats, t_x: Floats, T: Floats) -> None:
    problems = []
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        problems.append("x, t_x and T must be one-dimensional and of equal length")
    elif not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        problems.append("x, t_x and T must be finite numbers")
    else:
        if np.any(x < 0) or np.any(x != np.floor(x)):
            problems.append("x must be whole numbers ≥ 0")
        if np.any(t_x < 0) or np.any(t_x > T):
            problems.append("need 0 ≤ t_x ≤ T for every customer")
        if np.any((x == 0) & (t_x != 0)):
            problems.append("t_x must be 0 where x is 0")
    if problems:
        raise ValidationFailed(f"bad BG/NBD input: {'; '.join(problems)}")


# --- BG/NBD --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BetaGeo:
    """The BG/NBD model (Fader, Hardie & Lee 2005) with fitted parameters.

    While alive, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each purchase
    they drop out with probability p ~ Beta(a, b). Every method is vectorised over customers.

    Attributes
    ----------
    r, alpha
        Shape and rate of the purchase-rate distribution (α in time units).
    a, b
        Parameters of the dropout-probability distribution.
    """

    r: float
    alpha: float
    a: float
    b: float

    @classmethod
    def fit(cls, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, *, penalizer: float = 0.0) -> BetaGeo:
        """Maximum-likelihood estimates of r, α, a and b.

        Parameters
        ----------
        x, t_x, T
            Per customer: repeat purchases, time of the last one, age (see ``rfm_summary``).
        penalizer
            L2 penalty on the parameters (0: the plain MLE of the literature).

        Returns
        -------
        BetaGeo

        Raises
        ------
        core.errors.ValidationFailed
            Inconsistent input, or an optimum that is not found or not identified.
        """
        xs, t_xs, Ts = _as_floats(x), _as_floats(t_x), _as_floats(T)
        _check_rfm(xs, t_xs, Ts)
        if not np.any(xs > 0):
            raise ValidationFailed("the BG/NBD fit needs some customers who bought again; none did")
        # Start at a purchase rate equal to the observed one, so α0 follows the time unit.
        rate = float(xs.sum() / max(Ts.sum(), 1e-12))
        start = np.array([1.0, 1.0 / max(rate, 1e-6), 1.0, 1.0])
        r, alpha, a, b = _maximise(lambda theta: _bg_terms(theta, xs, t_xs, Ts), start, penalizer, "BG/NBD")
        return cls(r=float(r), alpha=float(alpha), a=float(a), b=float(b))

    def log_likelihood(self, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> float:
        """The total log-likelihood of the customers' (x, t_x, T) under these parameters."""
        xs, t_xs, Ts = _as_floats(x), _as_floats(t_x), _as_floats(T)
        _check_rfm(xs, t_xs, Ts)
        return float(_bg_terms(self._theta(), xs, t_xs, Ts)[0].sum())

    def p_alive(self, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> Floats:
        """The probability that each customer has not dropped out by their age T.

        Returns
        -------
        numpy.ndarray
            1 for customers with x = 0: in BG/NBD a customer can drop out only right after a purchase.
        """
        xs, t_xs, Ts = _as_floats(x), _as_floats(t_x), _as_floats(T)
        with np.errstate(divide="ignore"):
            log_odds_dead = (self.r + xs) * np.log((self.alpha + Ts) / (self.alpha + t_xs)) + np.log(
                self.a / (self.b + np.maximum(xs, 1.0) - 1.0)
            )
        return np.where(xs > 0, expit(-log_odds_dead), 1.0)

    def expected_purchases(self, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> Floats:
        """The expected number of purchases in the next ``t`` units, given each customer's history.

        Parameters
        ----------
        t
            Length of the future period in units (scalar, or broadcastable against the customers).
        x, t_x, T
            Per customer: repeat purchases, time of the last one, age.

        Returns
        -------
        numpy.ndarray
            E[Y(t) | x, t_x, T] of FHL 2005, equation (10).
        """
        xs, Ts = _as_floats(x), _as_floats(T)
        return self._purchases_if_alive(_as_floats(t), xs, Ts) * self.p_alive(xs, t_x, Ts)

    def expected_purchases_new(self, t: npt.ArrayLike) -> Floats:
        """The expected number of repeat purchases in the first ``t`` units of a new customer, E[X(t)]."""
        return self._purchases_if_alive(_as_floats(t), np.zeros(()), np.zeros(()))

    def _purchases_if_alive(self, t: Floats, x: Floats, T: Floats) -> Floats:
        # FHL's eq. (10) numerator with Euler's transformation applied to its 2F1: the remaining
        # 2F1(a+b-1-r, a-1; a+b+x-1; z) has no parameter growing with x, so it neither overflows for
        # heavy buyers nor needs lifetimes' fallback. At x = 0, T = 0 it is E[X(t)] (eq. 9). At a = 1
        # exactly it is 0/0 (the limit exists; an MLE landing exactly there is not handled).
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        series = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        return np.asarray((a + b + x - 1.0) / (a - 1.0) * (1.0 - (1.0 - z) ** (a - 1.0) * series), dtype=np.float64)

    def _theta(self) -> Floats:
        return np.array([self.r, self.alpha, self.a, self.b])


def _bg_terms(theta: Floats, x: Floats, t_x: Floats, T: Floats) -> tuple[Floats, Floats]:
    """BG/NBD log-likelihood per customer (FHL 2005, eq. 6, in logs) and its gradient in (r, α, a, b)."""
    r, alpha, a, b = theta
    repeat = x > 0
    x1 = np.maximum(x, 1.0)  # the A4 term exists only for x > 0; keep b + x - 1 > 0 elsewhere
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + x1 - 1.0) - (r + x) * np.log(alpha + t_x)
    log_likelihood = a1 + a2 + np.where(repeat, np.logaddexp(a3, a4), a3)
    w4 = np.where(repeat, expit(a4 - a3), 0.0)  # share of the likelihood from "dropped out after t_x"
    w3 = 1.0 - w4
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / (b + x1 - 1.0)
    return log_likelihood, np.vstack([d_r, d_alpha, d_a, d_b])


# --- Gamma-Gamma ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GammaGamma:
    """The Gamma-Gamma model of spend per purchase (Fader & Hardie 2013) with fitted parameters.

    Each purchase's value is Gamma(p, ν) with ν ~ Gamma(q, v) across customers, independent of how
    often they buy. lifetimes calls the scale ``v``; Fader & Hardie call it γ.

    Attributes
    ----------
    p, q, v
        Shape of the per-purchase spend, shape and scale of its rate across customers.
    """

    p: float
    q: float
    v: float

    @classmethod
    def fit(
        cls, x: npt.ArrayLike, monetary_value: npt.ArrayLike, *, penalizer: float = 0.0, min_customers: int = 10
    ) -> GammaGamma:
        """Maximum-likelihood estimates of p, q and v from repeat customers.

        Parameters
        ----------
        x, monetary_value
            Per customer: repeat purchases and their mean spend m̄. Customers with x = 0 or m̄ = 0
            carry no information on spend and are left out.
        penalizer
            L2 penalty on the parameters.
        min_customers
            Fewest usable customers to fit on.

        Returns
        -------
        GammaGamma

        Raises
        ------
        core.errors.ValidationFailed
            Too few usable customers, a fit that does not converge, or q ≤ 1 (no finite mean spend).

        Warns
        -----
        FrequencyMonetaryDependence
            When |corr(x, m̄)| among the usable customers exceeds ``DEPENDENCE_WARNING_THRESHOLD``.
        """
        xs, ms = _repeat_spenders(x, monetary_value)
        if xs.size < min_customers:
            raise ValidationFailed(
                f"too little history for Gamma-Gamma: {xs.size} customers bought again with a positive "
                f"spend; it needs at least {min_customers}"
            )
        _warn_if_dependent(xs, ms)
        start = np.array([1.0, 2.0, float(ms.mean())])  # a population mean spend p·v/(q-1) equal to the observed
        p, q, v = _maximise(lambda theta: _gg_terms(theta, xs, ms), start, penalizer, "Gamma-Gamma")
        if q <= 1.0:
            raise ValidationFailed(f"the Gamma-Gamma fit gives q = {q:.3f} ≤ 1: mean spend is unbounded")
        return cls(p=float(p), q=float(q), v=float(v))

    def log_likelihood(self, x: npt.ArrayLike, monetary_value: npt.ArrayLike) -> float:
        """The total log-likelihood of the repeat customers' m̄ (customers with x = 0 or m̄ = 0 left out)."""
        xs, ms = _repeat_spenders(x, monetary_value)
        return float(_gg_terms(np.array([self.p, self.q, self.v]), xs, ms)[0].sum())

    def expected_average_spend(self, x: npt.ArrayLike, monetary_value: npt.ArrayLike) -> Floats:
        """E[spend per purchase | x, m̄]: the customer's mean shrunk toward the population mean p·v/(q−1).

        Returns
        -------
        numpy.ndarray
            The population mean for customers with x = 0.
        """
        xs, ms = _as_floats(x), _as_floats(monetary_value)
        weight = self.p * xs / (self.p * xs + self.q - 1.0)
        population_mean = self.p * self.v / (self.q - 1.0)
        return np.asarray((1.0 - weight) * population_mean + weight * np.where(xs > 0, ms, 0.0), dtype=np.float64)


def frequency_monetary_correlation(x: npt.ArrayLike, monetary_value: npt.ArrayLike) -> float:
    """Pearson correlation of x and m̄ among repeat customers (NaN if it is undefined)."""
    xs, ms = _repeat_spenders(x, monetary_value)
    if xs.size < 2 or np.ptp(xs) == 0 or np.ptp(ms) == 0:
        return math.nan
    return float(np.corrcoef(xs, ms)[0, 1])


def _repeat_spenders(x: npt.ArrayLike, monetary_value: npt.ArrayLike) -> tuple[Floats, Floats]:
    xs, ms = _as_floats(x), _as_floats(monetary_value)
    if xs.shape != ms.shape or xs.ndim != 1:
        raise ValidationFailed("x and monetary_value must be one-dimensional and of equal length")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ms))) or np.any(ms < 0) or np.any(xs < 0):
        raise ValidationFailed("x and monetary_value must be finite and ≥ 0")
    usable = (xs > 0) & (ms > 0)
    return xs[usable], ms[usable]


def _warn_if_dependent(x: Floats, m: Floats) -> None:
    correlation = frequency_monetary_correlation(x, m)
    if abs(correlation) > DEPENDENCE_WARNING_THRESHOLD:
        warnings.warn(
            f"frequency and spend per purchase are correlated (r = {correlation:.2f}); Gamma-Gamma assumes "
            "they are independent, so its spend estimates may be biased",
            FrequencyMonetaryDependence,
            stacklevel=3,
        )


def _gg_terms(theta: Floats, x: Floats, m: Floats) -> tuple[Floats, Floats]:
    """Gamma-Gamma log-density of m̄ per customer (Fader & Hardie 2013, eq. 4) and its gradient in (p, q, v)."""
    p, q, v = theta
    px = p * x
    log_total = np.log(x * m + v)
    log_likelihood = (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1.0) * np.log(m) + px * np.log(x)
    ) - (px + q) * log_total
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_total)
    d_q = digamma(px + q) - digamma(q) + np.log(v) - log_total
    d_v = q / v - (px + q) / (x * m + v)
    return log_likelihood, np.vstack([d_p, d_q, d_v])


# --- lifetime value ------------------------------------------------------------------------------


def noncontractual_clv(
    bg: BetaGeo,
    gg: GammaGamma,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    horizon_units: int,
    margin: float,
    discount_rate_per_unit: float,
) -> Floats:
    """Discounted expected profit over the next ``horizon_units`` units, per customer.

    As lifetimes' ``customer_lifetime_value``: Σ_{i=1..H} (E[Y(i)] − E[Y(i−1)]) × E[spend] × margin
    / (1 + d)^i, with E[Y] from BG/NBD and E[spend] from Gamma-Gamma; each unit's purchases are
    discounted as if made at its end.

    Parameters
    ----------
    bg, gg
        Fitted models.
    x, t_x, T, monetary_value
        Per customer, as returned by ``rfm_summary``.
    horizon_units
        Number of future units (52 with weekly units: a year).
    margin
        Share of spend that is profit, in [0, 1] (1: revenue).
    discount_rate_per_unit
        Discount rate per unit, ≥ 0.

    Returns
    -------
    numpy.ndarray
    """
    _check_value_settings(margin, discount_rate_per_unit, horizon_units)
    _, _, clv = _clv_terms(bg, gg, (x, t_x, T, monetary_value), horizon_units, margin, discount_rate_per_unit)
    return clv


def _clv_terms(
    bg: BetaGeo,
    gg: GammaGamma,
    rfm: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, npt.ArrayLike],
    horizon_units: int,
    margin: float,
    discount_rate: float,
) -> tuple[Floats, Floats, Floats]:
    """(E[purchases over the horizon], P(alive), discounted value): one pass over the horizon."""
    xs, t_xs, Ts, ms = (_as_floats(values) for values in rfm)
    alive = bg.p_alive(xs, t_xs, Ts)
    # The curve of purchases-if-alive depends on (x, T) only, and real ages are whole days, so many
    # customers share one: computing each distinct curve once makes scoring tens of times faster.
    pairs, inverse = np.unique(np.column_stack([xs, Ts]), axis=0, return_inverse=True)
    cumulative, discounted = _discounted_purchases(bg, pairs[:, 0], pairs[:, 1], horizon_units, discount_rate)
    inverse = inverse.reshape(-1)
    spend = gg.expected_average_spend(xs, ms)
    return cumulative[inverse] * alive, alive, discounted[inverse] * alive * spend * margin


def _discounted_purchases(
    bg: BetaGeo, x: Floats, T: Floats, horizon_units: int, discount_rate: float
) -> tuple[Floats, Floats]:
    """Purchases-if-alive over the horizon, undiscounted and discounted unit by unit (at each unit's end)."""
    previous, discounted = np.zeros_like(x), np.zeros_like(x)
    for unit in range(1, horizon_units + 1):
        current = bg._purchases_if_alive(np.array(unit, dtype=np.float64), x, T)
        discounted += (current - previous) / (1.0 + discount_rate) ** unit
        previous = current
    return previous, discounted


def _check_value_settings(margin: float, discount_rate: float, horizon: int | None) -> None:
    problems = []
    if not 0.0 <= margin <= 1.0:
        problems.append(f"margin must be in [0, 1], not {margin}")
    if not discount_rate >= 0.0:
        problems.append(f"the discount rate must be ≥ 0, not {discount_rate}")
    if horizon is not None and (int(horizon) != horizon or horizon < 1):
        problems.append(f"the horizon must be a whole number ≥ 1, not {horizon}")
    if problems:
        raise ValidationFailed("; ".join(problems))


def contractual_clv(
    monthly_revenue: npt.ArrayLike,
    monthly_churn_probability: npt.ArrayLike,
    *,
    margin: float,
    monthly_discount_rate: float,
    horizon_months: int | None = None,
) -> Floats:
    """Expected discounted profit of a subscriber's future payments, given a constant monthly churn hazard.

    Convention: the month in progress is already paid, so it is not counted. The subscriber pays
    ``monthly_revenue`` at the start of each future month k = 1, 2, … if they have renewed k times
    (probability (1 − h)^k), discounted by (1 + d)^k::

        CLV = revenue × margin × Σ_{k=1..K} ρ^k,  ρ = (1 − h) / (1 + d)
            = revenue × margin × ρ (1 − ρ^K) / (1 − ρ)      (K = ∞: ρ / (1 − ρ) = (1 − h) / (h + d))

    so the value at stake when a customer may churn now is exactly what is lost. Add one month's
    ``monthly_revenue × margin`` for the "pays this month too" convention, (1 + d) / (h + d).

    Parameters
    ----------
    monthly_revenue
        Revenue per month per subscriber, ≥ 0.
    monthly_churn_probability
        Hazard h: the probability of leaving at each renewal, in [0, 1] (see ``monthly_churn_hazard``).
    margin
        Share of revenue that is profit, in [0, 1].
    monthly_discount_rate
        d, ≥ 0.
    horizon_months
        K, a cap on the months counted; ``None`` for no cap.

    Returns
    -------
    numpy.ndarray
        Broadcast over the array arguments.

    Raises
    ------
    core.errors.ValidationFailed
        Out-of-range arguments, or an infinite value (h = 0 and d = 0 with no horizon).
    """
    _check_value_settings(margin, monthly_discount_rate, horizon_months)
    revenue, hazard = np.broadcast_arrays(_as_floats(monthly_revenue), _as_floats(monthly_churn_probability))
    if not (np.all(revenue >= 0) and np.all((hazard >= 0) & (hazard <= 1))):
        raise ValidationFailed("monthly revenue must be ≥ 0 and churn probabilities in [0, 1]")
    ratio = (1.0 - hazard) / (1.0 + monthly_discount_rate)
    if horizon_months is None:
        if np.any(ratio >= 1.0):
            raise ValidationFailed("with no churn and no discounting the value is infinite: set a horizon")
        lifetime = ratio / (1.0 - ratio)
    else:
        lifetime = _capped_geometric_sum(ratio, horizon_months)
    return np.asarray(revenue * margin * lifetime, dtype=np.float64)


def _capped_geometric_sum(ratio: Floats, terms: int) -> Floats:
    # Σ_{k=1..K} ρ^k; at ρ = 1 the closed form is 0/0 and the sum is simply K.
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = ratio * (1.0 - ratio**terms) / (1.0 - ratio)
    return np.where(np.isclose(ratio, 1.0, rtol=0.0, atol=1e-12), float(terms), closed)


def monthly_churn_hazard(
    churn_probability: npt.ArrayLike, horizon_days: float, *, days_per_month: float = 30.0
) -> Floats:
    """A constant monthly hazard from a churn probability over ``horizon_days``: 1 − (1 − p)^(30/H).

    Parameters
    ----------
    churn_probability
        P(churn within ``horizon_days``), in [0, 1] (e.g. a calibrated churn model's output).
    horizon_days
        H, the horizon of that probability, > 0.
    days_per_month
        Days in a month (30).

    Returns
    -------
    numpy.ndarray
    """
    p = _as_floats(churn_probability)
    if horizon_days <= 0 or not np.all((p >= 0) & (p <= 1)):
        raise ValidationFailed("churn probabilities must be in [0, 1] and the horizon > 0 days")
    return np.asarray(1.0 - (1.0 - p) ** (days_per_month / horizon_days), dtype=np.float64)


# --- the model Nudge trains, stores and scores with ----------------------------------------------


@dataclass(frozen=True, slots=True)
class ClvConfig:
    """Settings of a ``ClvModel``; their hash is stored with the artifact.

    Attributes
    ----------
    unit_days
        Days per model time unit (7: weeks).
    horizon_days
        CLV and expected purchases are over this many days; a multiple of ``unit_days``.
    margin
        Share of spend that is profit, in [0, 1]; 1 gives revenue CLV, as lifetimes does.
    annual_discount_rate
        Converted to a per-unit rate as (1 + rate)^(unit_days / 365) − 1.
    penalizer
        L2 penalty on both models' parameters (0: plain MLE).
    min_repeat_customers
        Fewest customers with a repeat purchase (and a positive spend) to fit on.
    """

    unit_days: int = 7
    horizon_days: int = 364
    margin: float = 1.0
    annual_discount_rate: float = 0.10
    penalizer: float = 0.0
    min_repeat_customers: int = 30

    def __post_init__(self) -> None:
        problems = []
        if self.unit_days < 1 or self.horizon_days < self.unit_days or self.horizon_days % self.unit_days:
            problems.append("horizon_days must be a whole, positive multiple of unit_days (≥ 1)")
        if self.penalizer < 0 or self.min_repeat_customers < 1:
            problems.append("penalizer must be ≥ 0 and min_repeat_customers ≥ 1")
        if problems:
            raise ValidationFailed(f"bad CLV configuration: {'; '.join(problems)}")
        _check_value_settings(self.margin, self.annual_discount_rate, None)

    @property
    def horizon_units(self) -> int:
        return self.horizon_days // self.unit_days

    @property
    def discount_rate_per_unit(self) -> float:
        return float((1.0 + self.annual_discount_rate) ** (self.unit_days / 365.0) - 1.0)


@dataclass(frozen=True, slots=True)
class ClvFitReport:
    """What a fit saw and reached; stored in the artifact's manifest."""

    calibration_end: str
    customers: int
    repeat_customers: int
    beta_geo_log_likelihood: float
    gamma_gamma_log_likelihood: float
    frequency_monetary_correlation: float


class ClvModel:
    """BG/NBD + Gamma-Gamma CLV for non-contractual customers: fit, predict, save, load.

    Parameters
    ----------
    config
        Settings; the defaults are weekly units, a 52-week horizon, revenue (margin 1) and a 10 %
        annual discount rate.
    """

    kind: ClassVar[str] = "clv_bgnbd_gamma_gamma"

    def __init__(self, config: ClvConfig | None = None) -> None:
        self.config = config or ClvConfig()
        self.beta_geo: BetaGeo | None = None
        self.gamma_gamma: GammaGamma | None = None
        self.report: ClvFitReport | None = None

    def fit(self, orders: pd.DataFrame, calibration_end: Moment) -> ClvModel:
        """Fit both models on the orders up to and including ``calibration_end``.

        Parameters
        ----------
        orders
            ``customer_id``, ``ordered_at``, ``amount`` (see ``rfm_summary``).
        calibration_end
            Last (UTC) day of the history used.

        Returns
        -------
        ClvModel
            ``self``, fitted.

        Raises
        ------
        core.errors.ValidationFailed
            Bad orders, fewer than ``min_repeat_customers`` repeat customers, or a fit that fails.
        """
        summary = rfm_summary(orders, calibration_end, unit_days=self.config.unit_days)
        x, t_x, T, m = (summary[column].to_numpy() for column in SUMMARY_COLUMNS[1:])
        repeaters = int((x > 0).sum())
        if repeaters < self.config.min_repeat_customers:
            raise ValidationFailed(
                f"too little history: {repeaters} customers bought again by {_utc_day(calibration_end).date()}; "
                f"the CLV model needs at least {self.config.min_repeat_customers}"
            )
        penalizer = self.config.penalizer
        self.beta_geo = BetaGeo.fit(x, t_x, T, penalizer=penalizer)
        self.gamma_gamma = GammaGamma.fit(x, m, penalizer=penalizer, min_customers=self.config.min_repeat_customers)
        self.report = ClvFitReport(
            calibration_end=_utc_day(calibration_end).date().isoformat(),
            customers=len(summary),
            repeat_customers=repeaters,
            beta_geo_log_likelihood=self.beta_geo.log_likelihood(x, t_x, T),
            gamma_gamma_log_likelihood=self.gamma_gamma.log_likelihood(x, m),
            frequency_monetary_correlation=frequency_monetary_correlation(x, m),
        )
        return self

    def predict(self, orders: pd.DataFrame, as_of: Moment | None = None) -> pd.DataFrame:
        """Per-customer predictions from the orders up to and including ``as_of``.

        Parameters
        ----------
        orders
            ``customer_id``, ``ordered_at``, ``amount``.
        as_of
            Last (UTC) day of history to condition on; default: the calibration end.

        Returns
        -------
        pandas.DataFrame
            One row per customer with a first order on or before ``as_of``, sorted by id:
            ``customer_id``; ``expected_purchases`` over the horizon; ``p_alive``; ``expected_spend``
            per purchase; ``clv``, discounted profit over the horizon (config's margin and rate).

        Raises
        ------
        core.errors.Conflict
            The model is not fitted.
        core.errors.ValidationFailed
            Bad orders (see ``rfm_summary``).
        """
        beta_geo, gamma_gamma, report = self._fitted()
        moment = report.calibration_end if as_of is None else as_of
        summary = rfm_summary(orders, moment, unit_days=self.config.unit_days)
        x, t_x, T, m = (summary[column].to_numpy() for column in SUMMARY_COLUMNS[1:])
        purchases, alive, clv = _clv_terms(
            beta_geo,
            gamma_gamma,
            (x, t_x, T, m),
            self.config.horizon_units,
            self.config.margin,
            self.config.discount_rate_per_unit,
        )
        spend = gamma_gamma.expected_average_spend(x, m)
        return pd.DataFrame(
            dict(
                zip(PREDICTION_COLUMNS, (summary["customer_id"].to_numpy(), purchases, alive, spend, clv), strict=True)
            )
        )

    def save(self, directory: Path) -> artifacts.Manifest:
        """Write the fitted model as an artifact (see ``ml.artifacts``); returns its manifest."""
        beta_geo, gamma_gamma, report = self._fitted()
        payload = {
            "config": asdict(self.config),
            "beta_geo": asdict(beta_geo),
            "gamma_gamma": asdict(gamma_gamma),
            "report": asdict(report),
        }
        return artifacts.save(directory, self.kind, self.config, payload, metadata=payload)

    @classmethod
    def load(cls, directory: Path, config: ClvConfig | None = None) -> ClvModel:
        """Read a saved model, refusing one made with another configuration or code version.

        Parameters
        ----------
        directory
            Where ``save`` wrote it.
        config
            The configuration the caller expects; ``None`` accepts the stored one.

        Raises
        ------
        core.errors.Conflict
            Another kind of model, another configuration or code version, or a corrupted payload.
        core.errors.NotFound
            No artifact in ``directory``.
        """
        expected = artifacts.config_hash(config) if config is not None else None
        payload, manifest = artifacts.load(directory, cls.kind, expected)
        stored = ClvConfig(**payload["config"])
        if artifacts.config_hash(stored) != manifest.config_hash:
            raise Conflict(
                f"refusing the model artifact in {directory}: its stored configuration does not match its hash"
            )
        model = cls(stored)
        model.beta_geo = BetaGeo(**payload["beta_geo"])
        model.gamma_gamma = GammaGamma(**payload["gamma_gamma"])
        model.report = ClvFitReport(**payload["report"])
        return model

    def _fitted(self) -> tuple[BetaGeo, GammaGamma, ClvFitReport]:
        if self.beta_geo is None or self.gamma_gamma is None or self.report is None:
            raise Conflict("the CLV model is not fitted: call fit() or load() first")
        return self.beta_geo, self.gamma_gamma, self.report
