"""The slices of history and forecast the rules read, and the replica arithmetic they share.

- A past window is (now - length, now]; missing samples (NaN) are dropped. A rule that needs the window
  "for the last hour" also needs data across most of it (`covers`): stale or patchy data is no proof.
- A forecast window is the steps from the one covering `now` (timestamp > now - step) up to
  now + length. The probability that the load exceeds a level at a step is read off that step's
  predictive quantiles, interpolating linearly between stored levels; outside the stored levels it is
  clipped to what they can tell (1 - highest level .. 1 - lowest level, i.e. 0.01 .. 0.99).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..types import Forecast, Series


@dataclass(frozen=True, eq=False)
class Past:
    timestamps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.values.size)

    def covers(self, length: float, coverage: float) -> bool:
        """Whether the samples span at least `coverage` of a window of `length` seconds."""
        return len(self) >= 2 and float(self.timestamps[-1] - self.timestamps[0]) >= coverage * length


def past(series: Series | None, now: float, length: float) -> Past:
    if series is None:
        return Past(np.empty(0, np.int64), np.empty(0))
    # A slice found by bisection (timestamps increase): the rules read five windows per recommendation,
    # some of a day of 1-minute samples, and masks over whole series were a fifth of its cost.
    start, end = np.searchsorted(series.timestamps, (now - length, now), side="right")
    timestamps, values = series.timestamps[start:end], series.values[start:end]
    present = ~np.isnan(values)
    if not present.all():
        timestamps, values = timestamps[present], values[present]
    return Past(timestamps, values)


def quantile(values: np.ndarray, level: float) -> float:
    """np.quantile(values, level) with its default (linear) method, to the last bit, for values without
    NaN: the two order statistics it interpolates between, by partition. np.quantile's own checks
    cost 15 times as much on a day of samples, and a recommendation reads one at every sample."""
    n = values.size
    virtual = (n - 1) * level  # np.quantile's virtual index for its linear method
    below = math.floor(virtual)
    if virtual >= n - 1:
        return float(np.max(values))
    if virtual < 0:
        return float(np.min(values))
    part = np.partition(values, (below, below + 1))
    a, b = float(part[below]), float(part[below + 1])
    gamma, diff = virtual - below, b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma  # as numpy's _lerp


def median(values: np.ndarray) -> float:
    """np.median(values), to the last bit, for values without NaN (its mean of the middle two is (a + b) / 2)."""
    n = values.size
    half = n // 2
    if n % 2:
        return float(np.partition(values, half)[half])
    part = np.partition(values, (half - 1, half))
    return (float(part[half - 1]) + float(part[half])) / 2


@dataclass(frozen=True, eq=False)
class Ahead:
    """The steps of one look-ahead window of a forecast (`keep` marks them)."""

    forecast: Forecast
    keep: np.ndarray

    @property
    def timestamps(self) -> np.ndarray:
        return self.forecast.timestamps[self.keep]

    @property
    def point(self) -> np.ndarray:
        return self.forecast.point[self.keep]

    def peak(self) -> tuple[float, int]:
        """The highest point forecast and its timestamp."""
        i = int(np.argmax(self.point))
        return float(self.point[i]), int(self.timestamps[i])

    def peak_quantile(self, level: float) -> float:
        """The highest value of the `level` quantile over the window."""
        return float(np.max(self.forecast.quantile(level)[self.keep]))

    def prob_above(self, x: float) -> float:
        """The largest, over the window's steps, probability that the load exceeds x."""
        columns = self.forecast.quantiles[:, self.keep]
        return max(prob_above(columns[:, j], self.forecast.levels, x) for j in range(columns.shape[1]))

    def first_above(self, x: float) -> int | None:
        """Timestamp of the first step whose point forecast exceeds x."""
        above = np.flatnonzero(self.point > x)
        return int(self.timestamps[above[0]]) if above.size else None


def ahead(forecast: Forecast | None, now: float, length: float) -> Ahead | None:
    """The forecast's steps over the next `length` seconds, or None when it has none there."""
    if forecast is None or forecast.horizon == 0:
        return None
    ts = forecast.timestamps
    keep = (ts > now - forecast.step) & (ts <= now + length) & forecast.complete
    return Ahead(forecast, keep) if keep.any() else None


def prob_above(column: np.ndarray, levels: tuple[float, ...], x: float) -> float:
    """P(value > x) from one step's quantiles (non-decreasing, at `levels`)."""
    if x < column[0]:
        return 1.0 - levels[0]
    if x >= column[-1]:
        return 1.0 - levels[-1]
    i = int(np.searchsorted(column, x, side="right"))  # column[i-1] <= x < column[i]
    lo, hi = float(column[i - 1]), float(column[i])
    level = levels[i - 1] + (levels[i] - levels[i - 1]) * (x - lo) / (hi - lo)
    return 1.0 - level


def utilisation(load: float, replicas: int, capacity: float) -> float:
    """Load as a fraction of what `replicas` replicas handle; any load on zero replicas is infinite."""
    if replicas == 0:
        return math.inf if load > 0 else 0.0
    return load / (replicas * capacity)


def replicas_for(load: float, capacity: float, threshold: float) -> int:
    """The fewest replicas that hold `load` at or below `threshold` of their capacity (monotone in load).

    The tiny tolerance keeps a load exactly at the threshold (800 on 4 x 250 at 80%) from rounding up
    to one replica more through floating-point error.
    """
    if load <= 0:
        return 0
    return max(0, math.ceil(load / (capacity * threshold) - 1e-9))


def replicas(n: int) -> str:
    return f"{n} replica" if n == 1 else f"{n} replicas"
