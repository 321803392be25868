"""End to end: a real Prometheus holding cAdvisor and kube-state-metrics series, named and labelled as
they are in a cluster -> Helios's context feed -> resource recommendations in /metrics and Recommend.

Two workloads in namespace `shop`, two pods each, over the last 26 hours (DECREASE_CPU reads a day):
- `web` runs its memory at 90 % of a 512 MiB limit (one pod; the other at 50 %): the recommended
  limit must rise above 512 MiB;
- `batch` uses a tenth of its 1-core CPU request: the recommended request must fall.
Their load, what the triggers forecast, is a flat series of its own.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from helios.scaler.pb import admin_pb2 as pb

from ..helpers import fast_settings, sample_value
from ..prometheus_server import PrometheusServer

MIB = 1 << 20
HOURS = 26
SAMPLE = 60


def pod_series(now: int) -> list:
    """The samples of both workloads' pods, every minute over the last HOURS hours."""
    pods = {  # pod: (workload, cores used, working set bytes, cpu request, memory limit)
        "web-7d9f8-a1": ("web", 0.4, 0.90 * 512 * MIB, 0.5, 512 * MIB),
        "web-7d9f8-b2": ("web", 0.3, 0.50 * 512 * MIB, 0.5, 512 * MIB),
        "batch-5c6b-c3": ("batch", 0.10, 100 * MIB, 1.0, 1024 * MIB),
        "batch-5c6b-d4": ("batch", 0.08, 90 * MIB, 1.0, 1024 * MIB),
    }
    first = now - HOURS * 3600
    samples = []
    for t in range(first, now + 600, SAMPLE):
        for pod, (workload, cores, memory, request, limit) in pods.items():
            c = {"namespace": "shop", "pod": pod, "container": workload}
            samples += [
                ("container_cpu_usage_seconds_total", c, t, cores * (t - first)),  # a counter of core-seconds
                ("container_memory_working_set_bytes", c, t, memory),
                # cAdvisor's pod-level sums (container="") must not count twice
                ("container_memory_working_set_bytes", {**c, "container": ""}, t, 2 * memory),
                ("kube_pod_container_resource_requests", {**c, "resource": "cpu", "unit": "core"}, t, request),
                ("kube_pod_container_resource_limits", {**c, "resource": "memory", "unit": "byte"}, t, limit),
                ("kube_pod_container_status_restarts_total", c, t, 0.0),
            ]
        samples += [("helios_ctx_load", {"job": job}, t, 5.0) for job in ("web", "batch")]
    return samples


async def eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


def trigger(job: str) -> dict:
    return {"source": "prometheus", "query": f'helios_ctx_load{{job="{job}"}}', "targetValue": "10",
            "model": "baseline", "quantile": "0.9"}


async def test_memory_near_its_limit_and_idle_cpu_become_resource_recommendations(tmp_path, start_app, client_for):
    now = int(time.time()) // 300 * 300
    server = PrometheusServer(tmp_path, pod_series(now))
    server.start()
    try:
        settings = fast_settings(
            metrics={"history": "6h", "refresh_interval": 0.3, "fetch_timeout": 5},
            sources={"prometheus": {"url": server.url, "attempts": 1, "timeout": 5}},
            context={"interval": 2},
        )
        app = await start_app(settings)
        client = client_for(app)
        names = {job: await client.metric_name(trigger(job), name=job) for job in ("web", "batch")}
        for job in names:
            await client.get_metrics(trigger(job), names[job], name=job)

        async def recommended(job: str):
            ref = pb.WorkloadRef(namespace="shop", name=job, metric_name=names[job])
            try:
                r = await client.admin.Recommend(pb.RecommendRequest(workload=ref), timeout=10)
            except Exception:  # noqa: BLE001 - not ready yet
                return None
            return r if r.resources else None

        web = await eventually(lambda: recommended("web"))
        assert web is not None, "no resource recommendation for web within 30 s"
        memory = {r.resource: r for r in web.resources}["memory"]
        assert memory.current == 512 * MIB and memory.suggested > 512 * MIB
        assert "INCREASE_MEMORY" in [c.action for c in web.conditions]

        batch = await eventually(lambda: recommended("batch"))
        assert batch is not None, "no resource recommendation for batch within 30 s"
        cpu = {r.resource: r for r in batch.resources}["cpu"]
        assert cpu.current == 1.0 and cpu.suggested < 0.2  # p90 of 0.10 cores x 1.15, in millicores
        assert "DECREASE_CPU" in [c.action for c in batch.conditions]

        scrape = client.scrape()
        web_labels = {"namespace": "shop", "scaledobject": "web"}
        batch_labels = {"namespace": "shop", "scaledobject": "batch"}
        assert sample_value(scrape, "helios_container_memory_limit_bytes", **web_labels) == 512 * MIB
        assert sample_value(scrape, "helios_container_memory_working_set_bytes", **web_labels) == \
            pytest.approx(0.9 * 512 * MIB)  # the fuller pod, and only its containers
        assert sample_value(scrape, "helios_recommended_memory_limit_bytes", **web_labels) == memory.suggested
        assert sample_value(scrape, "helios_container_cpu_request_cores", **batch_labels) == 1.0
        assert sample_value(scrape, "helios_container_cpu_usage_cores", **batch_labels) == pytest.approx(0.10, rel=0.02)
        assert sample_value(scrape, "helios_recommended_cpu_request_cores", **batch_labels) == cpu.suggested
        assert sample_value(scrape, "helios_recommendation", action="INCREASE_MEMORY", **web_labels) == 1
        assert sample_value(scrape, "helios_context_age_seconds", **web_labels) < 60
        assert sample_value(scrape, "helios_context_fetch_failures_total", source="prometheus") is None

        # The container frame feeds the features: web's pods use 70 % of their memory limits together.
        features = app.store.get(("shop", "web", names["web"])).context.features
        assert features["memory_utilization"].values[-1] == pytest.approx(0.7)
        assert features["memory_bytes"].values[-1] == pytest.approx(1.4 * 512 * MIB)
        assert "db_connections" not in features  # no database named: none read

        # Prometheus goes away: the context stays what it was, each failed fetch is counted, the
        # forecast is untouched by it.
        server.stop()

        async def failed():
            return "context fetch failed" in app.store.get(("shop", "web", names["web"])).context.note

        assert await eventually(failed, 15), "no context failure noted"
        assert app.store.get(("shop", "web", names["web"])).context.memory_limit == 512 * MIB
        assert sample_value(client.scrape(), "helios_context_fetch_failures_total", source="prometheus") >= 1
    finally:
        server.stop()
