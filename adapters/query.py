"""What every query-speaking metric source (Prometheus, Cloud Monitoring, CloudWatch, Azure) shares.

A concrete adapter subclasses `QueryAdapter` and supplies two things: `_query_range`, the one call to
its server (raw samples of every series a native query returns, as the server gives them), and
`queries`, the native query of each standard metric key (for the frames, frames.py). Everything
after the raw answer is decided once, by the rules of grid.py and metrics.py, so every source answers
the same data with the same numbers. For a trigger's own query (`fetch`):

Window
    `fetch` returns the grid from the first to the last step that has a value.
Several series
    The query must return one series: several raise BadQuery naming how many and their labels
    (aggregate them in the query: Helios cannot know whether they add up or average).
Empty results
    A query with no samples in the window raises NoData.
Errors and retries
    `_query_range` raises the engine.errors types (SourceUnavailable, SourceUnauthorized, BadQuery,
    NoData); only SourceUnavailable is retried, as the adapter's RetryPolicy (retry.py) says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from helios.engine.errors import BadQuery, NoData
from helios.engine.types import Series

from .frames import MetricFrames
from .grid import DEFAULT_MAX_GAP_STEPS, DEFAULT_STEP, RawSeries, gauge_on_grid, grid_for, iso
from .metrics import MetricQuery
from .retry import RetryPolicy


class QueryAdapter(MetricFrames):
    """Base of the sources that answer native range queries. Subclasses set `name`, `Params` and
    `queries`, and implement `_query_range`; they may override `_render` and `_trigger_query`."""

    name: ClassVar[str]
    Params: ClassVar[type]

    def __init__(self, *, queries: Mapping[str, MetricQuery | Any] | None = None, retry: RetryPolicy | None = None,
                 step: int = DEFAULT_STEP, max_gap_steps: int = DEFAULT_MAX_GAP_STEPS,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(queries=queries, step=step, clock=clock)
        self.retry = retry or RetryPolicy()
        self.max_gap_steps = int(max_gap_steps)

    # --- what a subclass provides ------------------------------------------------------------

    def _query_range(self, query: Any, start: int, end: int, step: int) -> list[RawSeries]:
        """Every series `query` yields between start and end (Unix seconds, inclusive), sampled about
        every `step` seconds or finer, raw. Raises engine.errors types; empty list when none."""
        raise NotImplementedError

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
            raise NoData(f"{self.name}: the query returned no samples between {iso(start)} and {iso(end)}")
        keep = slice(present[0], present[-1] + 1)
        return Series(grid[keep], values[keep])

    def _query(self, query: Any, grid: np.ndarray, step: int, end: float) -> list[RawSeries]:
        """`_query_range` over the buckets of `grid` up to `end` (the last bucket may be partial),
        retrying outages."""
        if grid.size == 0:
            return []
        last = int(min(grid[-1] + step - 1, end))
        return self.retry.call(self._query_range, query, int(grid[0]), last, step)


def describe_labels(series: list[RawSeries], limit: int = 5) -> str:
    shown = ["{" + ", ".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}" for s in series[:limit]]
    more = f" and {len(series) - limit} more" if len(series) > limit else ""
    return ", ".join(shown) + more
