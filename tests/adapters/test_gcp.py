"""The gcp source: the real google-cloud-monitoring client against a loopback MetricService server."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import subprocess
import sys

import grpc
import jwt
import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from helios.adapters.gcp import GcpMonitoringSource, GcpParams, GcpQuery
from helios.adapters.metrics import RESOURCE_METRICS
from helios.adapters.retry import RetryPolicy
from helios.engine.errors import BadQuery, SourceUnauthorized, SourceUnavailable
from helios.engine.models import MODELS
from helios.scaler.config.metadata import InvalidMetadata, MetadataParser
from helios.scaler.config.settings import load_settings
from helios.scaler.config.sources import build_sources

from ..pki import self_signed
from .contract import RESTARTS, STEP, AdapterContract, ContractTarget, canonical_samples, recent_origin
from .servers.gcp_monitoring import MetricServiceServer, StoredSeries
from .servers.ramp import Ramp, served_forecast

FAST = RetryPolicy(timeout=3, attempts=3, backoff_initial=0.01, backoff_max=0.02, deadline=10)
PROJECT = "helios-test"
CUSTOM = "custom.googleapis.com/"


def custom_filter(metric: str) -> str:
    return f'metric.type = "{CUSTOM}{metric}"'


@pytest.fixture(scope="module")
def canonical_server():
    origin = recent_origin()
    server = MetricServiceServer(page_size=7).start()  # a few points per page: every query pages
    by_series: dict[tuple, StoredSeries] = {}
    for metric, labels, ts, value in canonical_samples(origin):
        if math.isnan(value):
            continue  # Cloud Monitoring stores numbers only: a writer leaves a failed read out
        key = (metric, tuple(sorted(labels.items())))
        if key not in by_series:
            by_series[key] = StoredSeries(CUSTOM + metric, "global", {"project_id": PROJECT}, dict(labels))
        by_series[key].points.append((ts, value))
    for s in by_series.values():
        server.add(StoredSeries(s.metric_type, s.resource_type, s.resource_labels, s.metric_labels, s.points))
    server.origin = origin
    yield server
    server.stop()


@pytest.fixture(scope="module")
def contract(canonical_server):
    return ContractTarget(
        adapter=GcpMonitoringSource(project=PROJECT, client=canonical_server.client(), retry=FAST),
        origin=canonical_server.origin,
        params_for=lambda metric: GcpParams(filter=custom_filter(metric)),
        # The counter is read raw, as the standard restart_count query reads kubernetes.io/container/restart_count.
        query_for=lambda metric: GcpQuery(custom_filter(metric), aligner="ALIGN_NONE" if metric == RESTARTS
                                          else "ALIGN_MEAN"),
    )


class TestGcpContract(AdapterContract):
    pass


def test_the_contract_queries_paged_through_the_server(canonical_server):
    tokens = [r.page_token for r in canonical_server.requests]
    assert "" in tokens and any(t for t in tokens), "the client should have followed next_page_token"


# -- the standard metrics: what the adapter asks and what it builds ------------------------------

@pytest.fixture
def server():
    s = MetricServiceServer(page_size=5).start()
    yield s
    s.stop()


def k8s(metric: str, pod: str, points, *, memory_type: str | None = None, workload: str = "web", integer=False,
        container: str = "app", kind: str = "GAUGE"):
    labels = {"project_id": PROJECT, "location": "europe-west1", "cluster_name": "prod", "namespace_name": "shop",
              "pod_name": pod, "container_name": container}
    return StoredSeries(f"kubernetes.io/container/{metric}", "k8s_container", labels,
                        {"memory_type": memory_type} if memory_type else {}, list(points), integer=integer,
                        system_labels={"top_level_controller_name": workload}, kind=kind)


def test_container_frame_asks_for_namespace_series_aligned_per_step_and_builds_the_frame(server):
    t0 = 1_800_000_000 // STEP * STEP
    minutes = range(0, 3600, 60)
    server.add(k8s("cpu/limit_utilization", "web-1", [(t0 + s, 0.2) for s in minutes]))
    server.add(k8s("cpu/limit_utilization", "web-2", [(t0 + s, 0.4 + s / 36_000) for s in minutes]))
    server.add(k8s("memory/limit_utilization", "web-1", [(t0 + s, 0.5) for s in minutes], memory_type="non-evictable"))
    server.add(k8s("memory/limit_utilization", "web-1", [(t0 + s, 0.9) for s in minutes], memory_type="evictable"))
    server.add(k8s("memory/used_bytes", "web-1", [(t0 + s, 100e6) for s in minutes], memory_type="non-evictable",
                   integer=True))
    server.add(k8s("memory/used_bytes", "web-2", [(t0 + s, 50e6) for s in minutes], memory_type="non-evictable",
                   integer=True))
    server.add(k8s("restart_count", "web-1", [(t0 + s, s // 900) for s in minutes], integer=True))
    server.add(k8s("cpu/limit_utilization", "other-1", [(t0 + s, 0.99) for s in minutes], workload="other"))
    source = GcpMonitoringSource(project=PROJECT, cluster="prod", client=server.client(), retry=FAST)

    end = t0 + 3600 - 1  # the last second of the data's last step: whole steps only
    frame = source.fetch_container_metrics("shop", hours=1, end=end, workload="web")

    first = [r for r in server.requests if not r.page_token]
    assert [r.filter for r in first] == [
        f'metric.type = "kubernetes.io/container/{m}" AND resource.type = "k8s_container" '
        f'AND resource.labels.namespace_name = "shop" AND resource.labels.cluster_name = "prod" '
        f'AND metadata.system_labels.top_level_controller_name = "web"{extra}'
        for m, extra in [("cpu/limit_utilization", ""),
                         ("memory/limit_utilization", ' AND metric.labels.memory_type = "non-evictable"'),
                         ("memory/used_bytes", ' AND metric.labels.memory_type = "non-evictable"'),
                         ("restart_count", "")]
    ]
    for r in first:
        assert r.name == f"projects/{PROJECT}"
        assert r.interval.start_time == dt.datetime.fromtimestamp(t0 - 1, dt.UTC)  # (start, end]
        assert r.interval.end_time == dt.datetime.fromtimestamp(end, dt.UTC)
        assert r.aggregation.cross_series_reducer.name == "REDUCE_NONE"
    assert [r.aggregation.per_series_aligner.name for r in first] == ["ALIGN_MEAN"] * 3 + ["ALIGN_NONE"]
    assert [r.aggregation.alignment_period for r in first[:3]] == [dt.timedelta(seconds=STEP)] * 3
    assert any(r.page_token for r in server.requests), "5 points a page: the client must have paged"

    assert list(frame.index) == [pd.Timestamp(t0 + STEP * k, unit="s", tz="UTC") for k in range(12)]
    steps = np.arange(12)
    # Two pods averaged per step; web-2 rises by 1/36000 a second, so its step mean is 0.4 + (300k + 120)/36000.
    np.testing.assert_allclose(frame["cpu_utilization"], (0.2 + 0.4 + (300 * steps + 120) / 36_000) / 2)
    np.testing.assert_allclose(frame["memory_utilization"], 0.5)  # the evictable series is not asked for
    np.testing.assert_allclose(frame["memory_bytes"], 150e6)  # bytes of two pods add up
    # The raw counter (one sample a minute) climbs by one every 15 minutes: at steps 3, 6 and 9.
    np.testing.assert_array_equal(frame["restart_count"], [0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0])


MIB = 1 << 20
# (pod, container): CPU cores used, requested and limited; memory bytes used, requested and limited. web-2
# is the pod nearer its limits: busier, and started from a newer template with a smaller memory limit.
CONTAINERS = {
    ("web-1", "app"): (0.2, 0.5, 1.0, 300 * MIB, 512 * MIB, 1024 * MIB),
    ("web-1", "sidecar"): (0.05, 0.1, 0.2, 20 * MIB, 32 * MIB, 64 * MIB),
    ("web-2", "app"): (0.65, 0.75, 1.5, 450 * MIB, 256 * MIB, 512 * MIB),
    ("web-2", "sidecar"): (0.1, 0.1, 0.2, 20 * MIB, 32 * MIB, 64 * MIB),
    ("worker-1", "app"): (3.0, 4.0, 4.0, 5120 * MIB, 128 * MIB, 128 * MIB),  # another workload
}
RESOURCE_QUERIES = [
    ("cpu/core_usage_time", ""), ("memory/used_bytes", ' AND metric.labels.memory_type = "non-evictable"'),
    ("cpu/request_cores", ""), ("cpu/limit_cores", ""), ("memory/request_bytes", ""), ("memory/limit_bytes", ""),
]


def load_containers(server: MetricServiceServer, t0: int, containers=CONTAINERS, limits: bool = True) -> None:
    minutes = range(0, 3600, 60)
    for (pod, name), (cores, cpu_req, cpu_lim, used, mem_req, mem_lim) in containers.items():
        series = [
            # A cumulative count of core-seconds, sampled every minute: `cores` per second of the window.
            ("cpu/core_usage_time", lambda s, c=cores: c * (s + 600), {"kind": "CUMULATIVE"}),
            ("memory/used_bytes", lambda s, u=used: u, {"memory_type": "non-evictable", "integer": True}),
            ("memory/used_bytes", lambda s, u=used: 4 * u, {"memory_type": "evictable", "integer": True}),
            ("cpu/request_cores", lambda s, r=cpu_req: r, {}),
            ("memory/request_bytes", lambda s, r=mem_req: r, {"integer": True}),
        ]
        if limits:
            series += [("cpu/limit_cores", lambda s, v=cpu_lim: v, {}),
                       ("memory/limit_bytes", lambda s, v=mem_lim: v, {"integer": True})]
        for metric, value, kw in series:
            server.add(k8s(metric, pod, [(t0 + s, value(s)) for s in minutes], container=name,
                           workload=pod.split("-")[0], **kw))


def test_resource_frame_sums_each_pods_containers_and_takes_the_worst_pod(server):
    t0 = 1_800_000_000 // STEP * STEP
    load_containers(server, t0)
    source = GcpMonitoringSource(project=PROJECT, cluster="prod", client=server.client(), retry=FAST)
    end = t0 + 3600 - 1

    frame = source.fetch_resource_metrics("shop", hours=1, end=end, workload="web")

    first = [r for r in server.requests if not r.page_token]
    assert [r.filter for r in first] == [
        f'metric.type = "kubernetes.io/container/{m}" AND resource.type = "k8s_container" '
        f'AND resource.labels.namespace_name = "shop" AND resource.labels.cluster_name = "prod" '
        f'AND metadata.system_labels.top_level_controller_name = "web"{extra}' for m, extra in RESOURCE_QUERIES]
    # Core-seconds asked as a rate (cores); each pod's containers summed by the server, one series per pod.
    assert [r.aggregation.per_series_aligner.name for r in first] == ["ALIGN_RATE"] + ["ALIGN_MEAN"] * 5
    for r in first:
        assert r.aggregation.alignment_period == dt.timedelta(seconds=STEP)
        assert r.aggregation.cross_series_reducer.name == "REDUCE_SUM"
        assert list(r.aggregation.group_by_fields) == [
            "resource.labels.location", "resource.labels.cluster_name", "resource.labels.pod_name"]

    assert list(frame.columns) == list(RESOURCE_METRICS)
    assert list(frame.index) == [pd.Timestamp(t0 + STEP * k, unit="s", tz="UTC") for k in range(12)]
    # web-1 / web-2: 0.25 / 0.75 cores used, 0.6 / 0.85 requested, 1.2 / 1.7 limit; 320 / 470 MiB used,
    # 544 / 288 MiB requested, 1088 / 576 MiB limit. Usage, requests and CPU limits take the larger pod,
    # the memory limit the smaller (the pod nearer an OOM kill).
    expected = {"pod_cpu_cores": 0.75, "pod_memory_bytes": 470 * MIB, "pod_cpu_request_cores": 0.85,
                "pod_cpu_limit_cores": 1.7, "pod_memory_request_bytes": 544 * MIB, "pod_memory_limit_bytes": 576 * MIB}
    for key, value in expected.items():
        np.testing.assert_allclose(frame[key], value, rtol=1e-12, err_msg=key)

    namespace = source.fetch_resource_metrics("shop", hours=1, end=end)  # every pod of the namespace

    assert "top_level_controller_name" not in server.requests[-1].filter
    np.testing.assert_allclose(namespace["pod_cpu_cores"], 3.0)
    np.testing.assert_allclose(namespace["pod_memory_bytes"], 5120 * MIB)
    np.testing.assert_allclose(namespace["pod_memory_request_bytes"], 544 * MIB)
    np.testing.assert_allclose(namespace["pod_memory_limit_bytes"], 128 * MIB)


def test_resource_frame_without_limits_has_all_nan_limit_columns(server):
    t0 = 1_800_000_000 // STEP * STEP
    load_containers(server, t0, {("web-1", "app"): CONTAINERS[("web-1", "app")]}, limits=False)
    source = GcpMonitoringSource(project=PROJECT, client=server.client(), retry=FAST)

    frame = source.fetch_resource_metrics("shop", hours=1, end=t0 + 3600 - 1, workload="web")

    assert frame["pod_cpu_limit_cores"].isna().all() and frame["pod_memory_limit_bytes"].isna().all()
    np.testing.assert_allclose(frame["pod_cpu_cores"], 0.2, rtol=1e-12)
    np.testing.assert_allclose(frame["pod_memory_request_bytes"], 512 * MIB)


def test_cpu_usage_is_a_cumulative_metric_the_server_refuses_to_average(server):
    """The local server holds core_usage_time as Cloud Monitoring does (CUMULATIVE), so a mean aligner
    on it is refused, not quietly averaged into core-seconds."""
    t0 = 1_800_000_000 // STEP * STEP
    load_containers(server, t0)
    cpu = 'metric.type = "kubernetes.io/container/cpu/core_usage_time" AND resource.labels.namespace_name = "shop"'
    source = GcpMonitoringSource(project=PROJECT, client=server.client(), retry=FAST).with_queries(
        {"pod_cpu_cores": GcpQuery(cpu, "ALIGN_MEAN")})
    with pytest.raises(BadQuery, match="ALIGN_MEAN cannot be applied to metrics of kind CUMULATIVE"):
        source.fetch_resource_metrics("shop", hours=1, end=t0 + 3600 - 1)


def test_a_window_ending_inside_a_step_asks_for_that_partial_step_on_its_own(server):
    t0 = 1_800_000_000 // STEP * STEP
    server.add(k8s("cpu/limit_utilization", "web-1", [(t0 + s, s / 60) for s in range(0, 1800, 60)]))
    source = GcpMonitoringSource(project=PROJECT, client=server.client(), retry=FAST)
    end = t0 + 2 * STEP + 120  # two whole steps, then the step in progress up to its third sample

    s = source.fetch(GcpParams(filter='metric.type = "kubernetes.io/container/cpu/limit_utilization"'), t0, end, STEP)

    intervals = [(r.interval.start_time.timestamp() - t0, r.interval.end_time.timestamp() - t0)
                 for r in server.requests if not r.page_token]
    assert intervals == [(-1, 2 * STEP - 1), (2 * STEP - 1, 2 * STEP + 120)]
    assert s.timestamps.tolist() == [t0, t0 + STEP, t0 + 2 * STEP]
    assert s.values.tolist() == [2, 7, 11]  # minute samples 0-4, 5-9, then only 10-12


def test_database_and_cache_frames_name_the_cloud_sql_and_memorystore_resources(server):
    t0 = 1_800_000_000 // STEP * STEP
    sql = {"project_id": PROJECT, "database_id": f"{PROJECT}:orders", "region": "europe-west1"}
    for metric, value in [("cpu/utilization", 0.3), ("memory/utilization", 0.6), ("postgresql/num_backends", 42),
                          ("replication/replica_lag", 1.5)]:
        server.add(StoredSeries(f"cloudsql.googleapis.com/database/{metric}", "cloudsql_database", sql,
                                points=[(t0 + s, value) for s in range(0, 1800, 60)]))
    redis_id = f"projects/{PROJECT}/locations/europe-west1/instances/sessions"
    redis = {"project_id": PROJECT, "region": "europe-west1", "instance_id": redis_id}
    for metric, value in [("stats/memory/usage_ratio", 0.7), ("clients/connected", 12), ("stats/cache_hit_ratio", 0.9)]:
        server.add(StoredSeries(f"redis.googleapis.com/{metric}", "redis_instance", redis,
                                points=[(t0 + s, value) for s in range(0, 1800, 60)]))
    source = GcpMonitoringSource(project=PROJECT, region="europe-west1", client=server.client(), retry=FAST)
    end = t0 + 1800 - 1

    db = source.fetch_database_metrics("orders", hours=0.5, end=end)
    cache = source.fetch_cache_metrics("sessions", hours=0.5, end=end)

    filters = [r.filter for r in server.requests if not r.page_token]
    assert 'resource.labels.database_id = "helios-test:orders"' in filters[0]
    assert f'resource.labels.instance_id = "{redis_id}"' in filters[-1]
    assert db.to_dict("list") == {
        "db_cpu_utilization": [0.3] * 6, "db_memory_utilization": [0.6] * 6, "db_connections": [42.0] * 6,
        "db_replication_lag": [1.5] * 6}
    assert cache.to_dict("list") == {
        "redis_memory_utilization": [0.7] * 6, "redis_connections": [12.0] * 6, "redis_hit_rate": [0.9] * 6}


def test_a_trigger_query_sends_its_own_aligner_reducer_and_group_by(server):
    t0 = 1_800_000_000 // STEP * STEP
    server.add(k8s("cpu/limit_utilization", "web-1", [(t0 + s, 0.2) for s in range(0, 1800, 60)]))
    server.add(k8s("cpu/limit_utilization", "web-2", [(t0 + s, 0.6) for s in range(0, 1800, 60)]))
    source = GcpMonitoringSource(project="ignored", client=server.client(), retry=FAST)
    params = GcpParams(filter='metric.type = "kubernetes.io/container/cpu/limit_utilization"', aligner="ALIGN_MAX",
                       reducer="REDUCE_SUM", project=PROJECT)

    s = source.fetch(params, t0, t0 + 1800 - 1, STEP)

    request = server.requests[0]
    assert request.name == f"projects/{PROJECT}"
    assert request.aggregation.per_series_aligner.name == "ALIGN_MAX"
    assert request.aggregation.cross_series_reducer.name == "REDUCE_SUM"
    assert s.timestamps.tolist() == [t0 + STEP * k for k in range(6)]
    np.testing.assert_allclose(s.values, 0.8)  # summed by the server: one series


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, error", [
    (grpc.StatusCode.PERMISSION_DENIED, SourceUnauthorized),
    (grpc.StatusCode.UNAUTHENTICATED, SourceUnauthorized),
    (grpc.StatusCode.INVALID_ARGUMENT, BadQuery),
])
def test_refusals_are_typed_and_not_retried(server, code, error):
    server.fail_with = (code, "refused by the test")
    source = GcpMonitoringSource(project=PROJECT, client=server.client(), retry=FAST)
    with pytest.raises(error, match="refused by the test"):
        source.fetch(GcpParams(filter=custom_filter("x")), 0, 3600, STEP)
    assert len(server.requests) == 1


def test_a_filter_the_server_cannot_parse_is_a_bad_query_with_its_message(server):
    source = GcpMonitoringSource(project=PROJECT, client=server.client(), retry=FAST)
    with pytest.raises(BadQuery, match="Could not parse filter"):
        source.fetch(GcpParams(filter="metric.type = kubernetes"), 0, 3600, STEP)


def test_an_unavailable_server_is_retried_then_an_outage(server):
    server.fail_with = (grpc.StatusCode.UNAVAILABLE, "overloaded")
    source = GcpMonitoringSource(project=PROJECT, client=server.client(), retry=FAST)
    with pytest.raises(SourceUnavailable, match="overloaded"):
        source.fetch(GcpParams(filter=custom_filter("x")), 0, 3600, STEP)
    assert len(server.requests) == FAST.attempts


def test_nothing_listening_is_an_outage():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the client connects
    client = MetricServiceServer().client(f"127.0.0.1:{port}")
    source = GcpMonitoringSource(project=PROJECT, client=client, retry=FAST)
    with pytest.raises(SourceUnavailable):
        source.fetch(GcpParams(filter=custom_filter("x")), 0, 3600, STEP)


def test_without_application_default_credentials_a_query_is_unauthorized(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    source = GcpMonitoringSource(project=PROJECT, retry=FAST)  # the constructor itself needs no credentials
    with pytest.raises(SourceUnauthorized, match="credentials"):
        source.fetch(GcpParams(filter=custom_filter("x")), 0, 3600, STEP)


def test_trigger_metadata_is_read_into_params_and_a_bad_aligner_is_refused_naming_the_choices():
    parse = MetadataParser({"gcp": GcpMonitoringSource()}, load_settings().models, MODELS)
    filter_ = 'metric.type = "loadbalancing.googleapis.com/https/request_count"'
    t = parse("shop", "web", {"source": "gcp", "targetValue": "100", "filter": filter_, "aligner": "ALIGN_RATE",
                              "reducer": "REDUCE_SUM", "groupBy": "resource.labels.url_map_name"})
    assert t.source_params == GcpParams(filter_, "ALIGN_RATE", "REDUCE_SUM", "resource.labels.url_map_name")
    with pytest.raises(InvalidMetadata, match="aligner='ALIGN_AVERAGE'.*ALIGN_MEAN"):
        parse("shop", "web", {"source": "gcp", "targetValue": "1", "filter": filter_, "aligner": "ALIGN_AVERAGE"})


def test_built_from_the_sources_settings_with_a_filter_override():
    cpu = 'metric.type = "custom.googleapis.com/cpu" AND resource.labels.x = "$namespace"'
    settings = load_settings(sources={"gcp": {
        "project": PROJECT, "region": "europe-west1", "cluster": "prod", "endpoint": "monitoring.example:443",
        "queries": {"cpu_utilization": cpu}}})
    source = build_sources(settings)["gcp"]
    assert (source.project, source.region, source.cluster, source._endpoint) == (
        PROJECT, "europe-west1", "prod", "monitoring.example:443")
    rendered = source._render(source.queries["cpu_utilization"].query, {"namespace": "shop", "workload": ""})
    assert rendered == GcpQuery('metric.type = "custom.googleapis.com/cpu" AND resource.labels.x = "shop"')
    assert source.queries["restart_count"].query.aligner == "ALIGN_NONE"  # the other defaults kept


def test_a_slow_server_is_cut_off_by_the_per_attempt_timeout_and_retried(server):
    server.delay = 1.0
    policy = RetryPolicy(timeout=0.2, attempts=2, backoff_initial=0.01, backoff_max=0.02, deadline=10)
    source = GcpMonitoringSource(project=PROJECT, client=server.client(), retry=policy)
    with pytest.raises(SourceUnavailable, match="DEADLINE_EXCEEDED|Deadline"):
        source.fetch(GcpParams(filter=custom_filter("x")), 0, 3600, STEP)
    assert len(server.requests) == 2


async def test_end_to_end_a_gcp_trigger_is_forecast_over_grpc(server, start_app, client_for):
    ramp = Ramp()
    server.add(StoredSeries(CUSTOM + "helios_e2e_load", "global", {"project_id": PROJECT}, points=ramp.samples()))
    source = GcpMonitoringSource(project=PROJECT, client=server.client(), retry=FAST)
    metadata = {"source": "gcp", "filter": custom_filter("helios_e2e_load"), "aligner": "ALIGN_MEAN"}

    value = await served_forecast(start_app, client_for, ramp, metadata, sources={"gcp": source})

    assert value == pytest.approx(ramp.expected, abs=1e-6)
    assert server.requests[0].aggregation.alignment_period == dt.timedelta(seconds=STEP)


_CHILD = """
import json, sys
from helios.adapters.retry import RetryPolicy
from helios.adapters.gcp import GcpMonitoringSource, GcpParams
endpoint, key_file, filter_, start, end = sys.argv[1:]
source = GcpMonitoringSource(project="helios-test", endpoint=endpoint, credentials_file=key_file,
                             retry=RetryPolicy(timeout=10, attempts=1))
