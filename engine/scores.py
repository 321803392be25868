"""Forecast accuracy measures, shared by backtests, model choice and the scaler's rolling error."""

from __future__ import annotations

import numpy as np


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(np.abs(actual - forecast)))


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute percentage error, in percent, over the actuals that are not zero (NaN if none)."""
    nonzero = actual != 0
    if not nonzero.any():
        return float("nan")
    return float(100 * np.mean(np.abs((actual[nonzero] - forecast[nonzero]) / actual[nonzero])))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in percent (0 to 200); a pair of zeros counts as a perfect forecast."""
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(2 * np.abs(actual - forecast), denominator, out=np.zeros_like(denominator, dtype=float),
                      where=denominator > 0)
    return float(100 * np.mean(ratio))


def naive_scale(history: np.ndarray) -> float:
    """In-sample mean absolute one-step change: the MASE denominator (NaN for a constant history)."""
    steps = np.abs(np.diff(history))
    scale = float(np.mean(steps)) if steps.size else 0.0
    return scale if scale > 0 else float("nan")


def pinball(actual: np.ndarray, quantile_forecast: np.ndarray, level: float) -> float:
    """Mean pinball (quantile) loss: under-forecasts cost `level`, over-forecasts 1 - `level`, per unit."""
    diff = actual - quantile_forecast
    return float(np.mean(np.maximum(level * diff, (level - 1) * diff)))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper]."""
    return float(np.mean((actual >= lower) & (actual <= upper)))
