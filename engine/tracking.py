"""How good the served forecasts turned out: rolling error of forecasts whose actuals have arrived.

Backtests say how a model did on the past before it was chosen; this says how the forecasts Helios
actually served are doing now. For each forecast the ledger records the step it was served for (the
one a lead time ahead, the value the HPA was given), then settles it when that step's actual value
arrives. Only the first forecast made for a step is kept: later ones saw more data and were not what
the capacity decision was made on.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .types import Forecast, Series


@dataclass(frozen=True)
class ForecastError:
    """Rolling accuracy over the last `matured` settled forecasts."""

    matured: int
    mape: float  # mean absolute percentage error, as a fraction (0.1 = 10 %); NaN when no actual was nonzero
    coverage: float  # share of actuals inside the forecast's interval; NaN with nothing matured


@dataclass(frozen=True)
class _Pending:
    at: int  # the step's timestamp
    point: float
    lower: float
    upper: float


class ForecastLedger:
    """Pending forecasts by step, and the errors of the settled ones (the newest `window`)."""

    def __init__(self, window: int = 288, interval_level: float = 0.8) -> None:
        self._window = window
        self._level = interval_level
        self._pending: dict[int, _Pending] = {}
        self._settled: deque[tuple[float, bool]] = deque(maxlen=window)  # (APE or NaN, inside interval)

    def record(self, forecast: Forecast, made_at: float, lead_seconds: float) -> None:
        """Remember the step `forecast` serves at `made_at` + `lead_seconds` (the last step within the lead)."""
        ts = forecast.timestamps
        ahead = np.flatnonzero((ts > made_at) & (ts <= made_at + max(lead_seconds, forecast.step)))
        if ahead.size == 0:
            return
        i = int(ahead[-1])
        at = int(ts[i])
        if at in self._pending:
            return
        lower, upper = forecast.interval(self._level)
        self._pending[at] = _Pending(at, float(forecast.point[i]), float(lower[i]), float(upper[i]))

    def settle(self, actuals: Series) -> None:
        """Score every pending forecast whose step now has an actual value; forget ones the data passed by."""
        if not self._pending or len(actuals) == 0:
            return
        # Look up only the pending steps (a lead time's worth), not the whole history: this runs at every
        # sample of every workload.
        ts, values = actuals.timestamps, actuals.values
        pending = sorted(self._pending)
        where = np.minimum(np.searchsorted(ts, pending), ts.size - 1)
        last = actuals.end
        for at, i in zip(pending, where.tolist(), strict=True):
            if ts[i] == at and not math.isnan(values[i]):
                p = self._pending.pop(at)
                actual = float(values[i])
                ape = abs(actual - p.point) / abs(actual) if actual != 0 else math.nan
                self._settled.append((ape, p.lower <= actual <= p.upper))
            elif at <= last - 3600:  # the source never delivered this step (a gap): nothing to learn
                del self._pending[at]

    def error(self) -> ForecastError:
        if not self._settled:
            return ForecastError(0, math.nan, math.nan)
        # Plain sums over at most `window` pairs: arrays built from them cost more, at every sample.
        finite = [a for a, _ in self._settled if not math.isnan(a)]
        mape = math.fsum(finite) / len(finite) if finite else math.nan
        coverage = sum(inside for _, inside in self._settled) / len(self._settled)
        return ForecastError(len(self._settled), mape, coverage)
