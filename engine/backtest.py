"""Rolling-origin backtests: how a model would have forecast a series, judged on what followed.

At each origin the model sees only the samples before it (a training window), forecasts `horizon`
steps, and the forecast is compared with the actual values. Scores are averaged over origins.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from . import scores
from .models import create
from .models.base import Forecaster
from .types import Forecast, Series


@dataclass(frozen=True)
class BacktestScores:
    model: str
    horizon_steps: int
    origins: int
    mae: float
    mape: float
    smape: float
    mase: float  # MAE / in-sample one-step naive MAE of the history before the first origin
    coverage_80: float  # share of actuals inside the nominal 80% interval
    pinball_90: float  # pinball loss of the 0.9 quantile (what Helios provisions for by default)
    fit_seconds: float  # median per origin
    predict_seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class OriginResult:
    origin: int  # index of the first forecast step
    forecast: Forecast
    actual: np.ndarray
    fit_seconds: float
    predict_seconds: float


def origins_for(n: int, horizon: int, count: int, min_train: int, spacing: int | None = None) -> list[int]:
    """Up to `count` origins, `spacing` steps apart (default: horizon), the last one `horizon` steps
    before the end, none with fewer than `min_train` samples before it."""
    spacing = spacing or horizon
    last = n - horizon
    out = [o for o in range(last, min_train - 1, -spacing)][:count]
    return sorted(out)


def run_origins(
    series: Series,
    model_factory: Callable[[], Forecaster],
    horizon: int,
    origins: Sequence[int],
    train_window: int,
) -> list[OriginResult]:
    y = series.values
    results = []
    for o in origins:
        lo = max(0, o - train_window)
        train = Series(series.timestamps[lo:o], y[lo:o])
        t0 = time.perf_counter()
        model = model_factory().fit(train)
        t1 = time.perf_counter()
        forecast = model.predict(horizon)
        t2 = time.perf_counter()
        results.append(OriginResult(o, forecast, y[o : o + horizon], t1 - t0, t2 - t1))
    return results


def summarize(model: str, results: Sequence[OriginResult], scale: float) -> BacktestScores:
    actual = np.concatenate([r.actual for r in results])
    point = np.concatenate([r.forecast.point for r in results])
    intervals = [r.forecast.interval(0.8) for r in results]
    lower = np.concatenate([i[0] for i in intervals])
    upper = np.concatenate([i[1] for i in intervals])
    q90 = np.concatenate([r.forecast.quantile(0.9) for r in results])
    error = scores.mae(actual, point)
    return BacktestScores(
        model=model,
        horizon_steps=results[0].forecast.horizon,
        origins=len(results),
        mae=error,
        mape=scores.mape(actual, point),
        smape=scores.smape(actual, point),
        mase=error / scale,
        coverage_80=scores.coverage(actual, lower, upper),
        pinball_90=scores.pinball(actual, q90, 0.9),
        fit_seconds=float(np.median([r.fit_seconds for r in results])),
        predict_seconds=float(np.median([r.predict_seconds for r in results])),
    )


def backtest(
    series: Series,
    model: str,
    horizon: int,
    origins: int = 10,
    train_window: int = 2016,
    params: dict | None = None,
    spacing: int | None = None,
) -> BacktestScores:
    """Backtest `model` on an aligned series; raises ValueError when the series is too short."""
    params = dict(params or {})
    step = int(series.timestamps[1] - series.timestamps[0]) if len(series) > 1 else 300
    points = origins_for(len(series), horizon, origins, min_train=min(train_window, len(series) // 2), spacing=spacing)
    if not points:
        raise ValueError(f"series of {len(series)} samples is too short for a {horizon}-step backtest")
    results = run_origins(series, lambda: create(model, step=step, **params), horizon, points, train_window)
    first = points[0]
    return summarize(model, results, scores.naive_scale(series.values[max(0, first - train_window) : first]))
