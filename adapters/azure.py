"""`source: azure`: Azure Monitor platform metrics through `azure-mgmt-monitor` (the ARM metrics API,
`GET {resourceUri}/providers/Microsoft.Insights/metrics`).

azure-monitor-query 2.x removed its MetricsQueryClient and points to azure-mgmt-monitor's
`metrics.list` for the same per-resource API, which is what this module calls. One request reads one
resource and metric over the window at a time grain that divides the step; a `$filter` such as
`container eq '*'` splits it into one series per dimension value. Percentages are scaled to the
[0, 1] fractions of the shared contract. Credentials are DefaultAzureCredential (workload identity on
AKS, managed identity, environment), looked up on the first query; azure-core's own retries are off,
the contract's apply.

AKS publishes no per-namespace CPU or memory as platform metrics (Container insights' custom metrics
were retired in 2024; namespace series live in Azure Monitor's managed Prometheus, which the
prometheus source reads), so the container frame here describes the configured cluster's nodes, and
there is no resource frame: per-pod usage, requests and limits are not platform metrics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from pydantic import BaseModel, Field

from helios.engine.errors import BadQuery, SourceUnauthorized, SourceUnavailable

from .allow import admit_listed
from .grid import RawSeries
from .metrics import MetricQuery
from .query import QueryAdapter

Aggregation = Literal["Average", "Total", "Maximum", "Minimum", "Count"]
# The time grains Azure Monitor accepts, in seconds (PT1M ... P1D).
GRAINS = (86400, 43200, 21600, 3600, 1800, 900, 300, 60)
ARM = "https://management.azure.com"


@dataclass(frozen=True)
class AzureQuery:
    """One metric of one resource. `resource` is a template ($cluster_id, $database_id, $cache_id).
    With `ratio_of`, the value is metric / (metric + ratio_of): cache hits over hits and misses."""

    resource: str
    metric: str
    aggregation: Aggregation = "Average"
    scale: float = 1.0
    metric_namespace: str = ""
    filter: str = ""
    ratio_of: str = ""


@dataclass(frozen=True)
class AzureParams:
    """A trigger's own query: `resourceUri`, `metric`, `aggregation`, and optionally `metricNamespace`
    and `filter` (Azure's $filter on dimensions)."""

    resource_uri: str
    metric: str
    aggregation: Aggregation = "Average"
    metric_namespace: str = ""
    filter: str = ""


class AzureSettings(BaseModel):
    """Azure Monitor. Credentials: DefaultAzureCredential (workload identity on AKS, managed identity)."""

    subscription_id: str = ""  # with resource_group, completes resources given by name
    resource_group: str = ""
    cluster: str = ""  # the AKS cluster (name or resource ID) whose node metrics make the container frame
    endpoint: str = ARM  # Azure Resource Manager; a sovereign cloud's own
    ca_file: str = ""  # PEM of a CA to trust besides the system's (a proxy, a test server)
    max_series: int = Field(100, ge=1)  # series one split `filter` may return
    queries: dict[str, AzureQuery] = {}
    allowed_subscriptions: list[str] = []  # subscriptions a trigger's resourceUri may name besides subscription_id


def _q(resource: str, metric: str, aggregation: Aggregation = "Average", scale: float = 1.0, **kw) -> MetricQuery:
    return MetricQuery(AzureQuery(resource, metric, aggregation, scale, **kw))


STANDARD_QUERIES: dict[str, MetricQuery] = {
    "cpu_utilization": _q("$cluster_id", "node_cpu_usage_percentage", scale=0.01),
    "memory_utilization": _q("$cluster_id", "node_memory_working_set_percentage", scale=0.01),
    "memory_bytes": _q("$cluster_id", "node_memory_working_set_bytes", "Average"),
    "db_cpu_utilization": _q("$database_id", "cpu_percent", scale=0.01),
    "db_memory_utilization": _q("$database_id", "memory_percent", scale=0.01),
    "db_connections": _q("$database_id", "active_connections"),
    "db_replication_lag": _q("$database_id", "physical_replication_delay_in_seconds", "Maximum"),
    "redis_memory_utilization": _q("$cache_id", "usedmemorypercentage", scale=0.01),
    "redis_connections": _q("$cache_id", "connectedclients", "Maximum"),
    "redis_hit_rate": _q("$cache_id", "cachehits", "Total", ratio_of="cachemisses"),
    # No per-pod resource figures (RESOURCE_METRICS): AKS's platform metrics about pods are status only
    # (kube_pod_status_ready, kube_pod_status_phase); CPU and memory are per node (node_cpu_usage_millicores,
    # node_memory_working_set_bytes), and requests and limits are not published at all. A node's usage is
    # not a pod's, so none is mapped: those columns are NaN (read them with the prometheus source from
    # Azure Monitor's managed Prometheus, or configure `queries` for metrics of your own).
}

_PROVIDERS = {
    "cluster_id": "Microsoft.ContainerService/managedClusters",
    "database_id": "Microsoft.DBforPostgreSQL/flexibleServers",
    "cache_id": "Microsoft.Cache/redis",
}


class AzureMonitorSource(QueryAdapter):
    name: ClassVar[str] = "azure"
    Params: ClassVar[type] = AzureParams
    Settings: ClassVar[type[BaseModel]] = AzureSettings
    queries = STANDARD_QUERIES

    def __init__(self, *, subscription_id: str = "", resource_group: str = "", cluster: str = "",
                 endpoint: str = ARM, ca_file: str = "", credential: Any = None, max_series: int = 100,
                 allowed_subscriptions: Sequence[str] | None = None, **kwargs: Any) -> None:
        """`credential` is any azure-core TokenCredential (default: DefaultAzureCredential); `endpoint`
        the ARM endpoint (a sovereign cloud's, or a local server with `ca_file` trusted)."""
        super().__init__(**kwargs)
        self.subscription_id, self.resource_group, self.cluster = subscription_id, resource_group, cluster
        self.endpoint, self.ca_file, self.max_series = endpoint.rstrip("/"), ca_file, max_series
        self._credential = credential
        self._client = None
        # None admits any subscription (the CLI tools); [] only `subscription_id` (serve's default)
        self.allowed_subscriptions = None if allowed_subscriptions is None else list(allowed_subscriptions)

    def admit(self, params: AzureParams, namespace: str) -> None:
        found = re.match(r"/subscriptions/([^/]+)", params.resource_uri, re.I)
        if found:  # subscription IDs are GUIDs: compared without case
            allowed = None if self.allowed_subscriptions is None else [s.lower() for s in self.allowed_subscriptions]
            admit_listed(found.group(1).lower(), self.subscription_id.lower(), allowed, "resource_uri",
                         "sources.azure.allowed_subscriptions")

    def _get_client(self):
        if self._client is None:
            from azure.mgmt.monitor import MonitorManagementClient

            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            timeout = self.retry.timeout
            self._client = MonitorManagementClient(
                self._credential, self.subscription_id or "00000000-0000-0000-0000-000000000000",
                base_url=self.endpoint, credential_scopes=[f"{ARM}/.default"], retry_total=0,
                connection_timeout=timeout, read_timeout=timeout, connection_verify=self.ca_file or True)
        return self._client

    # -- the call --------------------------------------------------------------------------------

    def _query_range(self, query: AzureQuery, start: int, end: int, step: int) -> list[RawSeries]:
        grain = next((g for g in GRAINS if g <= step and step % g == 0), 60)
        names = [query.metric, query.ratio_of] if query.ratio_of else [query.metric]
        try:
            response = self._get_client().metrics.list(
                query.resource,
                timespan=f"{_iso(start)}/{_iso(end + 1)}",  # the end is exclusive
                interval=f"PT{grain // 60}M" if grain < 3600 else f"PT{grain // 3600}H",
                metricnames=",".join(names),
                aggregation=query.aggregation,
                metricnamespace=query.metric_namespace or None,
                filter=query.filter or None,
                top=self.max_series if query.filter else None,
            )
        except ClientAuthenticationError as e:  # a 401, or no credential could be had
            raise SourceUnauthorized(f"azure: {_message(e)}") from None
        except HttpResponseError as e:
            raise _typed(e) from None
        except (ServiceRequestError, ServiceResponseError) as e:  # refused, reset, timed out
            raise SourceUnavailable(f"azure: {_message(e)}") from None
        except AzureError as e:
            raise SourceUnavailable(f"azure: {_message(e)}") from None
        field = query.aggregation.lower()
        by_metric = {m.name.value.lower(): _series(m, field, query.scale) for m in response.value or []}
        first = by_metric.get(query.metric.lower(), {})
        if not query.ratio_of:
            return [RawSeries.of(dict(k), v) for k, v in first.items()]
        other = by_metric.get(query.ratio_of.lower(), {})
        return [RawSeries.of(dict(k), _ratio(v, other.get(k, []))) for k, v in first.items()]

    # -- queries ---------------------------------------------------------------------------------

    def _render(self, template: AzureQuery, values: Mapping[str, str]) -> AzureQuery:
        instance = values.get("instance", "")
        fill = {
            "cluster_id": self._resource_id(self.cluster, _PROVIDERS["cluster_id"]),
            "database_id": self._resource_id(instance, _PROVIDERS["database_id"]),
            "cache_id": self._resource_id(instance, _PROVIDERS["cache_id"]),
        }
        try:
            resource = string.Template(template.resource).substitute({**values, **fill})
        except (KeyError, ValueError) as e:
            raise BadQuery(f"azure: resource template {template.resource!r}: cannot fill {e}") from None
        if not resource.strip("/") or resource.endswith("/"):
            raise BadQuery(f"azure: {template.metric}: no resource (set sources.azure.cluster, or the instance)")
        return dataclasses.replace(template, resource=resource)

    def _resource_id(self, name: str, provider: str) -> str:
        """A full resource ID as it is, or a bare name in the configured subscription and resource group."""
        if name.startswith("/subscriptions/") or not name:
            return name
        if not (self.subscription_id and self.resource_group):
            return ""
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/{provider}/{name}"

    def _trigger_query(self, params: AzureParams) -> AzureQuery:
        return AzureQuery(params.resource_uri, params.metric, params.aggregation,
                          metric_namespace=params.metric_namespace, filter=params.filter)


def _series(metric, field: str, scale: float) -> dict[tuple, list[tuple[float, float]]]:
    """Each time series of one metric, keyed by its dimension values. A point without the aggregation
    (no data in that grain) is a missing sample."""
    out: dict[tuple, list[tuple[float, float]]] = {}
    for element in metric.timeseries or []:
        key = tuple(sorted((m.name.value, m.value) for m in element.metadatavalues or []))
        points = out.setdefault(key, [])
        for p in element.data or []:
            value = getattr(p, field, None)
            points.append((p.time_stamp.timestamp(), math.nan if value is None else float(value) * scale))
    return out


def _ratio(part: list[tuple[float, float]], rest: list[tuple[float, float]]) -> list[tuple[float, float]]:
    others = dict(rest)
    out = []
    for t, a in part:
        b = others.get(t, math.nan)
        out.append((t, a / (a + b) if a + b > 0 else math.nan))
    return out


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(e: AzureError, limit: int = 600) -> str:
    """One line: a credential chain's reason sits on the lines after its first."""
    text = " ".join(line.strip() for line in str(e.message if getattr(e, "message", None) else e).splitlines())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _typed(e: HttpResponseError) -> Exception:
    status = e.status_code or 0
    message = f"azure: HTTP {status}: {_message(e)}"
    if status in (401, 403):
        return SourceUnauthorized(message)
    if status == 429 or status >= 500:
        return SourceUnavailable(message)
    return BadQuery(message)
