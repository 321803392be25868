"""The shared rules of the query adapters (adapters/query.py, grid.py, frames.py, retry.py), on raw
series given directly (no server in between).

`MemoryAdapter` answers a query (a metric name) with the canonical samples as they are: duplicates,
NaN and all, which no real server returns so bluntly. Running AdapterContract against it checks that
the shared expectations follow from the rules alone; the per-server modules check the servers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from helios.adapters.grid import RawSeries, counter_on_grid, gauge_on_grid, grid_for
from helios.adapters.query import QueryAdapter
from helios.adapters.retry import RetryPolicy
from helios.engine.errors import BadQuery, SourceUnavailable

from .contract import AdapterContract, ContractTarget, canonical_samples, recent_origin


@dataclass(frozen=True)
class MemoryParams:
    query: str


class MemoryAdapter(QueryAdapter):
    name: ClassVar[str] = "memory"
    Params: ClassVar[type] = MemoryParams

    def __init__(self, samples, **kwargs) -> None:
        super().__init__(**kwargs)
        self.samples = samples
        self.calls = 0

    def _query_range(self, query, start, end, step):
        self.calls += 1
        by_labels: dict[tuple, list] = {}
        for metric, labels, ts, value in self.samples:
            if metric == query and start <= ts <= end:
                by_labels.setdefault(tuple(sorted(labels.items())), []).append((ts, value))
        return [RawSeries.of(dict(k), v) for k, v in by_labels.items()]


@pytest.fixture(scope="module")
def contract():
    origin = recent_origin()
    return ContractTarget(MemoryAdapter(canonical_samples(origin)), origin, MemoryParams, lambda m: m)


class TestMemoryAdapterContract(AdapterContract):
    pass


GRID = np.arange(0, 1500, 300)


def test_repeated_timestamps_count_once_at_their_mean():
    raw = RawSeries.of({}, [(0, 10), (0, 20), (60, 30)])
    assert gauge_on_grid(raw, GRID, 300, 3)[0] == pytest.approx(22.5)  # (15 + 30) / 2, not (10 + 20 + 30) / 3


def test_unsorted_samples_are_sorted_first():
    raw = RawSeries.of({}, [(600, 9), (0, 1), (300, 4)])  # read in this order, 9 -> 1 would look like a reset
    assert counter_on_grid(raw, GRID, 300)[1:3].tolist() == [3, 5]


def test_a_counter_reset_adds_the_value_counted_since_the_reset():
    raw = RawSeries.of({}, [(0, 100), (300, 110), (600, 4), (900, 9)])
    out = counter_on_grid(raw, GRID, 300)
    assert math.isnan(out[0]) and out[1:4].tolist() == [10, 4, 5] and math.isnan(out[4])


def test_gaps_longer_than_the_limit_stay_missing():
    raw = RawSeries.of({}, [(0, 0), (1200, 40)])
    assert gauge_on_grid(raw, GRID, 300, 3).tolist() == [0, 10, 20, 30, 40]
    assert np.isnan(gauge_on_grid(raw, GRID, 300, 2)[1:4]).all()


def test_the_grid_holds_multiples_of_the_step_inside_the_window():
    assert grid_for(1, 899, 300).tolist() == [300, 600]
    assert grid_for(301, 599, 300).size == 0


class Flaky(MemoryAdapter):
    def __init__(self, failures: int, error: Exception, **kwargs) -> None:
        super().__init__([("m", {}, 0, 1.0)], **kwargs)
        self.failures, self.error = failures, error

    def _query_range(self, query, start, end, step):
        if self.failures:
            self.failures -= 1
            self.calls += 1
            raise self.error
        return super()._query_range(query, start, end, step)


FAST = RetryPolicy(attempts=3, backoff_initial=0.001, backoff_max=0.002)


def test_outages_are_retried_until_the_source_answers():
    source = Flaky(2, SourceUnavailable("connection refused"), retry=FAST)
    assert source.fetch(MemoryParams("m"), 0, 300, 300).values.tolist() == [1.0]
    assert source.calls == 3


def test_retries_give_up_after_the_configured_attempts_with_the_sources_error():
    source = Flaky(5, SourceUnavailable("connection refused"), retry=FAST)
    with pytest.raises(SourceUnavailable, match="connection refused"):
        source.fetch(MemoryParams("m"), 0, 300, 300)
    assert source.calls == 3


def test_a_bad_query_is_not_retried():
    source = Flaky(5, BadQuery("parse error"), retry=FAST)
    with pytest.raises(BadQuery):
        source.fetch(MemoryParams("m"), 0, 300, 300)
    assert source.calls == 1


def test_a_metric_the_source_has_no_query_for_is_a_nan_column():
    source = MemoryAdapter([("m", {}, 0, 1.0), ("m", {}, 300, 2.0)], queries={"cpu_utilization": "m"})
    frame = source.fetch_container_metrics("shop", hours=600 / 3600, end=600)
    assert frame["cpu_utilization"].tolist()[:2] == [1.0, 2.0] and frame["memory_bytes"].isna().all()
