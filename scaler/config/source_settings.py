"""The `sources:` configuration section: how the process reaches each metric source.

Triggers name a source and its query; where that source lives and which credentials reach it is the
operator's, configured once here (secrets best through the environment, e.g.
HELIOS_SOURCES__PROMETHEUS__BEARER_TOKEN, or a mounted file). Each subsection's keys, less the shared
retry keys, are the keyword arguments of that source's adapter (see scaler/config/sources.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator, model_validator

from helios.adapters.azure import ARM, AzureQuery
from helios.adapters.cloudwatch import CloudWatchQuery
from helios.adapters.contract import METRIC_RULES, RetryPolicy
from helios.adapters.gcp import GcpQuery

from .durations import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
RETRY_KEYS = ("timeout", "attempts", "backoff_initial", "backoff_max")


class SourceSection(BaseModel):
    """Keys every source has: per-request timeout, retries of outages, gap filling, query overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: Seconds = 5.0  # one request; the whole fetch is bounded by metrics.fetch_timeout
    attempts: int = Field(3, ge=1, le=10)  # tries of a request that failed with an outage
    backoff_initial: Seconds = 0.5  # the first retry waits up to this; doubling, with full jitter
    backoff_max: Seconds = 5.0
    max_gap_steps: int = Field(3, ge=0)  # empty steps filled by interpolation; longer gaps stay missing
    queries: dict[str, str] = {}  # metric key -> the source's native query, replacing the built-in one

    @field_validator("queries")
    @classmethod
    def _known_metrics(cls, queries: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(queries) - set(METRIC_RULES))
        if unknown:
            raise ValueError(f"unknown metric {', '.join(map(repr, unknown))}; allowed: {', '.join(METRIC_RULES)}")
        return queries

    def adapter_kwargs(self, step: float, deadline: float) -> dict[str, Any]:
        """Keyword arguments for the adapter: plain values, secrets revealed, retries as a RetryPolicy."""
        values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self}
        retry = RetryPolicy(deadline=deadline, **{k: values.pop(k) for k in RETRY_KEYS})
        return {**values, "retry": retry, "step": int(step)}


class PrometheusSourceSettings(SourceSection):
    url: str = "http://localhost:9090"
    bearer_token: SecretStr | None = None
    bearer_token_file: str | None = None  # re-read at each query (projected tokens rotate)
    username: str | None = None  # basic auth
    password: SecretStr | None = None
    ca_file: str | None = None  # PEM of the CA that signed the server's certificate
    insecure_skip_verify: bool = False
    resolution: int = Field(60, ge=1)  # seconds between the instants Prometheus evaluates; averaged per step

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


class GcpSourceSettings(SourceSection):
    """Cloud Monitoring. Credentials: Application Default Credentials (Workload Identity on GKE)."""

    project: str = ""  # the project whose metrics are read (a trigger may name another)
    region: str = ""  # completes Memorystore instance names given without their full ID
    cluster: str = ""  # narrows container metrics to one GKE cluster_name
    endpoint: str = ""  # host:port of a regional or private endpoint; default Cloud Monitoring's
    credentials_file: str = ""  # a service-account key file, instead of ADC
    queries: dict[str, GcpQuery | str] = {}  # a string is a ListTimeSeries filter, aligned by mean


class CloudWatchSourceSettings(SourceSection):
    """CloudWatch. Credentials: boto3's default chain (IRSA on EKS, environment, instance profile)."""

    region: str = ""  # default: boto3's (AWS_REGION, the profile)
    endpoint_url: str = ""  # a VPC endpoint or a CloudWatch-compatible server
    cluster: str = ""  # the EKS cluster's ClusterName, needed by Container Insights metrics
    profile: str = ""  # a named profile of the shared AWS config
    queries: dict[str, CloudWatchQuery] = {}


class AzureSourceSettings(SourceSection):
    """Azure Monitor. Credentials: DefaultAzureCredential (workload identity on AKS, managed identity)."""

    subscription_id: str = ""  # with resource_group, completes resources given by name
    resource_group: str = ""
    cluster: str = ""  # the AKS cluster (name or resource ID) whose node metrics make the container frame
    endpoint: str = ARM  # Azure Resource Manager; a sovereign cloud's own
    ca_file: str = ""  # PEM of a CA to trust besides the system's (a proxy, a test server)
    max_series: int = Field(100, ge=1)  # series one split `filter` may return
    queries: dict[str, AzureQuery] = {}


class SourcesSettings(BaseModel):
    """One subsection per configurable source; sources without one are built with no arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prometheus: PrometheusSourceSettings = PrometheusSourceSettings()
    gcp: GcpSourceSettings = GcpSourceSettings()
    cloudwatch: CloudWatchSourceSettings = CloudWatchSourceSettings()
    azure: AzureSourceSettings = AzureSourceSettings()
