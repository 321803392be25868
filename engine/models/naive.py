"""Reference forecasters: the last value, and the value one season earlier.

They set the bar every real model must clear (if Prophet cannot beat "same as yesterday", it is not
worth its fit time) and are cheap fallbacks. Both take their bounds from their own k-step errors over
the recent history (engine.calibration), as the baseline does: the rules have no fitted coefficients,
so those errors are out of sample and the intervals are calibrated by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..calibration import error_quantiles, offsets, step_sigma
from ..types import QUANTILE_LEVELS, Forecast, Series
from .base import Forecaster


class NaiveModel(Forecaster):
    """forecast(t + k) = y(t), the last value, for every k."""

    name = "naive"
    min_history = 1

    def __init__(self, calibration_window: int = 2016, calibration_horizon: int = 36, step: int = 300) -> None:
        if calibration_window < 1 or calibration_horizon < 1 or step < 1:
            raise ValueError(f"{self.name}: calibration sizes >= 1, step >= 1")
        super().__init__(calibration_window=calibration_window, calibration_horizon=calibration_horizon, step=step)

    def _fit(self, history: Series) -> dict[str, Any]:
        y = _values(history, self.name)
        errors = error_quantiles(
            y, lambda o, k: y[o], np.arange(y.size), self.params["calibration_horizon"],
            self.params["calibration_window"], step_sigma(y),
        )
        return {
            "pattern": [float(y[-1])],
            "last_timestamp": int(history.timestamps[-1]),
            "step": _step(history, self.params["step"]),
            "error_quantiles": errors.tolist(),  # (len(QUANTILE_LEVELS), calibration_horizon)
        }

    def _predict(self, horizon: int, levels: tuple[float, ...]) -> Forecast:
        s = self.state
        pattern = np.asarray(s["pattern"])
        point = pattern[np.arange(horizon) % pattern.size]  # the last season, repeated
        return Forecast(
            model=self.name, start=s["last_timestamp"] + s["step"], step=s["step"],
            point=point, quantiles=point + offsets(s["error_quantiles"], horizon, levels), levels=levels,
        )

    def backcast(self, history: Series, first: int, horizon: int) -> list[Forecast]:
        """As Forecaster.backcast, vectorised: the last value at each origin, with the error quantiles
        calibrated at `first`."""
        if type(self) is not NaiveModel:  # the seasonal rule is not vectorised here
            return super().backcast(history, first, horizon)
        ts, y = history.timestamps, _values(history, self.name)
        at_first = NaiveModel(**self.params).fit(Series(ts[: first + 1], y[: first + 1])).state
        spread = offsets(at_first["error_quantiles"], horizon, QUANTILE_LEVELS)
        step = at_first["step"]
        return [Forecast(self.name, int(ts[i]) + step, step, np.full(horizon, y[i]), y[i] + spread)
                for i in range(first, y.size)]


class SeasonalNaiveModel(NaiveModel):
    """forecast(t + k) = y(t + k - m * season) with the smallest m >= 1: the last season, repeated.

    `season_seconds` (default one day) is rounded to whole steps. With less than one season of history
    there is no value a season earlier, so the model falls back to the naive rule (the last value) and
    to the naive rule's errors; the state's `seasonal` flag says which rule was used.
    """

    name = "seasonal_naive"

    def __init__(
        self, season_seconds: int = 86400, calibration_window: int = 2016, calibration_horizon: int = 36,
        step: int = 300,
    ) -> None:
        if season_seconds < 1:
            raise ValueError(f"{self.name}: season_seconds >= 1")
        super().__init__(calibration_window=calibration_window, calibration_horizon=calibration_horizon, step=step)
        self.params = {"season_seconds": season_seconds, **self.params}

    def _fit(self, history: Series) -> dict[str, Any]:
        y = _values(history, self.name)
        step = _step(history, self.params["step"])
        season = max(1, round(self.params["season_seconds"] / step))
        if y.size < season:
            return {**super()._fit(history), "season": season, "seasonal": False}

        def seasonal(o: np.ndarray, k: int) -> np.ndarray:
            return y[o + k - season * -(-k // season)]  # -(-k // s) = ceil(k / s)

        # Origins from season - 1 on have a value one season before every target.
        errors = error_quantiles(
            y, seasonal, np.arange(season - 1, y.size), self.params["calibration_horizon"],
            self.params["calibration_window"], step_sigma(y),
        )
        return {
            "pattern": y[-season:].tolist(),
            "last_timestamp": int(history.timestamps[-1]),
            "step": step,
            "error_quantiles": errors.tolist(),
            "season": season,
            "seasonal": True,
        }

    def backcast(self, history: Series, first: int, horizon: int) -> list[Forecast]:
        """As Forecaster.backcast, vectorised: the last season before each origin, repeated, with the error
        quantiles calibrated at `first`. With less than a season before `first`, the plain loop."""
        ts, y = history.timestamps, _values(history, self.name)
        at_first = SeasonalNaiveModel(**self.params).fit(Series(ts[: first + 1], y[: first + 1])).state
        if not at_first["seasonal"]:
            return Forecaster.backcast(self, history, first, horizon)
        season, step = at_first["season"], at_first["step"]
        spread = offsets(at_first["error_quantiles"], horizon, QUANTILE_LEVELS)
        back = season * -(-np.arange(1, horizon + 1) // season) - np.arange(1, horizon + 1)  # a season back, or more
        return [Forecast(self.name, int(ts[i]) + step, step, y[i - back], y[i - back] + spread)
                for i in range(first, y.size)]


def _values(history: Series, name: str) -> np.ndarray:
    if np.isnan(history.values).any():
        raise ValueError(f"{name}: history has missing values; align it first (engine.align)")
    return history.values


def _step(history: Series, default: int) -> int:
    """The series' own step; a single sample has none, so the configured one."""
    return int(history.timestamps[1] - history.timestamps[0]) if len(history) > 1 else default
