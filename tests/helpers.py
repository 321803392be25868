"""Test helpers: CSV traces, fast settings, a gRPC client over loopback, exposition parsing."""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from helios.scaler.app import HeliosApp
from helios.scaler.config.settings import load_settings
from helios.scaler.pb import admin_pb2_grpc, externalscaler_pb2, externalscaler_pb2_grpc

STEP = 300
# `helios serve` run as a process by a test may read the traces tests write (pytest's temporary folders).
FILE_ROOTS_ENV = {"HELIOS_SOURCES__FILE__ROOTS": json.dumps([tempfile.gettempdir()])}


def write_trace(path: Path, values, end: float | None = None, step: int = STEP) -> Path:
    """A `timestamp,value` CSV whose last sample is at the last step boundary before `end` (now)."""
    end = int((end if end is not None else time.time()) // step * step)
    start = end - step * (len(values) - 1)
    lines = ["timestamp,value"] + [f"{start + i * step},{v}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def daily_wave(n: int = 576, base: float = 100.0, amplitude: float = 50.0) -> np.ndarray:
    """Two days of 5-minute samples of a smooth daily cycle, ending at now."""
    t = np.arange(n)
    return base + amplitude * np.sin(2 * math.pi * t / 288)


def fast_settings(**sections):
    """Settings for tests: ephemeral ports, quick loops, text logs."""
    layered = {
        "server": {"grpc_port": 0, "metrics_port": 0, "shutdown_grace": 1, "stream_check_interval": 0.05},
        "metrics": {"refresh_interval": 3600, "staleness_limit": 7200, "first_answer_wait": 2},
        "log_format": "text",
        "security": {"health_port": 0},
        "anomaly": {"detector": "zscore"},  # xgboost's fit takes seconds per workload; its own tests use it
        # baseline's forecasts are exact to recompute in a test and instant; ets (the default) has its own tests
        "models": {"default": "baseline"},
        # The traces tests write live in pytest's temporary folders: `source: file` may read those only.
        "sources": {"file": {"roots": [tempfile.gettempdir()]}},
    }
    for section, values in sections.items():
        layered[section] = {**layered.get(section, {}), **values}
    return load_settings(**layered)


class Client:
    """Stubs over one real loopback channel to an app."""

    def __init__(self, app: HeliosApp) -> None:
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}")
        self.scaler = externalscaler_pb2_grpc.ExternalScalerStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)
        self.metrics_url = f"http://127.0.0.1:{app.metrics_port}/metrics"

    @staticmethod
    def ref(metadata: dict, name: str = "web", namespace: str = "shop"):
        return externalscaler_pb2.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=metadata)

    async def metric_name(self, metadata: dict, **ref) -> str:
        spec = await self.scaler.GetMetricSpec(self.ref(metadata, **ref), timeout=5)
        return spec.metricSpecs[0].metricName

    async def get_metrics(self, metadata: dict, metric_name: str | None = None, **ref) -> float:
        name = metric_name or await self.metric_name(metadata, **ref)
        request = externalscaler_pb2.GetMetricsRequest(scaledObjectRef=self.ref(metadata, **ref), metricName=name)
        response = await self.scaler.GetMetrics(request, timeout=5)
        return response.metricValues[0]

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return r.read().decode()


def sample_value(exposition: str, name: str, **labels) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None when absent."""
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


async def provisioned(app, timeout: float = 60.0) -> None:
    """Wait until every tracked workload's first provisioning replay has ended (a choice, or the note of a
    cold start or failure): from then on its answers no longer change with the plan."""
    for _ in range(int(timeout / 0.05)):
        snaps = app.store.all()
        if snaps and all(s.trigger.slo is None or s.provisioning is not None or s.provisioning_note for s in snaps):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no provisioning replay ended within {timeout}s")


async def until(check, timeout: float = 20.0, what: str = "the condition"):
    """Poll `check` every 50 ms until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        await asyncio.sleep(0.05)
