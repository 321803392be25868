"""`helios serve` as a user runs it: a separate process, the embedded demo, SIGTERM to stop."""

import asyncio
import json
import os
import signal
import socket
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helios.scaler.pb import externalscaler_pb2 as pb
from helios.scaler.pb import externalscaler_pb2_grpc as pb_grpc

from .helpers import sample_value

HELIOS = str(Path(sys.executable).parent / "helios")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(tmp_path):
    """A `helios serve` process in its own process group, logging to a file (a pipe nobody reads
    could fill up and block it)."""
    grpc_port, metrics_port = free_port(), free_port()
    env = {**os.environ, "HELIOS_SERVER__SHUTDOWN_GRACE": "2s", "HELIOS_SERVER__STREAM_CHECK_INTERVAL": "0.2",
           "HELIOS_SECURITY__HEALTH_PORT": "0"}  # 0: a free port, so parallel runs never collide on 6001
    log = open(tmp_path / "helios.log", "w+")  # noqa: SIM115 - closed after the process ends
    proc = await asyncio.create_subprocess_exec(
        HELIOS, "serve", "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port),
        env=env, stderr=log, start_new_session=True,
    )
    proc.log = log
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(100):
        try:
            r = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if r.status == health_pb2.HealthCheckResponse.SERVING:
                break
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("helios serve did not become healthy within 20 s: " + (tmp_path / "helios.log").read_text())
    yield proc, channel, metrics_port
    await channel.close()
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    log.close()


async def test_serves_a_live_demo_forecast_with_no_configuration(served):
    proc, channel, metrics_port = served
    scaler = pb_grpc.ExternalScalerStub(channel)
    ref = pb.ScaledObjectRef(name="web", namespace="shop", scalerMetadata={"source": "demo", "targetValue": "50"})
    spec = (await scaler.GetMetricSpec(ref, timeout=5)).metricSpecs[0]
    value = (await scaler.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName=spec.metricName),
                                     timeout=5)).metricValues[0]
    assert 10 < value.metricValueFloat < 1000  # the demo trace is 22 to 342 requests/s
    assert (await scaler.IsActive(ref, timeout=5)).result is True
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    served_value = sample_value(text, "helios_metric_value", namespace="shop", scaledobject="web")
    assert served_value == pytest.approx(value.metricValueFloat, rel=0.2)


async def test_sigterm_flips_health_then_lets_streams_finish_within_the_grace(served):
    proc, channel, _ = served
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await asyncio.wait_for(watch.read(), 5)).status == health_pb2.HealthCheckResponse.SERVING
    scaler = pb_grpc.ExternalScalerStub(channel)
    stream = scaler.StreamIsActive(
        pb.ScaledObjectRef(name="web", namespace="shop", scalerMetadata={"source": "demo", "targetValue": "50"}))
    assert (await asyncio.wait_for(stream.read(), 5)).result is True

    started = asyncio.get_running_loop().time()
    proc.send_signal(signal.SIGTERM)
    assert (await asyncio.wait_for(watch.read(), 5)).status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    took = asyncio.get_running_loop().time() - started
    assert 1.5 <= took < 10  # the open stream held the shutdown for the 2 s grace, no longer
    proc.log.seek(0)
    logs = [json.loads(line) for line in proc.log.read().splitlines() if line.startswith("{")]
    messages = [e["message"] for e in logs]  # a refresh in flight may still log during the grace period
    assert messages[-1] == "helios stopped" and "shutting down" in messages
