"""The azure source: the real azure-mgmt-monitor client over HTTPS against a loopback ARM metrics server."""

from __future__ import annotations

import math
import socket
import time

import numpy as np
import pytest
from azure.core.credentials import AccessToken

from helios.adapters.azure import AzureMonitorSource, AzureParams, AzureQuery
from helios.adapters.metrics import RESOURCE_METRICS
from helios.adapters.retry import RetryPolicy
from helios.engine.errors import BadQuery, NoData, SourceUnauthorized, SourceUnavailable
from helios.engine.models import MODELS
from helios.scaler.config.metadata import InvalidMetadata, MetadataParser
from helios.scaler.config.settings import ConfigError, load_settings
from helios.scaler.config.sources import build_sources

from .contract import ABSENT, RESTARTS, STEP, AdapterContract, ContractTarget, canonical_samples, recent_origin
from .servers.azure_metrics import TOKEN, AzureMetricsServer
from .servers.ramp import Ramp, served_forecast

FAST = RetryPolicy(timeout=3, attempts=2, backoff_initial=0.01, backoff_max=0.02, deadline=10)
SUB, RG = "0b1f6471-1bf0-4dda-aec3-cb9272f09590", "shop-rg"
CONTRACT_RESOURCE = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Insights/components/contract"
SPLIT = {"helios_contract_load": "job", "helios_contract_restarts_total": "container",
         "helios_contract_connections": "instance"}  # the dimension each canonical metric's series differ by


class StaticToken:
    """A TokenCredential that hands out one fixed bearer token, and counts the scopes it was asked for."""

    def __init__(self, token: str = TOKEN):
        self.token, self.scopes = token, []

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def split_filter(metric: str) -> str:
    return f"{SPLIT[metric]} eq '*'" if metric in SPLIT else ""


@pytest.fixture(scope="module")
def canonical_server(tmp_path_factory):
    server = AzureMetricsServer(tmp_path_factory.mktemp("azure-tls")).start()
    server.origin = recent_origin()
    for metric, labels, ts, value in canonical_samples(server.origin):
        if not math.isnan(value):  # Azure Monitor stores numbers only: a writer leaves a failed read out
            server.add(CONTRACT_RESOURCE, metric, [(ts, value)], labels)
    server.add(CONTRACT_RESOURCE, ABSENT, [])  # a metric the resource defines, without data
    yield server
    server.stop()


def source_for(server: AzureMetricsServer, **kwargs) -> AzureMonitorSource:
    kwargs.setdefault("credential", StaticToken())
    return AzureMonitorSource(endpoint=server.url, ca_file=server.ca_file, retry=FAST, **kwargs)


@pytest.fixture(scope="module")
def contract(canonical_server):
    return ContractTarget(
        adapter=source_for(canonical_server),
        origin=canonical_server.origin,
        params_for=lambda metric: AzureParams(CONTRACT_RESOURCE, metric, filter=split_filter(metric)),
        query_for=lambda metric: AzureQuery(CONTRACT_RESOURCE, metric, "Maximum" if metric == RESTARTS else "Average",
                                            filter=split_filter(metric)),
    )


class TestAzureContract(AdapterContract):
    pass


@pytest.fixture
def server(tmp_path):
    s = AzureMetricsServer(tmp_path).start()
    yield s
    s.stop()


def resource(provider: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{provider}/{name}"


def test_database_frame_asks_arm_for_each_metric_of_the_named_server(server):
    t0 = recent_origin()
    db = resource("Microsoft.DBforPostgreSQL/flexibleServers", "orders")
    minutes = [t0 + s for s in range(0, 1800, 60)]
    for metric, value in [("cpu_percent", 30), ("memory_percent", 45), ("active_connections", 25)]:
        server.add(db, metric, [(t, value) for t in minutes])
    server.add(db, "physical_replication_delay_in_seconds", [(t, (t - t0) % 300) for t in minutes])
    credential = StaticToken()
    source = source_for(server, subscription_id=SUB, resource_group=RG, credential=credential)
    end = t0 + 1800 - 1

    frame = source.fetch_database_metrics("orders", hours=0.5, end=end)

    assert [r.path for r in server.requests] == [f"{db}/providers/Microsoft.Insights/metrics"] * 4
    first = server.requests[0]
    assert first.authorization == f"Bearer {TOKEN}"
    assert credential.scopes[0] == ("https://management.azure.com/.default",)
    start_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))
    end_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end + 1))
    assert first.query == {"timespan": f"{start_iso}/{end_iso}", "interval": "PT5M", "metricnames": "cpu_percent",
                           "aggregation": "Average", "api-version": "2024-02-01"}
    assert [r.query["aggregation"] for r in server.requests] == ["Average", "Average", "Average", "Maximum"]
    np.testing.assert_allclose(frame["db_cpu_utilization"], 0.30)  # percent -> fraction
    np.testing.assert_allclose(frame["db_memory_utilization"], 0.45)
    assert frame["db_connections"].tolist() == [25] * 6
    assert frame["db_replication_lag"].tolist() == [240] * 6  # the worst of each step's 0, 60, ... 240


