"""What every query-speaking metric source (Prometheus, Cloud Monitoring, CloudWatch, Azure) shares.

A concrete adapter subclasses `QueryAdapter` and supplies two things: `_query_range`, the one call to
its server (raw samples of every series a native query returns, as the server gives them), and
`queries`, the native query of each standard metric key. Everything after the raw answer is decided
here, once, so every source answers the same data with the same numbers:

Grid
    Output is on multiples of `step` seconds (default 300), in UTC. Grid point t holds the samples in
    [t, t + step), as engine.align does, but no sample after the window's end (so the last step may
    be partial: with end = now, it is the step in progress). `fetch` (a trigger's own query) returns
    the grid from the first to the last step that has a value; the frames (`fetch_container_metrics`,
    ...) return every grid point in the requested window, [end - hours, end].
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
    A trigger's own query must return one series: several raise BadQuery naming how many and their
    labels (aggregate them in the query: Helios cannot know whether they add up or average). A
    standard metric combines its series step by step by its rule in METRIC_RULES: additive amounts
    (bytes, connections, restarts) are summed, ratios (utilisation, hit rate) averaged, replication
    lag takes the worst (max). Series without a value at a step are left out of that step; a step
    where no series has a value is NaN.
Empty results
    A trigger's query with no samples in the window raises NoData. In a frame, a metric whose query
    returns nothing, or that the source has no query for, is a column of NaN; only a frame whose
    every metric is empty raises NoData. Frames always have all their columns, in the order of
    CONTAINER_METRICS / DATABASE_METRICS / CACHE_METRICS.
Errors and retries
    `_query_range` raises the engine.errors types (SourceUnavailable, SourceUnauthorized, BadQuery,
    NoData). Only SourceUnavailable is retried, by tenacity, with exponential backoff and full jitter, up
    to `RetryPolicy.attempts` attempts and `RetryPolicy.deadline` seconds; each attempt's own timeout
    (`RetryPolicy.timeout`) is the adapter's to pass to its client library.
"""

from __future__ import annotations

import copy
import math
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import pandas as pd
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_random_exponential

from helios.engine.errors import BadQuery, NoData, SourceUnavailable
from helios.engine.types import Series

CONTAINER_METRICS = ("cpu_utilization", "memory_utilization", "memory_bytes", "restart_count")
DATABASE_METRICS = ("db_cpu_utilization", "db_memory_utilization", "db_connections", "db_replication_lag")
CACHE_METRICS = ("redis_memory_utilization", "redis_connections", "redis_hit_rate")

DEFAULT_STEP = 300
DEFAULT_MAX_GAP_STEPS = 3

Combine = Literal["sum", "mean", "max"]


@dataclass(frozen=True)
class MetricRule:
    """How one standard metric is read: a cumulative counter or a gauge, and how series combine."""

    combine: Combine
    counter: bool = False
    unit: str = ""


# Utilisations and the hit rate are fractions in [0, 1]; memory in bytes; lag in seconds.
METRIC_RULES: dict[str, MetricRule] = {
    "cpu_utilization": MetricRule("mean", unit="ratio"),
    "memory_utilization": MetricRule("mean", unit="ratio"),
    "memory_bytes": MetricRule("sum", unit="bytes"),
    "restart_count": MetricRule("sum", counter=True, unit="restarts per step"),
    "db_cpu_utilization": MetricRule("mean", unit="ratio"),
    "db_memory_utilization": MetricRule("mean", unit="ratio"),
    "db_connections": MetricRule("sum", unit="connections"),
    "db_replication_lag": MetricRule("max", unit="seconds"),
    "redis_memory_utilization": MetricRule("mean", unit="ratio"),
    "redis_connections": MetricRule("sum", unit="connections"),
    "redis_hit_rate": MetricRule("mean", unit="ratio"),
}


@dataclass(frozen=True)
class MetricQuery:
    """A native query for one standard metric. `counter` overrides METRIC_RULES for a source whose
    query already yields a per-step amount (None: the rule's own)."""

    query: Any  # a template: str with $namespace / $workload / $instance, or the adapter's own type
    counter: bool | None = None


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


@dataclass(frozen=True)
class RetryPolicy:
    """Per-attempt timeout and retries of SourceUnavailable with exponential backoff (seconds)."""

    timeout: float = 10.0
    attempts: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 5.0
    deadline: float = 30.0  # no new attempt starts after this long


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
    """Step-wise sum / mean / max over series, ignoring NaN; NaN where no series has a value."""
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
    else:
        raise ValueError(f"unknown combine rule {how!r}")
    return out


def describe_labels(series: list[RawSeries], limit: int = 5) -> str:
    shown = ["{" + ", ".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}" for s in series[:limit]]
    more = f" and {len(series) - limit} more" if len(series) > limit else ""
    return ", ".join(shown) + more


T = TypeVar("T")


