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

from helios.engine.demand import interval_confidence

from ..config.settings import Settings
from ..runtime.state import Availability, Snapshot, answer, current_choice
from ..runtime.store import SnapshotStore

LABELS = ["namespace", "scaledobject", "metric"]
# The workload's pods, as runtime/context.py last read them, and what the resource rules recommend.
CONTEXT_GAUGES = (
    ("helios_container_cpu_usage_cores", "CPU usage of the workload's busiest pod, newest step", []),
    ("helios_container_memory_working_set_bytes", "Memory working set of the workload's largest pod, newest step",
     []),
    ("helios_container_cpu_request_cores", "CPU request of the workload's pods (the largest)", []),
    ("helios_container_cpu_limit_cores", "CPU limit of the workload's pods (the largest)", []),
    ("helios_container_memory_request_bytes", "Memory request of the workload's pods (the largest)", []),
    ("helios_container_memory_limit_bytes", "Memory limit of the workload's pods (the smallest)", []),
    ("helios_recommended_memory_limit_bytes", "Memory limit the latest recommendation suggests (INCREASE_MEMORY), "
     "else the current one", []),
    ("helios_recommended_cpu_request_cores", "CPU request the latest recommendation suggests (DECREASE_CPU), "
     "else the current one", []),
    ("helios_context_age_seconds", "Seconds since the workload's context was last read", []),
)


