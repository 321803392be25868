"""End to end through Helios for a cloud source: a known load ramp in the cloud's local server ->
the refresher -> GetMetrics over real gRPC answers the forecast.

The load steps up by RISE every 5 minutes, so the baseline model (moving average plus linear trend)
forecasts the next step exactly: the last value + RISE.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from helios.engine.demand import HPA_TOLERANCE

from ...helpers import fast_settings

STEP = 300
START_LEVEL, RISE = 100.0, 10.0
METADATA = {"targetValue": "10", "model": "baseline", "leadTime": "5m", "horizon": "30m", "quantile": "0.9"}


class Ramp:
    """The wall clock, 5 s into the current step (so a test of a few seconds never crosses a step),
    and the ramp's samples, one a minute, from 4 hours before it to an hour after."""

    def __init__(self) -> None:
        target = int(time.time()) // STEP * STEP + 5
        self._offset = target - time.time()
        self.step_now = target - 5
        self.first = self.step_now - 4 * 3600

    def now(self) -> float:
        return time.time() + self._offset

    def samples(self) -> list[tuple[int, float]]:
        minutes = range(self.first, self.step_now + 3600, 60)
        return [(t, START_LEVEL + RISE * ((t - self.first) // STEP)) for t in minutes]

    @property
    def expected(self) -> float:
        """What GetMetrics serves: the ramp's next step, raised past the HPA's tolerance over the
        current one (engine.demand serves a rising forecast at least 1.1 x the observed value)."""
        observed = START_LEVEL + RISE * ((self.step_now - self.first) // STEP)
        return max(observed + RISE, observed * (1 + HPA_TOLERANCE))


async def served_forecast(start_app, client_for, ramp: Ramp, metadata: dict, sources: dict | None = None,
                          **source_settings) -> float:
    """Start Helios (with `sources` as they are, or built from `source_settings`) and return what
    GetMetrics answers once the first forecast is in, within 20 s."""
    settings = fast_settings(metrics={"history": "3h", "refresh_interval": 0.3, "fetch_timeout": 5},
                             sources=source_settings)
    app = await start_app(settings, clock=ramp.now, **({"sources": sources} if sources is not None else {}))
    client = client_for(app)
    observed = ramp.expected - RISE
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        value = (await client.get_metrics({**METADATA, **metadata})).metricValueFloat
        if value != observed:  # the observed value is the answer until a forecast is in
            return value
        await asyncio.sleep(0.1)
    pytest.fail("no forecast within 20 s")
