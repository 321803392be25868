"""`source: cloudwatch`: Amazon CloudWatch through boto3 (ListMetrics, then GetMetricData).

A query names a namespace, a metric and dimensions; each CloudWatch metric (one set of dimension
values) matching them is one series. A dimension whose value is `*` must be present with any value,
one series each. When no `*` is asked for and one metric carries exactly the given dimensions (a
Container Insights roll-up, an RDS instance), only that one is read, not the finer ones beside it.
Each series is asked for one statistic per step; CloudWatch's percentages are scaled to the [0, 1]
fractions the shared contract uses, and Container Insights' millicores to cores. Credentials come
from boto3's default chain (IRSA on EKS, environment, instance profile); botocore's own retries are
off, the contract's apply.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from pydantic import BaseModel

from helios.engine.errors import BadQuery, SourceUnauthorized, SourceUnavailable

from .grid import RawSeries
from .metrics import MetricQuery
from .query import QueryAdapter

Stat = Literal["Average", "Sum", "Minimum", "Maximum", "SampleCount", "p50", "p90", "p95", "p99"]
_AUTH_CODES = {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
               "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch", "IncompleteSignature",
               "MissingAuthenticationToken", "AuthFailure", "NotAuthorized"}
_BUSY_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable",
               "InternalServiceError", "InternalFailure", "LimitExceeded"}
_BATCH = 500  # GetMetricData's limit of queries per call


@dataclass(frozen=True)
class CloudWatchQuery:
    namespace: str
    metric: str
    # Values are templates ($namespace, $instance, $cluster); "$workload" is left out and
    # "$workload_or_any" becomes "*" when no workload is asked for.
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: Stat = "Average"
    scale: float = 1.0  # CloudWatch percentages x 0.01 = the contract's fractions; millicores x 0.001 = cores


@dataclass(frozen=True)
class CloudWatchParams:
    """A trigger's own query: `namespace`, `metric`, `dimensions` ("Name=Value,Name2=*") and `stat`."""

    namespace: str
    metric: str
    dimensions: str = ""
    stat: Stat = "Average"


class CloudWatchSettings(BaseModel):
    """CloudWatch. Credentials: boto3's default chain (IRSA on EKS, environment, instance profile)."""

    region: str = ""  # default: boto3's (AWS_REGION, the profile)
    endpoint_url: str = ""  # a VPC endpoint or a CloudWatch-compatible server
    cluster: str = ""  # the EKS cluster's ClusterName, needed by Container Insights metrics
    profile: str = ""  # a named profile of the shared AWS config
    queries: dict[str, CloudWatchQuery] = {}


def _q(namespace: str, metric: str, *dims: tuple[str, str], stat: Stat = "Average", scale: float = 1.0):
    return MetricQuery(CloudWatchQuery(namespace, metric, dims, stat, scale))


_POD = (("ClusterName", "$cluster"), ("Namespace", "$namespace"), ("PodName", "$workload"))
_EACH_POD = (*_POD[:2], ("PodName", "$workload_or_any"), ("FullPodName", "*"))
_RDS = (("DBInstanceIdentifier", "$instance"),)
_CACHE = (("CacheClusterId", "$instance"),)

