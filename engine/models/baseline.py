"""Moving average plus linear trend: the seed design's baseline, and every other model's fallback.

Point forecast k steps ahead: mean of the last `window` samples, moved forward along the slope of the
last `trend_window` samples. A moving average describes the middle of its window, (window-1)/2 steps
back, so the trend is applied over k + (window-1)/2 steps.

Bounds are empirical: the model is replayed from every origin of the recent history
(`calibration_window` origins) and the quantiles of its k-step errors become the forecast's
quantiles. The model has no fitted coefficients, so these errors are honest out-of-sample errors
and the interval is calibrated by construction. Too little history falls back to a Gaussian with the
spread of the series' step changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..calibration import error_quantiles, offsets, step_sigma
from ..types import QUANTILE_LEVELS, Forecast, Series
from .base import Forecaster


class BaselineModel(Forecaster):
    name = "baseline"
    min_history = 1

    def __init__(
        self,
        window: int = 12,
        trend_window: int = 24,
        calibration_window: int = 2016,
        calibration_horizon: int = 36,
        step: int = 300,
    ) -> None:
        if window < 1 or trend_window < 2 or calibration_window < 1 or calibration_horizon < 1 or step < 1:
            raise ValueError("baseline: window >= 1, trend_window >= 2, calibration sizes >= 1, step >= 1")
        super().__init__(
            window=window, trend_window=trend_window, calibration_window=calibration_window,
            calibration_horizon=calibration_horizon, step=step,
        )

    def _fit(self, history: Series) -> dict[str, Any]:
        y = history.values
        n = y.size
        if np.isnan(y).any():
            raise ValueError("baseline: history has missing values; align it first (engine.align)")
        step = int(history.timestamps[1] - history.timestamps[0]) if n > 1 else self.params["step"]
        w = min(self.params["window"], n)
        m = min(self.params["trend_window"], n)
        levels, slopes = _level_and_slope(y, w, m)
        start = n - levels.size  # the origin of levels[0]
        lag = (w - 1) / 2

        def rule(origins: np.ndarray, k: int) -> np.ndarray:
            j = origins - start
            return levels[j] + slopes[j] * (k + lag)

        errors = error_quantiles(y, rule, np.arange(start, n), self.params["calibration_horizon"],
                                 self.params["calibration_window"], step_sigma(y))
        return {
            "level": float(levels[-1]),
            "slope": float(slopes[-1]) if m >= 3 else 0.0,
            "lag": (w - 1) / 2,
            "last_timestamp": int(history.timestamps[-1]),
            "step": step,
            "error_quantiles": errors.tolist(),  # (len(QUANTILE_LEVELS), calibration_horizon)
        }

    def _predict(self, horizon: int, levels: tuple[float, ...]) -> Forecast:
        s = self.state
        k = np.arange(1, horizon + 1)
        point = s["level"] + s["slope"] * (k + s["lag"])
        return Forecast(
            model=self.name, start=s["last_timestamp"] + s["step"], step=s["step"],
            point=point, quantiles=point + offsets(s["error_quantiles"], horizon, levels), levels=levels,
        )

    def backcast(self, history: Series, first: int, horizon: int) -> list[Forecast]:
        """As Forecaster.backcast, vectorised: the rule's level and slope at every origin come from
        running sums (each uses only the samples up to its origin); the error quantiles are those
        calibrated at `first`, where a refit at every origin would move them a little as its week of
        calibration origins slides."""
        ts, y = history.timestamps, history.values
        at_first = BaselineModel(**self.params).fit(Series(ts[: first + 1], y[: first + 1])).state
        w, m = min(self.params["window"], y.size), min(self.params["trend_window"], y.size)
        levels, slopes = _level_and_slope(y, w, m)
        start = y.size - levels.size
        if first < start:
            raise ValueError(f"baseline: backcast from origin {first} needs {start + 1} samples before it")
        step, lag = at_first["step"], at_first["lag"]
        k = np.arange(1, horizon + 1)
        spread = offsets(at_first["error_quantiles"], horizon, QUANTILE_LEVELS)
        out = []
        for i in range(first, y.size):
            slope = slopes[i - start] if m >= 3 else 0.0
            point = levels[i - start] + slope * (k + lag)
            out.append(Forecast(self.name, int(ts[i]) + step, step, point, point + spread))
        return out


def _level_and_slope(y: np.ndarray, w: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Moving average over `w` and least-squares slope over `m`, at every origin i >= max(w, m) - 1.

    Index j of the result is origin i = start + j, computed with running sums in O(n).
    """
    n = y.size
    start = max(w, m) - 1
    c = np.concatenate([[0.0], np.cumsum(y)])
    cj = np.concatenate([[0.0], np.cumsum(np.arange(n) * y)])
    ends = np.arange(start, n) + 1  # exclusive window ends
    level = (c[ends] - c[ends - w]) / w
    if m < 2:
        return level, np.zeros_like(level)
    sum_y = c[ends] - c[ends - m]
    first = ends - m
    sum_xy = (cj[ends] - cj[ends - m]) - first * sum_y  # x measured from each window's first index
    sum_x = m * (m - 1) / 2
    sum_xx = (m - 1) * m * (2 * m - 1) / 6
    slope = (m * sum_xy - sum_x * sum_y) / (m * sum_xx - sum_x**2)
    return level, slope
