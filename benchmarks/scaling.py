"""Does Helios scale better? `helios simulate` on the load traces of a data folder, and issue 7's targets.

    python benchmarks/scaling.py [--data ../shared/data] [--days 2] [--policies reactive,auto,oracle]

Each trace is replayed through the same KEDA + HPA model (polling 30 s, sync 15 s, the default HPA
behavior, pods ready 2 minutes after creation) once per policy, over its last --days after a 7-day
warm-up, scaled so that its 99th percentile needs 20 replicas. Helios (--model, default auto) runs
with the scaler's default settings: it fits hourly and updates between fits, as the server does.
Prints a row per trace, then the targets: on >= 80% of traces Helios's under-provisioned time is
<= 50% of reactive's and its replica-hours <= 110% of reactive's; Helios's mean under-provisioned
time is within 2x of the oracle's. `--rows FILE` keeps the JSON rows.

Load traces are the series whose value is a demand that replicas share: request and event rates
(NASA-HTTP requests, Twitter mentions, NYC taxi passengers) and CPU utilisation (EC2, RDS, an
auto-scaling group, Google and Azure). Left out: memory (it does not shrink when replicas are added),
disk and network bytes of single instances, a latency series, temperatures and daily page views.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from helios.adapters.file import read_csv
from helios.engine.replay.loop import Cluster, Demand, simulate
from helios.scaler.cmd_backtest import native_step
from helios.scaler.settings import load_settings
from helios.scaler.simulate.compare import Replay, compare, window
from helios.scaler.simulate.policies import Oracle

ROOT = Path(__file__).resolve().parents[1]
FRONTIER = (0.0, 0.05)  # margins of perfect foresight shown beside the oracle (which is raised by the tolerance)
LOAD_TRACES = (
    "nasa_http_jul95_requests_5min", "nab_Twitter_volume_AAPL", "nab_Twitter_volume_FB", "nab_Twitter_volume_GOOG",
    "nab_Twitter_volume_IBM", "nab_Twitter_volume_KO", "nab_nyc_taxi",
    "nab_ec2_cpu_utilization_24ae8d", "nab_ec2_cpu_utilization_5f5533", "nab_ec2_cpu_utilization_825cc2",
    "nab_ec2_cpu_utilization_c6585a", "nab_rds_cpu_utilization_cc0c53", "nab_grok_asg_anomaly",
    "google2019_avg_cpu_5min", "azure2017_vm1555166_avg_cpu_5min", "azure2017_vm1633630_avg_cpu_5min",
    "azure2017_vm1791809_avg_cpu_5min", "azure2017_vm606708_avg_cpu_5min", "azure2017_vm633346_avg_cpu_5min",
    "azure2017_vm815816_avg_cpu_5min",
)


def run_trace(job: tuple[str, list[str], float, dict]) -> tuple[list[dict], float]:
    path, policies, days, trigger = job
    started = time.time()
    trace = read_csv(path)
    replay = Replay(days=days, trigger=trigger)
    result = compare(Path(path).name, trace, policies, Cluster(), replay, load_settings(), native_step(trace))
    rows = result.rows()
    # Perfect foresight raised by less than the HPA's tolerance: cheaper than the oracle, sometimes short.
    c, (start, end) = result.cluster, window(trace, replay)
    for margin in FRONTIER:
        oracle = Oracle(trace, c.startup_delay + c.polling_interval + c.sync_period, margin)
        rows.append(simulate(Demand(trace), oracle, c, start, end).outcome.row(result.trace, f"foresight+{margin:.0%}"))
    return rows, time.time() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--days", type=float, default=2.0, help="simulated days per trace, after a 7-day warm-up")
    p.add_argument("--model", default="auto", help="the Helios model judged against the targets")
    p.add_argument("--policies", default="reactive,auto,oracle")
    p.add_argument("--traces", help="comma-separated subset of the load traces (names without .csv)")
    p.add_argument("--quantile", help="trigger quantile (default: the scaler's)")
    p.add_argument("--lead-time", help="trigger leadTime (default: the scaler's)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rows", help="also write the JSON rows here")
    args = p.parse_args()
    policies = args.policies.split(",")
    if not {"reactive", "oracle", args.model} <= set(policies):
        sys.exit(f"--policies must include reactive, oracle and --model ({args.model})")
    names = args.traces.split(",") if args.traces else LOAD_TRACES
    files = [Path(args.data) / f"{n}.csv" for n in names]
    if missing := [str(f) for f in files if not f.exists()]:
        sys.exit(f"missing traces: {', '.join(missing)}")
    trigger = {k: v for k, v in (("quantile", args.quantile), ("leadTime", args.lead_time)) if v}
    started = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        done = list(pool.map(run_trace, [(str(f), policies, args.days, trigger) for f in files]))
    rows = [r for chunk, _ in done for r in chunk]
    if args.rows:
        Path(args.rows).write_text(json.dumps(rows, indent=1))
    print(f"{len(files)} load traces from {args.data}: the last {args.days:g} days of each after a 7-day warm-up, "
          f"its 99th percentile = 20 replicas; polling 30 s, HPA sync 15 s, default behavior, startup 2 min; "
          f"Helios settings: defaults{' + ' + str(trigger) if trigger else ''}; "
          f"{time.time() - started:.0f} s wall, median {statistics.median(s for _, s in done):.0f} s per trace\n")
    report(rows, args.model, policies)


def report(rows: list[dict], model: str, policies: list[str]) -> None:
    by = {(r["trace"], r["policy"]): r for r in rows}
    traces = list(dict.fromkeys(r["trace"] for r in rows))
    others = [p for p in policies if p not in ("reactive", "oracle")]
    head = ["trace", "reactive under %"] + [f"{p} under %" for p in others] + ["oracle under %"]
    head += [f"{p} replica-h / reactive" for p in others] + ["oracle replica-h / reactive",
                                                             f"{model} under / reactive", "both targets"]
    print("| " + " | ".join(head) + " |\n|---|" + "---:|" * (len(head) - 2) + "---|")
    wins = []
    for t in traces:
        r, h, o = by[t, "reactive"], by[t, model], by[t, "oracle"]
        under = h["underprovisioned_fraction"] / r["underprovisioned_fraction"] \
            if r["underprovisioned_fraction"] else float("inf") if h["underprovisioned_fraction"] else 0.0
        ok = _meets(h, r)
        wins.append(ok)
        cells = [t.removesuffix(".csv"), _pct(r)] + [_pct(by[t, p]) for p in others] + [_pct(o)]
        cells += [f"{by[t, p]['replica_hours'] / r['replica_hours']:.2f}" for p in others]
        cells += [f"{o['replica_hours'] / r['replica_hours']:.2f}", f"{under:.2f}", "yes" if ok else "no"]
        print("| " + " | ".join(cells) + " |")
    mean = {p: statistics.fmean(by[t, p]["underprovisioned_fraction"] for t in traces) for p in policies}
    cost = {p: statistics.median(by[t, p]["replica_hours"] / by[t, "reactive"]["replica_hours"] for t in traces)
            for p in policies}
    print("\n| policy | mean under-provisioned % | mean unserved % | median replica-h / reactive | mean scale events |"
          "\n|---|---:|---:|---:|---:|")
    for p in policies:
        unserved = statistics.fmean(by[t, p]["unserved_fraction"] for t in traces)
        events = statistics.fmean(by[t, p]["scale_events"] for t in traces)
        print(f"| {p} | {100 * mean[p]:.2f} | {100 * unserved:.3f} | {cost[p]:.3f} | {events:.0f} |")
    share = sum(wins) / len(wins)
    print("\n| target | measured | result |\n|---|---|---|")
    print(f"| {model}: under-provisioned time <= 50% of reactive's and replica-hours <= 110% of reactive's, on >= 80% "
          f"of traces | {sum(wins)}/{len(wins)} = {share:.0%} | {'PASS' if share >= 0.8 else 'FAIL'} |")
    ratio = mean[model] / mean["oracle"] if mean["oracle"] else float("inf")
    print(f"| {model}: mean under-provisioned time within 2x of the oracle's | {100 * mean[model]:.2f}% vs "
          f"{100 * mean['oracle']:.2f}% = {ratio:.1f}x | {'PASS' if ratio <= 2 else 'FAIL'} |")
    print("\nWhat perfect foresight reaches through the same HPA (the answer is the true peak of the next "
          "startup + poll + sync, raised by a margin; the oracle's margin is the tolerance):\n")
    print("| policy | traces meeting both targets | mean under-provisioned % | median replica-h / reactive |"
          "\n|---|---:|---:|---:|")
    for p in [*(f"foresight+{m:.0%}" for m in FRONTIER), "oracle", model]:
        n = sum(_meets(by[t, p], by[t, "reactive"]) for t in traces)
        mean_p = statistics.fmean(by[t, p]["underprovisioned_fraction"] for t in traces)
        cost_p = statistics.median(by[t, p]["replica_hours"] / by[t, "reactive"]["replica_hours"] for t in traces)
        print(f"| {p} | {n}/{len(traces)} | {100 * mean_p:.2f} | {cost_p:.3f} |")


def _meets(row: dict, reactive: dict) -> bool:
    return row["underprovisioned_fraction"] <= 0.5 * reactive["underprovisioned_fraction"] and \
        row["replica_hours"] <= 1.1 * reactive["replica_hours"]


def _pct(row: dict) -> str:
    return f"{100 * row['underprovisioned_fraction']:.1f}"


if __name__ == "__main__":
    main()