def test_cache_hit_rate_is_hits_over_hits_and_misses_of_each_step(server):
    t0 = recent_origin()
    cache = resource("Microsoft.Cache/redis", "sessions")
    minutes = [t0 + s for s in range(0, 900, 60)]
    server.add(cache, "usedmemorypercentage", [(t, 70) for t in minutes])
    server.add(cache, "connectedclients", [(t, 11) for t in minutes])
    server.add(cache, "cachehits", [(t, 90) for t in minutes])
    server.add(cache, "cachemisses", [(t, 10 * (1 + (t - t0) // 300)) for t in minutes])
    source = source_for(server, subscription_id=SUB, resource_group=RG)

    frame = source.fetch_cache_metrics(cache, hours=0.25, end=t0 + 900 - 1)  # a full resource ID works too

    hit_request = server.requests[-1]
    assert hit_request.query["metricnames"] == "cachehits,cachemisses"
    assert hit_request.query["aggregation"] == "Total"
    np.testing.assert_allclose(frame["redis_hit_rate"], [450 / 500, 450 / 550, 450 / 600])
    np.testing.assert_allclose(frame["redis_memory_utilization"], 0.7)
    assert frame["redis_connections"].tolist() == [11] * 3


def test_container_frame_reads_the_configured_clusters_node_metrics(server):
    t0 = recent_origin()
    aks = resource("Microsoft.ContainerService/managedClusters", "prod")
    minutes = [t0 + s for s in range(0, 900, 60)]
    server.add(aks, "node_cpu_usage_percentage", [(t, 60) for t in minutes])
    server.add(aks, "node_memory_working_set_percentage", [(t, 50) for t in minutes])
    server.add(aks, "node_memory_working_set_bytes", [(t, 3e9) for t in minutes])
    source = source_for(server, subscription_id=SUB, resource_group=RG, cluster="prod")

    frame = source.fetch_container_metrics("shop", hours=0.25, end=t0 + 900 - 1)

    assert {r.path for r in server.requests} == {f"{aks}/providers/Microsoft.Insights/metrics"}
    np.testing.assert_allclose(frame["cpu_utilization"], 0.6)
    np.testing.assert_allclose(frame["memory_utilization"], 0.5)
    np.testing.assert_allclose(frame["memory_bytes"], 3e9)
    assert frame["restart_count"].isna().all()  # AKS publishes no restart counter as a platform metric


MIB = 1 << 20


def test_resource_frame_has_no_default_queries_since_aks_publishes_no_per_pod_figures(server):
    t0 = recent_origin()
    aks = resource("Microsoft.ContainerService/managedClusters", "prod")
    for metric, value in [("node_cpu_usage_millicores", 1500), ("node_memory_working_set_bytes", 3e9)]:
        server.add(aks, metric, [(t0 + s, value) for s in range(0, 900, 60)], {"node": "aks-nodepool1-0"})
    source = source_for(server, subscription_id=SUB, resource_group=RG, cluster="prod")

    assert not set(RESOURCE_METRICS) & set(source.queries)  # a node's usage is not a pod's: nothing mapped
    with pytest.raises(NoData, match="none of pod_cpu_cores, pod_memory_bytes, .*pod_memory_limit_bytes"):
        source.fetch_resource_metrics("shop", hours=0.25, end=t0 + 900 - 1, workload="web")
    assert server.requests == []  # nothing is asked for


def test_a_configured_resource_query_is_read_per_pod_and_the_keys_azure_lacks_are_nan(server):
    """`queries` can point a key at a metric of the user's own (here a custom metric split by pod);
    its series combine by the key's rule, and every key left unmapped is an all-NaN column."""
    t0 = recent_origin()
    aks = resource("Microsoft.ContainerService/managedClusters", "prod")
    minutes = [t0 + s for s in range(0, 900, 60)]
    for metric, pods in [("pod_working_set_bytes", {"web-1": 320 * MIB, "web-2": 470 * MIB}),
                         ("pod_memory_limit_bytes", {"web-1": 1088 * MIB, "web-2": 576 * MIB})]:
        for pod, value in pods.items():
            server.add(aks, metric, [(t, value) for t in minutes], {"pod": pod})
    queries = {key: AzureQuery("$cluster_id", metric, metric_namespace="custom/pods", filter="pod eq '*'")
               for key, metric in [("pod_memory_bytes", "pod_working_set_bytes"),
                                   ("pod_memory_limit_bytes", "pod_memory_limit_bytes")]}
    source = source_for(server, subscription_id=SUB, resource_group=RG, cluster="prod", queries=queries)

    frame = source.fetch_resource_metrics("shop", hours=0.25, end=t0 + 900 - 1, workload="web")

    assert [(r.query["metricnames"], r.query["$filter"], r.query["metricnamespace"]) for r in server.requests] == [
        ("pod_working_set_bytes", "pod eq '*'", "custom/pods"), ("pod_memory_limit_bytes", "pod eq '*'", "custom/pods")]
    assert list(frame.columns) == list(RESOURCE_METRICS) and len(frame) == 3
    assert frame["pod_memory_bytes"].tolist() == [470 * MIB] * 3  # the larger pod
    assert frame["pod_memory_limit_bytes"].tolist() == [576 * MIB] * 3  # the smaller limit
    for key in ("pod_cpu_cores", "pod_cpu_request_cores", "pod_cpu_limit_cores", "pod_memory_request_bytes"):
        assert frame[key].isna().all(), key


def test_a_trigger_query_sends_its_filter_namespace_and_a_series_limit(server):
    t0 = recent_origin()
    app = resource("Microsoft.Web/sites", "shop")
    server.add(app, "Requests", [(t0 + s, 5) for s in range(0, 600, 60)], {"Instance": "a"})
    server.add(app, "Requests", [(t0 + s, 7) for s in range(0, 600, 60)], {"Instance": "b"})
    source = source_for(server)

    s = source.fetch(AzureParams(app, "Requests", "Total", "Microsoft.Web/sites", "Instance eq 'b'"), t0,
                     t0 + 600 - 1, STEP)

    query = server.requests[0].query
    assert query["$filter"] == "Instance eq 'b'" and query["metricnamespace"] == "Microsoft.Web/sites"
    assert query["top"] == "100"
    assert s.values.tolist() == [35, 35]  # instance b only, five samples a step
    with pytest.raises(BadQuery, match="returned 2 series"):
        source.fetch(AzureParams(app, "Requests", "Total", filter="Instance eq '*'"), t0, t0 + 599, STEP)


def test_a_standard_metric_without_a_resource_is_a_bad_query_naming_the_setting(server):
    with pytest.raises(BadQuery, match="sources.azure.cluster"):
        source_for(server).fetch_container_metrics("shop", hours=1)


# -- errors ---------------------------------------------------------------------------------------

def test_a_refused_token_is_unauthorized_and_not_retried(server):
    source = source_for(server, credential=StaticToken("expired"))
    with pytest.raises(SourceUnauthorized, match="access token is invalid"):
        source.fetch(AzureParams(resource("Microsoft.Cache/redis", "x"), "cachehits"), 0, 3600, STEP)
    assert len(server.requests) == 1


@pytest.mark.parametrize("status, code, error", [
    (403, "AuthorizationFailed", SourceUnauthorized),
    (429, "TooManyRequests", SourceUnavailable),
    (503, "ServiceUnavailable", SourceUnavailable),
])
def test_answers_are_typed_by_status_and_only_outages_retried(server, status, code, error):
    server.fail_with = (status, code, "said the test")
    with pytest.raises(error, match="said the test"):
        source_for(server).fetch(AzureParams(resource("Microsoft.Cache/redis", "x"), "cachehits"), 0, 3600, STEP)
    assert len(server.requests) == (FAST.attempts if error is SourceUnavailable else 1)


def test_an_unknown_metric_is_a_bad_query_with_azures_message(server):
    with pytest.raises(BadQuery, match="Failed to find metric configuration"):
        source_for(server).fetch(AzureParams(resource("Microsoft.Cache/redis", "x"), "nope"), 0, 3600, STEP)


def test_an_untrusted_certificate_is_refused(server):
    source = AzureMonitorSource(endpoint=server.url, credential=StaticToken(), retry=FAST)  # no ca_file
    with pytest.raises(SourceUnavailable, match="(?i)certificate"):
        source.fetch(AzureParams(resource("Microsoft.Cache/redis", "x"), "cachehits"), 0, 3600, STEP)
    assert server.requests == []  # the token never left the client


def test_nothing_listening_is_an_outage():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = AzureMonitorSource(endpoint=f"https://127.0.0.1:{port}", credential=StaticToken(), retry=FAST)
    with pytest.raises(SourceUnavailable):
        source.fetch(AzureParams(resource("Microsoft.Cache/redis", "x"), "cachehits"), 0, 3600, STEP)


def test_without_any_azure_identity_a_query_is_unauthorized(monkeypatch):
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                 "AZURE_USERNAME", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    source = AzureMonitorSource(endpoint="https://127.0.0.1:9", retry=FAST)  # DefaultAzureCredential
    with pytest.raises(SourceUnauthorized, match="DefaultAzureCredential failed"):
        source.fetch(AzureParams(resource("Microsoft.Cache/redis", "x"), "cachehits"), 0, 3600, STEP)


def test_trigger_metadata_is_read_into_params_and_a_bad_aggregation_is_refused_naming_the_choices():
    parse = MetadataParser({"azure": AzureMonitorSource()}, load_settings().models, MODELS)
    uri = resource("Microsoft.Web/sites", "shop")
    t = parse("shop", "web", {"source": "azure", "targetValue": "100", "resourceUri": uri, "metric": "Requests",
                              "aggregation": "Total", "filter": "Instance eq 'a'"})
    assert t.source_params == AzureParams(uri, "Requests", "Total", filter="Instance eq 'a'")
    with pytest.raises(InvalidMetadata, match="aggregation='Sum'.*Total"):
        parse("shop", "web", {"source": "azure", "targetValue": "1", "resourceUri": uri, "metric": "Requests",
                              "aggregation": "Sum"})


def test_built_from_the_sources_settings(server):
    settings = load_settings(sources={"azure": {"subscription_id": SUB, "resource_group": RG, "cluster": "prod",
                                                "endpoint": server.url, "ca_file": server.ca_file}})
    source = build_sources(settings)["azure"]
    assert isinstance(source, AzureMonitorSource) and source.ca_file == server.ca_file
    assert source._render(source.queries["cpu_utilization"].query, {"namespace": "shop"}).resource == resource(
        "Microsoft.ContainerService/managedClusters", "prod")
    with pytest.raises(ConfigError, match="sources.azure.max_series"):
        load_settings(sources={"azure": {"max_series": 0}})


def test_a_slow_server_is_cut_off_by_the_per_attempt_timeout_and_retried(server):
    server.delay = 5.0
    policy = RetryPolicy(timeout=0.2, attempts=2, backoff_initial=0.01, backoff_max=0.02, deadline=10)
    source = AzureMonitorSource(endpoint=server.url, ca_file=server.ca_file, credential=StaticToken(), retry=policy)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="(?i)timed out"):
        source.fetch(AzureParams(resource("Microsoft.Cache/redis", "x"), "cachehits"), 0, 3600, STEP)
    assert time.monotonic() - started < 4  # two attempts cut at 0.2 s, not an answer after 5 s


async def test_end_to_end_an_azure_trigger_is_forecast_over_grpc(server, start_app, client_for):
    ramp = Ramp()
    app_service = resource("Microsoft.Web/sites", "shop")
    server.add(app_service, "load", ramp.samples())
    metadata = {"source": "azure", "resourceUri": app_service, "metric": "load"}

    value = await served_forecast(start_app, client_for, ramp, metadata, sources={"azure": source_for(server)})

    assert value == pytest.approx(ramp.expected, abs=1e-6)
    assert server.requests[0].query["interval"] == "PT5M"


@pytest.fixture
def workload_identity(server, tmp_path, monkeypatch):
    """AKS workload identity as DefaultAzureCredential finds it: the env the webhook injects and the
    projected service-account token, exchanged at Entra's token endpoint (here the local server)."""
    tenant, client_id = "72f988bf-86f1-41af-91ab-2d7cd011db47", "5bd7a0e1-8d4b-4a43-9c5e-1c0b3f4a2e11"
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.signature")
    server.federated[tenant] = (client_id, token_file.read_text())
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_TENANT_ID", tenant)
    monkeypatch.setenv("AZURE_CLIENT_ID", client_id)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", server.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)  # trust the local token endpoint's certificate
    return tenant, client_id


def test_workload_identity_exchanges_the_projected_token_for_the_bearer_the_metrics_call_sends(
        server, workload_identity):
    _, client_id = workload_identity
    t0 = recent_origin()
    cache = resource("Microsoft.Cache/redis", "sessions")
    server.add(cache, "connectedclients", [(t0 + s, 9) for s in range(0, 600, 60)])
    source = AzureMonitorSource(endpoint=server.url, ca_file=server.ca_file, retry=FAST)  # DefaultAzureCredential

    s = source.fetch(AzureParams(cache, "connectedclients"), t0, t0 + 599, STEP)

    assert s.values.tolist() == [9, 9]
    (grant,) = server.token_requests
    assert grant["scope"] == "https://management.azure.com/.default" and grant["client_id"] == client_id
    assert server.requests[0].authorization == f"Bearer {TOKEN}"


def test_a_federated_token_entra_refuses_is_unauthorized(server, workload_identity):
    tenant, client_id = workload_identity
    server.federated[tenant] = (client_id, "a token from another cluster")
    source = AzureMonitorSource(endpoint=server.url, ca_file=server.ca_file, retry=FAST)
    with pytest.raises(SourceUnauthorized, match="AADSTS700016"):
        source.fetch(AzureParams(resource("Microsoft.Cache/redis", "x"), "connectedclients"), 0, 3600, STEP)
    assert server.requests == []  # no metrics call without a token
