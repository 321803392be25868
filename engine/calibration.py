"""Empirical forecast bounds: quantiles of a model's own k-step errors over the recent history.

A model replays its forecast rule from many past origins; the quantiles of the errors it made k steps
ahead become the offsets of its quantile forecasts. Errors are measured out of sample wherever the rule
has no fitted coefficients, so the intervals are calibrated by construction (conformal prediction).
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np

from .types import QUANTILE_LEVELS

MIN_ERRORS = 20  # fewer k-step errors than this and empirical quantiles are too coarse
_GAUSS = np.array([NormalDist().inv_cdf(q) for q in QUANTILE_LEVELS])


def error_quantiles(
    actual: np.ndarray,
    forecast: Callable[[np.ndarray, int], np.ndarray],
    origins: np.ndarray,
    horizon: int,
    max_origins: int,
    fallback_sigma: float,
) -> np.ndarray:
    """Quantiles (rows: QUANTILE_LEVELS) of the k-step errors (columns: k = 1..horizon).

    `forecast(origins, k)` returns the rule's k-step forecasts from those origin indices of `actual`
    (vectorised); the error is actual[origin + k] minus it. Each k uses the latest `max_origins`
    origins whose target is known. With fewer than MIN_ERRORS errors, a Gaussian with standard
    deviation fallback_sigma * sqrt(k) (a random walk) stands in.
    """
    n = actual.size
    origins = np.asarray(origins, dtype=np.int64)[-max_origins - horizon:]
    out = np.empty((len(QUANTILE_LEVELS), horizon))
    for k in range(1, horizon + 1):
        usable = origins[origins + k < n][-max_origins:]
        if usable.size >= MIN_ERRORS:
            out[:, k - 1] = np.quantile(actual[usable + k] - forecast(usable, k), QUANTILE_LEVELS)
        else:
            out[:, k - 1] = _GAUSS * fallback_sigma * np.sqrt(k)
    return out


def step_sigma(y: np.ndarray) -> float:
    """Spread of the series' step changes: the Gaussian fallback's one-step sigma."""
    diffs = np.diff(y)
    return float(diffs.std()) if diffs.size > 1 else 0.0


def offsets(errq: np.ndarray, horizon: int, levels: tuple[float, ...]) -> np.ndarray:
    """The stored error quantiles as offsets for `levels` x `horizon` steps.

    Beyond the calibrated steps the last column widens like a random walk (sqrt of the step ratio):
    no errors were measured there, so the bounds err on the wide side.
    """
    errq = np.asarray(errq, dtype=np.float64)
    calibrated = errq.shape[1]
    if horizon > calibrated:
        grow = np.sqrt(np.arange(calibrated + 1, horizon + 1) / calibrated)
        errq = np.hstack([errq, errq[:, -1:] * grow])
    errq = errq[:, :horizon]
    if levels != QUANTILE_LEVELS:
        errq = np.array([np.interp(levels, QUANTILE_LEVELS, errq[:, j]) for j in range(horizon)]).T
    return errq
