"""`source: gcp`: Google Cloud Monitoring through `google-cloud-monitoring` (ListTimeSeries).

Gauges are asked with the ALIGN_MEAN aligner over one step per point and no cross-series reducer, so
the server shrinks the data while the shared rules of grid.py still combine the series; the
cumulative restart counter is read raw (ALIGN_NONE), so resets are handled by those same rules. The
per-pod resource figures are the exception: the server sums each pod's containers (a cross-series
REDUCE_SUM grouped by pod), and CPU usage, a cumulative counter of core-seconds, is asked as a rate
(ALIGN_RATE), which is cores.
Credentials are Application Default Credentials (Workload Identity on GKE) unless a key file is
configured; they are looked up on the first query, so a missing one is SourceUnauthorized, not a
failed start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import google.auth
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exc
from google.cloud import monitoring_v3
from pydantic import BaseModel

from helios.engine.errors import BadQuery, SourceUnauthorized, SourceUnavailable

from .allow import admit_listed
from .grid import RawSeries
from .metrics import MetricQuery
from .query import QueryAdapter

Aligner = Literal["ALIGN_NONE", "ALIGN_MEAN", "ALIGN_MAX", "ALIGN_MIN", "ALIGN_SUM", "ALIGN_DELTA", "ALIGN_RATE"]
Reducer = Literal["REDUCE_NONE", "REDUCE_MEAN", "REDUCE_SUM", "REDUCE_MAX", "REDUCE_MIN"]


@dataclass(frozen=True)
class GcpQuery:
    """A ListTimeSeries filter (a template: $namespace, $instance, $project, $database_id, $redis_instance,
    $cluster and $workload are filled in) and how the server aggregates it."""

    filter: str
    aligner: Aligner = "ALIGN_MEAN"
    reducer: Reducer = "REDUCE_NONE"
    group_by: tuple[str, ...] = ()
    project: str = ""  # empty: the configured project


@dataclass(frozen=True)
class GcpParams:
    """A trigger's own query: `filter`, `aligner`, `reducer`, `groupBy` (comma-separated fields) and an
    optional `project` other than the configured one."""

    filter: str
    aligner: Aligner = "ALIGN_MEAN"
    reducer: Reducer = "REDUCE_NONE"
    group_by: str = ""
    project: str = ""


class GcpSettings(BaseModel):
    """Cloud Monitoring. Credentials: Application Default Credentials (Workload Identity on GKE)."""

    project: str = ""  # the project whose metrics are read (a trigger may name another)
    region: str = ""  # completes Memorystore instance names given without their full ID
    cluster: str = ""  # narrows container metrics to one GKE cluster_name
    endpoint: str = ""  # host:port of a regional or private endpoint; default Cloud Monitoring's
    credentials_file: str = ""  # a service-account key file, instead of ADC
    queries: dict[str, GcpQuery | str] = {}  # a string is a ListTimeSeries filter, aligned by mean
    allowed_projects: list[str] = []  # projects a trigger's `project` may name besides `project`


_K8S = 'metric.type = "kubernetes.io/container/{}" AND resource.type = "k8s_container" ' \
       'AND resource.labels.namespace_name = "$namespace"$cluster$workload'
_SQL = 'metric.type = "cloudsql.googleapis.com/database/{}" AND resource.type = "cloudsql_database" ' \
       'AND resource.labels.database_id = "$database_id"'
_REDIS = 'metric.type = "redis.googleapis.com/{}" AND resource.type = "redis_instance" ' \
         'AND resource.labels.instance_id = "$redis_instance"'

# One pod of one cluster: the k8s_container labels that tell pods apart (the namespace is filtered).
POD_FIELDS = ("resource.labels.location", "resource.labels.cluster_name", "resource.labels.pod_name")


def _per_pod(metric: str, extra: str = "", aligner: Aligner = "ALIGN_MEAN") -> MetricQuery:
    return MetricQuery(GcpQuery(_K8S.format(metric) + extra, aligner, "REDUCE_SUM", POD_FIELDS))


# Utilisations and the hit ratio are already fractions in [0, 1], the units METRIC_RULES use.
STANDARD_QUERIES: dict[str, MetricQuery] = {
    "cpu_utilization": MetricQuery(GcpQuery(_K8S.format("cpu/limit_utilization"))),
    "memory_utilization": MetricQuery(GcpQuery(_K8S.format("memory/limit_utilization")
                                               + ' AND metric.labels.memory_type = "non-evictable"')),
    "memory_bytes": MetricQuery(GcpQuery(_K8S.format("memory/used_bytes")
                                         + ' AND metric.labels.memory_type = "non-evictable"')),
    "restart_count": MetricQuery(GcpQuery(_K8S.format("restart_count"), aligner="ALIGN_NONE")),
    "db_cpu_utilization": MetricQuery(GcpQuery(_SQL.format("cpu/utilization"))),
    "db_memory_utilization": MetricQuery(GcpQuery(_SQL.format("memory/utilization"))),
    "db_connections": MetricQuery(GcpQuery(_SQL.format("postgresql/num_backends"))),
    "db_replication_lag": MetricQuery(GcpQuery(_SQL.format("replication/replica_lag"))),
    "redis_memory_utilization": MetricQuery(GcpQuery(_REDIS.format("stats/memory/usage_ratio"))),
    "redis_connections": MetricQuery(GcpQuery(_REDIS.format("clients/connected"))),
    "redis_hit_rate": MetricQuery(GcpQuery(_REDIS.format("stats/cache_hit_ratio"))),
    # GKE writes these per container; the server sums each pod's containers (REDUCE_SUM grouped by
    # pod), so every series is one pod and the frames' rule then takes the worst pod. core_usage_time
    # is a cumulative count of core-seconds: its ALIGN_RATE (per second) is cores. Requests and
    # limits are cores and bytes already; a pod's limit is the sum of what its containers report.
    "pod_cpu_cores": _per_pod("cpu/core_usage_time", aligner="ALIGN_RATE"),
    "pod_memory_bytes": _per_pod("memory/used_bytes", ' AND metric.labels.memory_type = "non-evictable"'),
    "pod_cpu_request_cores": _per_pod("cpu/request_cores"),
    "pod_cpu_limit_cores": _per_pod("cpu/limit_cores"),
    "pod_memory_request_bytes": _per_pod("memory/request_bytes"),
    "pod_memory_limit_bytes": _per_pod("memory/limit_bytes"),
}


class GcpMonitoringSource(QueryAdapter):
    name: ClassVar[str] = "gcp"
    Params: ClassVar[type] = GcpParams
    Settings: ClassVar[type[BaseModel]] = GcpSettings
    queries = STANDARD_QUERIES

    def __init__(self, *, project: str = "", region: str = "", cluster: str = "", endpoint: str = "",
                 credentials_file: str = "", client: Any = None, allowed_projects: Sequence[str] | None = None,
                 **kwargs: Any) -> None:
        """`client` is a ready MetricServiceClient (tests pass one over a loopback channel); otherwise
        one is built on first use for `endpoint` (default: Cloud Monitoring's own)."""
        super().__init__(**kwargs)
        self.project, self.region, self.cluster = project, region, cluster
        # None admits any project (the CLI tools); [] only `project` (serve's default)
        self.allowed_projects = None if allowed_projects is None else list(allowed_projects)
        self._endpoint, self._credentials_file = endpoint, credentials_file
        self._client = client

    def admit(self, params: GcpParams, namespace: str) -> None:
        if params.project:
            admit_listed(params.project, self.project, self.allowed_projects, "project", "sources.gcp.allowed_projects")

    # -- the one call ----------------------------------------------------------------------------

    def _query_range(self, query: GcpQuery, start: int, end: int, step: int) -> list[RawSeries]:
        project = query.project or self.project
        if not project:
            raise BadQuery("gcp: no project: set sources.gcp.project or the trigger's `project`")
        points: dict[tuple, list[tuple[float, float]]] = {}
        labels: dict[tuple, dict[str, str]] = {}
        # Aligned periods end at the interval's end, so whole steps are asked for up to the last step
        # boundary, and a partial last step (a window ending now) in a second call of its own.
        whole_end = (end + 1) // step * step - 1 if query.aligner != "ALIGN_NONE" else end
        for lo, hi in ((start, whole_end), (max(start, whole_end + 1), end)):
            if lo <= hi:
                self._list(project, query, lo, hi, step, points, labels)
        return [RawSeries.of(labels[k], v) for k, v in points.items()]

    def _list(self, project: str, query: GcpQuery, start: int, end: int, step: int,
              points: dict[tuple, list], labels: dict[tuple, dict[str, str]]) -> None:
        aligned = query.aligner != "ALIGN_NONE"
        request = monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{project}",
            filter=query.filter,
            # Cloud Monitoring intervals are (start, end]: one second earlier keeps a sample at `start`.
            interval={"start_time": _utc(start - 1), "end_time": _utc(end)},
            aggregation={
                "alignment_period": dt.timedelta(seconds=step) if aligned else None,
                "per_series_aligner": query.aligner,
                "cross_series_reducer": query.reducer,
                "group_by_fields": list(query.group_by),
            },
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )
        try:
            # The pager fetches every page; one series may continue on the next page, so merge by identity.
            for ts in self._get_client().list_time_series(request=request, retry=None, timeout=self.retry.timeout):
                key, series_labels = _identity(ts)
                labels[key] = series_labels
                bucket = points.setdefault(key, [])
                for p in ts.points:
                    t = p.interval.end_time.timestamp()
                    # An aligned point summarises (t - step, t] within the interval; the shared grid files a
                    # sample under the step it falls in, so place it at the first second it covers.
                    bucket.append((max(t - step + 1, start) if aligned else t, _number(p.value)))
        except gexc.GoogleAPICallError as e:
            raise _typed(e) from None
        except auth_exc.GoogleAuthError as e:
            raise SourceUnauthorized(f"gcp: credentials: {e}") from None

    def _get_client(self):
        if self._client is None:
            try:
                credentials = None
                if self._credentials_file:
                    credentials, _ = google.auth.load_credentials_from_file(
                        self._credentials_file, scopes=["https://www.googleapis.com/auth/monitoring.read"])
                options = ClientOptions(api_endpoint=self._endpoint) if self._endpoint else None
                self._client = monitoring_v3.MetricServiceClient(credentials=credentials, client_options=options)
            except auth_exc.GoogleAuthError as e:
                raise SourceUnauthorized(f"gcp: no usable credentials (ADC / Workload Identity): {e}") from None
        return self._client

    # -- queries ---------------------------------------------------------------------------------

    def _render(self, template: GcpQuery | str, values: Mapping[str, str]) -> GcpQuery:
        if isinstance(template, str):  # an override from config: just a filter
            template = GcpQuery(template)
        for key, value in values.items():
            if '"' in value or "\\" in value:
                raise BadQuery(f"gcp: {key}={value!r}: quotes and backslashes are not allowed")
        instance = values.get("instance", "")
        fill = {
            **values,
            "project": self.project,
            "database_id": instance if ":" in instance else f"{self.project}:{instance}",
            "redis_instance": instance if "/" in instance
            else f"projects/{self.project}/locations/{self.region}/instances/{instance}",
            "cluster": f' AND resource.labels.cluster_name = "{self.cluster}"' if self.cluster else "",
            "workload": f' AND metadata.system_labels.top_level_controller_name = "{values["workload"]}"'
            if values.get("workload") else "",
        }
        try:
            rendered = string.Template(template.filter).substitute(fill)
        except (KeyError, ValueError) as e:
            raise BadQuery(f"gcp: filter template {template.filter!r}: cannot fill {e}") from None
        return dataclasses.replace(template, filter=rendered)

    def _trigger_query(self, params: GcpParams) -> GcpQuery:
        group_by = tuple(f.strip() for f in params.group_by.split(",") if f.strip())
        return GcpQuery(params.filter, params.aligner, params.reducer, group_by, params.project)


