"""Per-workload metrics for Prometheus, read from the snapshots at scrape time.

Because they are computed on each scrape, a workload that is dropped disappears from /metrics at
once, and the values are exactly what GetMetrics would answer at that moment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .settings import Settings
from .state import Availability, StateStore, answer

LABELS = ["namespace", "scaledobject", "metric"]


class SnapshotCollector(Collector):
    def __init__(self, store: StateStore, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock()
        level = self._settings.models.interval_level
        g = {name: GaugeMetricFamily(name, doc, labels=LABELS + extra) for name, doc, extra in (
            ("helios_observed_value", "Latest observed value of the trigger's signal", []),
            ("helios_metric_value", "What GetMetrics answers now (absent while it would fail)", []),
            ("helios_implied_replicas", "ceil(metric value / targetValue): the replicas the HPA aims for", []),
            ("helios_target_value", "The trigger's targetValue (per-replica capacity)", []),
            ("helios_forecast_value", f"Forecast at now + leadTime: point and {level:.0%} interval bounds",
             ["bound"]),
            ("helios_forecast_age_seconds", "Seconds since the forecast being served was made", []),
            ("helios_last_refresh_timestamp_seconds", "When the source last answered", []),
            ("helios_stale", "1 while the workload's data is older than the staleness limit", []),
            ("helios_refresh_consecutive_failures", "Failed refreshes since the last good one", []),
        )}
        snaps = self._store.all()
        yield GaugeMetricFamily("helios_workloads", "Workloads tracked", value=len(snaps))
        for snap in snaps:
            t = snap.trigger
            labels = [t.namespace, t.name, t.metric_name]
            result = answer(snap, t, now, self._settings.metrics.staleness_limit)
            g["helios_target_value"].add_metric(labels, t.target_value)
            g["helios_stale"].add_metric(labels, float(result.availability is Availability.STALE))
            g["helios_refresh_consecutive_failures"].add_metric(labels, snap.consecutive_failures)
            if snap.observed is not None:
                g["helios_observed_value"].add_metric(labels, snap.observed)
            if result.availability is Availability.OK:
                g["helios_metric_value"].add_metric(labels, result.value)
                g["helios_implied_replicas"].add_metric(labels, math.ceil(result.value / t.target_value))
            if snap.refreshed_at is not None:
                g["helios_last_refresh_timestamp_seconds"].add_metric(labels, snap.refreshed_at)
            if snap.forecast is not None and snap.forecast_at is not None:
                g["helios_forecast_age_seconds"].add_metric(labels, now - snap.forecast_at)
                f = snap.forecast
                i = int(min(max((now + t.lead_time - f.start) // f.step, 0), f.horizon - 1))
                lower, upper = f.interval(level)
                for bound, series in (("point", f.point), ("lower", lower), ("upper", upper)):
                    g["helios_forecast_value"].add_metric(labels + [bound], float(series[i]))
        yield from g.values()
