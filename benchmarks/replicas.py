"""Replicas that share the work (issue 17): 3 `helios serve` processes and a real redis-server on this
machine, a client that round-robins KEDA's calls over the three, then one replica killed with SIGKILL.

Measures, in order:
  1. registration, then the KEDA/HPA mix (benchmarks/load.py's) at --rate during the startup burst: every
     workload's first fit, insights and provisioning replay (about a CPU-second each), until the replicas'
     worker processes are idle (under IDLE_WORKERS of a core between them over a window) or --burst-limit
     has passed; its errors and p50/p99 are reported on a row of their own, with how long it lasted;
  2. the same mix in steady state for --seconds (the periodic refreshes included): errors, p50/p99;
  3. ownership: each replica's helios_owned_workloads (a third each?) and its fits (one per workload?);
  4. agreement: GetMetrics for --sample workloads asked of all three at once: identical answers?
  5. failover: SIGKILL one replica while the mix runs; seconds until the other two own every workload,
     the share of calls that failed meanwhile, and whether every workload still has a forecast;
  6. with --outage S: redis-server stopped for S seconds and started again: errors during and after.

    .venv/bin/python benchmarks/replicas.py --scaledobjects 600 --rate 140 --seconds 40

With --no-replays the replicas run without provisioning replays (`provisioning.target_shortfall: null`),
so the burst is the first fits and insights alone; the load average before and after is printed, as the
machine's other work moves every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import grpc
import numpy as np
import psutil
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).parent))
import load  # noqa: E402 - benchmarks/load.py: the ScaledObjects, their registration and KEDA's mix

from helios.scaler.pb import externalscaler_pb2 as pb  # noqa: E402
from helios.scaler.pb import externalscaler_pb2_grpc as pb_grpc  # noqa: E402

TTL = 10
# The burst is over when the replicas' worker processes use less than this share of a core between them,
# over a window of the mix: the periodic refreshes of a steady state stay well under it.
IDLE_WORKERS = 0.3
BURST_WINDOW = 10.0


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    port = load_free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def load_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_replica(folder: Path, name: str, redis_port: int, replays: bool) -> tuple[subprocess.Popen, int, int]:
    args = ()
    if not replays:
        config = folder / "no-replays.yaml"
        config.write_text("provisioning:\n  target_shortfall: null\n")
        args = ("--config", str(config))
    return load.start_serve(folder / f"{name}.log", {
        "HELIOS_ANOMALY__DETECTOR": "zscore", "HELIOS_STATE__REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "HELIOS_STATE__REPLICA_ID": name, "HELIOS_STATE__HEARTBEAT_TTL": str(TTL)}, name, args)


def workers_cpu(replicas) -> float:
    """CPU seconds used so far by the replicas' worker processes (their children)."""
    total = 0.0
    for proc, _, _ in replicas.values():
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                t = child.cpu_times()
                total += t.user + t.system
    return total


