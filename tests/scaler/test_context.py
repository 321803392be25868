"""The context feed (scaler/runtime/context.py): incremental fetches, failures that keep the last good
context, and the notes the resource rules quote. The source is the adapters' real frames code over an
in-memory server (the real Prometheus run is tests/scaler/test_context_e2e.py)."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from helios.adapters.frames import MetricFrames
from helios.adapters.grid import RawSeries
from helios.adapters.metrics import RESOURCE_METRICS, MetricQuery
from helios.engine.errors import SourceUnavailable
from helios.scaler.app import HeliosApp
from helios.scaler.config.metadata import ContextSpec, TriggerSpec
from helios.scaler.pb import admin_pb2 as pb
from helios.scaler.runtime.context import ContextFeed
from helios.scaler.runtime.store import MemoryStore
from helios.scaler.runtime.telemetry import Telemetry
from helios.scaler.runtime.workloads import Workloads

from ..helpers import fast_settings, sample_value, write_trace

MIB = 1 << 20
NOW = 1_800_000_000 // 300 * 300 + 100  # mid-step


class PodsServer(MetricFrames):
    """Frames over samples held in memory, per pod; records the windows it is asked for."""

    name = "pods"
    queries = {key: MetricQuery(key) for key in (*RESOURCE_METRICS, "memory_utilization", "db_connections")}
    max_gap_steps = 2

    def __init__(self, pods: dict[str, dict[str, float]]) -> None:
        super().__init__(clock=lambda: NOW)
        self.pods = pods  # pod -> {metric key: constant value}
        self.asked: list[tuple[int, float]] = []
        self.outage = False

    def _render(self, template, values):
        return (template, values.get("workload") or values["instance"])

    def _query(self, query, grid, step, end):
        if self.outage:
            raise SourceUnavailable("pods: connection refused")
        key, workload = query
        self.asked.append((int(grid[0]), end))
        times = np.arange(int(grid[0]), int(end) + 1, 60)
        return [RawSeries({"pod": pod}, times, np.full(times.size, metrics[key]))
                for pod, metrics in self.pods.items() if pod.startswith(workload + "-") and key in metrics]


def web_pods(memory_fraction: float = 0.9) -> dict[str, dict[str, float]]:
    return {
        "web-a": {"pod_cpu_cores": 0.4, "pod_memory_bytes": memory_fraction * 512 * MIB,
                  "pod_cpu_request_cores": 0.5, "pod_memory_limit_bytes": 512 * MIB},
        "web-b": {"pod_cpu_cores": 0.2, "pod_memory_bytes": 100 * MIB,
                  "pod_cpu_request_cores": 0.5, "pod_memory_limit_bytes": 768 * MIB},
    }


def spec(workload: str = "web", database: str | None = None) -> TriggerSpec:
    return TriggerSpec(namespace="shop", name="web", metric_name="m", source="pods", source_params=None,
                       target_value=10, activation_value=0, horizon=1800, lead_time=300, model="baseline",
                       quantile=0.7, mode="act", context=ContextSpec("shop", workload, database))


def feed_with(server, clock, **context):
    settings = fast_settings(context=context)
    workloads = Workloads(MemoryStore(), settings.metrics.staleness_limit)
    registry = CollectorRegistry()
    feed = ContextFeed(workloads, {"pods": server, "file": object()}, settings, Telemetry(registry), clock)
    return feed, workloads, registry


async def test_the_first_fetch_reads_the_window_and_later_ones_only_what_is_new():
    server = PodsServer(web_pods())
    now = [float(NOW)]
    feed, workloads, _ = feed_with(server, lambda: now[0], window=86400)
    workloads.add(spec())
    key = spec().key
    first = await feed.fetch(key)
    window_start = server.asked[0][0]
    assert NOW - window_start == pytest.approx(86400, abs=300)  # a day, on the grid
    # The busiest pod's usage, the largest request, the smallest memory limit.
    assert first.memory_usage.values[-1] == pytest.approx(0.9 * 512 * MIB)
    assert first.cpu_usage.values[-1] == pytest.approx(0.4)
    assert (first.cpu_request, first.memory_limit, first.cpu_limit) == (0.5, 512 * MIB, None)
    assert first.fetched_at == NOW and first.note == ""

    server.asked.clear()
    now[0] += 600
    second = await feed.fetch(key)
    asked_from = min(start for start, _ in server.asked)
    assert NOW - 300 <= asked_from <= NOW  # from the last (partial) step on, not another day
    assert second.memory_usage.timestamps[-1] == (NOW + 600) // 300 * 300
    # Still a day kept, no more: two new steps in, two old ones out.
    assert second.memory_usage.timestamps[0] == first.memory_usage.timestamps[0] + 600
    assert len(second.memory_usage) == len(first.memory_usage)
    assert workloads.snapshot(key).context is second


async def test_a_failed_fetch_keeps_the_last_context_and_is_counted_and_said():
    server = PodsServer(web_pods())
    feed, workloads, registry = feed_with(server, lambda: NOW)
    workloads.add(spec())
    good = await feed.fetch(spec().key)
    server.outage = True
    failed = await feed.fetch(spec().key)
    assert failed.memory_limit == good.memory_limit and failed.fetched_at == good.fetched_at
    assert failed.note == "context fetch failed: pods: connection refused"
    assert registry.get_sample_value("helios_context_fetch_failures_total", {"source": "pods"}) == 1


async def test_pods_that_match_nothing_are_named_and_new_pods_start_afresh():
    server = PodsServer(web_pods())
    feed, workloads, _ = feed_with(server, lambda: NOW)
    workloads.add(spec())
    await feed.fetch(spec().key)
    workloads.publish(spec().key, trigger=spec("checkout"))  # the trigger now names other pods
    empty = await feed.fetch(spec().key)
    assert "no pods of workload 'checkout' in namespace 'shop' have samples" in empty.note
    assert empty.memory_usage is None and empty.memory_limit is None  # web's context is not checkout's


async def test_a_source_without_container_metrics_says_so_and_context_off_reads_nothing():
    feed, workloads, _ = feed_with(PodsServer({}), lambda: NOW)
    on_file = spec()
    on_file = TriggerSpec(**{**on_file.__dict__, "source": "file"})
    w = workloads.add(on_file)
    feed.start(on_file.key, w)
    assert w.context_task is None
    assert workloads.snapshot(on_file.key).context.note == "source file reads no container metrics"
    off = TriggerSpec(**{**spec().__dict__, "name": "api", "context": None})
    w = workloads.add(off)
    feed.start(off.key, w)
    assert w.context_task is None and workloads.snapshot(off.key).context is None


async def test_the_resource_rules_say_why_they_were_not_evaluated(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "load.csv", np.full(400, 20.0))
    app: HeliosApp = await start_app(fast_settings())
    client = client_for(app)
    for name, extra in (("web", {}), ("api", {"context": "off"})):
        meta = {"source": "file", "path": str(path), "targetValue": "10", **extra}
        await client.get_metrics(meta, name=name)
        ref = pb.WorkloadRef(namespace="shop", name=name, metric_name=await client.metric_name(meta, name=name))
        r = await client.admin.Recommend(pb.RecommendRequest(workload=ref, current_replicas=2), timeout=10)
        why = "source file reads no container metrics" if name == "web" else "context is off"
        assert f"INCREASE_MEMORY not evaluated: no memory limit ({why})" in r.reason
        assert f"DECREASE_CPU not evaluated: no CPU request ({why})" in r.reason
    assert sample_value(client.scrape(), "helios_container_memory_limit_bytes") is None


async def test_the_container_and_a_named_database_feed_the_features():
    pods = web_pods()
    pods["web-a"]["memory_utilization"] = 0.6
    pods["orders-db-0"] = {"db_connections": 42.0}
    server = PodsServer(pods)
    feed, workloads, _ = feed_with(server, lambda: NOW)
    workloads.add(spec())
    alone = await feed.fetch(spec().key)
    assert set(alone.features) == {"memory_utilization"}  # the container frame; no database named
    assert alone.features["memory_utilization"].values[-1] == pytest.approx(0.6)
    workloads.publish(spec().key, trigger=spec(database="orders-db"))
    named = await feed.fetch(spec().key)
    assert set(named.features) == {"memory_utilization", "db_connections"}
    assert named.features["db_connections"].values[-1] == 42.0
    assert named.memory_limit == 512 * MIB  # the resource frame beside them, as before
