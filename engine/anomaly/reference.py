"""Two simple reference detectors, the yardsticks a learned detector has to beat.

- `RollingZScore` ("zscore"): how many standard deviations a value lies from the mean of the window
  just before it. Adapts to slow drift, knows nothing of daily cycles.
- `ThresholdRule` ("threshold"): the seed design's raw-threshold rule, "alert above a fixed value",
  scaled into sigma-like units so that base.severity applies unchanged.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import InsufficientData
from ..types import Series
from .base import WARNING_SIGMA, AnomalyScores, Context, pack, unpack


class RollingZScore:
    """score[i] = (x[i] - mean(past)) / std(past), past = the `window` steps before i (never i itself).

    Steps with fewer than `min_periods` past values score NaN (warm-up). fit() keeps the tail of the
    history, so scoring a series that continues it needs no warm-up; scoring the history itself uses
    only each step's own past. The standard deviation is floored at `min_sigma_fraction` of the
    history's, so a perfectly flat stretch does not turn the smallest wiggle into a critical anomaly.
    """

    name: ClassVar[str] = "zscore"
    keep_fitted: ClassVar[bool] = False  # a fit is one pass over the history: refitted for every score

    def __init__(self, window: int = 288, min_periods: int | None = None, min_sigma_fraction: float = 0.01) -> None:
        if window < 2:
            raise ValueError(f"zscore: window must be >= 2 steps, got {window}")
        self.window = window
        self.min_periods = max(2, min_periods if min_periods is not None else window // 4)
        self.min_sigma_fraction = min_sigma_fraction
        self._context = Series(np.empty(0, np.int64), np.empty(0))
        self._min_sigma = 0.0

    def fit(self, history: Series, context: Context | None = None) -> RollingZScore:  # reads no context
        present = history.values[~np.isnan(history.values)]
        if present.size < 2:
            raise InsufficientData("zscore: needs at least 2 samples of history")
        self._min_sigma = max(self.min_sigma_fraction * float(present.std()), 1e-12)
        keep = slice(max(0, len(history) - self.window), len(history))
        self._context = Series(history.timestamps[keep], history.values[keep])
        return self

    def score(self, series: Series, context: Context | None = None) -> AnomalyScores:
        # Prepend the fitted tail that lies strictly before the series: past context, never look-ahead.
        first = series.timestamps[0] if len(series) else 0
        before = self._context.timestamps < first
        values = np.concatenate([self._context.values[before], series.values])
        mean, std = _past_mean_std(values, self.window, self.min_periods)
        z = (values - mean) / np.maximum(std, self._min_sigma)
        return AnomalyScores(self.name, series.timestamps, z[values.size - len(series):])

    def drivers(self, series: Series, k: int = 3, context: Context | None = None) -> list[tuple[str, float, float]]:
        return []  # the value is judged alone: no features drive a prediction

    def to_bytes(self) -> bytes:
        params = {"window": self.window, "min_periods": self.min_periods, "min_sigma_fraction": self.min_sigma_fraction}
        ts, vs = self._context.timestamps, self._context.values
        context = [ts.tolist(), np.where(np.isnan(vs), None, vs).tolist()]  # null for a missing sample: plain JSON
        return pack(self.name, params, {"min_sigma": self._min_sigma, "context": context})

    @classmethod
    def from_bytes(cls, data: bytes) -> RollingZScore:
        doc = unpack(cls.name, data)
        detector = cls(**doc["params"])
        detector._min_sigma = doc["state"]["min_sigma"]
        ts, vs = doc["state"]["context"]
        detector._context = Series(np.asarray(ts, dtype=np.int64), np.asarray(vs, dtype=np.float64))
        return detector


class ThresholdRule:
    """Flag values above a fixed threshold (the seed design's rule), in sigma-like units.

    score = WARNING_SIGMA * value / threshold: exactly WARNING_SIGMA (an anomaly) at the threshold,
    CRITICAL_SIGMA at 1.6x it. The threshold is `threshold` when given (80 for a utilisation metric
    in percent, the seed's setting), otherwise the `quantile` (0.99) of the fitted history: a rule
    that needs no knowledge of the metric's unit and fires on about 1% of normal steps.
    """

    name: ClassVar[str] = "threshold"
    keep_fitted: ClassVar[bool] = False  # a fit is one quantile of the history: refitted for every score

    def __init__(self, threshold: float | None = None, quantile: float = 0.99) -> None:
        if threshold is not None and not threshold > 0:
            raise ValueError(f"threshold: the threshold must be > 0, got {threshold}")
        if not 0 < quantile <= 1:
            raise ValueError(f"threshold: quantile must be in (0, 1], got {quantile}")
        self.quantile = quantile
        self.threshold = threshold
        self._fixed = threshold is not None

    def fit(self, history: Series, context: Context | None = None) -> ThresholdRule:  # reads no context
        if self._fixed:
            return self
        present = history.values[~np.isnan(history.values)]
        if present.size == 0:
            raise InsufficientData("threshold: no samples in the history")
        level = float(np.quantile(present, self.quantile))
        if not level > 0:  # a ratio to a threshold <= 0 would flip or explode
            raise InsufficientData(f"threshold: the {self.quantile} quantile of the history is {level:g}; needs > 0")
        self.threshold = level
        return self

    def score(self, series: Series, context: Context | None = None) -> AnomalyScores:
        if self.threshold is None:
            raise RuntimeError("threshold: fit() before score()")
        return AnomalyScores(self.name, series.timestamps, WARNING_SIGMA * series.values / self.threshold)

    def drivers(self, series: Series, k: int = 3, context: Context | None = None) -> list[tuple[str, float, float]]:
        return []  # the value is judged alone: no features drive a prediction

    def to_bytes(self) -> bytes:
        params = {"threshold": self.threshold if self._fixed else None, "quantile": self.quantile}
        return pack(self.name, params, {"threshold": self.threshold})

    @classmethod
    def from_bytes(cls, data: bytes) -> ThresholdRule:
        doc = unpack(cls.name, data)
        rule = cls(**doc["params"])
        rule.threshold = doc["state"]["threshold"]
        return rule


def _past_mean_std(values: np.ndarray, window: int, min_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of values[i - window : i] for every i (NaN-aware, O(n) running sums).

    NaN where fewer than `min_periods` values are present.
    """
    present = ~np.isnan(values)
    # Centring on the first value keeps the running sums of squares accurate without reading ahead.
    centre = float(values[present][0]) if present.any() else 0.0
    x = np.where(present, values - centre, 0.0)
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    cnt = np.concatenate([[0], np.cumsum(present)])
    end = np.arange(values.size)  # exclusive: step i sees indices < i
    start = np.maximum(0, end - window)
    n = (cnt[end] - cnt[start]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (s1[end] - s1[start]) / n
        var = (s2[end] - s2[start]) / n - mean**2
    enough = n >= min_periods
    mean = np.where(enough, mean + centre, np.nan)
    std = np.where(enough, np.sqrt(np.maximum(var, 0.0)), np.nan)
    return mean, std
