"""`source: prometheus`: PromQL range queries through prometheus-api-client.

A trigger sets `query` (PromQL that returns one series) and optionally `serverAddress` (another
Prometheus than the configured one). The standard metrics read cAdvisor, kube-state-metrics,
postgres_exporter and redis_exporter series under their usual names (DEFAULT_QUERIES), each
overridable from config. Credentials (bearer token, basic auth) are sent only to the configured
server: a trigger naming another `serverAddress` cannot collect Helios's token.

Prometheus evaluates a range query at instants `resolution` apart (default 60 s); the shared grid
rules (grid.py) then average those instants into each step, so a step's value is the mean over its
minutes, not the one instant at its start.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any, ClassVar, NamedTuple

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from urllib3.util.retry import Retry

from helios.engine.errors import BadQuery, SourceUnauthorized, SourceUnavailable

from .allow import Refused, Resolver, admit_server, require_namespace, system_resolver
from .grid import RawSeries
from .metrics import MetricQuery
from .query import QueryAdapter

MAX_POINTS = 11_000  # Prometheus refuses a range query of more points per series than this

_WORKLOAD = 'namespace="$namespace", pod=~"$pod"'
_INSTANCE = 'pod=~"$instance_pod"'


def _cpu(pods: str) -> str:
    containers = f'{pods}, container!="", container!="POD"'  # "" and POD: cAdvisor's pod-level sums
    return (f"sum(rate(container_cpu_usage_seconds_total{{{containers}}}[5m]))"
            f' / sum(kube_pod_container_resource_limits{{{pods}, resource="cpu"}})')


def _memory(pods: str, per_limit: bool) -> str:
    used = f'sum(container_memory_working_set_bytes{{{pods}, container!="", container!="POD"}})'
    return f'{used} / sum(kube_pod_container_resource_limits{{{pods}, resource="memory"}})' if per_limit else used


def _per_pod(metric: str, selector: str) -> str:
    """One series per pod: its containers summed (the frames' rule then takes the worst pod)."""
    return f"sum by (pod) ({metric}{{{_WORKLOAD}, {selector}}})"


def _redis_rate(name: str) -> str:
    return f"sum(rate({name}{{{_INSTANCE}}}[5m]))"


# $namespace, $workload and $instance are the values as PromQL string contents; $pod matches the pods
# of $workload (`<workload>-...`, or every pod when no workload is given), $instance_pod those of a
# database or cache instance run as a StatefulSet or Deployment of that name (exporters as sidecars).
DEFAULT_QUERIES: dict[str, MetricQuery] = {
    "cpu_utilization": MetricQuery(_cpu(_WORKLOAD)),
    "memory_utilization": MetricQuery(_memory(_WORKLOAD, per_limit=True)),
    "memory_bytes": MetricQuery(_memory(_WORKLOAD, per_limit=False)),
    # Per container, not summed in PromQL: a summed counter would show a reset whenever a pod goes away.
    "restart_count": MetricQuery(f"kube_pod_container_status_restarts_total{{{_WORKLOAD}}}"),
    "db_cpu_utilization": MetricQuery(_cpu(_INSTANCE)),
    "db_memory_utilization": MetricQuery(_memory(_INSTANCE, per_limit=True)),
    "db_connections": MetricQuery(f"sum(pg_stat_activity_count{{{_INSTANCE}}})"),
    "db_replication_lag": MetricQuery(f"max(pg_replication_lag_seconds{{{_INSTANCE}}})"),
    "redis_memory_utilization": MetricQuery(
        f"sum(redis_memory_used_bytes{{{_INSTANCE}}}) / sum(redis_memory_max_bytes{{{_INSTANCE}}} > 0)"),
    "redis_connections": MetricQuery(f"sum(redis_connected_clients{{{_INSTANCE}}})"),
    "redis_hit_rate": MetricQuery(
        f"{_redis_rate('redis_keyspace_hits_total')}"
        f" / ({_redis_rate('redis_keyspace_hits_total')} + {_redis_rate('redis_keyspace_misses_total')})"),
    # cAdvisor and kube-state-metrics, per pod. Requests and limits carry kube-state-metrics' `unit`
    # label (core, byte); only the `resource` label is matched, so older versions without it work too.
    "pod_cpu_cores": MetricQuery(
        f'sum by (pod) (rate(container_cpu_usage_seconds_total{{{_WORKLOAD}, container!="", container!="POD"}}[5m]))'),
    "pod_memory_bytes": MetricQuery(_per_pod("container_memory_working_set_bytes", 'container!="", container!="POD"')),
    "pod_cpu_request_cores": MetricQuery(_per_pod("kube_pod_container_resource_requests", 'resource="cpu"')),
    "pod_cpu_limit_cores": MetricQuery(_per_pod("kube_pod_container_resource_limits", 'resource="cpu"')),
    "pod_memory_request_bytes": MetricQuery(_per_pod("kube_pod_container_resource_requests", 'resource="memory"')),
    "pod_memory_limit_bytes": MetricQuery(_per_pod("kube_pod_container_resource_limits", 'resource="memory"')),
}


@dataclass(frozen=True)
class PrometheusParams:
    query: str
    server_address: str | None = None  # default: the configured sources.prometheus.url


class PrometheusSettings(BaseModel):
    """The Prometheus server Helios reads and how it authenticates."""

    url: str = "http://localhost:9090"
    bearer_token: SecretStr | None = None
    bearer_token_file: str | None = None  # re-read at each query (projected tokens rotate)
    username: str | None = None  # basic auth
    password: SecretStr | None = None
    ca_file: str | None = None  # PEM of the CA that signed the server's certificate
    insecure_skip_verify: bool = False
    resolution: int = Field(60, ge=1)  # seconds between the instants Prometheus evaluates; averaged per step
    # Servers a trigger's serverAddress may name besides `url`: URLs (a server, or a path below it) or
    # host patterns (`*.monitoring.svc`). None listed: only `url`. Never with Helios's credentials.
    allowed_servers: list[str] = []
    # When set, e.g. `namespace`: every selector of a trigger's query must match <label>="<the
    # ScaledObject's namespace>", so one tenant's trigger cannot read another's series.
    namespace_label: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL of the Prometheus server")
        return url

    @model_validator(mode="after")
    def _one_kind_of_auth(self):
        if (self.bearer_token or self.bearer_token_file) and self.username:
            raise ValueError("set either bearer_token / bearer_token_file or username / password, not both")
        if self.password and not self.username:
            raise ValueError("password needs a username")
        return self


class PromQuery(NamedTuple):
    expr: str
    server: str | None = None  # None: the configured server, with its credentials


class PrometheusSource(QueryAdapter):
    name: ClassVar[str] = "prometheus"
    Params: ClassVar[type] = PrometheusParams
    Settings: ClassVar[type[BaseModel]] = PrometheusSettings
    queries = DEFAULT_QUERIES

    def __init__(self, url: str = "http://localhost:9090", *, bearer_token: str | None = None,
                 bearer_token_file: str | None = None, username: str | None = None, password: str | None = None,
                 ca_file: str | None = None, insecure_skip_verify: bool = False, resolution: int = 60,
                 allowed_servers: Sequence[str] | None = None, namespace_label: str | None = None,
                 resolve: Resolver = system_resolver, **contract: Any) -> None:
        """`allowed_servers` None admits any server a trigger names (the CLI tools); [] only `url`.
        `resolve` looks hosts up for the link-local check (tests stub it)."""
        super().__init__(**contract)
        self.allowed_servers = None if allowed_servers is None else list(allowed_servers)
        self.namespace_label = namespace_label
        self._resolve = resolve
        if bearer_token and username:
            raise ValueError("set either a bearer token or basic auth (username/password), not both")
        self.url = url.rstrip("/")
        self.resolution = int(resolution)
        self._token, self._token_file = bearer_token, bearer_token_file
        self._auth = (username, password or "") if username else None
        self._verify: bool | str = False if insecure_skip_verify else (ca_file or True)
        self._clients: dict[str, PrometheusConnect] = {}

    # --- the contract's hooks -----------------------------------------------------------------

    def _render(self, template: Any, values: Mapping[str, str]) -> PromQuery:
        workload, instance = values.get("workload", ""), values.get("instance", "")
        variables = {
            "namespace": promql_string(values.get("namespace", "")),
            "workload": promql_string(workload),
            "instance": promql_string(instance),
            "pod": promql_string(re.escape(workload) + "-.+" if workload else ".+"),
            "instance_pod": promql_string(re.escape(instance) + "(-.+)?"),
        }
        return PromQuery(Template(template).substitute(variables))  # `$`: PromQL's own {} stay as they are

    def admit(self, params: PrometheusParams, namespace: str) -> None:
        if params.server_address:
            admit_server(params.server_address, self.url, self.allowed_servers, self._resolve)
        if self.namespace_label:
            require_namespace(params.query, self.namespace_label, namespace)

    def _trigger_query(self, params: PrometheusParams) -> PromQuery:
        server = params.server_address.rstrip("/") if params.server_address else None
        return PromQuery(params.query, None if server == self.url else server)

    def _query_range(self, query: Any, start: int, end: int, step: int) -> list[RawSeries]:
        if not isinstance(query, PromQuery):
            query = PromQuery(str(query))
        server = query.server or self.url
        if query.server:  # again before connecting: what the name resolves to may have changed
            try:
                admit_server(query.server, self.url, self.allowed_servers, self._resolve)
            except Refused as e:
                raise BadQuery(f"serverAddress {query.server}: {e.reason}") from None
        resolution = self._resolution(start, end, step)
        try:
            result = self._client(query.server).custom_query_range(
                query.expr, _utc(start), _utc(end), str(resolution), timeout=self.retry.timeout)
        except PrometheusApiClientException as e:
            raise _http_error(server, str(e)) from None
        except requests.exceptions.SSLError as e:
            raise SourceUnauthorized(f"{server}: TLS verification failed ({_reason(e)}); "
                                     "set sources.prometheus.ca_file to the CA that signed its certificate") from None
        except requests.exceptions.TooManyRedirects:
            raise BadQuery(f"{server}: answered with a redirect; Helios follows none (name the server's own "
                           "address)") from None
        except requests.exceptions.Timeout:
            raise SourceUnavailable(f"{server}: no answer within {self.retry.timeout:g}s") from None
        except requests.exceptions.ConnectionError as e:
            raise SourceUnavailable(f"{server}: cannot connect ({_reason(e)})") from None
        except requests.exceptions.RequestException as e:
            raise SourceUnavailable(f"{server}: {e.__class__.__name__}: {_reason(e)}") from None
        except ValueError as e:  # a body that is not Prometheus JSON (a proxy's error page)
            raise SourceUnavailable(f"{server}: not a Prometheus API answer ({e})") from None
        return [_raw(item) for item in result]

    # --- connections ----------------------------------------------------------------------------

    def _resolution(self, start: int, end: int, step: int) -> int:
        """The configured resolution, or coarser when the window would exceed Prometheus' point limit.
        Always a divisor of the step, so the instants fall on the grid and each step holds as many."""
        needed = max(self.resolution, math.ceil((end - start) / (MAX_POINTS - 1)) if end > start else 1)
        return next(d for d in range(max(1, min(needed, step)), step + 1) if step % d == 0)

    def _client(self, server: str | None) -> PrometheusConnect:
        key = server or ""
        client = self._clients.get(key)
        if client is None:
            url, auth = server or self.url, None if server else self._auth
            session = requests.Session()
            session.max_redirects = 0  # a redirect could lead anywhere, the allow-lists bypassed
            # What requests reads from the environment at every request (proxies, a CA bundle, ~/.netrc), read
            # once per server: at every request they were 13-15 % of a query's CPU (RESULTS.md, issue 17).
            found = session.merge_environment_settings(url, {}, None, self._verify, None)
            session.proxies, session.verify = found["proxies"], found["verify"]
            session.auth = None if auth else requests.utils.get_netrc_auth(url)
            session.trust_env = False
            # Retries are the contract's (tenacity, outages only); the client's own would multiply them.
            # read=False lets a read timeout surface as one, not as a connection error.
            client = PrometheusConnect(url=url, session=session, retry=Retry(total=0, read=False), auth=auth,
                                       timeout=self.retry.timeout)
            self._clients[key] = client
        if server is None:
            client.headers = self._headers()
        return client

    def _headers(self) -> dict[str, str] | None:
        token = self._token
        if self._token_file:  # re-read each time: projected service-account tokens rotate
            try:
                token = Path(self._token_file).read_text().strip()
            except OSError as e:
                raise SourceUnauthorized(f"bearer token file {self._token_file}: {e.strerror}") from None
        return {"Authorization": f"Bearer {token}"} if token else None


def promql_string(value: str) -> str:
    """`value` as the contents of a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _raw(item: Mapping[str, Any]) -> RawSeries:
    labels = {k: v for k, v in item.get("metric", {}).items()}
    return RawSeries.of(labels, ((float(t), float(v)) for t, v in item.get("values", [])))


_STATUS = re.compile(r"HTTP Status Code (\d+) \((.*)\)$", re.S)
_ERROR = re.compile(r'"error"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _http_error(server: str, message: str) -> Exception:
    """The typed error for prometheus-api-client's non-200 exception (it keeps only code and body)."""
    found = _STATUS.search(message)
    code = int(found.group(1)) if found else 0
    body = found.group(2) if found else message
    detail = _ERROR.search(body)
    reason = detail.group(1).encode().decode("unicode_escape") if detail else body[:200]
    if code in (401, 403):
        return SourceUnauthorized(f"{server}: HTTP {code}: the server refused the credentials")
    if code in (400, 422):  # bad_data (parse errors), execution errors (too many points, bad matching)
        return BadQuery(f"{server}: {reason}")
    if code in (404, 405):
        return BadQuery(f"{server}: HTTP {code}: no Prometheus query API at this address")
    return SourceUnavailable(f"{server}: HTTP {code}: {reason}")


def _reason(e: Exception) -> str:
    text = str(e)
    found = re.search(r"\[Errno -?\d+\] ([^')\]]+)|(certificate verify failed[^')\]]*)|(Read timed out)", text)
    return next(g for g in found.groups() if g) if found else text[:200]


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