# Container Insights publishes roll-ups per namespace and per workload (its PodName dimension is the
# workload's name) of utilisation and the working set (their Average is the mean per pod: there is no
# namespace total), and restarts per workload only, so a namespace's restarts add up its workloads'.
# RDS publishes free memory but not its total, so db_memory_utilization has no default query.
STANDARD_QUERIES: dict[str, MetricQuery] = {
    "cpu_utilization": _q("ContainerInsights", "pod_cpu_utilization", *_POD, scale=0.01),
    "memory_utilization": _q("ContainerInsights", "pod_memory_utilization", *_POD, scale=0.01),
    "memory_bytes": _q("ContainerInsights", "pod_memory_working_set", *_POD),
    "restart_count": _q("ContainerInsights", "pod_number_of_container_restarts", *_POD[:2],
                        ("PodName", "$workload_or_any"), stat="Maximum"),
    "db_cpu_utilization": _q("AWS/RDS", "CPUUtilization", *_RDS, scale=0.01),
    "db_connections": _q("AWS/RDS", "DatabaseConnections", *_RDS),
    "db_replication_lag": _q("AWS/RDS", "ReplicaLag", *_RDS),
    "redis_memory_utilization": _q("AWS/ElastiCache", "DatabaseMemoryUsagePercentage", *_CACHE, scale=0.01),
    "redis_connections": _q("AWS/ElastiCache", "CurrConnections", *_CACHE),
    "redis_hit_rate": _q("AWS/ElastiCache", "CacheHitRate", *_CACHE, scale=0.01),
    # Per pod: Container Insights with enhanced observability publishes these with a FullPodName
    # dimension, the pod itself (usage and working set since CloudWatch agent 1.300045.0), so each
    # series is one pod of the workload (or of the namespace) and the frames' rule takes the worst.
    # CPU is in millicores, memory in bytes. A pod with a container that has no CPU (memory) limit
    # publishes no pod_cpu_limit (pod_memory_limit): that column is then NaN.
    "pod_cpu_cores": _q("ContainerInsights", "pod_cpu_usage_total", *_EACH_POD, scale=0.001),
    "pod_memory_bytes": _q("ContainerInsights", "pod_memory_working_set", *_EACH_POD),
    "pod_cpu_request_cores": _q("ContainerInsights", "pod_cpu_request", *_EACH_POD, scale=0.001),
    "pod_cpu_limit_cores": _q("ContainerInsights", "pod_cpu_limit", *_EACH_POD, scale=0.001),
    "pod_memory_request_bytes": _q("ContainerInsights", "pod_memory_request", *_EACH_POD),
    "pod_memory_limit_bytes": _q("ContainerInsights", "pod_memory_limit", *_EACH_POD),
}


