"""Raw samples onto the step grid: the arithmetic every query adapter shares, so every source answers
the same data with the same numbers.

Grid
    Output is on multiples of `step` seconds (default 300), in UTC. Grid point t holds the samples in
    [t, t + step), as engine.align does, but no sample after the window's end (so the last step may
    be partial: with end = now, it is the step in progress).
Duplicate timestamps
    Samples of one series with the same timestamp are one observation reported twice: their mean is
    kept, once, before anything else.
NaN values
    A NaN sample is a missing sample (Prometheus staleness, an exporter that failed a read).
Gauges
    A step's value is the mean of its samples.
Counters (`restart_count`, ...)
    Cumulative counters become their increase per step: each sample adds its rise over the previous
    sample of the same series to the step it falls in. A fall is a counter reset (the process
    restarted from zero), so that sample adds its whole value. The first sample has no predecessor
    and adds nothing; a step that holds no increase is NaN (so the first step of a counter is NaN
    unless it holds two samples).
Gaps
    A gauge's run of at most `max_gap_steps` (default 3) empty steps between two steps with values
    is filled by linear interpolation; a longer run stays NaN, as do steps before a series' first
    and after its last value. A counter's gaps are never filled: the rise they hid is counted in the
    first step after them.
Several series
    `combine` sums, averages or takes the max of series step by step (which of these a standard
    metric takes is its rule in metrics.py). Series without a value at a step are left out of that
    step; a step where no series has a value is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

DEFAULT_STEP = 300
DEFAULT_MAX_GAP_STEPS = 3

Combine = Literal["sum", "mean", "max", "min"]


@dataclass(frozen=True, eq=False)
class RawSeries:
    """One series exactly as a server returned it: any order, duplicate timestamps and NaN allowed."""

    labels: Mapping[str, str]
    timestamps: np.ndarray  # seconds (float or int)
    values: np.ndarray  # float; NaN is a missing sample

    @classmethod
    def of(cls, labels: Mapping[str, str], pairs) -> RawSeries:
        pairs = list(pairs)
        ts = np.array([p[0] for p in pairs], dtype=np.float64)
        vs = np.array([p[1] for p in pairs], dtype=np.float64)
        return cls(dict(labels), ts, vs)


def grid_for(start: float, end: float, step: int) -> np.ndarray:
    """The multiples of `step` within [start, end]."""
    first = math.ceil(start / step) * step
    last = math.floor(end / step) * step
    return np.arange(first, last + 1, step, dtype=np.int64) if last >= first else np.empty(0, np.int64)


def _dedupe(raw: RawSeries) -> tuple[np.ndarray, np.ndarray]:
    """Sorted timestamps without NaN samples, duplicates collapsed to their mean."""
    ts = np.asarray(raw.timestamps, dtype=np.float64)
    vs = np.asarray(raw.values, dtype=np.float64)
    keep = ~np.isnan(vs)
    ts, vs = ts[keep], vs[keep]
    if ts.size == 0:
        return ts, vs
    unique, inverse = np.unique(ts, return_inverse=True)
    sums = np.bincount(inverse, weights=vs)
    counts = np.bincount(inverse)
    return unique, sums / counts


def gauge_on_grid(raw: RawSeries, grid: np.ndarray, step: int, max_gap_steps: int) -> np.ndarray:
    """Mean per step; interior gaps of at most `max_gap_steps` steps interpolated, others NaN."""
    out = np.full(grid.size, np.nan)
    if grid.size == 0:
        return out
    ts, vs = _dedupe(raw)
    inside = (ts >= grid[0]) & (ts < grid[-1] + step)
    ts, vs = ts[inside], vs[inside]
    if ts.size == 0:
        return out
    slot = ((ts - grid[0]) // step).astype(np.int64)
    sums = np.bincount(slot, weights=vs, minlength=grid.size)
    counts = np.bincount(slot, minlength=grid.size)
    filled = counts > 0
    out[filled] = sums[filled] / counts[filled]
    _fill_short_gaps(out, max_gap_steps)
    return out


def _fill_short_gaps(values: np.ndarray, max_gap_steps: int) -> None:
    present = np.flatnonzero(~np.isnan(values))
    for left, right in zip(present[:-1], present[1:], strict=True):
        missing = right - left - 1
        if 0 < missing <= max_gap_steps:
            values[left + 1 : right] = np.interp(np.arange(left + 1, right), [left, right],
                                                 [values[left], values[right]])


def counter_on_grid(raw: RawSeries, grid: np.ndarray, step: int) -> np.ndarray:
    """Increase per step of a cumulative counter; a fall is a reset from zero."""
    out = np.full(grid.size, np.nan)
    if grid.size == 0:
        return out
    ts, vs = _dedupe(raw)
    if ts.size < 2:
        return out
    rise = np.diff(vs)
    increase = np.where(rise >= 0, rise, vs[1:])  # after a reset the counter counted up from zero
    at = ts[1:]
    inside = (at >= grid[0]) & (at < grid[-1] + step)
    if not inside.any():
        return out
    slot = ((at[inside] - grid[0]) // step).astype(np.int64)
    sums = np.bincount(slot, weights=increase[inside], minlength=grid.size)
    counts = np.bincount(slot, minlength=grid.size)
    out[counts > 0] = sums[counts > 0]
    return out


def combine(rows: list[np.ndarray], how: Combine, size: int) -> np.ndarray:
    """Step-wise sum / mean / max / min over series, ignoring NaN; NaN where no series has a value."""
    if not rows:
        return np.full(size, np.nan)
    stacked = np.vstack(rows)
    present = ~np.isnan(stacked)
    any_present = present.any(axis=0)
    out = np.full(size, np.nan)
    if how == "sum":
        out[any_present] = np.nansum(stacked[:, any_present], axis=0)
    elif how == "mean":
        out[any_present] = np.nanmean(stacked[:, any_present], axis=0)
    elif how == "max":
        out[any_present] = np.nanmax(stacked[:, any_present], axis=0)
    elif how == "min":
        out[any_present] = np.nanmin(stacked[:, any_present], axis=0)
    else:
        raise ValueError(f"unknown combine rule {how!r}")
    return out


def iso(ts: float) -> str:
    """A grid time as error messages name it: `2024-01-01T00:00:00Z`."""
    return pd.Timestamp(int(ts), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
