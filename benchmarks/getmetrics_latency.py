"""GetMetrics throughput and latency of Helios, next to a bare grpc.aio server answering a constant.

What it measures
    KEDA polls GetMetrics for every ScaledObject; this benchmark measures how many GetMetrics calls per
    second the Helios server answers, and their p50 and p99 latency, with 1, 16 and 64 concurrent
    clients polling 100 registered workloads (`source: demo`) round-robin. The same client code then
    measures a bare grpc.aio server implementing the same ExternalScaler service, whose GetMetrics
    returns a constant: the gap between the two is what Helios itself costs on top of gRPC.

How it measures
    Each server runs alone in its own process (Helios as `helios serve` on free ports, gRPC and
    /metrics on 127.0.0.1, HELIOS_LOG_LEVEL=WARNING; the bare server as `getmetrics_latency.py
    --bare-server PORT`), never two at the same time. Every measurement ("cell") runs in a fresh client
    process: N coroutines share one grpc.aio channel and loop GetMetrics for `--seconds` after a 1 s
    warm-up, each call timed with time.perf_counter; the calls that complete inside the measured window
    count. A round starts a server, registers the workloads (GetMetricSpec, then GetMetrics until each
    answers: Helios says UNAVAILABLE during a workload's first refresh), for Helios waits until the first
    refresh of every workload, fit included, is done (from its /metrics) and then until its worker
    processes are idle (the first provisioning replays and anomaly fits of every workload, about a
    CPU-second each: measured during that burst, Helios reached 68 % of the bare server on 2 cores, with
    the same CPU per call, because the workers took the cores), measures each client count
    once and stops the server. `--repeat` rounds per server, the servers alternating so that a slow
    drift of the machine hits both alike; the table shows the median of the repeats. The cells take in
    Helios's periodic refreshes (every 30 s: a fetch in a thread, an update in a model worker), as a
    replica in steady state does.

    Two more columns help read the numbers: the server process's CPU time per call (all its threads,
    not Helios's model workers; warm-up and idle moments included) and the client process's share of
    one core. A server near one core of CPU is saturated: its calls/s is then about 1 / (CPU per call).

Targets (a PASS/FAIL per Helios row)
    Helios throughput >= 70 % of the bare server's at every client count; Helios p99 <= 10 ms at 16 clients.

Run it
    make bench                                           # .venv/bin/python benchmarks/getmetrics_latency.py
    make bench ARGS="--seconds 2 --repeat 1 --clients 1,16 --format json"

Client and server share the machine's cores, so the numbers compare the two servers on one machine in
one run; they are not capacities. Both servers listen on 127.0.0.1 only. Every loop has a time limit, and
every child process is stopped when the benchmark ends, on Ctrl-C or SIGTERM too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import psutil  # as load.py and capacity.py: process CPU times

from helios.scaler.pb import externalscaler_pb2 as pb
from helios.scaler.pb import externalscaler_pb2_grpc as pb_grpc

HOST = "127.0.0.1"
NAMESPACE = "bench"
METADATA = {"source": "demo", "targetValue": "100"}
WARM_UP_SECONDS = 1.0
CALL_TIMEOUT = 5.0  # seconds; a call slower than this counts as an error
READY_TIMEOUT = 30.0  # a server must listen within this long
SETTLE_TIMEOUT = 120.0  # every workload must be served (and, for Helios, fitted once) within this long
# Then Helios's first provisioning replays and anomaly fits of every workload run in its worker processes
# (about a CPU-second each); measuring while they compete for the cores measures them, not the serving
# path. The cells start once the workers use less than IDLE_WORKERS of a core over a second.
IDLE_WORKERS = 0.1
BURST_TIMEOUT = 600.0
MIN_THROUGHPUT_RATIO = 0.70
MAX_P99_MS = 10.0
P99_AT_CLIENTS = 16


# --- the bare baseline server ---------------------------------------------------------------------

class BareScaler(pb_grpc.ExternalScalerServicer):
    """The ExternalScaler service with no work behind it: every GetMetrics answers a constant."""

    async def GetMetricSpec(self, request: pb.ScaledObjectRef, context) -> pb.GetMetricSpecResponse:
        spec = pb.MetricSpec(metricName=f"bare-{request.name}", targetSize=100, targetSizeFloat=100.0)
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    async def GetMetrics(self, request: pb.GetMetricsRequest, context) -> pb.GetMetricsResponse:
        value = pb.MetricValue(metricName=request.metricName, metricValue=42, metricValueFloat=42.0)
        return pb.GetMetricsResponse(metricValues=[value])


async def serve_bare(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_ExternalScalerServicer_to_server(BareScaler(), server)
    server.add_insecure_port(f"{HOST}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


# --- the client (runs in its own process, one per task) --------------------------------------------

def workload_refs(count: int) -> list[pb.ScaledObjectRef]:
    return [pb.ScaledObjectRef(name=f"bench-{i:03d}", namespace=NAMESPACE, scalerMetadata=METADATA)
            for i in range(count)]


def metrics_requests(metric_names: list[str]) -> list[pb.GetMetricsRequest]:
    refs = workload_refs(len(metric_names))
    return [pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name)
            for ref, name in zip(refs, metric_names, strict=True)]


async def register(target: str, workloads: int, deadline: float) -> list[str]:
    """GetMetricSpec for every workload, then GetMetrics until all answer; returns the metric names."""
    refs = workload_refs(workloads)
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), max(0.1, deadline - time.monotonic()))
        stub = pb_grpc.ExternalScalerStub(channel)
        specs = [await stub.GetMetricSpec(ref, timeout=CALL_TIMEOUT) for ref in refs]
        names = [spec.metricSpecs[0].metricName for spec in specs]
        pending = metrics_requests(names)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} workloads still not served")
            answers = await asyncio.gather(*(_served(stub, req) for req in pending))
            pending = [req for req, ok in zip(pending, answers, strict=True) if not ok]
            if pending:
                await asyncio.sleep(0.2)
    return names


async def _served(stub: pb_grpc.ExternalScalerStub, request: pb.GetMetricsRequest) -> bool:
    try:
        await stub.GetMetrics(request, timeout=CALL_TIMEOUT)
    except grpc.aio.AioRpcError as e:
        if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return False
        raise
    return True


async def measure(target: str, requests: list[pb.GetMetricsRequest], clients: int, seconds: float) -> dict:
    """`clients` coroutines on one channel loop GetMetrics round-robin; only calls that complete in the
    measured window (after the warm-up) count."""
    latencies: list[float] = []
    errors = 0
    turn = itertools.count()
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), READY_TIMEOUT)
        stub = pb_grpc.ExternalScalerStub(channel)
        begin = time.perf_counter() + WARM_UP_SECONDS
        end = begin + seconds

        async def client() -> None:
            nonlocal errors
            while (started := time.perf_counter()) < end:
                try:
                    await stub.GetMetrics(requests[next(turn) % len(requests)], timeout=CALL_TIMEOUT)
                    ok = True
                except grpc.aio.AioRpcError:
                    ok = False
                done = time.perf_counter()
                if begin <= done <= end:
                    if ok:
                        latencies.append(done - started)
                    else:
                        errors += 1

        cpu = time.process_time()
        await asyncio.gather(*(client() for _ in range(clients)))
        cpu = time.process_time() - cpu
    result = summarize(latencies, errors, seconds)
    result["client_cpu"] = cpu / (WARM_UP_SECONDS + seconds)  # share of one core, warm-up included
    result["all_calls"] = next(turn)
    return result


def summarize(latencies: list[float], errors: int, seconds: float) -> dict:
    enough = len(latencies) >= 2
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if enough else [float("nan")] * 99
    return {"calls_per_s": len(latencies) / seconds, "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000,
            "calls": len(latencies), "errors": errors}


def run_client_task(task: dict) -> dict:
    target = f"{HOST}:{task['port']}"
    if task["kind"] == "register":
        names = asyncio.run(register(target, task["workloads"], time.monotonic() + SETTLE_TIMEOUT))
        return {"metric_names": names}
    requests = metrics_requests(task["metric_names"])
    return asyncio.run(measure(target, requests, task["clients"], task["seconds"]))


# --- the orchestrator: servers and client processes ------------------------------------------------

@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log: Path
    metrics_port: int | None = None


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held together while picked, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_helios(log_dir: Path) -> Server:
    grpc_port, metrics_port = free_ports(2)
    helios = shutil.which("helios", path=str(Path(sys.executable).parent)) or "helios"
    env = {**os.environ, "HELIOS_LOG_LEVEL": "WARNING", "HELIOS_SERVER__HOST": HOST,
           "HELIOS_SERVER__METRICS_HOST": HOST}
    log = log_dir / "helios.log"
    cmd = [helios, "serve", "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port)]
    return Server("helios", _spawn(cmd, env, log), grpc_port, log, metrics_port)


def start_bare(log_dir: Path) -> Server:
    (port,) = free_ports(1)
    log = log_dir / "bare.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)]
    return Server("bare", _spawn(cmd, dict(os.environ), log), port, log)


SERVERS = {"bare": start_bare, "helios": start_helios}


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    # A session of its own: Ctrl-C reaches only this script, which then stops the child itself.
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM, SIGKILL after `grace`; then SIGKILL whatever is left of the child's process group (e.g.
    Helios's model workers, orphaned when Helios is stopped before it handles signals)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the group _spawn created: only this run's processes


@contextlib.contextmanager
def running(start: Callable[[Path], Server], log_dir: Path) -> Iterator[Server]:
    server = start(log_dir)
    try:
        wait_listening(server)
        yield server
    finally:
        stop(server.process)


def wait_listening(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        check_alive(server)
        with socket.socket() as s:
            if s.connect_ex((HOST, server.port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not listen on {HOST}:{server.port} within {READY_TIMEOUT:g}s")


def check_alive(server: Server) -> None:
    if server.process.poll() is not None:
        tail = server.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{server.name} exited with code {server.process.returncode}:\n{tail}")


def client_process(task: dict, timeout: float) -> dict:
    """Run one client task in a fresh process (never in a server's) and return its JSON answer."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--client"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(json.dumps(task), timeout=timeout)
    finally:
        stop(proc, grace=2.0)
    if proc.returncode != 0:
        raise RuntimeError(f"client task {task['kind']} failed ({proc.returncode}):\n{err[-2000:]}")
    return json.loads(out)


def settle_helios(server: Server, workloads: int) -> None:
    """Wait until every workload's first refresh, fit included, has finished (per Helios's /metrics)."""
    url = f"http://{HOST}:{server.metrics_port}/metrics"
    pattern = re.compile(r'^helios_refreshes_total\{[^}]*source="demo"[^}]*\} (\S+)$', re.MULTILINE)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        check_alive(server)
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            text = ""
        if sum(float(v) for v in pattern.findall(text)) >= workloads:
            return
        time.sleep(0.2)
    raise TimeoutError(f"helios: the first refresh of {workloads} workloads did not finish in {SETTLE_TIMEOUT:g}s")


def settle_workers(server: Server) -> float:
    """Wait until the startup burst of Helios's worker processes is over; the seconds it took."""
    started = time.monotonic()
    last = _children_cpu(server.process.pid)
    while time.monotonic() - started < BURST_TIMEOUT:
        check_alive(server)
        time.sleep(1.0)
        now = _children_cpu(server.process.pid)
        if now - last < IDLE_WORKERS:
            return time.monotonic() - started
        last = now
    raise TimeoutError(f"helios: its workers were still busy after {BURST_TIMEOUT:g}s")


def _children_cpu(pid: int) -> float:
    """CPU seconds used so far by the child processes of `pid` (Helios's model workers)."""
    total = 0.0
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):  # the process ended meanwhile
            t = child.cpu_times()
            total += t.user + t.system
    return total


