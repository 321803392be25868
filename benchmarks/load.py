"""KEDA-like load on a real `helios serve`: N ScaledObjects polled as KEDA and the HPA poll them.

Per ScaledObject, KEDA's loop every 30 s calls GetMetricSpec, GetMetrics and IsActive; the HPA asks every
15 s (GetMetricSpec, then GetMetrics). For 5,000 ScaledObjects that is 5,000 x (3/30 + 2x2/30) ~ 1,170
calls/s; the issue rounds it to 1,500, the default --rate. The calls are open-loop (sent on schedule whether
or not earlier ones returned, as independent KEDA/HPA loops would), over a few channels.

With --use-cached-metrics the ScaledObjects set KEDA's `useCachedMetrics: true`: the HPA's GetMetrics is then
answered from KEDA's cache of its last poll (pkg/scaling/scale_handler.go), so the mix loses the HPA's two
GetMetrics calls: 5 calls per ScaledObject per 30 s instead of 7, and the default rate shrinks with it.

Reports errors by status, p50/p99/max latency, the rate achieved, the server's CPU per ScaledObject per 30 s
and per call, and the server's RSS at the start and end of the measured window (memory flat?). The
server runs on the embedded demo source, every ScaledObject a workload of its own, registered and refreshed
before the measurement starts.

    .venv/bin/python benchmarks/load.py --scaledobjects 5000 --rate 1500 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
import psutil

from helios.scaler.pb import externalscaler_pb2 as pb
from helios.scaler.pb import externalscaler_pb2_grpc as pb_grpc

HELIOS = str(Path(sys.executable).parent / "helios")


def start_server(folder: Path) -> tuple[subprocess.Popen, int]:
    proc, grpc_port, _ = start_serve(folder / "helios.log", {})
    return proc, grpc_port


def start_serve(log: Path, env: dict[str, str], name: str = "helios serve",
                args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int, int]:
    """`helios serve` on free ports with `env` added and `args` appended, logging to `log`; its process and
    its gRPC and /metrics ports, read from its "helios serving" line."""
    env = {**os.environ, "HELIOS_SECURITY__HEALTH_PORT": "0", "HELIOS_METRICS__FIRST_ANSWER_WAIT": "0", **env,
           "HELIOS_LOG_LEVEL": "INFO"}  # the "serving" line carries the ports
    with open(log, "w") as out:
        proc = subprocess.Popen([HELIOS, "serve", "--grpc-port", "0", "--metrics-port", "0", *args], env=env,
                                stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (m := re.search(r"helios serving.*?grpc_port\W+(\d+).*?metrics_port\W+(\d+)", log.read_text())):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{name} did not start:\n" + log.read_text())
        time.sleep(0.1)
    return proc, int(m.group(1)), int(m.group(2))


def refs(n: int) -> list[pb.ScaledObjectRef]:
    return [pb.ScaledObjectRef(name=f"app-{i}", namespace=f"team-{i % 50}",
                               scalerMetadata={"source": "demo", "targetValue": str(20 + i % 80)}) for i in range(n)]


async def register(stubs, objects) -> list[str]:
    """GetMetricSpec and a first GetMetrics for every ScaledObject, then wait until all are answered OK."""
    names = []
    for i in range(0, len(objects), 200):
        batch = objects[i:i + 200]
        specs = await asyncio.gather(*(stubs[j % len(stubs)].GetMetricSpec(r, timeout=30) for j, r in enumerate(batch)))
        names += [s.metricSpecs[0].metricName for s in specs]
    pending = list(range(len(objects)))
    deadline = time.monotonic() + 600
    while pending and time.monotonic() < deadline:
        async def ok(i):
            try:
                await stubs[i % len(stubs)].GetMetrics(
                    pb.GetMetricsRequest(scaledObjectRef=objects[i], metricName=names[i]), timeout=30)
                return True
            except grpc.aio.AioRpcError:
                return False
        results = []
        for k in range(0, len(pending), 500):
            results += await asyncio.gather(*(ok(i) for i in pending[k:k + 500]))
        pending = [i for i, good in zip(pending, results, strict=True) if not good]
        if pending:
            await asyncio.sleep(1)
    return names


MIX = ["spec", "metrics", "active", "spec", "metrics", "spec", "metrics"]  # 3 (KEDA) + 2 x 2 (HPA) per 30 s
CACHED_MIX = ["spec", "metrics", "active", "spec", "spec"]  # useCachedMetrics: the HPA's GetMetrics from KEDA's cache


async def drive(stubs, objects, names, rate: float, seconds: float, server: psutil.Process, mix: list[str]):
    """Open-loop calls at `rate` per second for `seconds`: the KEDA/HPA mix, spread over the ScaledObjects."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    rss = [server.memory_info().rss]
    tasks = set()

    async def one(kind: str, i: int):
        stub, ref = stubs[i % len(stubs)], objects[i]
        started = time.perf_counter()
        try:
            if kind == "spec":
                await stub.GetMetricSpec(ref, timeout=5)
            elif kind == "metrics":
                await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName=names[i]), timeout=5)
            else:
                await stub.IsActive(ref, timeout=5)
            latencies.append(time.perf_counter() - started)
        except grpc.aio.AioRpcError as e:
            errors[e.code().name] = errors.get(e.code().name, 0) + 1

    start = time.perf_counter()
    sent = 0
    rng = np.random.default_rng(1)
    while (now := time.perf_counter() - start) < seconds:
        due = int(now * rate)
        while sent < due:
            t = asyncio.create_task(one(mix[sent % len(mix)], int(rng.integers(len(objects)))))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            sent += 1
        if int(now) % 10 == 0 and len(rss) <= now / 10:
            rss.append(server.memory_info().rss)
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    rss.append(server.memory_info().rss)
    return latencies, errors, sent / (time.perf_counter() - start), rss


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scaledobjects", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=None,
                        help="calls per second (default 1,500: 5,000 SOs rounded up; x 5/7 with --use-cached-metrics)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--use-cached-metrics", action="store_true", help="the ScaledObjects set useCachedMetrics")
    args = parser.parse_args()
    mix = CACHED_MIX if args.use_cached_metrics else MIX
    if args.rate is None:
        args.rate = 1500.0 * len(mix) / len(MIX)
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(Path(tmp))
        try:
            server = psutil.Process(proc.pid)
            channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}",
                                                  options=[("grpc.use_local_subchannel_pool", 1)])
                        for _ in range(args.channels)]
            stubs = [pb_grpc.ExternalScalerStub(c) for c in channels]
            objects = refs(args.scaledobjects)
            t0 = time.perf_counter()
            names = await register(stubs, objects)
            print(f"registered {len(objects)} ScaledObjects in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
            cpu0 = sum(server.cpu_times()[:2])
            latencies, errors, achieved, rss = await drive(stubs, objects, names, args.rate, args.seconds, server, mix)
            cpu = sum(server.cpu_times()[:2]) - cpu0
            for c in channels:
                await c.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    ms = np.array(latencies) * 1000
    p50, p99 = np.percentile(ms, [50, 99]) if ms.size else (math.nan, math.nan)
    calls = len(latencies) + sum(errors.values())
    held = "PASS" if p99 <= 50 and not errors and achieved >= 0.98 * args.rate else "FAIL"
    print("| ScaledObjects | target calls/s | achieved calls/s | calls | errors | p50 ms | p99 ms | max ms | "
          "RSS start MiB | RSS end MiB | held (no errors, p99 <= 50 ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.scaledobjects} | {args.rate:.0f} | {achieved:.0f} | {calls} | "
          f"{sum(errors.values())} {errors or ''} | {p50:.1f} | {p99:.1f} | {ms.max():.1f} | "
          f"{rss[0] / 2**20:.0f} | {rss[-1] / 2**20:.0f} | {held} |")
    print(f"\nRSS samples every 10 s (MiB): {[round(r / 2**20) for r in rss]}")
    kind = "useCachedMetrics" if args.use_cached_metrics else "plain"
    per_so = 1000 * cpu / args.seconds * 30 / args.scaledobjects  # background refreshes included
    print(f"calls per ScaledObject per 30 s: {len(mix)} ({kind}); server CPU {per_so:.2f} ms per ScaledObject "
          f"per 30 s, background refreshes included ({1000 * cpu / max(calls, 1):.3f} ms per call)")


if __name__ == "__main__":
    asyncio.run(main())
