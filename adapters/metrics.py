"""The standard metrics: which keys exist, and how each one's series are read and combined.

Every query source can read these keys (the seed's container, database and cache metrics) with its
own native query per key. Whatever the source, a key's rule decides the numbers: a counter becomes
its increase per step (see grid.py), and a metric's several series combine by its `combine`:
additive amounts (bytes, connections, restarts) are summed, ratios (utilisation, hit rate)
averaged, replication lag takes the worst (max), and so do the per-pod resource figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .grid import Combine

CONTAINER_METRICS = ("cpu_utilization", "memory_utilization", "memory_bytes", "restart_count")
DATABASE_METRICS = ("db_cpu_utilization", "db_memory_utilization", "db_connections", "db_replication_lag")
CACHE_METRICS = ("redis_memory_utilization", "redis_connections", "redis_hit_rate")
# What the resource rules (engine/recommend/resources.py) read, per pod: the pod nearest its limit is
# the one throttled or OOM-killed, so usage combines by the worst pod, and so does the memory limit.
RESOURCE_METRICS = ("pod_cpu_cores", "pod_memory_bytes", "pod_cpu_request_cores", "pod_cpu_limit_cores",
                    "pod_memory_request_bytes", "pod_memory_limit_bytes")


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
    "pod_cpu_cores": MetricRule("max", unit="cores"),
    "pod_memory_bytes": MetricRule("max", unit="bytes"),
    "pod_cpu_request_cores": MetricRule("max", unit="cores"),
    "pod_cpu_limit_cores": MetricRule("max", unit="cores"),
    "pod_memory_request_bytes": MetricRule("max", unit="bytes"),
    "pod_memory_limit_bytes": MetricRule("min", unit="bytes"),  # the smallest limit is the pod at risk
}


@dataclass(frozen=True)
class MetricQuery:
    """A native query for one standard metric. `counter` overrides METRIC_RULES for a source whose
    query already yields a per-step amount (None: the rule's own)."""

    query: Any  # a template: str with $namespace / $workload / $instance, or the adapter's own type
    counter: bool | None = None


def merge_queries(base: Mapping[str, MetricQuery | Any],
                  overrides: Mapping[str, MetricQuery | Any | None]) -> dict[str, MetricQuery]:
    """`base` with single keys replaced by `overrides` (a bare query becomes a MetricQuery; None
    removes the key)."""
    merged = {**base, **overrides}
    return {k: v if isinstance(v, MetricQuery) else MetricQuery(v) for k, v in merged.items() if v is not None}
