"""Replicas behind one Service agree: two `helios serve` processes given the same data and the same trained
artifact answer GetMetrics (and Predict) identically for the same workload."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from helios.scaler.cli import main
from helios.scaler.pb import admin_pb2, admin_pb2_grpc
from helios.scaler.pb import externalscaler_pb2 as pb
from helios.scaler.pb import externalscaler_pb2_grpc as pb_grpc

from ..helpers import FILE_ROOTS_ENV, STEP, daily_wave, write_trace
from .test_train import scaled_object

HELIOS = str(Path(sys.executable).parent / "helios")


def serve(folder: Path, name: str, artifacts: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, **FILE_ROOTS_ENV, "HELIOS_SECURITY__HEALTH_PORT": "0",
           "HELIOS_MODELS__ARTIFACTS": str(artifacts), "HELIOS_METRICS__FIRST_ANSWER_WAIT": "2s"}
    log = folder / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([HELIOS, "serve", "--grpc-port", "0", "--metrics-port", "0"], env=env, stderr=out,
                                start_new_session=True)
    return proc, log


def port_of(proc: subprocess.Popen, log: Path) -> int:
    deadline = time.monotonic() + 60
    while not (m := re.search(r"helios serving.*?grpc_port\W+(\d+)", log.read_text())):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return int(m.group(1))


def test_two_replicas_answer_the_same_from_the_same_data_and_artifact(tmp_path):
    trace = write_trace(tmp_path / "web.csv", daily_wave(n=288 * 4))
    md = {"source": "file", "path": str(trace), "targetValue": "10", "model": "prophet"}
    assert main(["train", str(scaled_object(tmp_path, {"web": md})), "--out", str(tmp_path / "art"),
                 "--workers", "1"]) == 0
    replicas = [serve(tmp_path, name, tmp_path / "art") for name in ("a", "b")]
    try:
        channels = [grpc.insecure_channel(f"127.0.0.1:{port_of(*r)}") for r in replicas]
        ref = pb.ScaledObjectRef(name="web", namespace="shop", scalerMetadata=md)
        scalers = [pb_grpc.ExternalScalerStub(c) for c in channels]
        names = {s.GetMetricSpec(ref, timeout=10).metricSpecs[0].metricName for s in scalers}
        assert len(names) == 1  # the metric name is derived from the trigger alone
        request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName=names.pop())
        for s in scalers:  # registers the workload; each replica adopts the stored model
            try:
                s.GetMetrics(request, timeout=10)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE
        admins = [admin_pb2_grpc.AdminStub(c) for c in channels]
        deadline = time.monotonic() + 60
        while True:
            rows = [a.ListWorkloads(admin_pb2.ListWorkloadsRequest(), timeout=10).workloads for a in admins]
            # ... and each has replayed the workload to choose its plan, so both serve the same one.
            if all(r and r[0].model_version and r[0].HasField("served_value") and r[0].provisioning.replayed_hours
                   for r in rows):
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
        assert rows[0][0].model_version == rows[1][0].model_version  # the same trained model
        assert rows[0][0].provisioning.plan == rows[1][0].provisioning.plan  # the same replay, the same choice
        if STEP - time.time() % STEP < 3:
            time.sleep(4)  # not across a step boundary: both answers must see the same lead window
        values = [s.GetMetrics(request, timeout=10).metricValues[0] for s in scalers]
        assert values[0].metricValueFloat == values[1].metricValueFloat > 0
        assert values[0].metricValue == values[1].metricValue
        workload = admin_pb2.WorkloadRef(namespace="shop", name="web", metric_name=request.metricName)
        predictions = [a.Predict(admin_pb2.PredictRequest(workload=workload), timeout=10) for a in admins]
        assert [(p.timestamp.seconds, p.value, p.lower, p.upper) for p in predictions[0].points] == \
            [(p.timestamp.seconds, p.value, p.lower, p.upper) for p in predictions[1].points]
        for c in channels:
            c.close()
    finally:
        for proc, _ in replicas:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in replicas:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail("a replica did not stop on SIGTERM")