async def burst(stubs, objects, names, rate: float, replicas, limit: float):
    """The mix in windows of BURST_WINDOW seconds until the replicas' workers are idle over one, or `limit`
    seconds have passed: the latencies and errors meanwhile, the seconds it lasted, and whether it ended."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    server = psutil.Process(next(iter(replicas.values()))[0].pid)
    started = time.monotonic()
    while time.monotonic() - started < limit:
        cpu0, t0 = workers_cpu(replicas), time.monotonic()
        got, failed, _, _ = await load.drive(stubs, objects, names, rate, BURST_WINDOW, server, load.MIX)
        latencies += got
        for code, n in failed.items():
            errors[code] = errors.get(code, 0) + n
        busy = (workers_cpu(replicas) - cpu0) / (time.monotonic() - t0)
        print(f"  burst: {time.monotonic() - started:.0f} s, workers at {busy:.2f} of a core", file=sys.stderr)
        if busy < IDLE_WORKERS:
            return latencies, errors, time.monotonic() - started, True
    return latencies, errors, time.monotonic() - started, False


def row(label: str, objects: int, calls_s: float, latencies: list[float], errors: dict[str, int]) -> str:
    ms = np.array(latencies) * 1000
    p50, p99 = np.percentile(ms, [50, 99]) if ms.size else (float("nan"), float("nan"))
    return (f"| {label} | 3 | {objects} | {calls_s:.0f} | {len(latencies) + sum(errors.values())} | "
            f"{sum(errors.values())} {errors or ''} | {p50:.1f} | {p99:.1f} |")


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "helios_model_fit_duration_seconds_count" and s.labels.get("operation") == "fit":
                out["fits"] = out.get("fits", 0) + s.value
            elif s.name in ("helios_owned_workloads", "helios_cluster_members"):
                out[s.name] = s.value
            elif s.name == "helios_redis_errors_total":
                out["redis_errors"] = out.get("redis_errors", 0) + s.value
            elif s.name.startswith("helios_gc_pause_seconds"):
                g = s.labels["generation"]
                if s.name.endswith("_sum"):
                    out[f"gc{g} s"] = s.value
                elif s.name.endswith("_count"):
                    out[f"gc{g} passes"] = s.value
                elif s.labels.get("le") in ("0.05", "+Inf"):  # the passes over 50 ms: +Inf's count less 0.05's
                    sign = 1 if s.labels["le"] == "+Inf" else -1
                    out[f"gc{g} over 50 ms"] = out.get(f"gc{g} over 50 ms", 0) + sign * s.value
            elif s.name == "process_resident_memory_bytes":
                out["rss"] = s.value
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scaledobjects", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=None, help="calls/s (default: the model's, 7 per SO per 30 s)")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--outage", type=float, default=0.0, help="seconds redis-server is stopped (0: skip)")
    parser.add_argument("--burst-limit", type=float, default=1800.0,
                        help="seconds the startup burst is measured at most before the steady state")
    parser.add_argument("--no-replays", dest="replays", action="store_false",
                        help="provisioning replays off (provisioning.target_shortfall: null)")
    parser.add_argument("--logs", type=Path, help="a folder to keep the replicas' and redis-server's files in")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)
    rate = args.rate or args.scaledobjects * len(load.MIX) / 30
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.logs or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        redis_proc, redis_port = start_redis(folder)
        replicas = {name: start_replica(folder, name, redis_port, args.replays) for name in ("r0", "r1", "r2")}
        try:
            channels = {n: grpc.aio.insecure_channel(f"127.0.0.1:{g}") for n, (_, g, _) in replicas.items()}
            stubs = [pb_grpc.ExternalScalerStub(c) for c in channels.values()]  # round robin over the three
            objects = load.refs(args.scaledobjects)
            t0 = time.perf_counter()
            names = await load.register(stubs, objects)
            print(f"registered {len(objects)} ScaledObjects over 3 replicas in {time.perf_counter() - t0:.0f}s",
                  file=sys.stderr)
            burst_latencies, burst_errors, burst_s, idle = await burst(stubs, objects, names, rate, replicas,
                                                                       args.burst_limit)
            server = psutil.Process(next(iter(replicas.values()))[0].pid)
            before = {n: scrape(m) for n, (_, _, m) in replicas.items()}
            latencies, errors, achieved, _ = await load.drive(stubs, objects, names, rate, args.seconds, server,
                                                             load.MIX)
            burst_rate = (len(burst_latencies) + sum(burst_errors.values())) / burst_s
            ended = f"until the workers were idle, {burst_s:.0f} s" if idle else f"not over after {burst_s:.0f} s"
            replays = "first fits, insights and replays" if args.replays else "first fits and insights, no replays"
            first = row(f"startup burst ({replays}; {ended})", len(objects), burst_rate, burst_latencies, burst_errors)
            steady = row(f"steady state, {args.seconds:.0f} s", len(objects), achieved, latencies, errors)
            print(f"\n| phase | replicas | ScaledObjects | calls/s | calls | errors | p50 ms | p99 ms |\n"
                  f"|---|---|---|---|---|---|---|---|\n{first}\n{steady}")
            metrics = {n: scrape(m) for n, (_, _, m) in replicas.items()}
            print("\n| replica | owned workloads | share | fits | RSS MiB | collector in the steady state: passes "
                  "(young / middle / full), seconds paused, passes over 50 ms |\n|---|---|---|---|---|---|")
            for n, m in metrics.items():
                owned = m.get("helios_owned_workloads", 0)
                gc = {k: m.get(k, 0) - before[n].get(k, 0) for k in m if k.startswith("gc")}
                passes = " / ".join(f"{gc.get(f'gc{g} passes', 0):.0f}" for g in range(3))
                paused = sum(gc.get(f"gc{g} s", 0) for g in range(3))
                long = " / ".join(f"{gc.get(f'gc{g} over 50 ms', 0):.0f}" for g in range(3))
                print(f"| {n} | {owned:.0f} | {owned / len(objects):.1%} | {m.get('fits', 0):.0f} | "
                      f"{m.get('rss', 0) / 2**20:.0f} | {passes}, {paused:.2f} s, {long} |")
            total_fits = sum(m.get("fits", 0) for m in metrics.values())
            print(f"\nfits per workload: {total_fits / len(objects):.2f}")
            await agreement(channels, objects, names, args.sample)
            await failover(replicas, channels, objects, names, rate, folder, metrics)
            if args.outage:
                redis_proc = await outage(redis_proc, redis_port, folder, list(channels.values())[:2], objects,
                                          names, rate, args.outage)
            for c in channels.values():
                await c.close()
        finally:
            print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)
            for proc, _, _ in replicas.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(30)
            redis_proc.terminate()
            redis_proc.wait(10)


async def agreement(channels, objects, names, sample: int) -> None:
    rng = np.random.default_rng(3)
    picks = rng.choice(len(objects), size=min(sample, len(objects)), replace=False)
    stubs = [pb_grpc.ExternalScalerStub(c) for c in channels.values()]
    differ = still = 0
    for i in picks:
        request = pb.GetMetricsRequest(scaledObjectRef=objects[i], metricName=names[i])
        values = await asyncio.gather(*(s.GetMetrics(request, timeout=5) for s in stubs))
        if len({v.metricValues[0].metricValueFloat for v in values}) > 1:
            differ += 1
            await asyncio.sleep(0.2)  # a snapshot published while they were asked reaches the others in ms
            values = await asyncio.gather(*(s.GetMetrics(request, timeout=5) for s in stubs))
            still += len({v.metricValues[0].metricValueFloat for v in values}) > 1
    print(f"\nanswers asked of all three at once: {len(picks) - differ} of {len(picks)} identical; "
          f"of the {differ} that were not, {still} still differed 0.2 s later")


async def failover(replicas, channels, objects, names, rate: float, folder: Path, metrics: dict) -> None:
    victim = "r2"
    proc = replicas[victim][0]
    survivors = {n: r for n, r in replicas.items() if n != victim}
    live = [pb_grpc.ExternalScalerStub(channels[n]) for n in survivors]
    os.killpg(proc.pid, signal.SIGKILL)
    killed, killed_at = time.monotonic(), time.time()
    calls, failed, owned_at, seen_at = 0, 0, None, None
    rng = np.random.default_rng(5)
    while time.monotonic() - killed < 3 * TTL + 20:
        i = int(rng.integers(len(objects)))
        calls += 1
        try:  # KEDA's client would drop the dead address; calls to the live ones are what count
            await live[calls % 2].GetMetrics(pb.GetMetricsRequest(scaledObjectRef=objects[i], metricName=names[i]),
                                             timeout=5)
        except grpc.aio.AioRpcError:
            failed += 1
        if owned_at is None and calls % 50 == 0:
            seen = [scrape(m) for _, _, m in survivors.values()]
            if seen_at is None and all(m.get("helios_cluster_members") == 2 for m in seen):
                seen_at = time.monotonic() - killed
            if sum(m.get("helios_owned_workloads", 0) for m in seen) >= len(objects):
                owned_at = time.monotonic() - killed
        await asyncio.sleep(1 / rate * 3)
    lost = await unanswered(live, objects, names)
    owned_text = f"{owned_at:.1f} s" if owned_at is not None else "not within the window"
    seen_text = f"{seen_at:.1f} s" if seen_at is not None else "not within the window"
    adopted = [t - killed_at for n in survivors for t in adoptions(folder / f"{n}.log") if t > killed_at]
    print(f"\nSIGKILL of {victim}, which owned {metrics[victim].get('helios_owned_workloads', 0):.0f}: the other two "
          f"logged {len(adopted)} adoptions, the last {max(adopted, default=float('nan')):.1f} s after the kill. "
          f"Their /metrics (scraped every 50 calls, a few seconds apart at this size) count 2 members after "
          f"{seen_text} and every workload owned after {owned_text} (TTL {TTL} s); "
          f"{failed} of {calls} calls to them failed meanwhile ({failed / max(calls, 1):.2%}); "
          f"workloads without an answer afterwards: {lost}")


def adoptions(log: Path) -> list[float]:
    """The wall-clock times of the "workload adopted" lines in a replica's JSON log (local time, as logged)."""
    times = []
    for line in log.read_text().splitlines():
        if '"workload adopted"' in line and (m := re.search(r'"time": "([^"]+)"', line)):
            times.append(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return times


async def unanswered(stubs, objects, names) -> int:
    """How many workloads get no answer, each asked once, round robin over `stubs`."""
    missing = 0
    for i in range(len(objects)):
        try:
            await stubs[i % len(stubs)].GetMetrics(
                pb.GetMetricsRequest(scaledObjectRef=objects[i], metricName=names[i]), timeout=5)
        except grpc.aio.AioRpcError:
            missing += 1
    return missing


async def outage(redis_proc, redis_port, folder, channels, objects, names, rate, seconds: float):
    """Stop redis-server for `seconds`, then start it again; returns the new process (stopped at the end)."""
    stubs = [pb_grpc.ExternalScalerStub(c) for c in channels]
    redis_proc.terminate()
    redis_proc.wait(10)
    failed = calls = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        i = calls % len(objects)
        calls += 1
        try:
            await stubs[calls % 2].GetMetrics(pb.GetMetricsRequest(scaledObjectRef=objects[i], metricName=names[i]),
                                              timeout=5)
        except grpc.aio.AioRpcError:
            failed += 1
        await asyncio.sleep(1 / rate * 3)
    restarted = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    await asyncio.sleep(2 * TTL)
    after = await unanswered(stubs, objects, names)
    print(f"\nredis-server stopped {seconds:.0f} s: {failed} of {calls} calls failed during it; "
          f"{after} workloads without an answer {2 * TTL} s after it came back")
    return restarted


if __name__ == "__main__":
    asyncio.run(main())
