"""Faults: a metric source down, slow or talking garbage; a fit that hangs; a model worker killed; SIGTERM while
refreshing. Each time the server keeps answering, keeps its last good forecast, and recovers by itself."""

from __future__ import annotations

import asyncio
import functools
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import grpc
import numpy as np
import psutil
import pytest

from helios.engine.errors import SourceUnavailable
from helios.engine.models import MODELS
from helios.engine.models.naive import NaiveModel
from helios.engine.types import Series
from helios.scaler import app as app_module
from helios.scaler.runtime.runner import ModelRunner
from helios.scaler.runtime.state import answer

from ..helpers import FILE_ROOTS_ENV, STEP, daily_wave, fast_settings, write_trace

# --- a test-only model whose fit hangs while a flag file exists; registered in the workers by the runner's
# initializer, so it crosses the spawn boundary the way a real model's import does.

_hang_flag: str | None = None


class SleepyModel(NaiveModel):
    name = "sleepy"

    def _fit(self, history):
        if _hang_flag and os.path.exists(_hang_flag):
            time.sleep(3600)  # a Prophet fit that never converges
        return super()._fit(history)


def register_sleepy(flag: str) -> None:
    global _hang_flag
    _hang_flag = flag
    MODELS["sleepy"] = SleepyModel


@pytest.fixture
def sleepy(monkeypatch, tmp_path):
    """Apps started in this test fit `model: sleepy` in workers that know it; returns the flag file that
    makes its fits hang."""
    flag = tmp_path / "hang"
    monkeypatch.setitem(MODELS, "sleepy", SleepyModel)  # the server validates trigger metadata against it
    monkeypatch.setattr(app_module, "ModelRunner",
                        functools.partial(ModelRunner, initializer=register_sleepy, initargs=(str(flag),)))
    return flag


# --- a test-only metric source that can be told to fail in each way a real one does.

class FaultySource:
    name: ClassVar[str] = "faulty"

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self) -> None:
        self.mode = "ok"

    def fetch(self, params, start: int, end: int, step: int) -> Series:
        end = end // STEP * STEP
        ts = np.arange(end - 287 * STEP, end + 1, STEP)
        good = 100 + 50 * np.sin(2 * math.pi * np.arange(ts.size) / 288)
        match self.mode:
            case "ok":
                return Series(ts, good)
            case "down":
                raise SourceUnavailable("connection refused")
            case "slow":
                time.sleep(1.5)  # beyond fetch_timeout
                return Series(ts, good)
            case "nan":
                return Series(ts, np.full(ts.size, np.nan))
            case "inf":
                return Series(ts, np.where(np.arange(ts.size) % 7, good, np.inf))
            case "unsorted":
                return Series(ts[::-1], good)
            case "strings":
                return Series(ts, np.array(["high"] * ts.size))
            case "not a series":
                return [("yesterday", "lots")]
        raise AssertionError(self.mode)


def status(app, key):
    snap = app.store.get(key)
    return snap, answer(snap, snap.trigger, time.time(), app.settings.metrics.staleness_limit)


async def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


FAULTS = ["down", "slow", "nan", "inf", "unsorted", "strings", "not a series"]


async def test_a_failing_source_keeps_the_last_forecast_served_and_recovery_is_automatic(start_app, client_for):
    """One server through every fault in turn (one app: a worker process takes seconds to start)."""
    source = FaultySource()
    app = await start_app(fast_settings(metrics={"refresh_interval": 0.1, "fetch_timeout": 0.5}),
                          sources={"faulty": source})
    client = client_for(app)
    # A fixed quantile: the plan is the forecast's, whatever a provisioning replay would choose for this wave.
    md = {"source": "faulty", "targetValue": "10", "quantile": "0.7"}
    first = await client.get_metrics(md)
    key = ("shop", "web", first.metricName)
    await wait_for(lambda: app.store.get(key).forecast is not None, what="the first forecast")
    for fault in FAULTS:
        forecast = app.store.get(key).forecast
        source.mode = fault
        await wait_for(lambda: app.store.get(key).consecutive_failures >= 2, what=f"failed refreshes ({fault})")
        snap, ans = status(app, key)
        assert snap.forecast is forecast and ans.basis == "forecast", fault  # the last good forecast, untouched
        assert snap.last_error, fault  # and the failure is on record
        during = await client.get_metrics(md, metric_name=first.metricName)  # KEDA still gets an answer
        assert math.isfinite(during.metricValueFloat) and during.metricValueFloat > 0, fault
        source.mode = "ok"
        await wait_for(lambda: app.store.get(key).consecutive_failures == 0, what=f"recovery from {fault}")
    assert app.refresher.tracked == 1  # the refresh loop survived every kind of fault


