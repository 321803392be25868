"""The shared contract every metric source passes against its own real (or local protocol) server.

The canonical dataset below is loaded into each source's server (or file); the same assertions, with
exact numbers, then run against every source, so "gaps, NaN, counter resets, duplicates, several
series and empty results are handled the same way by every adapter" is checked, not promised.

It has two levels, as the sources do. `SourceContract` is what every MetricSource (adapters/base.py)
promises, whatever it reads: a window is answered with a Series inside it, and an empty answer is
NoData. `AdapterContract` adds what every QueryAdapter (adapters/query.py) promises on top: the
samples regridded by the shared rules, several series refused, the standard-metric frames.

How an adapter's tests plug in::

    from .contract import AdapterContract, ContractTarget, canonical_samples

    @pytest.fixture(scope="module")
    def contract(my_server):                           # a server loaded with canonical_samples(origin)
        return ContractTarget(
            adapter=MyAdapter(url=my_server.url, ...),  # connected, fast retry policy
            origin=my_server.origin,                    # the `origin` the data was generated with
            params_for=lambda metric: MyAdapter.Params(query=metric),   # trigger Params reading one metric
            query_for=lambda metric: metric,            # the native query (MetricQuery.query) reading it
        )

    class TestMyAdapterContract(AdapterContract):      # SourceContract for a source that is no QueryAdapter
        pass                                            # every test_* of AdapterContract runs for MyAdapter

A case that cannot apply to a source is set to None in its test class, with a comment saying why.

Load the data with `canonical_samples(origin)`: (metric, labels, timestamp, value) tuples, NaN values
included, and one sample repeated with the same timestamp and value (a retransmission). A server
that cannot store a repeated sample may drop the copy: the expected numbers are the same either way.
`origin` must be a multiple of STEP; use a recent one (e.g. `recent_origin()`), as some servers only
answer for the recent past. Every metric is a gauge except RESTARTS (a cumulative counter).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from helios.adapters.base import MetricSource
from helios.engine.errors import BadQuery, NoData
from helios.engine.types import Series
from helios.scaler.runtime.kept import REFETCH_STEPS, KeptHistory

STEP = 300  # the grid the assertions use (the adapters' default)
RESOLUTION = 60  # LOAD is sampled this often; the others once per step, at its start
STEPS = 12  # the dataset spans [origin, origin + STEPS * STEP)

LOAD = "helios_contract_load"  # one gauge series: a NaN, a repeated sample, a short and a long gap
RESTARTS = "helios_contract_restarts_total"  # two counter series, one of them reset
CONNECTIONS = "helios_contract_connections"  # two gauge series
ABSENT = "helios_contract_absent"  # no series at all

_APP_RESTARTS = [0, 0, 1, 1, 3, 3, 1, 2, 2, 2, 2, 3]  # 3 -> 1 at step 6: a reset, then one restart
_SIDECAR_RESTARTS = [5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6]
_LOAD_MISSING_STEPS = {5, 7, 8, 9, 10}  # one empty step (filled), four in a row (left NaN)

Sample = tuple[str, dict[str, str], int, float]


def recent_origin(hours_ago: float = 3) -> int:
    """A multiple of STEP about `hours_ago` before now."""
    return int((time.time() - hours_ago * 3600) // STEP * STEP)


def canonical_samples(origin: int) -> list[Sample]:
    """The dataset, as (metric, labels, unix seconds, value), oldest first per series."""
    out: list[Sample] = []
    for k in range(STEPS):
        if k in _LOAD_MISSING_STEPS:
            continue
        for j in range(STEP // RESOLUTION):
            ts = origin + k * STEP + j * RESOLUTION
            value = math.nan if (k, j) == (2, 1) else float(10 * k + j)
            out.append((LOAD, {"job": "contract"}, ts, value))
            if (k, j) == (3, 2):  # sent twice: same timestamp, same value
                out.append((LOAD, {"job": "contract"}, ts, value))
    for container, counts in (("app", _APP_RESTARTS), ("sidecar", _SIDECAR_RESTARTS)):
        out += [(RESTARTS, {"container": container}, origin + k * STEP, float(c)) for k, c in enumerate(counts)]
    for instance, values in (("a", [10.0] * STEPS), ("b", [float(k + 1) for k in range(STEPS)])):
        out += [(CONNECTIONS, {"instance": instance}, origin + k * STEP, v) for k, v in enumerate(values)]
    return out


NAN = math.nan
# LOAD per step: the mean of 10k + j over j = 0..4 is 10k + 2; step 2 lacks j = 1 (NaN): 22.25;
# step 3's repeated sample changes nothing; step 5 is interpolated; steps 7-10 (4 > 3 steps) stay NaN.
EXPECTED_LOAD = [2, 12, 22.25, 32, 42, 52, 62, NAN, NAN, NAN, NAN, 112]
# Increases per step, summed over both containers; the first step has no predecessor.
EXPECTED_RESTARTS = [NAN, 0, 1, 1, 2, 0, 1, 1, 0, 0, 0, 1]
EXPECTED_CONNECTIONS_SUM = [11 + k for k in range(STEPS)]
EXPECTED_CONNECTIONS_MEAN = [(11 + k) / 2 for k in range(STEPS)]
EXPECTED_CONNECTIONS_MAX = [max(10, k + 1) for k in range(STEPS)]


@dataclass(frozen=True)
class ContractTarget:
    adapter: MetricSource  # a QueryAdapter for AdapterContract
    origin: int
    params_for: Callable[[str], Any]
    query_for: Callable[[str], Any] | None = None  # AdapterContract's frames only


def last_second(origin: int) -> int:
    """The end of a window that takes the dataset's last step whole (a step holds [t, t + STEP))."""
    return origin + STEPS * STEP - 1


