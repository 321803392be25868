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
    (ascending; vectorised); the error is actual[origin + k] minus it. Each k uses the latest
    `max_origins` origins whose target is known. With fewer than MIN_ERRORS errors, a Gaussian with
    standard deviation fallback_sigma * sqrt(k) (a random walk) stands in.

    The quantiles of all k come from one sort of an errors-by-k matrix, interpolated as np.quantile's
    default ("linear") method does, to the last bit: a call of np.quantile per k was most of the cost of
    updating a baseline model (36 calls at every new sample of every workload). The matrix holds only
    the steps with enough errors and is sorted in place: copying it was a fifth of the cost.
    """
    n = actual.size
    origins = np.asarray(origins, dtype=np.int64)[-max_origins - horizon:]
    k = np.arange(1, horizon + 1)
    known = np.searchsorted(origins, n - k)  # origins[:known[k - 1]] have their k-step target in `actual`
    counts = np.minimum(known, max_origins)
    out = _GAUSS[:, None] * fallback_sigma * np.sqrt(k)[None, :]
    empirical = counts >= MIN_ERRORS
    if empirical.any():
        errors = _errors(actual, forecast, origins, k[empirical], known[empirical], counts[empirical])
        errors.sort(axis=1)
        out[:, empirical] = _sorted_quantiles(errors, counts[empirical]).T
    return out


def _errors(actual, forecast, origins: np.ndarray, steps: np.ndarray, ends: np.ndarray,
            counts: np.ndarray) -> np.ndarray:
    """Row i: the steps[i]-step errors from the counts[i] origins before origins[ends[i]], padded with +inf.

    (Calling `forecast` once on a matrix of origins, all steps at once, was slower than this loop here:
    the index matrices cost more than the loop's 36 turns.)
    """
    errors = np.full((steps.size, int(counts.max())), np.inf)
    for i, k in enumerate(steps.tolist()):
        usable = origins[ends[i] - counts[i] : ends[i]]
        errors[i, : counts[i]] = actual[usable + k] - forecast(usable, k)
    return errors


def _sorted_quantiles(rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """QUANTILE_LEVELS of each row's first `counts` values (rows sorted ascending, padded with +inf), by
    np.quantile's linear interpolation; a row holding NaN gives NaN, as np.quantile does."""
    q = np.asarray(QUANTILE_LEVELS)[None, :]
    size = counts[:, None].astype(np.float64)
    virtual = (size - 1) * q  # np.quantile's virtual index for its linear method
    below = np.floor(virtual)
    last = counts[:, None] - 1
    lower = np.clip(below, 0, last).astype(np.int64)
    upper = np.clip(below + 1, 0, last).astype(np.int64)
    at_end = virtual >= last
    lower[at_end] = upper[at_end] = np.broadcast_to(last, at_end.shape)[at_end]
    gamma = virtual - below
    a = np.take_along_axis(rows, lower, axis=1)
    b = np.take_along_axis(rows, upper, axis=1)
    with np.errstate(invalid="ignore"):  # inf - inf in a row holding NaN, which gives NaN below anyway
        diff = b - a
        out = a + diff * gamma
        high = gamma >= 0.5  # as numpy's _lerp: from the upper end when closer to it
        out[high] = (b - diff * (1 - gamma))[high]
    out[np.isnan(rows).any(axis=1)] = np.nan
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
