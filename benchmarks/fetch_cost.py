"""Fetch cost: what one refresh's fetch costs against a real Prometheus, the whole history window against
the newest steps that a refresh between refits asks for (scaler/runtime/kept.py).

A real `prometheus` (Debian's package) on loopback is loaded, through `promtool tsdb create-blocks-from
openmetrics`, with a gauge per workload sampled every minute over the window (7 days by default, the
default metrics.history). Each workload is then fetched by the Prometheus adapter both ways, in turn:
  - whole: [now - window, now], as every refresh did before, and as one every models.refit_interval does;
  - newest steps: from REFETCH_STEPS steps before the last one kept, to now.
and the table gives, per fetch, the median wall time, the adapter's CPU (this process: HTTP, JSON, the
grid rules; the calling thread's CPU time) and Prometheus' CPU (its process, over all the fetches of a
kind, counted in clock ticks).

    .venv/bin/python benchmarks/fetch_cost.py --workloads 20 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' Prometheus server helper

from helios.adapters.prometheus import PrometheusParams, PrometheusSource  # noqa: E402
from helios.scaler.runtime.kept import REFETCH_STEPS  # noqa: E402
from tests.prometheus_server import PrometheusServer  # noqa: E402

STEP = 300
SCRAPE = 60


def samples(workloads: int, window: int, end: int):
    t = np.arange(end - window, end + 1, SCRAPE)
    rng = np.random.default_rng(0)
    for w in range(workloads):
        values = 50 + 30 * np.sin(2 * np.pi * t / 86400 + w) + rng.normal(0, 3, t.size)
        labels = {"workload": f"w{w}"}
        yield from (("helios_bench_load", labels, int(ts), float(v)) for ts, v in zip(t, values, strict=True))


def cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window-days", type=float, default=7.0)
    args = parser.parse_args()
    window = int(args.window_days * 86400)
    end = int(time.time()) // SCRAPE * SCRAPE - SCRAPE
    with tempfile.TemporaryDirectory() as tmp, \
            PrometheusServer(Path(tmp), samples(args.workloads, window, end)) as server:
        source = PrometheusSource(server.url)
        server_proc = psutil.Process(server.process.pid)
        wall = {"whole": [], "newest": []}
        own = {"whole": 0.0, "newest": 0.0}
        prom = {"whole": 0.0, "newest": 0.0}
        points = {}
        for _ in range(args.rounds):
            for w in range(args.workloads):
                params = PrometheusParams(query=f'helios_bench_load{{workload="w{w}"}}')
                now = int(time.time())
                kept_end = now // STEP * STEP - STEP
                for kind, start in (("whole", now - window), ("newest", kept_end - REFETCH_STEPS * STEP)):
                    p0, c0, t0 = cpu(server_proc), time.thread_time(), time.perf_counter()
                    series = source.fetch(params, start, now, STEP)
                    wall[kind].append(time.perf_counter() - t0)
                    own[kind] += time.thread_time() - c0  # the adapter runs in this thread; exact, not in ticks
                    prom[kind] += cpu(server_proc) - p0
                    points[kind] = len(series)
        n = args.rounds * args.workloads
        print(f"| fetch ({args.workloads} workloads x {args.rounds} rounds, {args.window_days:g}-day window) | steps "
              "| wall ms, median | adapter CPU ms | Prometheus CPU ms |")
        print("|---|---|---|---|---|")
        for kind in ("whole", "newest"):
            print(f"| {kind} | {points[kind]} | {1000 * statistics.median(wall[kind]):.2f} | "
                  f"{1000 * own[kind] / n:.2f} | {1000 * prom[kind] / n:.2f} |")
        median = {kind: statistics.median(times) for kind, times in wall.items()}
        print(f"\nnewest steps / whole: wall {median['newest'] / median['whole']:.3f}, adapter CPU "
              f"{own['newest'] / own['whole']:.3f}, Prometheus CPU {prom['newest'] / prom['whole']:.3f}")


if __name__ == "__main__":
    main()