def assert_values(actual, expected) -> None:
    """Exact equality, NaN where NaN is expected (float noise below 1e-9 allowed)."""
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=0, atol=1e-9, equal_nan=True)


class SourceContract:
    """Subclass in a source's test module with a `contract` fixture returning a ContractTarget."""

    def test_a_window_is_answered_with_a_series_inside_it(self, contract: ContractTarget):
        t0 = contract.origin
        start, end = t0 - 3600, last_second(t0) + 3600
        s = contract.adapter.fetch(contract.params_for(LOAD), start, end, STEP)
        # A Series has strictly increasing timestamps: oldest first, the repeated sample once.
        assert isinstance(s, Series) and len(s) > 0
        assert start <= s.timestamps[0] and s.timestamps[-1] <= end

    def test_a_window_inside_the_data_is_cut_to_it(self, contract: ContractTarget):
        t0 = contract.origin
        start, end = t0 + STEP + 1, t0 + 5 * STEP - 1
        s = contract.adapter.fetch(contract.params_for(LOAD), start, end, STEP)
        assert len(s) > 0 and start <= s.timestamps[0] and s.timestamps[-1] <= end

    def test_an_empty_answer_is_no_data(self, contract: ContractTarget):
        t0 = contract.origin
        with pytest.raises(NoData):
            contract.adapter.fetch(contract.params_for(ABSENT), t0, last_second(t0), STEP)

    def test_a_window_kept_and_extended_by_its_newest_steps_is_the_window_fetched_whole(self, contract: ContractTarget):
        """What each refresh does (scaler/runtime/kept.py): the window it kept, ending inside any step, and
        the newest steps fetched again from REFETCH_STEPS before its last sample, across NaN and gaps."""
        t0, params = contract.origin, contract.params_for(LOAD)
        end = last_second(t0)
        whole = contract.adapter.fetch(params, t0, end, STEP)
        for k in range(STEPS):
            kept = KeptHistory(contract.adapter.fetch(params, t0, t0 + k * STEP + 2 * RESOLUTION, STEP), (), 0.0)
            since = kept.tail_start((), t0, end, math.inf, STEP)
            assert since == max(t0, kept.series.end - REFETCH_STEPS * STEP)
            got = kept.extended(contract.adapter.fetch(params, since, end, STEP), since, t0).series
            assert got.timestamps.tolist() == whole.timestamps.tolist(), k
            assert_values(got.values, whole.values)

    def test_a_window_before_the_data_is_no_data(self, contract: ContractTarget):
        t0 = contract.origin
        with pytest.raises(NoData):
            contract.adapter.fetch(contract.params_for(LOAD), t0 - 7200, t0 - 3600, STEP)