Results = dict[str, dict[int, list[dict]]]  # server name -> clients -> one result per repeat


def bench(args: argparse.Namespace, log_dir: Path) -> Results:
    """`--repeat` rounds; each runs every cell of one server, then of the other (the order alternates,
    and each round starts its servers afresh), so slow drifts of a noisy machine hit both alike."""
    results: Results = {name: {n: [] for n in args.clients} for name in SERVERS}
    for repeat in range(args.repeat):
        order = list(SERVERS) if repeat % 2 == 0 else list(reversed(SERVERS))
        for name in order:
            for clients, result in bench_round(SERVERS[name], args, log_dir):
                results[name][clients].append(result)
                progress(f"{name:6} clients={clients:<3} repeat={repeat + 1}/{args.repeat}: "
                         f"{result['calls_per_s']:6.0f} calls/s  p50 {result['p50_ms']:6.2f} ms  "
                         f"p99 {result['p99_ms']:6.2f} ms  errors {result['errors']}  "
                         f"server {result['server_cpu_us']:4.0f} CPU-us/call  client CPU {result['client_cpu']:.0%}")
    return results


def bench_round(start: Callable[[Path], Server], args: argparse.Namespace, log_dir: Path) -> Iterator[tuple[int, dict]]:
    """Start one server, register the workloads, measure each client count once, stop the server."""
    cell_timeout = WARM_UP_SECONDS + args.seconds + CALL_TIMEOUT + 30
    with running(start, log_dir) as server:
        task = {"kind": "register", "port": server.port, "workloads": args.workloads}
        names = client_process(task, SETTLE_TIMEOUT + 30)["metric_names"]
        if server.metrics_port is not None:
            settle_helios(server, args.workloads)
            print(f"helios: its workers' startup burst ended after {settle_workers(server):.0f} s", file=sys.stderr,
                  flush=True)
        for clients in args.clients:
            task = {"kind": "measure", "port": server.port, "metric_names": names,
                    "clients": clients, "seconds": args.seconds}
            cpu = cpu_seconds(server.process.pid)
            result = client_process(task, cell_timeout)
            check_alive(server)
            result["server_cpu_us"] = (cpu_seconds(server.process.pid) - cpu) / max(1, result["all_calls"]) * 1e6
            yield clients, result


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) of a process so far; NaN where /proc is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- the report ------------------------------------------------------------------------------------

