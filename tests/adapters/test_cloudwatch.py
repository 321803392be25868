"""The cloudwatch source: real boto3 against moto's CloudWatch server on loopback."""

from __future__ import annotations

import datetime as dt
import math
import socket
import urllib.request

import boto3
import numpy as np
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from helios.adapters.cloudwatch import CloudWatchParams, CloudWatchQuery, CloudWatchSource, parse_dimensions
from helios.adapters.metrics import RESOURCE_METRICS
from helios.adapters.retry import RetryPolicy
from helios.engine.errors import BadQuery, SourceUnauthorized, SourceUnavailable
from helios.engine.models import MODELS
from helios.scaler.config.metadata import InvalidMetadata, MetadataParser
from helios.scaler.config.settings import ConfigError, load_settings
from helios.scaler.config.sources import build_sources

from .contract import RESTARTS, STEP, AdapterContract, ContractTarget, canonical_samples, recent_origin
from .servers.ramp import Ramp, served_forecast

FAST = RetryPolicy(timeout=3, attempts=2, backoff_initial=0.01, backoff_max=0.02, deadline=10)
CONTRACT_NS = "Helios/Contract"


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def client_for_moto(url: str):
    """The real boto3 client, with botocore's own retries off as the adapter's default client has them."""
    return boto3.client("cloudwatch", endpoint_url=url, region_name="eu-west-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))


def put(client, namespace: str, metric: str, dims: dict[str, str], points) -> None:
    data = [{"MetricName": metric, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
             "Timestamp": dt.datetime.fromtimestamp(t, dt.UTC), "Value": float(v)} for t, v in points]
    for i in range(0, len(data), 500):
        client.put_metric_data(Namespace=namespace, MetricData=data[i : i + 500])


def recording(client) -> list[tuple[str, dict]]:
    """The parameters of every call the client makes, as botocore is about to send them."""
    calls: list[tuple[str, dict]] = []
    client.meta.events.register("provide-client-params.monitoring.*",
                                lambda params, model, **_: calls.append((model.name, dict(params))))
    return calls


@pytest.fixture(scope="module")
def contract(moto_url):
    origin = recent_origin()
    client = client_for_moto(moto_url)
    for metric, labels, ts, value in canonical_samples(origin):
        if not math.isnan(value):  # CloudWatch refuses NaN values: a writer leaves a failed read out
            put(client, CONTRACT_NS, metric, labels, [(ts, value)])
    return ContractTarget(
        adapter=CloudWatchSource(client=client, retry=FAST),
        origin=origin,
        params_for=lambda metric: CloudWatchParams(namespace=CONTRACT_NS, metric=metric),
        query_for=lambda metric: CloudWatchQuery(CONTRACT_NS, metric, stat="Maximum" if metric == RESTARTS
                                                 else "Average"),
    )


class TestCloudWatchContract(AdapterContract):
    pass


def test_container_frame_reads_the_namespace_roll_up_and_sums_restarts_over_workloads(moto_url):
    client = client_for_moto(moto_url)
    t0 = recent_origin(hours_ago=6)
    minutes = [t0 + s for s in range(0, 1800, 60)]
    shop = {"ClusterName": "prod", "Namespace": "shop"}
    put(client, "ContainerInsights", "pod_cpu_utilization", shop, [(t, 40) for t in minutes])
    put(client, "ContainerInsights", "pod_cpu_utilization", shop | {"PodName": "web"}, [(t, 80) for t in minutes])
    put(client, "ContainerInsights", "pod_memory_utilization", shop, [(t, 55) for t in minutes])
    put(client, "ContainerInsights", "pod_memory_working_set", shop, [(t, 2e8) for t in minutes])
    put(client, "ContainerInsights", "pod_number_of_container_restarts", shop | {"PodName": "web"},
        [(t, (t - t0) // 600) for t in minutes])  # one restart every 10 minutes
    put(client, "ContainerInsights", "pod_number_of_container_restarts", shop | {"PodName": "worker"},
        [(t, 7) for t in minutes])
    calls = recording(client)
    source = CloudWatchSource(cluster="prod", client=client, retry=FAST)
    end = t0 + 1800 - 1  # the last second of the data's last step

    frame = source.fetch_container_metrics("shop", hours=0.5, end=end)

    data_calls = [p for name, p in calls if name == "GetMetricData"]
    cpu = data_calls[0]["MetricDataQueries"][0]["MetricStat"]
    assert cpu == {"Metric": {"Namespace": "ContainerInsights", "MetricName": "pod_cpu_utilization",
                              "Dimensions": [{"Name": "ClusterName", "Value": "prod"},
                                             {"Name": "Namespace", "Value": "shop"}]},
                   "Period": STEP, "Stat": "Average"}
    assert data_calls[0]["StartTime"] == dt.datetime.fromtimestamp(t0, dt.UTC)
    assert data_calls[0]["EndTime"] == dt.datetime.fromtimestamp(end + 1, dt.UTC)  # EndTime is exclusive
    restarts = data_calls[-1]["MetricDataQueries"]
    assert sorted(q["MetricStat"]["Metric"]["Dimensions"][-1]["Value"] for q in restarts) == ["web", "worker"]
    assert {q["MetricStat"]["Stat"] for q in restarts} == {"Maximum"}
    assert frame["cpu_utilization"].tolist() == [0.4] * 6  # the roll-up, not the web workload beside it
    assert frame["memory_utilization"].tolist() == [0.55] * 6
    assert frame["memory_bytes"].tolist() == [2e8] * 6
    # Each step's Maximum of web's counter: 0, 0, 1, 1, 2, 2 (one restart every 10 minutes); worker's
    # stays at 7. Their increases add up; the first step has no predecessor.
    np.testing.assert_array_equal(frame["restart_count"], [np.nan, 0, 1, 0, 1, 0])

    web = source.fetch_container_metrics("shop", hours=0.5, end=end, workload="web")
    assert web["cpu_utilization"].tolist() == [0.8] * 6
    np.testing.assert_array_equal(web["restart_count"], [np.nan, 0, 1, 0, 1, 0])


MIB = 1 << 20
# Container Insights' per-pod figures (CPU in millicores, memory in bytes) of the namespace "store":
# {(workload, pod): {metric: value, or value(step)}}. web's second pod is the one nearer its limits: its
# CPU climbs by 100 millicores a step past the first pod's, and it runs a newer template with a smaller
# memory limit. batch sets no CPU limit, so Container Insights publishes no pod_cpu_limit for it.
STORE_PODS = {
    ("web", "web-5d8f7-a1b2c"): {"pod_cpu_usage_total": 250, "pod_memory_working_set": 320 * MIB,
                                 "pod_cpu_request": 600, "pod_cpu_limit": 1200,
                                 "pod_memory_request": 544 * MIB, "pod_memory_limit": 1088 * MIB},
    ("web", "web-5d8f7-d3e4f"): {"pod_cpu_usage_total": lambda k: 100 + 100 * k, "pod_memory_working_set": 470 * MIB,
                                 "pod_cpu_request": 850, "pod_cpu_limit": 1700,
                                 "pod_memory_request": 288 * MIB, "pod_memory_limit": 576 * MIB},
    ("worker", "worker-0"): {"pod_cpu_usage_total": 3000, "pod_memory_working_set": 5120 * MIB,
                             "pod_cpu_request": 4000, "pod_cpu_limit": 4000,
                             "pod_memory_request": 128 * MIB, "pod_memory_limit": 128 * MIB},
    ("batch", "batch-29178-x7k2p"): {"pod_cpu_usage_total": 500, "pod_memory_working_set": 64 * MIB,
                                     "pod_cpu_request": 500, "pod_memory_request": 64 * MIB,
                                     "pod_memory_limit": 256 * MIB},
}


@pytest.fixture(scope="module")
def store_pods(moto_url):
    client = client_for_moto(moto_url)
    t0 = recent_origin(hours_ago=16)
    store = {"ClusterName": "prod", "Namespace": "store"}
    for (workload, pod), metrics in STORE_PODS.items():
        for metric, value in metrics.items():
            points = [(t0 + s, value(s // STEP) if callable(value) else value) for s in range(0, 1800, 60)]
            put(client, "ContainerInsights", metric, store | {"PodName": workload, "FullPodName": pod}, points)
    # The workload roll-ups published beside them (the mean per pod) are not what the frame reads.
    put(client, "ContainerInsights", "pod_memory_limit", store | {"PodName": "web"},
        [(t0 + s, 832 * MIB) for s in range(0, 1800, 60)])
    return t0


def test_resource_frame_reads_each_pod_in_cores_and_bytes_and_takes_the_worst_pod(moto_url, store_pods):
    t0 = store_pods
    client = client_for_moto(moto_url)
    calls = recording(client)
    source = CloudWatchSource(cluster="prod", client=client, retry=FAST)

    frame = source.fetch_resource_metrics("store", hours=0.5, end=t0 + 1800 - 1, workload="web")

    data_calls = [p["MetricDataQueries"] for name, p in calls if name == "GetMetricData"]
    assert [[q["MetricStat"]["Metric"]["MetricName"] for q in c] for c in data_calls] == [
        [m, m] for m in ("pod_cpu_usage_total", "pod_memory_working_set", "pod_cpu_request", "pod_cpu_limit",
                         "pod_memory_request", "pod_memory_limit")]
    for query in (q for c in data_calls for q in c):
        dims = {d["Name"]: d["Value"] for d in query["MetricStat"]["Metric"]["Dimensions"]}
        assert dims.pop("FullPodName") in ("web-5d8f7-a1b2c", "web-5d8f7-d3e4f")  # one series per pod
        assert dims == {"ClusterName": "prod", "Namespace": "store", "PodName": "web"}
        assert (query["MetricStat"]["Period"], query["MetricStat"]["Stat"]) == (STEP, "Average")
    assert list(frame.columns) == list(RESOURCE_METRICS) and len(frame) == 6
    # Millicores to cores; the busier pod per step: 250 m until the other pod's 100 + 100k m passes it.
    np.testing.assert_allclose(frame["pod_cpu_cores"], [0.25, 0.25, 0.3, 0.4, 0.5, 0.6])
    np.testing.assert_allclose(frame["pod_cpu_request_cores"], 0.85)  # the larger of 600 m and 850 m
    np.testing.assert_allclose(frame["pod_cpu_limit_cores"], 1.7)
    assert frame["pod_memory_bytes"].tolist() == [470 * MIB] * 6  # bytes as published, the larger pod
    assert frame["pod_memory_request_bytes"].tolist() == [544 * MIB] * 6
    assert frame["pod_memory_limit_bytes"].tolist() == [576 * MIB] * 6  # the smaller limit, not the roll-up


def test_resource_frame_of_a_namespace_spans_its_pods_and_a_missing_limit_is_nan(moto_url, store_pods):
    t0 = store_pods
    source = CloudWatchSource(cluster="prod", client=client_for_moto(moto_url), retry=FAST)

    namespace = source.fetch_resource_metrics("store", hours=0.5, end=t0 + 1800 - 1)
    batch = source.fetch_resource_metrics("store", hours=0.5, end=t0 + 1800 - 1, workload="batch")

    np.testing.assert_allclose(namespace["pod_cpu_cores"], 3.0)  # worker-0, the busiest pod of the namespace
    assert namespace["pod_memory_bytes"].tolist() == [5120 * MIB] * 6
    assert namespace["pod_memory_limit_bytes"].tolist() == [128 * MIB] * 6
    assert batch["pod_cpu_limit_cores"].isna().all()  # no pod_cpu_limit published: a NaN column
    np.testing.assert_allclose(batch["pod_cpu_cores"], 0.5)
    assert batch["pod_memory_limit_bytes"].tolist() == [256 * MIB] * 6


def test_database_and_cache_frames_read_rds_and_elasticache(moto_url):
    client = client_for_moto(moto_url)
    t0 = recent_origin(hours_ago=8)
    minutes = [t0 + s for s in range(0, 1800, 60)]
    for metric, value in [("CPUUtilization", 35), ("DatabaseConnections", 80), ("ReplicaLag", 2)]:
        put(client, "AWS/RDS", metric, {"DBInstanceIdentifier": "orders"}, [(t, value) for t in minutes])
    put(client, "AWS/RDS", "CPUUtilization", {"DBInstanceIdentifier": "other"}, [(t, 99) for t in minutes])
    for metric, value in [("DatabaseMemoryUsagePercentage", 62), ("CurrConnections", 15), ("CacheHitRate", 97)]:
        put(client, "AWS/ElastiCache", metric, {"CacheClusterId": "sessions-001"}, [(t, value) for t in minutes])
    source = CloudWatchSource(client=client, retry=FAST)
    end = t0 + 1800 - 1

    db = source.fetch_database_metrics("orders", hours=0.5, end=end)
    cache = source.fetch_cache_metrics("sessions-001", hours=0.5, end=end)

    np.testing.assert_allclose(db["db_cpu_utilization"], 0.35)
    assert db["db_memory_utilization"].isna().all()  # RDS has no memory utilisation metric
    assert db["db_connections"].tolist() == [80] * 6 and db["db_replication_lag"].tolist() == [2] * 6
    np.testing.assert_allclose(cache["redis_memory_utilization"], 0.62)
    np.testing.assert_allclose(cache["redis_hit_rate"], 0.97)
    assert cache["redis_connections"].tolist() == [15] * 6


def test_hundreds_of_workloads_page_through_list_metrics_and_batch_get_metric_data(moto_url):
    client = client_for_moto(moto_url)
    t0 = recent_origin(hours_ago=10)
    workloads = [f"w{i:03}" for i in range(501)]  # ListMetrics answers 500 a page; GetMetricData takes 500
    data = []
    for name in workloads:
        dims = [{"Name": "ClusterName", "Value": "big"}, {"Name": "Namespace", "Value": "batch"},
                {"Name": "PodName", "Value": name}]
        data += [{"MetricName": "pod_number_of_container_restarts", "Dimensions": dims, "Value": float(v),
                  "Timestamp": dt.datetime.fromtimestamp(t0 + k * STEP, dt.UTC)} for k, v in enumerate([0, 1])]
    for i in range(0, len(data), 500):
        client.put_metric_data(Namespace="ContainerInsights", MetricData=data[i : i + 500])
    calls = recording(client)
    source = CloudWatchSource(cluster="big", client=client, retry=FAST)

    frame = source.fetch_container_metrics("batch", hours=2 * STEP / 3600, end=t0 + 2 * STEP - 1)

    restart_calls = calls[-4:]  # the frame's other three metrics come first and find nothing
    assert [name for name, _ in restart_calls] == ["ListMetrics", "ListMetrics", "GetMetricData", "GetMetricData"]
    assert "NextToken" in restart_calls[1][1]
    assert [len(p["MetricDataQueries"]) for _, p in restart_calls[2:]] == [500, 1]
    np.testing.assert_array_equal(frame["restart_count"], [np.nan, 501])  # each workload restarted once


def test_a_trigger_query_reads_the_metric_with_the_given_dimensions(moto_url):
    client = client_for_moto(moto_url)
    t0 = recent_origin(hours_ago=12)
    put(client, "App/Shop", "RequestCount", {"Service": "cart"}, [(t0 + s, 10 + s // 300) for s in range(0, 900, 60)])
    put(client, "App/Shop", "RequestCount", {"Service": "search"}, [(t0 + s, 99) for s in range(0, 900, 60)])
    source = CloudWatchSource(client=client, retry=FAST)

    s = source.fetch(CloudWatchParams("App/Shop", "RequestCount", "Service=cart", "Sum"), t0, t0 + 660, STEP)

    assert s.timestamps.tolist() == [t0, t0 + STEP, t0 + 2 * STEP]
    assert s.values.tolist() == [50, 55, 24]  # five samples a step, summed; the last step up to its end
    with pytest.raises(BadQuery, match="returned 2 series"):
        source.fetch(CloudWatchParams("App/Shop", "RequestCount", "Service=*"), t0, t0 + 899, STEP)


def test_dimensions_text_is_parsed_or_refused_naming_the_pair():
    assert parse_dimensions("DBInstanceIdentifier=orders, Role=*") == (("DBInstanceIdentifier", "orders"),
                                                                        ("Role", "*"))
    with pytest.raises(BadQuery, match="'Role' is not Name=Value"):
        parse_dimensions("A=b,Role")


def test_container_metrics_without_a_configured_cluster_are_a_bad_query(moto_url):
    with pytest.raises(BadQuery, match="sources.cloudwatch.cluster"):
        CloudWatchSource(client=client_for_moto(moto_url), retry=FAST).fetch_container_metrics("shop", hours=1)


def moto_auth(url: str, unchecked_calls: bytes) -> None:
    """moto checks credentials after this many more calls (inf: never)."""
    request = urllib.request.Request(f"{url}/moto-api/reset-auth", data=unchecked_calls, method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request).close()


def test_refused_credentials_are_unauthorized_and_not_retried(moto_url):
    client = client_for_moto(moto_url)
    calls = recording(client)
    source = CloudWatchSource(client=client, retry=FAST)
    moto_auth(moto_url, b"0")
    try:  # moto now checks keys against its IAM: "testing" is nobody's
        with pytest.raises(SourceUnauthorized, match="InvalidClientTokenId"):
            source.fetch(CloudWatchParams("App/Shop", "RequestCount"), 0, 3600, STEP)
    finally:
        moto_auth(moto_url, b"inf")
    assert len(calls) == 1


def test_a_query_botocore_rejects_is_a_bad_query(moto_url):
    source = CloudWatchSource(client=client_for_moto(moto_url), retry=FAST)
    with pytest.raises(BadQuery, match="Namespace"):
        source.fetch(CloudWatchParams("", "RequestCount"), 0, 3600, STEP)


def test_nothing_listening_is_an_outage_after_the_retries():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = client_for_moto(f"http://127.0.0.1:{port}")
    calls = recording(client)
    with pytest.raises(SourceUnavailable, match="Could not connect"):
        CloudWatchSource(client=client, retry=FAST).fetch(CloudWatchParams("App/Shop", "X"), 0, 3600, STEP)
    assert len(calls) == FAST.attempts


def test_the_default_client_uses_the_configured_endpoint_and_region_without_botocore_retries(moto_url):
    source = CloudWatchSource(region="eu-central-1", endpoint_url=moto_url, retry=FAST)
    client = source._get_client()
    assert client.meta.region_name == "eu-central-1" and client.meta.endpoint_url == moto_url
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_trigger_metadata_is_read_into_params_and_a_bad_stat_is_refused_naming_the_choices():
    parse = MetadataParser({"cloudwatch": CloudWatchSource()}, load_settings().models, MODELS)
    t = parse("shop", "web", {"source": "cloudwatch", "targetValue": "100", "namespace": "AWS/ApplicationELB",
                              "metric": "RequestCount", "dimensions": "LoadBalancer=app/shop/1", "stat": "Sum"})
    assert t.source_params == CloudWatchParams("AWS/ApplicationELB", "RequestCount", "LoadBalancer=app/shop/1", "Sum")
    with pytest.raises(InvalidMetadata, match="stat='Mean'.*Average"):
        parse("shop", "web", {"source": "cloudwatch", "targetValue": "1", "namespace": "A", "metric": "B",
                              "stat": "Mean"})


def test_built_from_the_sources_settings_it_reads_the_configured_endpoint(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # boto3's default chain, as on a node with IRSA
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    t0 = recent_origin(hours_ago=14)
    put(client_for_moto(moto_url), "AWS/ElastiCache", "CurrConnections", {"CacheClusterId": "from-config"},
        [(t0 + s, 4) for s in range(0, 600, 60)])
    settings = load_settings(sources={"cloudwatch": {"endpoint_url": moto_url, "region": "eu-west-1",
                                                     "cluster": "prod", "timeout": "2s", "attempts": 1}})

    source = build_sources(settings)["cloudwatch"]

    assert isinstance(source, CloudWatchSource) and source.cluster == "prod" and source.retry.timeout == 2
    frame = source.fetch_cache_metrics("from-config", hours=600 / 3600, end=t0 + 599)
    assert frame["redis_connections"].tolist() == [4, 4]


def test_a_query_override_in_the_settings_is_checked_and_replaces_one_default():
    with pytest.raises(ConfigError, match="sources.cloudwatch.queries.db_memory_utilization.stat"):
        load_settings(sources={"cloudwatch": {"queries": {"db_memory_utilization": {
            "namespace": "AWS/RDS", "metric": "FreeableMemory", "stat": "Mean"}}}})
    settings = load_settings(sources={"cloudwatch": {"queries": {"db_memory_utilization": {
        "namespace": "AWS/RDS", "metric": "FreeableMemory", "dimensions": [["DBInstanceIdentifier", "$instance"]]}}}})
    source = build_sources(settings)["cloudwatch"]
    assert source.queries["db_memory_utilization"].query.metric == "FreeableMemory"
    assert source.queries["db_cpu_utilization"].query.metric == "CPUUtilization"


async def test_end_to_end_a_cloudwatch_trigger_is_forecast_over_grpc(moto_url, monkeypatch, start_app, client_for):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ramp = Ramp()
    put(client_for_moto(moto_url), "Helios/E2E", "load", {"Service": "web"}, ramp.samples())
    metadata = {"source": "cloudwatch", "namespace": "Helios/E2E", "metric": "load", "dimensions": "Service=web"}

    value = await served_forecast(start_app, client_for, ramp, metadata,
                                  cloudwatch={"endpoint_url": moto_url, "region": "eu-west-1"})

    assert value == pytest.approx(ramp.expected, abs=1e-6)