class QueryAdapter:
    """Base of the sources that answer native range queries. Subclasses set `name`, `Params` and
    `queries`, and implement `_query_range`; they may override `_render` and `_trigger_query`."""

    name: ClassVar[str]
    Params: ClassVar[type]
    queries: Mapping[str, MetricQuery | Any] = {}

    def __init__(self, *, queries: Mapping[str, MetricQuery | Any] | None = None, retry: RetryPolicy | None = None,
                 step: int = DEFAULT_STEP, max_gap_steps: int = DEFAULT_MAX_GAP_STEPS,
                 clock: Callable[[], float] = time.time) -> None:
        # Overrides replace single keys of the class defaults; None removes a key.
        merged = {**type(self).queries, **(queries or {})}
        self.queries = {k: v if isinstance(v, MetricQuery) else MetricQuery(v) for k, v in merged.items()
                        if v is not None}
        self.retry = retry or RetryPolicy()
        self.step = int(step)
        self.max_gap_steps = int(max_gap_steps)
        self._clock = clock

    def with_queries(self, queries: Mapping[str, MetricQuery | Any | None]) -> QueryAdapter:
        """A copy (sharing the connection) whose standard-metric queries are overridden by `queries`."""
        clone = copy.copy(self)
        merged = {**self.queries, **queries}
        clone.queries = {k: v if isinstance(v, MetricQuery) else MetricQuery(v) for k, v in merged.items()
                         if v is not None}
        return clone

    # --- what a subclass provides ------------------------------------------------------------

    def _query_range(self, query: Any, start: int, end: int, step: int) -> list[RawSeries]:
        """Every series `query` yields between start and end (Unix seconds, inclusive), sampled about
        every `step` seconds or finer, raw. Raises engine.errors types; empty list when none."""
        raise NotImplementedError

    def _render(self, template: Any, values: Mapping[str, str]) -> Any:
        """The native query for `template` with $namespace, $workload, $instance filled in."""
        return string.Template(template).substitute(values)

    def _trigger_query(self, params: Any) -> Any:
        """The native query a trigger's Params ask for."""
        return params.query

    # --- what every adapter gets -------------------------------------------------------------

    def fetch(self, params: Any, start: int, end: int, step: int) -> Series:
        """A trigger's own query, as one aligned Series (see the module docstring for the rules)."""
        query = self._trigger_query(params)
        grid = grid_for(start, end, step)
        raw = self._query(query, grid, step, end)
        if len(raw) > 1:
            raise BadQuery(f"the query returned {len(raw)} series where one was expected: {describe_labels(raw)}; "
                           "aggregate them in the query (for example with sum or avg)")
        values = gauge_on_grid(raw[0], grid, step, self.max_gap_steps) if raw else np.full(grid.size, np.nan)
        present = np.flatnonzero(~np.isnan(values))
        if present.size == 0:
            raise NoData(f"{self.name}: the query returned no samples between {_iso(start)} and {_iso(end)}")
        keep = slice(present[0], present[-1] + 1)
        return Series(grid[keep], values[keep])

    def fetch_container_metrics(self, namespace: str, hours: float, *, workload: str | None = None,
                                end: float | None = None) -> pd.DataFrame:
        """CONTAINER_METRICS of a namespace (or of one workload's pods in it) over the last `hours`."""
        return self.fetch_frame(CONTAINER_METRICS, {"namespace": namespace, "workload": workload or ""}, hours, end)

    def fetch_database_metrics(self, instance_id: str, hours: float, end: float | None = None) -> pd.DataFrame:
        return self.fetch_frame(DATABASE_METRICS, {"instance": instance_id}, hours, end)

    def fetch_cache_metrics(self, instance_id: str, hours: float, end: float | None = None) -> pd.DataFrame:
        return self.fetch_frame(CACHE_METRICS, {"instance": instance_id}, hours, end)

    def fetch_frame(self, keys: tuple[str, ...], values: Mapping[str, str], hours: float,
                    end: float | None = None) -> pd.DataFrame:
        """One column per key on the grid of [end - hours, end]; see the module docstring."""
        if hours <= 0:
            raise ValueError(f"hours must be > 0, got {hours}")
        end = self._clock() if end is None else end
        step = self.step
        grid = grid_for(end - hours * 3600, end, step)
        columns = {}
        for key in keys:
            columns[key] = self._metric_on_grid(key, values, grid, step, end)
        if all(np.isnan(c).all() for c in columns.values()):
            raise NoData(f"{self.name}: none of {', '.join(keys)} has samples for "
                         f"{', '.join(f'{k}={v!r}' for k, v in values.items() if v)} "
                         f"between {_iso(end - hours * 3600)} and {_iso(end)}")
        index = pd.DatetimeIndex(pd.to_datetime(grid, unit="s", utc=True), name="timestamp")
        return pd.DataFrame(columns, index=index, columns=list(keys))

    def _metric_on_grid(self, key: str, values: Mapping[str, str], grid: np.ndarray, step: int,
                        end: float) -> np.ndarray:
        spec = self.queries.get(key)
        if spec is None:
            return np.full(grid.size, np.nan)  # this source cannot read this metric
        rule = METRIC_RULES[key]
        counter = rule.counter if spec.counter is None else spec.counter
        try:
            raw = self._query(self._render(spec.query, values), grid, step, end)
        except NoData:
            raw = []
        rows = [counter_on_grid(r, grid, step) if counter else gauge_on_grid(r, grid, step, self.max_gap_steps)
                for r in raw]
        return combine(rows, rule.combine, grid.size)

    def _query(self, query: Any, grid: np.ndarray, step: int, end: float) -> list[RawSeries]:
        """`_query_range` over the buckets of `grid` up to `end` (the last bucket may be partial),
        retrying outages."""
        if grid.size == 0:
            return []
        last = int(min(grid[-1] + step - 1, end))
        return self.with_retries(self._query_range, query, int(grid[0]), last, step)

    def with_retries(self, call: Callable[..., T], *args: Any) -> T:
        policy = self.retry
        retrying = Retrying(
            retry=retry_if_exception_type(SourceUnavailable),
            stop=stop_after_attempt(max(1, policy.attempts)) | stop_after_delay(policy.deadline),
            wait=wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max),
            reraise=True,
        )
        return retrying(call, *args)


def _iso(ts: float) -> str:
    return pd.Timestamp(int(ts), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "CACHE_METRICS", "CONTAINER_METRICS", "DATABASE_METRICS", "METRIC_RULES", "MetricQuery", "MetricRule",
    "QueryAdapter", "RawSeries", "RetryPolicy", "combine", "counter_on_grid", "gauge_on_grid", "grid_for",
]