@dataclass
class Row:
    server: str
    clients: int
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us: float  # CPU time of the server process per call (its threads, not Helios's fit workers)
    client_cpu: float  # share of one core the client process used: near 100 % means client-bound
    ratio: float | None = None  # helios / bare throughput, on Helios rows
    result: str = "baseline"  # PASS or FAIL (with why) on Helios rows


def median_row(server: str, clients: int, repeats: list[dict]) -> Row:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in repeats)

    return Row(server, clients, med("calls_per_s"), med("p50_ms"), med("p99_ms"), sum(r["errors"] for r in repeats),
               med("server_cpu_us"), med("client_cpu"))


def judge(helios: Row, bare: Row) -> Row:
    helios.ratio = helios.calls_per_s / bare.calls_per_s if bare.calls_per_s else float("nan")
    misses = []
    if not helios.ratio >= MIN_THROUGHPUT_RATIO:
        misses.append(f"throughput {helios.ratio:.0%} < {MIN_THROUGHPUT_RATIO:.0%}")
    if helios.clients == P99_AT_CLIENTS and not helios.p99_ms <= MAX_P99_MS:
        misses.append(f"p99 {helios.p99_ms:.1f} ms > {MAX_P99_MS:g} ms")
    if helios.errors:
        misses.append(f"{helios.errors} errors")
    helios.result = "FAIL: " + "; ".join(misses) if misses else "PASS"
    return helios


