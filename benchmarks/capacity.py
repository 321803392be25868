"""Capacity: how refresh CPU, memory and GetMetrics latency grow with the number of workloads.

For each size, a real HeliosApp (gRPC over loopback, model workers in processes) serves N synthetic
workloads of mixed shapes (daily cycle, flat with noise, trend, spikes). After every workload has its
first forecast and its insights, the benchmark runs one full refresh cycle alone (new data for every
workload: fetch, update, forecast, insights), then a second while clients call GetMetrics, and measures:
  - the first cycle's CPU seconds (server process + model workers, and the server's part) and wall seconds,
  - memory per workload between fits (RSS of the server process over its RSS before registration),
  - GetMetrics p50/p99 during the second cycle,
  - the context feed's CPU per workload (runtime/context.py): a first fetch of a day, and the fetch of
    one new step that every context interval brings (the frames' real grid rules over per-pod series
    held in memory at 60-s resolution, two pods per workload; a real server's own work and the
    client's JSON parsing are not in it),
then fits the growth exponent between sizes (cost ~ N^k: k <= 1 is linear or better). Finally it trains
--train workloads sequentially in one process and on a Dask LocalCluster of 2 workers.

    .venv/bin/python benchmarks/capacity.py --sizes 1000,5000 --train 200

With --spread 30 each cycle's refreshes start at random over 30 s, as a server's jittered loops do, so
the worker runner's batches are as small as they would be there (all at once, they are full).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import psutil
import yaml

from helios.adapters.frames import MetricFrames
from helios.adapters.grid import RawSeries
from helios.adapters.metrics import RESOURCE_METRICS, MetricQuery
from helios.engine.types import Series
from helios.scaler.app import HeliosApp
from helios.scaler.config.settings import load_settings
from helios.scaler.pb import externalscaler_pb2 as pb
from helios.scaler.tools.training import Job, read_triggers, train_all, train_one

STEP = 300
SHAPES = ("daily", "flat", "trend", "spiky")


def shape_values(shape: str, seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 20 + seed % 200
    match shape:
        case "daily":
            v = level * (1 + 0.5 * np.sin(2 * np.pi * t / 288))
        case "flat":
            v = np.full(n, float(level))
        case "trend":
            v = level + 0.05 * t
        case _:
            v = level + 5 * level * (rng.random(n) < 0.01)
    return np.maximum(v + rng.normal(0, 0.05 * level, n), 0)


class SyntheticSource(MetricFrames):
    """`days` of 5-minute samples per workload (two by default) up to the source's clock, which moves a step per cycle,
    answered for the window asked (a refresh asks for its newest steps, runtime/kept.py); each workload has
    two pods, whose usage, requests and limits the frames read at 60-s resolution."""

    name: ClassVar[str] = "synthetic"
    queries = {key: MetricQuery(key) for key in RESOURCE_METRICS}
    max_gap_steps = 2
    POD_VALUES: ClassVar[dict[str, float]] = {
        "pod_cpu_cores": 0.3, "pod_memory_bytes": 300 * 2**20, "pod_cpu_request_cores": 1.0,
        "pod_cpu_limit_cores": 2.0, "pod_memory_request_bytes": 256 * 2**20, "pod_memory_limit_bytes": 512 * 2**20}
    MAX_SHIFT = 64  # cycles the values are made for

    @dataclass(frozen=True)
    class Params:
        shape: str
        seed: int

    def __init__(self, days: float = 2.0) -> None:
        super().__init__(step=STEP, clock=self.now)
        self.steps = int(days * 86400 // STEP)
        self.shift = 0  # steps added to the wall clock: each refresh cycle sees one new sample
        self.first = (int(time.time()) // STEP - self.steps + 1) * STEP  # the first sample's timestamp
        self._values: dict[object, np.ndarray] = {}  # by Params

    def now(self) -> float:
        return time.time() + self.shift * STEP

    def _query(self, query, grid, step, end) -> list[RawSeries]:
        times = np.arange(int(grid[0]), int(end) + 1, 60)
        rng = np.random.default_rng(int(grid[0]) % 1000)
        base = self.POD_VALUES[query]
        return [RawSeries({"pod": f"p{i}"}, times, base * (1 + 0.1 * rng.random(times.size))) for i in range(2)]

    def fetch(self, params, start: int, end: int, step: int) -> Series:
        values = self._values.get(params)
        if values is None:
            values = self._values[params] = shape_values(params.shape, params.seed, self.steps + self.MAX_SHIFT)
        first = max(self.first, -(-start // STEP) * STEP)
        last = (int(time.time()) // STEP + self.shift) * STEP
        i, j = (first - self.first) // STEP, (last - self.first) // STEP + 1
        return Series(np.arange(first, last + 1, STEP), values[i:j])


async def refresh_cycle(app: HeliosApp, keys: list, spread: float = 0.0) -> None:
    """Refresh every workload once and wait for the insights each refresh starts; with `spread`, each
    refresh starts at a random moment within that many seconds, as a server's jittered refresh loops do
    (all at once, the worker runner hands its calls over in full batches)."""
    rng = np.random.default_rng(1)

    async def one(key, delay: float):
        await asyncio.sleep(delay)
        await app.refresher.refresh(key)

    await asyncio.gather(*(one(k, d) for k, d in zip(keys, rng.uniform(0, spread, len(keys)), strict=True)))
    await insights_done(app, keys)


async def insights_done(app: HeliosApp, keys: list) -> None:
    await asyncio.gather(*(t for k in keys if (t := app.workloads.get(k).insights) is not None))


def own_cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


@contextlib.contextmanager
def collector_passes():
    """The cycle collector's passes meanwhile in this process (server and benchmark): (generation, seconds)."""
    passes: list[tuple[int, float]] = []
    started = [0.0]

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            passes.append((info["generation"], time.perf_counter() - started[0]))

    gc.callbacks.append(timed)
    try:
        yield passes
    finally:
        gc.callbacks.remove(timed)


