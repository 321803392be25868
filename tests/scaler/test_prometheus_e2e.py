"""End to end: a real Prometheus holding a known load curve -> Helios -> GetMetrics over real gRPC.

The load steps up by 10 every 5 minutes, so the baseline model (moving average plus linear trend)
forecasts the next step exactly: last value + 10, with no error to widen its quantiles. Then
Prometheus is stopped (the last forecast is served while fresh, failures count up, then the
workload turns stale and GetMetrics is UNAVAILABLE for KEDA's fallback) and started again (Helios
recovers by itself).
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from ..helpers import fast_settings, sample_value
from ..prometheus_server import PrometheusServer

STEP = 300
START_LEVEL, RISE = 100.0, 10.0


def load_curve(first: int, last: int) -> list:
    """`helios_e2e_load` every 60 s: 100 in the first step, 10 more in each step after."""
    return [("helios_e2e_load", {"job": "web"}, t, START_LEVEL + RISE * ((t - first) // STEP))
            for t in range(first, last, 60)]


async def eventually(check, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)


@pytest.fixture
def virtual_now():
    """A clock that runs with the wall clock but starts 5 s into a step, so the test (a few seconds)
    never crosses a step boundary and the expected value stays put."""
    target = int(time.time()) // STEP * STEP + 5
    offset = target - time.time()
    return lambda: time.time() + offset


async def test_forecast_from_prometheus_survives_an_outage_and_recovers(tmp_path, start_app, client_for, virtual_now):
    now = virtual_now()
    step_now = int(now) // STEP * STEP
    first = step_now - 4 * 3600
    # Samples run an hour past now (the test's clock never gets there): the refresher's window ends at now.
    server = PrometheusServer(tmp_path, load_curve(first, step_now + 3600))
    server.start()
    try:
        settings = fast_settings(
            metrics={"history": "3h", "refresh_interval": 0.3, "staleness_limit": 8, "fetch_timeout": 2},
            sources={"prometheus": {"url": server.url, "attempts": 1, "timeout": 1}},
        )
        app = await start_app(settings, clock=virtual_now)
        client = client_for(app)
        metadata = {"source": "prometheus", "query": "helios_e2e_load", "targetValue": "10", "model": "baseline",
                    "leadTime": "5m", "horizon": "30m", "quantile": "0.9"}
        observed = START_LEVEL + RISE * ((step_now - first) // STEP)
        expected = max(observed + RISE, observed * 1.1)  # the next step of the ramp, past the HPA's tolerance

        async def served():
            return (await client.get_metrics(metadata)).metricValueFloat

        async def answer_is_forecast():
            return await served() != observed

        assert await eventually(answer_is_forecast), "no forecast within 20 s"
        assert await served() == pytest.approx(expected, abs=1e-6)
        labels = {"namespace": "shop", "scaledobject": "web"}
        scrape = client.scrape()
        assert sample_value(scrape, "helios_stale", **labels) == 0
        assert sample_value(scrape, "helios_refresh_consecutive_failures", **labels) == 0

        server.stop()

        async def failing():
            return (sample_value(client.scrape(), "helios_refresh_consecutive_failures", **labels) or 0) >= 1

        # Refreshes run every 0.3 s, but one may be busy fitting when Prometheus stops: allow for it,
        # well within the 8 s staleness limit.
        assert await eventually(failing, timeout=5)
        assert sample_value(client.scrape(), "helios_stale", **labels) == 0
        assert await served() == pytest.approx(expected, abs=1e-6)  # the last forecast, still served
        assert sample_value(client.scrape(), "helios_source_errors_total", source="prometheus",
                            kind="SourceUnavailable") >= 1

        async def stale():
            return sample_value(client.scrape(), "helios_stale", **labels) == 1

        assert await eventually(stale, timeout=15)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await served()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "staleness limit" in e.value.details()

        server.start()

        async def recovered():
            scrape = client.scrape()
            return sample_value(scrape, "helios_stale", **labels) == 0 and \
                sample_value(scrape, "helios_refresh_consecutive_failures", **labels) == 0

        assert await eventually(recovered, timeout=15)
        assert await served() == pytest.approx(expected, abs=1e-6)
    finally:
        server.stop()