class SnapshotCollector(Collector):
    def __init__(self, store: SnapshotStore, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock()
        level = self._settings.models.interval_level
        g = {name: GaugeMetricFamily(name, doc, labels=LABELS + extra) for name, doc, extra in (
            ("helios_observed_value", "Latest observed value of the trigger's signal", []),
            ("helios_metric_value", "What GetMetrics answers now (absent while it would fail); basis: forecast, "
                                    "headroom (the replay found headroom cheaper) or observed", ["basis"]),
            ("helios_target_shortfall", "The trigger's shortfall target (share of time short of ready capacity)", []),
            ("helios_expected_shortfall", "Share of time the served plan was short in the workload's replayed history",
             []),
            ("helios_expected_replica_hours_ratio", "The served plan's replica-hours over reactive scaling's, in the "
                                                    "replay", []),
            ("helios_slo_attainable", "1 when some plan met the shortfall target within the cost cap in the replay",
             []),
            ("helios_implied_replicas", "ceil(metric value / targetValue): the replicas the HPA aims for", []),
            ("helios_target_value", "The trigger's targetValue (per-replica capacity)", []),
            ("helios_forecast_value", f"Forecast at now + leadTime: point and {level:.0%} interval bounds",
             ["bound"]),
            ("helios_forecast_age_seconds", "Seconds since the forecast being served was made", []),
            ("helios_last_refresh_timestamp_seconds", "When the source last answered", []),
            ("helios_stale", "1 while the workload's data is older than the staleness limit", []),
            ("helios_refresh_consecutive_failures", "Failed refreshes since the last good one", []),
            ("helios_predicted_cpu", "Forecast at now + leadTime of a trigger with signal: cpu", []),
            ("helios_predicted_memory", "Forecast at now + leadTime of a trigger with signal: memory", []),
            ("helios_prediction_confidence", f"1 - the {level:.0%} interval's width over twice the forecast, "
             "at now + leadTime, in [0, 1]", []),
            ("helios_forecast_mape", "Rolling mean absolute percentage error (fraction) of served forecasts "
             "whose actuals arrived", []),
            ("helios_forecast_interval_coverage", f"Rolling share of actuals inside the served forecast's "
             f"{level:.0%} interval", []),
            ("helios_forecast_matured", "Served forecasts whose actuals arrived, in the rolling window", []),
            ("helios_anomaly_score", "Anomaly score of the newest sample, in standard deviations", []),
            ("helios_anomaly_likelihood", "Anomaly likelihood of the recent run of scores and of the value, "
             "in [0, 1] (absent while it learns, or for detectors without one)", []),
            ("helios_anomaly_detected", "1 while the newest sample is flagged (by its likelihood where there is "
             "one, else |score| >= 2.5); helios_anomaly_detections_total counts incidents", []),
            ("helios_recommended_replicas", "Replicas the recommendation asks for", []),
            ("helios_current_replicas", "Replicas Helios's last answer steered the HPA to (an estimate)", []),
            ("helios_recommendation_confidence", "Confidence of the latest recommendation, in [0, 1]", []),
            ("helios_recommendation", "1 for the latest recommendation's action, and for each resource action "
             "beside it (INCREASE_MEMORY, DECREASE_CPU)", ["action"]),
            *CONTEXT_GAUGES,
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
                g["helios_metric_value"].add_metric(labels + [result.basis], result.value)
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
                if t.signal != "load":
                    g[f"helios_predicted_{t.signal}"].add_metric(labels, float(f.point[i]))
                g["helios_prediction_confidence"].add_metric(labels, interval_confidence(f, i, level))
            _insights(g, labels, snap)
            _context(g, labels, snap, now)
            _provisioning(g, labels, snap)
        yield from g.values()


def _provisioning(g: dict[str, GaugeMetricFamily], labels: list[str], snap: Snapshot) -> None:
    t, choice = snap.trigger, current_choice(snap, snap.trigger)
    if t.slo is None:
        return
    g["helios_target_shortfall"].add_metric(labels, t.slo.target_shortfall)
    if choice is not None:
        g["helios_expected_shortfall"].add_metric(labels, choice.replayed.underprovisioned_fraction)
        if choice.reactive_replica_hours:
            g["helios_expected_replica_hours_ratio"].add_metric(
                labels, choice.replayed.replica_hours / choice.reactive_replica_hours)
        g["helios_slo_attainable"].add_metric(labels, float(choice.attainable))


def _insights(g: dict[str, GaugeMetricFamily], labels: list[str], snap: Snapshot) -> None:
    """What scaler/runtime/insights.py derived after the latest forecast."""
    if snap.forecast_error is not None and snap.forecast_error.matured:
        e = snap.forecast_error
        g["helios_forecast_matured"].add_metric(labels, e.matured)
        g["helios_forecast_interval_coverage"].add_metric(labels, e.coverage)
        if not math.isnan(e.mape):
            g["helios_forecast_mape"].add_metric(labels, e.mape)
    if snap.anomaly is not None and not math.isnan(snap.anomaly.score):
        g["helios_anomaly_score"].add_metric(labels, snap.anomaly.score)
        g["helios_anomaly_detected"].add_metric(labels, float(snap.anomaly.severity > 0))
        if not math.isnan(snap.anomaly.likelihood):
            g["helios_anomaly_likelihood"].add_metric(labels, snap.anomaly.likelihood)
    rec = snap.recommendation
    if rec is not None:
        g["helios_recommended_replicas"].add_metric(labels, rec.target_replicas)
        g["helios_current_replicas"].add_metric(labels, rec.current_replicas)
        g["helios_recommendation_confidence"].add_metric(labels, rec.confidence)
        actions = [rec.action.value] + [c.action.value for c in rec.conditions if c.resource is not None]
        for action in dict.fromkeys(actions):  # in order, once each
            g["helios_recommendation"].add_metric(labels + [action], 1.0)


def _context(g: dict[str, GaugeMetricFamily], labels: list[str], snap: Snapshot, now: float) -> None:
    """The pods' usage, requests and limits (runtime/context.py), and what the resource rules make of them."""
    c = snap.context
    if c is None:
        return
    if c.fetched_at is not None:
        g["helios_context_age_seconds"].add_metric(labels, now - c.fetched_at)
    for name, series in (("cpu_usage_cores", c.cpu_usage), ("memory_working_set_bytes", c.memory_usage)):
        if series is not None and len(series):
            g[f"helios_container_{name}"].add_metric(labels, float(series.values[-1]))
    for name, value in (("cpu_request_cores", c.cpu_request), ("cpu_limit_cores", c.cpu_limit),
                        ("memory_request_bytes", c.memory_request), ("memory_limit_bytes", c.memory_limit)):
        if value is not None:
            g[f"helios_container_{name}"].add_metric(labels, value)
    suggested = {r.resource: r.suggested for r in snap.recommendation.resources} if snap.recommendation else {}
    for resource, name, current in (("memory", "memory_limit_bytes", c.memory_limit),
                                    ("cpu", "cpu_request_cores", c.cpu_request)):
        value = suggested.get(resource, current)
        if value is not None:
            g[f"helios_recommended_{name}"].add_metric(labels, value)
