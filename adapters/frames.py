"""Frames: the standard metrics of a namespace, a database or a cache, one column each, on one grid.

A trigger's own query is what Helios forecasts; frames are the other half of what a query source can
tell, the seed's standard metrics (metrics.py) read the same way from Prometheus, Cloud Monitoring,
CloudWatch or Azure, so that a workload's utilisation, restarts, database and cache can be judged
beside its load without knowing which source holds them. Each source supplies only a native query
per key. Serving reads the resource frame (a workload's pods: scaler/runtime/context.py); the
container, database and cache frames are not served yet (they are to feed the features).

Window
    A frame holds every grid point in the requested window, [end - hours, end], the last one partial
    when the window ends mid-step.
Empty results
    A metric whose query returns nothing, or that the source has no query for, is a column of NaN;
    only a frame whose every metric is empty raises NoData. Frames always have all their columns, in
    the order of CONTAINER_METRICS / DATABASE_METRICS / CACHE_METRICS.
"""

from __future__ import annotations

import copy
import string
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from helios.engine.errors import NoData

from .grid import DEFAULT_STEP, RawSeries, combine, counter_on_grid, gauge_on_grid, grid_for, iso
from .metrics import (
    CACHE_METRICS,
    CONTAINER_METRICS,
    DATABASE_METRICS,
    METRIC_RULES,
    RESOURCE_METRICS,
    MetricQuery,
    merge_queries,
)


class MetricFrames:
    """The frames of a query source; QueryAdapter derives from this and provides `_query`.

    `queries` is the native query of each standard metric key: a subclass sets its defaults, and
    `queries=` (from config) or `with_queries` replace single keys. `step` is the frames' grid."""

    name: ClassVar[str]
    queries: Mapping[str, MetricQuery | Any] = {}
    max_gap_steps: int

    def __init__(self, *, queries: Mapping[str, MetricQuery | Any] | None = None, step: int = DEFAULT_STEP,
                 clock: Callable[[], float] = time.time) -> None:
        self.queries = merge_queries(type(self).queries, queries or {})
        self.step = int(step)
        self._clock = clock

    def with_queries(self, queries: Mapping[str, MetricQuery | Any | None]) -> Self:
        """A copy (sharing the connection) whose standard-metric queries are overridden by `queries`."""
        clone = copy.copy(self)
        clone.queries = merge_queries(self.queries, queries)
        return clone

    # --- what the host provides ------------------------------------------------------------------

    def _render(self, template: Any, values: Mapping[str, str]) -> Any:
        """The native query for `template` with $namespace, $workload, $instance filled in."""
        return string.Template(template).substitute(values)

    def _query(self, query: Any, grid: np.ndarray, step: int, end: float) -> list[RawSeries]:
        """Every series the native `query` yields over the buckets of `grid` up to `end`."""
        raise NotImplementedError

    # --- the frames ------------------------------------------------------------------------------

    def fetch_container_metrics(self, namespace: str, hours: float, *, workload: str | None = None,
                                end: float | None = None) -> pd.DataFrame:
        """CONTAINER_METRICS of a namespace (or of one workload's pods in it) over the last `hours`."""
        return self.fetch_frame(CONTAINER_METRICS, {"namespace": namespace, "workload": workload or ""}, hours, end)

    def fetch_resource_metrics(self, namespace: str, hours: float, *, workload: str | None = None,
                               end: float | None = None) -> pd.DataFrame:
        """RESOURCE_METRICS of one workload's pods (or a namespace's): usage, requests and limits."""
        return self.fetch_frame(RESOURCE_METRICS, {"namespace": namespace, "workload": workload or ""}, hours, end)

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
                         f"between {iso(end - hours * 3600)} and {iso(end)}")
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