async def sleepy_workload(start_app, client_for, tmp_path, **models):
    """A workload on the `sleepy` model with its first forecast made, and the one worker's pid."""
    trace = write_trace(tmp_path / "web.csv", daily_wave())
    app = await start_app(fast_settings(metrics={"refresh_interval": 0.2}, models=models))
    client = client_for(app)
    md = {"source": "file", "path": str(trace), "targetValue": "10", "model": "sleepy"}
    first = await client.get_metrics(md)
    key = ("shop", "web", first.metricName)
    await wait_for(lambda: app.store.get(key).forecast is not None, what="the first forecast")
    good = app.store.get(key).forecast
    (worker,) = await app.runner.worker_pids()
    return app, client, md, first, key, good, worker


async def test_a_hung_fit_is_cut_off_by_the_time_budget_and_its_worker_replaced(
    start_app, client_for, sleepy, tmp_path
):
    app, client, md, first, key, good, worker = await sleepy_workload(
        start_app, client_for, tmp_path, fit_timeout=1.5, refit_interval=0.5)
    sleepy.touch()  # from now on every fit hangs
    await wait_for(lambda: "exceeded 1.5s" in app.store.get(key).last_error, what="the fit timeout", timeout=20)
    assert app.store.get(key).last_error_kind == "FitTimeout"
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE
    started = time.perf_counter()
    during = await client.get_metrics(md, metric_name=first.metricName)
    assert time.perf_counter() - started < 1.0 and during.metricValueFloat > 0  # answered at once, meanwhile
    assert app.store.get(key).forecast is good  # the last good forecast is still what is served
    sleepy.unlink()
    await wait_for(lambda: app.store.get(key).forecast is not good, what="a fresh fit", timeout=20)
    assert worker not in await app.runner.worker_pids()  # a new worker took the stuck one's place


async def test_a_killed_worker_is_replaced_and_the_workload_recovers(start_app, client_for, sleepy, tmp_path):
    app, client, md, first, key, good, worker = await sleepy_workload(
        start_app, client_for, tmp_path, fit_timeout=30, refit_interval=0.3)
    sleepy.touch()  # hold the next fit in the worker, then kill the worker under it
    await asyncio.sleep(1.0)
    os.kill(worker, signal.SIGKILL)
    await wait_for(lambda: app.store.get(key).last_error_kind == "WorkerDied", what="the worker's death on record")
    assert (await client.get_metrics(md, metric_name=first.metricName)).metricValueFloat > 0
    assert app.store.get(key).forecast is good
    sleepy.unlink()
    await wait_for(lambda: app.store.get(key).forecast is not good and app.store.get(key).consecutive_failures == 0,
                   what="recovery on a new worker", timeout=20)


HELIOS = str(Path(sys.executable).parent / "helios")


async def test_sigterm_during_a_refresh_stops_cleanly_and_leaves_no_worker_behind(tmp_path):
    """A real `helios serve` process, stopped while its worker fits Prophet."""
    trace = write_trace(tmp_path / "web.csv", daily_wave(n=288 * 4))
    env = {**os.environ, **FILE_ROOTS_ENV, "HELIOS_SERVER__SHUTDOWN_GRACE": "1s", "HELIOS_SECURITY__HEALTH_PORT": "0",
           "HELIOS_METRICS__FIRST_ANSWER_WAIT": "0"}
    log = open(tmp_path / "helios.log", "w+")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(HELIOS, "serve", "--grpc-port", "0", "--metrics-port", "0",
                                                env=env, stderr=log, start_new_session=True)
    try:
        port = await _served_port(tmp_path / "helios.log")
        workers = {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
        assert workers
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            from helios.scaler.pb import externalscaler_pb2 as pb
            from helios.scaler.pb import externalscaler_pb2_grpc as pb_grpc

            stub = pb_grpc.ExternalScalerStub(channel)
            ref = pb.ScaledObjectRef(name="web", namespace="shop", scalerMetadata={
                "source": "file", "path": str(trace), "targetValue": "10", "model": "prophet"})
            spec = await stub.GetMetricSpec(ref, timeout=5)
            request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName=spec.metricSpecs[0].metricName)
            try:  # registers the workload and starts its first refresh: fetch, then a Prophet fit
                await stub.GetMetrics(request, timeout=5)
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE  # no data yet
        await asyncio.sleep(0.5)  # the Prophet fit is under way in the worker
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        await wait_for(lambda: not any(psutil.pid_exists(w) and psutil.Process(w).status() != psutil.STATUS_ZOMBIE
                                       for w in workers), timeout=10, what="the workers to end")
        assert "Traceback" not in (tmp_path / "helios.log").read_text()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        log.close()


async def _served_port(log: Path) -> int:
    import re

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"helios serving.*?grpc_port\W+(\d+)", log.read_text())
        if m:
            return int(m.group(1))
        await asyncio.sleep(0.1)
    pytest.fail("helios serve did not start: " + log.read_text())