def _identity(ts: monitoring_v3.TimeSeries) -> tuple[tuple, dict[str, str]]:
    labels = {f"metric.{k}": v for k, v in ts.metric.labels.items()}
    labels |= {f"resource.{k}": v for k, v in ts.resource.labels.items()}
    return (ts.metric.type, ts.resource.type, tuple(sorted(labels.items()))), labels


def _number(value: monitoring_v3.TypedValue) -> float:
    kind = monitoring_v3.TypedValue.pb(value).WhichOneof("value")
    if kind in ("double_value", "int64_value"):
        return float(getattr(value, kind))
    if kind == "bool_value":
        return 1.0 if value.bool_value else 0.0
    if kind == "distribution_value":
        return float(value.distribution_value.mean)
    return float("nan")


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _typed(e: gexc.GoogleAPICallError) -> Exception:
    message = f"gcp: {e.code.name if e.code else ''} {e.message}".strip()
    if isinstance(e, gexc.Unauthenticated | gexc.PermissionDenied):
        return SourceUnauthorized(message)
    if isinstance(e, gexc.InvalidArgument | gexc.NotFound | gexc.FailedPrecondition | gexc.OutOfRange):
        return BadQuery(message)
    return SourceUnavailable(message)  # UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, RESOURCE_EXHAUSTED, ...
