"""The embedded default source: a synthetic week of web traffic replayed against the wall clock.

`helios serve` with no configuration serves a live forecast to any trigger with `source: demo`, so
Helios can be tried without a cluster, a Prometheus or a cloud account. The trace is generated with a
fixed seed: requests per second with a daily cycle (peak mid-afternoon UTC, quiet nights), quieter
weekends, noise, and one sudden surge a day at a different hour, the case predictive scaling is for.

Its pods (`fetch_resource_metrics`) follow that load: CPU in proportion to it, far below a generous
request, and a working set that climbs towards its memory limit at the daily peak, so the demo shows
both resource recommendations, DECREASE_CPU and, at busy hours, INCREASE_MEMORY.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import ClassVar

import numpy as np
import pandas as pd

from helios.engine.types import Series

from .metrics import RESOURCE_METRICS
from .replay import replay

TRACE_START = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())  # a Monday, 00:00 UTC
TRACE_STEP = 300
TRACE_DAYS = 7
SEED = 20240101
MIB = 1 << 20
# The demo's pods: cores and working set per request/s of load, on top of an idle baseline.
POD_CPU_REQUEST, POD_CPU_PER_RPS = 2.0, 0.0015
POD_MEMORY_LIMIT, POD_MEMORY_BASE, POD_MEMORY_PER_RPS = 512 * MIB, 380 * MIB, 0.4 * MIB


def demo_trace(seed: int = SEED) -> Series:
    """One week at 5-minute steps, in requests per second (about 25 at night to 250 at peaks)."""
    rng = np.random.default_rng(seed)
    n = TRACE_DAYS * 86400 // TRACE_STEP
    t = np.arange(n) * TRACE_STEP
    hour = (t % 86400) / 3600
    day = t // 86400
    daily = ((1 - np.cos(2 * np.pi * (hour - 3) / 24)) / 2) ** 1.5  # 0 at 03:00, 1 at 15:00
    weekly = np.where(day >= 5, 0.6, 1.0)  # Saturday and Sunday
    load = 25 + 140 * daily * weekly
    noise = np.exp(np.convolve(rng.normal(0, 0.04, n), np.ones(3) / np.sqrt(3), mode="same"))
    surge = np.zeros(n)
    for d in range(TRACE_DAYS):
        begin = d * 288 + int(rng.integers(8 * 12, 20 * 12))  # between 08:00 and 20:00
        height = rng.uniform(0.8, 1.4)
        length = int(rng.integers(6, 10))  # 30 to 50 minutes
        shape = np.concatenate([np.linspace(0.3, 1, 3), np.ones(length - 5), np.linspace(0.7, 0.2, 2)])
        surge[begin : begin + shape.size] = height * shape
    values = load * noise * (1 + surge)
    return Series(TRACE_START + t, np.round(values, 2))


@dataclass(frozen=True)
class DemoParams:
    """The demo source reads no keys of its own."""


class DemoSource:
    name: ClassVar[str] = "demo"
    Params: ClassVar[type] = DemoParams

    @cached_property
    def trace(self) -> Series:
        return demo_trace()

    def fetch(self, params: DemoParams, start: int, end: int, step: int) -> Series:
        return replay(self.trace, start, end, step)

    def fetch_resource_metrics(self, namespace: str, hours: float, *, workload: str | None = None,
                               end: float | None = None) -> pd.DataFrame:
        """The demo pods' usage, requests and limits over the last `hours`, on the 5-minute grid (the
        frames' shape: adapters/frames.py). Any namespace and workload get the same pods."""
        if hours <= 0:
            raise ValueError(f"hours must be > 0, got {hours}")
        end = datetime.now(UTC).timestamp() if end is None else end
        load = replay(self.trace, int(end - hours * 3600), int(end), TRACE_STEP)
        n = len(load)
        columns = {
            "pod_cpu_cores": POD_CPU_PER_RPS * load.values,
            "pod_memory_bytes": POD_MEMORY_BASE + POD_MEMORY_PER_RPS * load.values,
            "pod_cpu_request_cores": np.full(n, POD_CPU_REQUEST),
            "pod_cpu_limit_cores": np.full(n, np.nan),  # no CPU limit, as is common
            "pod_memory_request_bytes": np.full(n, POD_MEMORY_BASE),
            "pod_memory_limit_bytes": np.full(n, float(POD_MEMORY_LIMIT)),
        }
        index = pd.DatetimeIndex(pd.to_datetime(load.timestamps, unit="s", utc=True), name="timestamp")
        return pd.DataFrame(columns, index=index, columns=list(RESOURCE_METRICS))