class CloudWatchSource(QueryAdapter):
    name: ClassVar[str] = "cloudwatch"
    Params: ClassVar[type] = CloudWatchParams
    Settings: ClassVar[type[BaseModel]] = CloudWatchSettings
    queries = STANDARD_QUERIES

    def __init__(self, *, region: str = "", endpoint_url: str = "", cluster: str = "", profile: str = "",
                 client: Any = None, **kwargs: Any) -> None:
        """`client` is a ready boto3 CloudWatch client; otherwise one is made on first use."""
        super().__init__(**kwargs)
        self.region, self.endpoint_url, self.cluster, self.profile = region, endpoint_url, cluster, profile
        self._client = client

    def _get_client(self):
        if self._client is None:
            timeout = self.retry.timeout
            config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
            session = boto3.session.Session(profile_name=self.profile or None)
            self._client = session.client("cloudwatch", region_name=self.region or None,
                                          endpoint_url=self.endpoint_url or None, config=config)
        return self._client

    # -- the calls -------------------------------------------------------------------------------

    def _query_range(self, query: CloudWatchQuery, start: int, end: int, step: int) -> list[RawSeries]:
        try:
            metrics = self._matching_metrics(query)
            return self._metric_data(query, metrics, start, end, step)
        except ClientError as e:
            raise _typed(e) from None
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise SourceUnauthorized(f"cloudwatch: {e}") from None
        except (ParamValidationError, NoRegionError) as e:
            raise BadQuery(f"cloudwatch: {e}") from None
        except (HTTPClientError, BotoCoreError) as e:  # connection refused, timeouts, closed connections
            raise SourceUnavailable(f"cloudwatch: {e}") from None

    def _matching_metrics(self, query: CloudWatchQuery) -> list[list[dict[str, str]]]:
        fixed = [{"Name": k, "Value": v} for k, v in query.dimensions if v != "*"]
        anything = {k for k, v in query.dimensions if v == "*"}
        found: dict[frozenset, list[dict[str, str]]] = {}  # a server may list one metric more than once
        pages = self._get_client().get_paginator("list_metrics").paginate(
            Namespace=query.namespace, MetricName=query.metric, Dimensions=fixed)
        for page in pages:
            for metric in page["Metrics"]:
                dims = metric.get("Dimensions", [])
                if anything <= {d["Name"] for d in dims}:
                    found.setdefault(frozenset((d["Name"], d["Value"]) for d in dims), dims)
        if not anything:
            exact = [dims for dims in found.values() if len(dims) == len(fixed)]
            if exact:
                return exact[:1]
        return list(found.values())

    def _metric_data(self, query: CloudWatchQuery, metrics: list[list[dict[str, str]]], start: int, end: int,
                     step: int) -> list[RawSeries]:
        out = []
        paginator = self._get_client().get_paginator("get_metric_data")
        for first in range(0, len(metrics), _BATCH):
            batch = metrics[first : first + _BATCH]
            points: dict[str, list[tuple[float, float]]] = {f"m{i}": [] for i in range(len(batch))}
            pages = paginator.paginate(
                MetricDataQueries=[
                    {"Id": f"m{i}", "ReturnData": True, "MetricStat": {
                        "Metric": {"Namespace": query.namespace, "MetricName": query.metric, "Dimensions": dims},
                        "Period": step, "Stat": query.stat}}
                    for i, dims in enumerate(batch)
                ],
                StartTime=_utc(start), EndTime=_utc(end + 1),  # EndTime is exclusive
                ScanBy="TimestampAscending",
            )
            for page in pages:  # NextToken: one metric's points may continue on the next page
                for result in page["MetricDataResults"]:
                    if result.get("StatusCode") in ("Forbidden", "InternalError"):
                        raise _result_error(result)
                    points[result["Id"]] += [(t.timestamp(), v * query.scale)
                                             for t, v in zip(result["Timestamps"], result["Values"], strict=True)]
            out += [RawSeries.of({d["Name"]: d["Value"] for d in dims}, points[f"m{i}"]) for i, dims in
                    enumerate(batch)]
        return out

    # -- queries ---------------------------------------------------------------------------------

    def _render(self, template: CloudWatchQuery, values: Mapping[str, str]) -> CloudWatchQuery:
        workload = values.get("workload", "")
        fill = {**values, "cluster": self.cluster, "workload_or_any": workload}
        dims = []
        for name, value in template.dimensions:
            if not workload and value == "$workload":
                continue  # the namespace roll-up
            if not workload and value == "$workload_or_any":
                value = "*"  # every workload, one series each
            try:
                rendered = string.Template(value).substitute(fill)
            except (KeyError, ValueError) as e:
                raise BadQuery(f"cloudwatch: dimension {name}={value!r}: cannot fill {e}") from None
            if not rendered and name == "ClusterName":
                raise BadQuery("cloudwatch: Container Insights metrics need sources.cloudwatch.cluster")
            if not rendered:
                raise BadQuery(f"cloudwatch: dimension {name} is empty")
            dims.append((name, rendered))
        return CloudWatchQuery(template.namespace, template.metric, tuple(dims), template.stat, template.scale)

    def _trigger_query(self, params: CloudWatchParams) -> CloudWatchQuery:
        return CloudWatchQuery(params.namespace, params.metric, parse_dimensions(params.dimensions), params.stat)


def parse_dimensions(text: str) -> tuple[tuple[str, str], ...]:
    """`Name=Value,Name2=*` -> (("Name", "Value"), ("Name2", "*")); BadQuery names a malformed pair."""
    dims = []
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise BadQuery(f"dimensions={text!r}: {pair!r} is not Name=Value (Value may be *)")
        dims.append((name.strip(), value.strip()))
    return tuple(dims)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _typed(e: ClientError) -> Exception:
    error = e.response.get("Error", {})
    code = error.get("Code", "")
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    message = f"cloudwatch: {code}: {error.get('Message', '')}"
    if code in _AUTH_CODES or status in (401, 403):
        return SourceUnauthorized(message)
    if code in _BUSY_CODES or status >= 500 or status == 429:
        return SourceUnavailable(message)
    return BadQuery(message)


def _result_error(result: dict) -> Exception:
    text = "; ".join(m.get("Value", "") for m in result.get("Messages", [])) or result["StatusCode"]
    message = f"cloudwatch: {result['Id']}: {text}"
    return SourceUnauthorized(message) if result["StatusCode"] == "Forbidden" else SourceUnavailable(message)