def build_rows(helios: dict[int, list[dict]], bare: dict[int, list[dict]]) -> list[Row]:
    rows = []
    for clients in helios:
        base = median_row("bare", clients, bare[clients])
        rows += [base, judge(median_row("helios", clients, helios[clients]), base)]
    return rows


def markdown(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        f"GetMetrics, {args.workloads} workloads, median of {args.repeat} x {args.seconds:g} s per cell "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}, grpcio {grpc.__version__})",
        "",
        "| server | clients | calls/s | p50 ms | p99 ms | helios/bare | result | server CPU µs/call | client CPU |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r.ratio:.0%}" if r.ratio is not None else ""
        lines.append(f"| {r.server} | {r.clients} | {r.calls_per_s:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
                     f"| {ratio} | {r.result} | {r.server_cpu_us:.0f} | {r.client_cpu:.0%} |")
    lines += ["", f"Targets: helios >= {MIN_THROUGHPUT_RATIO:.0%} of bare throughput at every client count; "
                  f"helios p99 <= {MAX_P99_MS:g} ms at {P99_AT_CLIENTS} clients."]
    return "\n".join(lines)


def as_json(rows: list[Row], args: argparse.Namespace) -> str:
    return json.dumps({
        "workloads": args.workloads, "seconds": args.seconds, "repeat": args.repeat, "cpus": os.cpu_count(),
        "targets": {"min_throughput_ratio": MIN_THROUGHPUT_RATIO, "max_p99_ms": MAX_P99_MS,
                    "p99_at_clients": P99_AT_CLIENTS},
        "rows": [{k: None if v != v else v for k, v in asdict(r).items()} for r in rows],  # NaN -> null
    }, indent=2)


# --- command line ----------------------------------------------------------------------------------

def client_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers, e.g. 1,16,64")
    return counts


def positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its error messages
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=positive(float), default=5.0, help="measured seconds per cell (5)")
    parser.add_argument("--repeat", type=positive(int), default=3, help="repeats per cell; the median is shown (3)")
    parser.add_argument("--clients", type=client_counts, default=[1, 16, 64], help="concurrent clients (1,16,64)")
    parser.add_argument("--workloads", type=positive(int), default=100, help="registered workloads (100)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_server is not None:
        asyncio.run(serve_bare(args.bare_server))
        return 0
    if args.client:
        print(json.dumps(run_client_task(json.load(sys.stdin))))
        return 0
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C even where SIGINT came in ignored
    signal.signal(signal.SIGTERM, interrupt)  # so that a SIGTERM, too, stops the servers on the way out
    with tempfile.TemporaryDirectory(prefix="helios-bench-") as tmp:
        log_dir = Path(tmp)
        results = bench(args, log_dir)
    rows = build_rows(results["helios"], results["bare"])
    print(markdown(rows, args) if args.format == "table" else as_json(rows, args))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