def tree_cpu(proc: psutil.Process) -> float:
    procs = [proc, *proc.children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def measure(n: int, detector: str, spread: float = 0.0, days: float = 2.0, cycles: int = 1) -> dict:
    import grpc

    from helios.scaler.pb import externalscaler_pb2_grpc as pb_grpc

    source = SyntheticSource(days)
    settings = load_settings(
        server={"grpc_port": 0, "metrics_port": 0}, log_level="WARNING",
        metrics={"refresh_interval": 86400, "staleness_limit": 86400, "first_answer_wait": 0},
        models={"workers": 2, "refit_interval": 86400}, security={"health_port": 0}, anomaly={"detector": detector},
        context={"interval": 86400},  # one fetch at registration; the benchmark times its own
        # No provisioning replays: they run at refits, not at each sample (benchmarks/provisioning_cost.py
        # measures them), and the first fits' replays, about a second each, would still be running in the
        # replay worker during the measured cycle.
        provisioning={"target_shortfall": None},
    )
    app = HeliosApp(settings, sources={"synthetic": source})
    await app.start()
    me = psutil.Process()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}")
    stub = pb_grpc.ExternalScalerStub(channel)
    try:
        rss_before = me.memory_info().rss
        refs = [pb.ScaledObjectRef(name=f"w{i}", namespace="bench", scalerMetadata={
            "source": "synthetic", "shape": SHAPES[i % 4], "seed": str(i), "targetValue": "10"}) for i in range(n)]
        names = []
        for i in range(0, n, 500):
            specs = await asyncio.gather(*(stub.GetMetricSpec(r, timeout=60) for r in refs[i:i + 500]))
            names += [s.metricSpecs[0].metricName for s in specs]
        for i in range(0, n, 500):  # the first GetMetrics registers a workload and starts its refreshes
            await asyncio.gather(*(stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=r, metricName=m), timeout=60)
                                   for r, m in zip(refs[i:i + 500], names[i:i + 500], strict=True)),
                                 return_exceptions=True)
        keys = [("bench", f"w{i}", names[i]) for i in range(n)]
        t0 = time.perf_counter()
        while sum(app.store.get(k) is not None and app.store.get(k).forecast is not None for k in keys) < n:
            await asyncio.sleep(0.5)
            if time.perf_counter() - t0 > 1800:
                raise SystemExit("first fits did not finish within 30 min")
        first_fit_s = time.perf_counter() - t0
        # The context feed's first fetches (about 20 ms of CPU each, in threads of their own) too: some were
        # still running during the measured cycle, and counted in it.
        while any(app.store.get(k).context is None for k in keys):
            await asyncio.sleep(0.5)
        await insights_done(app, keys)  # else a cycle's insights are skipped while the first ones still run
        rss_per = (me.memory_info().rss - rss_before) / n

        # The first `cycles` cycles, alone: what a new sample costs, insights included (they run in tasks of
        # their own). A spread-out cycle lasts longer: the CPU an idle server spends over as long is taken off.
        cycle_cpu, cycle_server, cycle_passes = [], [], []
        for _ in range(cycles):
            idle_server = idle_cpu = 0.0
            if spread:
                server0, tree0 = own_cpu(me), tree_cpu(me)
                await asyncio.sleep(spread)
                idle_server, idle_cpu = own_cpu(me) - server0, tree_cpu(me) - tree0
            source.shift += 1  # a new sample for everyone: the cycle updates every model
            server0, tree0, wall0 = own_cpu(me), tree_cpu(me), time.perf_counter()
            with collector_passes() as passes:
                await refresh_cycle(app, keys, spread)
            wall = time.perf_counter() - wall0
            scale = wall / spread if spread else 0.0
            cycle_server.append(own_cpu(me) - server0 - idle_server * scale)
            cycle_cpu.append(tree_cpu(me) - tree0 - idle_cpu * scale)
            cycle_passes.append(passes)

        # One more cycle, with GetMetrics callers: the latency a refresh cycle inflicts on the serving path.
        source.shift += 1
        latencies: list[float] = []
        done = asyncio.Event()

        async def caller():
            rng = np.random.default_rng(0)
            while not done.is_set():
                i = int(rng.integers(n))
                started = time.perf_counter()
                await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=refs[i], metricName=names[i]), timeout=5)
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.002)

        callers = [asyncio.create_task(caller()) for _ in range(4)]
        await refresh_cycle(app, keys, spread)
        done.set()
        await asyncio.gather(*callers)
        p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
        context_full, context_new = await context_cost(app, keys, source, me)
        return {"n": n, "first_fit_s": first_fit_s, "cycle_cpu_s": float(np.median(cycle_cpu)),
                "cycle_server_cpu_s": float(np.median(cycle_server)), "cycles_cpu_s": cycle_cpu,
                "cycle_wall_s": wall, "gc_passes": cycle_passes[0],
                "rss_per_workload_kib": rss_per / 1024, "p50_ms": p50, "p99_ms": p99, "calls": len(latencies),
                "context_full_ms": context_full, "context_new_ms": context_new}
    finally:
        await channel.close()
        await app.stop()


