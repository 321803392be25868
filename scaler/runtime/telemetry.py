"""Self-monitoring instruments: how Helios itself is doing (requests, refreshes, fits, errors)."""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FAST_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
SLOW_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0)


class Telemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._calls: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        # The seed's names: "inference" is every answer Helios gives, KEDA's calls and the admin API's.
        self.requests = Counter(
            "helios_inference_requests", "gRPC calls handled, by rpc and status code",
            ["rpc", "code"], registry=registry,
        )
        self.request_seconds = Histogram(
            "helios_inference_duration_seconds", "Time to answer a unary gRPC call, by rpc",
            ["rpc"], buckets=FAST_BUCKETS, registry=registry,
        )
        self.active_streams = Gauge(
            "helios_stream_is_active_streams", "Open StreamIsActive streams", registry=registry
        )
        self.metric_spec_streams = Gauge(
            "helios_stream_metric_spec_streams", "Open StreamMetricSpec streams", registry=registry
        )
        self.refreshes = Counter(
            "helios_refreshes", "Workload refreshes, by source and result (ok, source_error, fit_error)",
            ["source", "result"], registry=registry,
        )
        self.refresh_seconds = Histogram(
            "helios_refresh_duration_seconds", "Time of one refresh: fetch, fit and forecast",
            ["source"], buckets=SLOW_BUCKETS, registry=registry,
        )
        self.source_errors = Counter(
            "helios_source_errors", "Failed fetches, by source and error kind",
            ["source", "kind"], registry=registry,
        )
        self.fit_seconds = Histogram(
            "helios_model_fit_duration_seconds",
            "Time to fit (or update) a model and forecast, worker round trip included",
            ["model", "operation"], buckets=SLOW_BUCKETS, registry=registry,
        )
        self.anomaly_detections = Counter(
            "helios_anomaly_detections", "Anomaly alerts raised, one per incident (at its first flagged sample), "
            "by severity",
            ["severity"], registry=registry,
        )
        self.context_failures = Counter(
            "helios_context_fetch_failures", "Context fetches (a workload's pods' usage, requests and limits) "
            "that failed or found no samples, by source",
            ["source"], registry=registry,
        )
        self.cluster_members = Gauge("helios_cluster_members", "Live replicas sharing the work (1 without Redis)",
                                     registry=registry)
        self.cluster_members.set(1)
        self.owned_workloads = Gauge("helios_owned_workloads", "Workloads this replica refreshes", registry=registry)
        self.ownership_moves = Counter("helios_ownership_moves", "Workloads this replica took over or handed on",
                                       registry=registry)
        self.redis_errors = Counter("helios_redis_errors", "Failed Redis operations, by what was being done",
                                    ["where"], registry=registry)
        self.recommendations = Counter(
            "helios_recommendations", "Recommendations made (one per workload refresh with a new forecast), by action",
            ["action"], registry=registry,
        )
        self.scaling_actions = Counter(
            "helios_scaling_actions", "Recommendations that change the replica count, by action",
            ["action"], registry=registry,
        )

        # The cycle collector's passes in the serving process: each pauses every call in flight.
        self.gc_pauses = Histogram(
            "helios_gc_pause_seconds", "Time of one pass of the cycle collector in the serving process, by generation",
            ["generation"], buckets=FAST_BUCKETS, registry=registry,
        )
        self._gc_pause_of = [self.gc_pauses.labels(str(g)) for g in range(3)]
        self._gc_started = 0.0

    def gc_callback(self, phase: str, info: dict) -> None:
        """For gc.callbacks: times each pass of the collector."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc_pause_of[info["generation"]].observe(time.perf_counter() - self._gc_started)

    def open_streams(self, rpc: str) -> Gauge:
        """The gauge of open streams of one streaming rpc."""
        return self.metric_spec_streams if rpc == "StreamMetricSpec" else self.active_streams

    def call_instruments(self, rpc: str, code: str) -> tuple[Counter, Histogram]:
        """The request counter's and the duration histogram's children for one rpc and status, made once:
        `labels()` hashes and validates its arguments on every call, a measurable share of a GetMetrics."""
        key = (rpc, code)
        found = self._calls.get(key)
        if found is None:
            found = self._calls[key] = (self.requests.labels(rpc, code), self.request_seconds.labels(rpc))
        return found
