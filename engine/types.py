"""Value types shared by the engine, the adapters and the scaler. Immutable; numpy inside."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

import numpy as np

from .errors import InvalidSeries

# Quantile levels every forecaster predicts. Serving any other level interpolates between these,
# so a trigger can change its `quantile` without waiting for a refit.
QUANTILE_LEVELS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 0.95, 0.975, 0.99,
)


@dataclass(frozen=True, eq=False)
class Series:
    """A univariate time series: strictly increasing Unix timestamps (seconds) and float values."""

    timestamps: np.ndarray  # int64 seconds
    values: np.ndarray  # float64; NaN marks a missing sample

    def __post_init__(self) -> None:
        ts = np.asarray(self.timestamps, dtype=np.int64)
        vs = np.asarray(self.values, dtype=np.float64)
        if ts.ndim != 1 or vs.ndim != 1 or ts.shape != vs.shape:
            raise InvalidSeries(f"timestamps and values must be 1-d of equal length, got {ts.shape} and {vs.shape}")
        if ts.size > 1 and not np.all(np.diff(ts) > 0):
            raise InvalidSeries("timestamps must be strictly increasing")
        if np.isinf(vs).any():
            raise InvalidSeries("values must be finite (NaN marks a missing sample)")
        ts.setflags(write=False)
        vs.setflags(write=False)
        object.__setattr__(self, "timestamps", ts)
        object.__setattr__(self, "values", vs)

    @classmethod
    def of_valid(cls, timestamps: np.ndarray, values: np.ndarray) -> Series:
        """A Series of arrays already known to pass the checks (slices or an ordered join of Series), made
        without them: they read every sample, and slices are taken at every sample of every workload."""
        series = object.__new__(cls)
        for name, array in (("timestamps", timestamps), ("values", values)):
            if array.flags.writeable:
                array.setflags(write=False)
            object.__setattr__(series, name, array)
        return series

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[float, float]]) -> Series:
        if not pairs:
            return cls(np.empty(0, np.int64), np.empty(0))
        ts, vs = zip(*pairs, strict=True)
        return cls(np.asarray(ts, dtype=np.int64), np.asarray(vs, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.values.size)

    @property
    def end(self) -> int | None:
        """Timestamp of the last sample, or None when empty."""
        return int(self.timestamps[-1]) if self.timestamps.size else None

    def last_value(self) -> float | None:
        """The most recent non-missing value."""
        if self.values.size and not math.isnan(last := float(self.values[-1])):
            return last  # mostly: a refresh asks at every sample, of a window of days
        present = np.flatnonzero(~np.isnan(self.values))
        return float(self.values[present[-1]]) if present.size else None

    def between(self, start: float, end: float) -> Series:
        """The samples with start <= timestamp <= end."""
        first, last = np.searchsorted(self.timestamps, start, "left"), np.searchsorted(self.timestamps, end, "right")
        return Series.of_valid(self.timestamps[first:last], self.values[first:last])


@dataclass(frozen=True, eq=False)
class Forecast:
    """h future steps on a regular grid: a point forecast and predictive quantiles."""

    model: str
    start: int  # timestamp of the first forecast step
    step: int  # seconds between steps
    point: np.ndarray  # (h,)
    quantiles: np.ndarray  # (len(levels), h), non-decreasing along the level axis
    levels: tuple[float, ...] = QUANTILE_LEVELS

    def __post_init__(self) -> None:
        point = np.asarray(self.point, dtype=np.float64)
        q = np.sort(np.asarray(self.quantiles, dtype=np.float64), axis=0)  # no crossing quantiles
        if q.shape != (len(self.levels), point.size):
            raise ValueError(f"quantiles shape {q.shape} does not match levels {len(self.levels)} x h {point.size}")
        point.setflags(write=False)
        q.setflags(write=False)
        object.__setattr__(self, "point", point)
        object.__setattr__(self, "quantiles", q)

    @classmethod
    def from_interval(cls, model: str, start: int, step: int, point, lower, upper, level: float) -> Forecast:
        """A forecast known only by its point and one central interval (a caller's own forecast): the
        quantiles of a normal distribution around the point whose `level` interval has that width
        (the wider side, so an asymmetric interval is never made narrower)."""
        point, lower, upper = (np.asarray(a, dtype=np.float64) for a in (point, lower, upper))
        z = NormalDist().inv_cdf(0.5 + level / 2)
        sigma = np.maximum(point - lower, upper - point).clip(min=0) / z
        offsets = np.array([NormalDist().inv_cdf(q) for q in QUANTILE_LEVELS])
        return cls(model, start, step, point, point[None, :] + offsets[:, None] * sigma[None, :])

    @property
    def horizon(self) -> int:
        return int(self.point.size)

    @cached_property  # read about ten times by each recommendation
    def timestamps(self) -> np.ndarray:
        ts = self.start + self.step * np.arange(self.horizon, dtype=np.int64)
        ts.setflags(write=False)
        return ts

    @cached_property
    def complete(self) -> np.ndarray:
        """Which steps have a point and every quantile (not NaN)."""
        steps = ~np.isnan(self.point) & ~np.isnan(self.quantiles).any(axis=0)
        steps.setflags(write=False)
        return steps

    @property
    def end(self) -> int:
        return self.start + self.step * (self.horizon - 1)

    def head(self, steps: int) -> Forecast:
        """The first `steps` steps."""
        return Forecast(self.model, self.start, self.step, self.point[:steps], self.quantiles[:, :steps], self.levels)

    def quantile(self, level: float) -> np.ndarray:
        """The forecast at any level in [min(levels), max(levels)], interpolated between stored levels."""
        if not self.levels[0] <= level <= self.levels[-1]:
            raise ValueError(f"level {level} outside [{self.levels[0]}, {self.levels[-1]}]")
        levels = self.levels
        i = min(max(bisect_left(levels, level), 1), len(levels) - 1)  # on the tuple: numpy's calls cost more here
        lo, hi = levels[i - 1], levels[i]
        w = (level - lo) / (hi - lo)
        return (1 - w) * self.quantiles[i - 1] + w * self.quantiles[i]

    def interval(self, level: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """Central interval covering `level` of the predictive distribution."""
        tail = (1 - level) / 2
        return self.quantile(tail), self.quantile(1 - tail)