async def context_cost(app: HeliosApp, keys: list, source: SyntheticSource, me: psutil.Process) -> tuple[float, float]:
    """CPU ms per workload of a context fetch of the whole window, then of the one new step the next
    interval brings (each followed by the recommendation it triggers, as in serving)."""
    for k in keys:  # forget what the registration's fetch read: the next one reads the whole window
        app.workloads.get(k).context_frame = None
    costs = []
    for shift in (0, 1):
        source.shift += shift
        cpu0 = tree_cpu(me)
        await asyncio.gather(*(app.context.fetch(k) for k in keys))
        costs.append(1000 * (tree_cpu(me) - cpu0) / len(keys))
    return costs[0], costs[1]


def training(m: int, model: str) -> tuple[float, float, int]:
    """Seconds to train m workloads with `model` in this process one by one, and on a LocalCluster of 2 workers."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        docs = []
        end = int(time.time()) // STEP * STEP
        for i in range(m):
            values = shape_values(SHAPES[i % 4], i, 576)
            csv = folder / f"w{i}.csv"
            csv.write_text("timestamp,value\n" + "\n".join(f"{end - (575 - j) * STEP},{v:.3f}"
                                                          for j, v in enumerate(values)))
            docs.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                         "metadata": {"name": f"w{i}", "namespace": "bench"},
                         "spec": {"triggers": [{"type": "external", "metadata": {
                             "source": "file", "path": str(csv), "targetValue": "10", "model": model}}]}})
        (folder / "so.yaml").write_text(yaml.safe_dump_all(docs))
        settings = load_settings()
        triggers = read_triggers([folder / "so.yaml"], settings)
        started = time.perf_counter()
        rows = [train_one(Job(t, settings.models, STEP, settings.metrics.history, str(folder / "local"), 5))
                for t in triggers]
        local = time.perf_counter() - started
        started = time.perf_counter()
        summary = train_all(triggers, settings, str(folder / "dask"), workers=2)
        dask = time.perf_counter() - started
        failed = sum("error" in r for r in rows) + len(summary.failed)
        return local, dask, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--train", type=int, default=200, help="workloads in the training comparison (0: skip)")
    parser.add_argument("--train-model", default="prophet", help="the model trained (a fit worth distributing)")
    # zscore by default: xgboost's first fit costs ~2 s a workload (hours for 5,000 on this machine), after
    # which it is refitted daily; benchmarks/forecast_speed.py and RESULTS.md give its own cost.
    parser.add_argument("--detector", default="zscore", choices=["xgboost", "zscore", "threshold", "none"])
    parser.add_argument("--spread", type=float, default=0.0,
                        help="seconds over which a cycle's refreshes start, at random (a server's: its refresh "
                             "interval, 30 s); 0: all at once")
    parser.add_argument("--days", type=float, default=2.0,
                        help="history per workload (metrics.history reads 7 days by default; 2 kept the figures "
                             "comparable with earlier runs)")
    parser.add_argument("--cycles", type=int, default=1,
                        help="measured cycles; the table gives their median (runs of one cycle vary by +-0.3 ms)")
    args = parser.parse_args()
    if not 1 <= args.cycles <= SyntheticSource.MAX_SHIFT - 2:
        parser.error(f"--cycles must be in 1..{SyntheticSource.MAX_SHIFT - 2}")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = [asyncio.run(measure(n, args.detector, args.spread, args.days, args.cycles)) for n in sizes]
    if results:
        print_capacity(results)
    if args.train:
        local, dask, failed = training(args.train, args.train_model)
        print(f"\n| training {args.train} {args.train_model} workloads | seconds | speed-up |\n|---|---|---|\n"
              f"| one process, sequential | {local:.1f} | 1.00 |\n| Dask LocalCluster, 2 workers | {dask:.1f} | "
              f"{local / dask:.2f} |\n\nfailed trainings: {failed}")


def print_capacity(results: list[dict]) -> None:
    print("| workloads | first fits s | refresh cycle CPU s | CPU ms per workload | of which serving process | "
          "cycle wall s | RSS per workload KiB | GetMetrics p50 ms | p99 ms (during a cycle) | context fetch CPU ms "
          "per workload: a day / one new step |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        per, server = (1000 * r[k] / r["n"] for k in ("cycle_cpu_s", "cycle_server_cpu_s"))
        print(f"| {r['n']} | {r['first_fit_s']:.1f} | {r['cycle_cpu_s']:.1f} | {per:.2f} | {server:.2f} | "
              f"{r['cycle_wall_s']:.1f} | "
              f"{r['rss_per_workload_kib']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['context_full_ms']:.1f} / {r['context_new_ms']:.1f} |")
    for r in results:
        if len(r["cycles_cpu_s"]) > 1:
            each = ", ".join(f"{1000 * c / r['n']:.2f}" for c in r["cycles_cpu_s"])
            print(f"\n{r['n']} workloads: CPU ms per workload in each of {len(r['cycles_cpu_s'])} cycles: {each} "
                  "(the table gives their median)")
    for r in results:
        by = [[t for g, t in r["gc_passes"] if g == gen] for gen in range(3)]
        print(f"\n{r['n']} workloads, the collector during the first cycle: passes young / middle / full "
              f"{' / '.join(str(len(b)) for b in by)}, longest "
              f"{' / '.join(f'{1000 * max(b, default=0):.0f}' for b in by)} ms, "
              f"{sum(t for _, t in r['gc_passes']):.2f} s in all")
    if len(results) > 1:
        a, b = results[0], results[-1]
        for label, key in (("refresh CPU", "cycle_cpu_s"), ("memory", "rss_per_workload_kib")):
            total_a = a[key] * (a["n"] if key.startswith("rss") else 1)
            total_b = b[key] * (b["n"] if key.startswith("rss") else 1)
            k = math.log(total_b / total_a) / math.log(b["n"] / a["n"])
            print(f"\n{label} grows as N^{k:.2f} from {a['n']} to {b['n']} workloads "
                  f"({'linear or better' if k <= 1.1 else 'SUPERLINEAR'})")


if __name__ == "__main__":
    main()