class AdapterContract(SourceContract):
    """SourceContract and the exact numbers of the shared rules, for a QueryAdapter."""

    def test_a_gauge_is_averaged_per_step_with_nan_repeats_and_gaps_handled(self, contract: ContractTarget):
        t0 = contract.origin
        s = contract.adapter.fetch(contract.params_for(LOAD), t0, last_second(t0), STEP)
        assert s.timestamps.tolist() == [t0 + k * STEP for k in range(STEPS)]
        assert_values(s.values, EXPECTED_LOAD)

    def test_the_series_spans_only_the_steps_with_values(self, contract: ContractTarget):
        t0 = contract.origin
        s = contract.adapter.fetch(contract.params_for(LOAD), t0 - 3600, t0 + STEPS * STEP + 3600, STEP)
        assert s.timestamps[0] == t0 and s.timestamps[-1] == t0 + (STEPS - 1) * STEP
        assert_values(s.values, EXPECTED_LOAD)

    def test_a_window_inside_the_data_is_cut_on_the_grid(self, contract: ContractTarget):
        t0 = contract.origin
        s = contract.adapter.fetch(contract.params_for(LOAD), t0 + STEP + 1, t0 + 5 * STEP - 1, STEP)
        assert s.timestamps.tolist() == [t0 + 2 * STEP, t0 + 3 * STEP, t0 + 4 * STEP]
        assert_values(s.values, EXPECTED_LOAD[2:5])

    def test_the_last_step_holds_only_the_samples_up_to_the_end_of_the_window(self, contract: ContractTarget):
        t0 = contract.origin
        s = contract.adapter.fetch(contract.params_for(LOAD), t0, t0 + STEP + 2 * RESOLUTION, STEP)
        assert_values(s.values, [2, 11])  # step 1 up to its third sample: (10 + 11 + 12) / 3

    def test_several_series_for_a_trigger_query_are_a_bad_query_naming_them(self, contract: ContractTarget):
        t0 = contract.origin
        with pytest.raises(BadQuery, match="returned 2 series") as e:
            contract.adapter.fetch(contract.params_for(RESTARTS), t0, last_second(t0), STEP)
        assert 'container="app"' in str(e.value) and 'container="sidecar"' in str(e.value)

    def test_container_frame_merges_gauges_counters_and_empty_metrics_on_one_grid(self, contract: ContractTarget):
        q = contract.query_for
        adapter = contract.adapter.with_queries({
            "cpu_utilization": q(LOAD), "memory_utilization": q(ABSENT),
            "memory_bytes": q(CONNECTIONS), "restart_count": q(RESTARTS),
        })
        t0 = contract.origin
        frame = adapter.fetch_container_metrics("contract", hours=1.25, end=last_second(t0))
        # The window [end - 75 min, end] starts three steps before the data: NaN in every column.
        assert list(frame.columns) == ["cpu_utilization", "memory_utilization", "memory_bytes", "restart_count"]
        assert frame.index.tz is not None and str(frame.index.tz) == "UTC"
        assert list(frame.index) == [pd.Timestamp(t0 + k * STEP, unit="s", tz="UTC") for k in range(-3, STEPS)]
        before = [NAN] * 3
        assert_values(frame["cpu_utilization"], [*before, *EXPECTED_LOAD])
        assert_values(frame["memory_utilization"], [NAN] * (STEPS + 3))
        assert_values(frame["memory_bytes"], [*before, *EXPECTED_CONNECTIONS_SUM])
        assert_values(frame["restart_count"], [*before, *EXPECTED_RESTARTS])

    def test_database_frame_combines_series_by_each_metrics_rule(self, contract: ContractTarget):
        q = contract.query_for
        adapter = contract.adapter.with_queries({
            "db_cpu_utilization": q(CONNECTIONS), "db_memory_utilization": q(ABSENT),
            "db_connections": q(CONNECTIONS), "db_replication_lag": q(CONNECTIONS),
        })
        t0 = contract.origin
        frame = adapter.fetch_database_metrics("db-1", hours=(STEPS * STEP - 1) / 3600, end=last_second(t0))
        assert list(frame.columns) == ["db_cpu_utilization", "db_memory_utilization", "db_connections",
                                       "db_replication_lag"]
        assert len(frame) == STEPS
        assert_values(frame["db_cpu_utilization"], EXPECTED_CONNECTIONS_MEAN)  # a ratio: averaged
        assert_values(frame["db_connections"], EXPECTED_CONNECTIONS_SUM)  # an amount: summed
        assert_values(frame["db_replication_lag"], EXPECTED_CONNECTIONS_MAX)  # lag: the worst replica
        assert frame["db_memory_utilization"].isna().all()

    def test_a_frame_with_no_data_at_all_is_no_data(self, contract: ContractTarget):
        adapter = contract.adapter.with_queries({k: contract.query_for(ABSENT) for k in
                                                 ("redis_memory_utilization", "redis_connections", "redis_hit_rate")})
        t0 = contract.origin
        with pytest.raises(NoData, match="none of redis_memory_utilization"):
            adapter.fetch_cache_metrics("cache-1", hours=1, end=last_second(t0))