print(json.dumps(source.fetch(GcpParams(filter=filter_), int(start), int(end), 300).values.tolist()))
"""


def test_a_service_account_key_signs_the_bearer_sent_over_tls_to_the_configured_endpoint(tmp_path):
    """The production path without a test client: `endpoint` and `credentials_file` from config, the
    client's own TLS channel (trusting the test CA through gRPC's roots variable, in a child process so
    no other test's channel is affected) and google-auth signing with a key made here."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = "helios-reader@helios-test.iam.gserviceaccount.com"
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "k1", "client_email": email,
        "client_id": "1", "token_uri": "https://127.0.0.1:9/token",
        "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()}))
    cert, cert_key = self_signed(tmp_path)
    server = MetricServiceServer().start(tls=(cert.read_bytes(), cert_key.read_bytes()))
    try:
        t0 = 1_800_000_000 // STEP * STEP
        server.add(StoredSeries(CUSTOM + "tls", "global", {"project_id": PROJECT},
                                points=[(t0 + s, 5.0) for s in range(0, 600, 60)]))
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, f"127.0.0.1:{server.port}", str(key_file), custom_filter("tls"),
             str(t0), str(t0 + 599)],
            env={**os.environ, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(cert)}, capture_output=True, text=True,
            timeout=120)
    finally:
        server.stop()
    assert child.returncode == 0, child.stderr[-2000:]
    assert json.loads(child.stdout) == [5.0, 5.0]
    scheme, token = server.metadata[0]["authorization"].split(" ", 1)
    assert scheme == "Bearer"
    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"], options={"verify_aud": False})
    assert claims["iss"] == claims["sub"] == email
    assert claims["scope"] == "https://www.googleapis.com/auth/monitoring.read"  # read-only, as configured
