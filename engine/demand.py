"""What the scaler answers KEDA: the demand to provision for, from a forecast and the observed value."""

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .types import Forecast


def forecast_covers(forecast: Forecast, now: float) -> bool:
    """True while some forecast step still lies ahead of `now`."""
    return forecast.end > now


# The HPA keeps the replica count while metric / (replicas x target) is within 1 +- 0.1 (its default
# tolerance). A forecast rise smaller than that would be served but not acted on until the load itself
# had crossed the band, so a rising forecast is served at least this far above the observed value.
HPA_TOLERANCE = 0.1


def expected_demand(forecast: Forecast, observed: float, now: float, lead_seconds: float, quantile: float) -> float:
    """The highest `quantile` forecast over the lead window (now, now + lead], never below `observed`;
    when it is above `observed`, at least observed x (1 + HPA_TOLERANCE).

    The lead window is the time a new replica needs to become ready: provisioning for its peak now
    means the capacity is there when the load arrives. The observed floor means a forecast may add
    replicas early but never hides load that is already here. When the window falls between two
    steps, the first step after `now` stands for it. The result is finite and >= 0.
    (benchmarks/scaling.py: the tolerance step halves auto's shortfalls for ~3% more replicas.)
    """
    return _floored(lead_window_peak(forecast, now, lead_seconds, quantile), observed)[0]


def lead_window_peak(forecast: Forecast, now: float, lead_seconds: float, quantile: float) -> float:
    """The highest `quantile` forecast over the lead window (now, now + lead] (see expected_demand)."""
    first, end = np.searchsorted(forecast.timestamps, (now, now + lead_seconds), side="right")
    if first == forecast.horizon:
        raise ValueError(f"forecast ends at {forecast.end}, before now ({now:.0f})")
    return float(forecast.quantile(quantile)[first:max(end, first + 1)].max())  # none inside: the next step


Rule = Literal["forecast", "tolerance", "observed floor", "headroom floor", "observed"]


def _floored(peak: float, observed: float) -> tuple[float, Rule]:
    """expected_demand from the lead window's peak, and the rule that set it."""
    if peak > observed:
        raised = observed * (1 + HPA_TOLERANCE)
        return (sanitize(raised), "tolerance") if raised > peak else (sanitize(peak), "forecast")
    return sanitize(max(peak, observed)), "observed floor"


@dataclass(frozen=True)
class Provisioning:
    """How far above the load to provision: the observed value raised by `margin` (0.1: 10 % more;
    basis "headroom": reactive scaling with headroom) or, with basis "forecast", the higher of that and
    the `quantile` forecast over the lead window (expected_demand). So a forecast plan is its headroom
    plus what the forecast sees coming: it adds replicas only for a rise the headroom would not cover."""

    basis: Literal["forecast", "headroom"] = "forecast"
    quantile: float = 0.7
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.basis not in ("forecast", "headroom"):
            raise ValueError(f"basis is 'forecast' or 'headroom', not {self.basis!r}")
        if not 0 < self.quantile < 1 or not 0 <= self.margin <= 10:
            raise ValueError(f"quantile in (0, 1) and margin in [0, 10], got {self.quantile}, {self.margin}")

    @property
    def label(self) -> str:
        """e.g. `forecast q0.8`, `forecast q0.95 over headroom +10%`, `headroom +20%`."""
        raised = f" +{100 * self.margin:.4g}%" if self.margin else ""
        if self.basis == "headroom":
            return f"headroom{raised or ' +0%'}"
        return f"forecast q{self.quantile:g}{' over headroom' + raised if raised else ''}"


def provisioned_demand(forecast: Forecast | None, observed: float, now: float, lead_seconds: float,
                       plan: Provisioning) -> float:
    """The value to serve under `plan`: observed x (1 + margin), or under a forecast plan the forecast's
    expected demand when that is higher (headroom alone while there is no forecast)."""
    return provision(forecast, observed, now, lead_seconds, plan).value


@dataclass(frozen=True)
class Provisioned:
    """provisioned_demand's value with what set it, for people: "forecast" (the lead window's peak),
    "tolerance" (a rise smaller than the HPA's tolerance, served at observed x (1 + HPA_TOLERANCE)),
    "observed floor" (the forecast is below the load already here), "headroom floor" (the forecast is
    below observed x (1 + margin)), "observed" (headroom, or no forecast: observed x (1 + margin))."""

    value: float
    rule: Rule
    peak: float | None = None  # the lead window's peak, when a forecast was read


def provision(forecast: Forecast | None, observed: float, now: float, lead_seconds: float,
              plan: Provisioning) -> Provisioned:
    """provisioned_demand, with what set it."""
    raised = sanitize(observed * (1 + plan.margin))
    if plan.basis == "headroom" or forecast is None:
        return Provisioned(raised, "observed")
    peak = lead_window_peak(forecast, now, lead_seconds, plan.quantile)
    value, rule = _floored(peak, observed)
    if plan.margin and raised >= value:
        return Provisioned(raised, "headroom floor", peak)
    return Provisioned(value, rule, peak)


def next_window_change(forecast: Forecast, now: float, lead_seconds: float) -> float:
    """The first moment after `now` at which a forecast step enters or leaves the lead window, so
    expected_demand gives the same answer until then (for the same observed value)."""
    ts = forecast.timestamps
    events = np.concatenate([ts, ts - lead_seconds])
    later = events[events > now]
    return float(later.min()) if later.size else float("inf")


def sanitize(value: float) -> float:
    """Clamp to a value KEDA and the HPA accept: finite and >= 0 (NaN becomes 0)."""
    if math.isnan(value):
        return 0.0
    return min(max(value, 0.0), 1e15)


def interval_confidence(forecast: Forecast, index: int, level: float) -> float:
    """How sure the forecast is of step `index`: 1 - (upper - lower) / (2 |point|) of its `level`
    interval, clamped to [0, 1]. An interval of +-20 % around the point gives 0.8; one as wide as the
    point itself, or a point of zero with any spread, gives 0."""
    lower, upper = forecast.interval(level)
    width = float(upper[index] - lower[index])
    scale = 2 * abs(float(forecast.point[index]))
    if width <= 0:
        return 1.0
    return min(max(1.0 - width / scale, 0.0), 1.0) if scale > 0 else 0.0
