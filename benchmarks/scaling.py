"""Does Helios scale better than reactive scaling with headroom, at the same cost? `helios simulate` on the
load traces of a data folder, and issue 12's targets.

    python benchmarks/scaling.py [--data ../shared/data] [--days 2] [--model baseline] [--plot DIR]

The alternative every user has is a lower HPA target: reactive scaling with headroom. Each trace is
replayed through the same KEDA + HPA model (polling 30 s, sync 15 s, the default HPA behavior, pods
ready 2 minutes after creation) over its last --days after a 7-day warm-up, scaled so that its 99th
percentile needs 20 replicas, once per policy:
- reactive+N% for N from 0 to 150: the headroom curve of cost against shortfall;
- Helios (--model) with the scaler's defaults: it fits hourly, updates between fits, and at each refit
  replays the workload's own last two days to choose how much to provision for the default shortfall target;
- Helios with each --sweep shortfall target, which traces Helios's own cost/shortfall curve;
- the oracle (perfect foresight), to show what the HPA allows at all.

Reported per trace: the equal-cost ratio (Helios's shortfall over headroom's at Helios's replica-hours,
each plus 0.5 point of under-provisioned time or 0.1 point of unserved demand, engine.replay.frontier),
and the replica-hours Helios and headroom need to reach shortfalls of 5, 2 and 1 %. Then the targets:
median equal-cost ratio <= 0.7 for both shortfalls, no trace above 1.05; with the 2 % target, a simulated
shortfall <= 4 % on >= 80 % of the traces where 2 % is attainable within the cost cap, and replica-hours
<= 0.8x those of the cheapest headroom with the same shortfall (median). `--rows FILE` keeps the JSON
rows; `--plot DIR` draws each trace's frontier.

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
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from helios.adapters.file import read_csv
from helios.engine.replay.frontier import HEADROOMS, SHORTFALLS, Point, at_cost, cost_to_reach, equal_cost_ratio
from helios.engine.replay.loop import Cluster
from helios.scaler.config.settings import load_settings
from helios.scaler.tools.simulate.compare import Replay, compare, headroom
from helios.scaler.tools.traces import native_step

ROOT = Path(__file__).resolve().parents[1]
HEADROOM_POLICIES = tuple("reactive" if h == 0 else f"reactive+{100 * h:g}%" for h in HEADROOMS)
REACH = (0.05, 0.02, 0.01)  # shortfall targets whose cost the report compares
LOAD_TRACES = (
    "nasa_http_jul95_requests_5min", "nab_Twitter_volume_AAPL", "nab_Twitter_volume_FB", "nab_Twitter_volume_GOOG",
    "nab_Twitter_volume_IBM", "nab_Twitter_volume_KO", "nab_nyc_taxi",
    "nab_ec2_cpu_utilization_24ae8d", "nab_ec2_cpu_utilization_5f5533", "nab_ec2_cpu_utilization_825cc2",
    "nab_ec2_cpu_utilization_c6585a", "nab_rds_cpu_utilization_cc0c53", "nab_grok_asg_anomaly",
    "google2019_avg_cpu_5min", "azure2017_vm1555166_avg_cpu_5min", "azure2017_vm1633630_avg_cpu_5min",
    "azure2017_vm1791809_avg_cpu_5min", "azure2017_vm606708_avg_cpu_5min", "azure2017_vm633346_avg_cpu_5min",
    "azure2017_vm815816_avg_cpu_5min",
)


def run_trace(job: tuple[str, str, float, dict, list[str]]) -> tuple[list[dict], dict, float]:
    """The rows of every policy on one trace, and what Helios chose at its refits."""
    path, model, days, trigger, sweep = job
    started = time.time()
    trace, settings, name = read_csv(path), load_settings(), Path(path).name
    step = native_step(trace)
    result = compare(name, trace, [*HEADROOM_POLICIES, model, "oracle"], Cluster(), Replay(days=days, trigger=trigger),
                     settings, step)
    rows = result.rows()
    plans = {model: _plans(result.choices[model])}
    for target in sweep:
        at_target = Replay(days=days, trigger={**trigger, "targetShortfall": target})
        swept = compare(name, trace, [model], Cluster(), at_target, settings, step)
        rows += [{**r, "policy": f"{model}@{target}"} for r in swept.rows()]
        plans[f"{model}@{target}"] = _plans(swept.choices[model])
    return rows, plans, time.time() - started


def _plans(choices: list) -> dict:
    counts = Counter(c.plan.label for c in choices)
    return {"refits": len(choices), "headroom": sum(c.plan.basis == "headroom" for c in choices),
            "attainable": sum(c.attainable for c in choices), "common": counts.most_common(1)[0][0] if counts else "—"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--days", type=float, default=2.0, help="simulated days per trace, after a 7-day warm-up")
    p.add_argument("--model", help="the Helios model (default: the scaler's models.default)")
    p.add_argument("--sweep", default="5%,1%", help="more targetShortfall values to run Helios at (comma-separated)")
    p.add_argument("--traces", help="comma-separated subset of the load traces (names without .csv)")
    p.add_argument("--quantile", help="a fixed trigger quantile instead of the shortfall target")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rows", help="also write the JSON rows here")
    p.add_argument("--plot", metavar="DIR", help="write one PNG per trace: the headroom frontier and Helios's points")
    args = p.parse_args()
    settings = load_settings()
    model = args.model or settings.models.default
    names = args.traces.split(",") if args.traces else LOAD_TRACES
    files = [Path(args.data) / f"{n}.csv" for n in names]
    if missing := [str(f) for f in files if not f.exists()]:
        sys.exit(f"missing traces: {', '.join(missing)}")
    trigger = {"quantile": args.quantile} if args.quantile else {}
    sweep = [t.strip() for t in args.sweep.split(",") if t.strip()]
    started = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        done = list(pool.map(run_trace, [(str(f), model, args.days, trigger, sweep) for f in files]))
    rows = [r for chunk, _, _ in done for r in chunk]
    plans = {chunk[0]["trace"]: chosen for chunk, chosen, _ in done}
    if args.rows:
        Path(args.rows).write_text(json.dumps(rows, indent=1))
    target = settings.provisioning.target_shortfall
    print(f"{len(files)} load traces from {args.data}: the last {args.days:g} days of each after a 7-day warm-up, "
          f"its 99th percentile = 20 replicas; polling 30 s, HPA sync 15 s, default behavior, startup 2 min; "
          f"Helios `{model}` with the scaler's defaults (targetShortfall {_share(target)}, cost cap "
          f"{settings.provisioning.cost_cap:g}x){' + ' + str(trigger) if trigger else ''}; "
          f"{time.time() - started:.0f} s wall, median {statistics.median(s for _, _, s in done):.0f} s per trace\n")
    report(rows, plans, model, [f"{model}@{t}" for t in sweep], target, settings.provisioning.cost_cap)
    if args.plot:
        for t in plans:
            print(f"plot: {plot(Path(args.plot), t, rows, model)}")


def curve(by: dict, trace: str) -> list[Point]:
    return [Point(**{k: by[trace, p][k] for k in ("replica_hours", *SHORTFALLS)}) for p in HEADROOM_POLICIES]


def point(row: dict) -> Point:
    return Point(**{k: row[k] for k in ("replica_hours", *SHORTFALLS)})


def report(rows: list[dict], plans: dict, model: str, swept: list[str], target: float | None, cap: float) -> None:
    by = {(r["trace"], r["policy"]): r for r in rows}
    traces = list(dict.fromkeys(r["trace"] for r in rows))
    ratios = {s: [] for s in SHORTFALLS}
    print("| trace | reactive under % | Helios under % | Helios replica-h / reactive | headroom under % at that cost "
          "| equal-cost ratio, time | equal-cost ratio, demand | Helios's usual plan | refits serving headroom |\n"
          "|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for t in traces:
        h, r, c = by[t, model], by[t, "reactive"], curve(by, t)
        ratio = {s: equal_cost_ratio(point(h), c, s) for s in SHORTFALLS}
        for s in SHORTFALLS:
            ratios[s].append(ratio[s])
        plan = plans[t][model]
        print(f"| {t.removesuffix('.csv')} | {_pct(r)} | {_pct(h)} | {h['replica_hours'] / r['replica_hours']:.2f} | "
              f"{100 * at_cost(c, h['replica_hours'], SHORTFALLS[0]):.1f} | {ratio[SHORTFALLS[0]]:.2f} | "
              f"{ratio[SHORTFALLS[1]]:.2f} | {plan['common']} | {plan['headroom']}/{plan['refits']} |")

    helios_policies = [model, *swept]
    print("\nReplica-hours (over reactive's) needed to reach an under-provisioned time of 5 / 2 / 1 %: Helios's "
          f"curve is its runs at the shortfall targets ({', '.join(helios_policies)}), headroom's is reactive+0..150%; "
          "'—': the curve does not get there.\n")
    print("| trace | " + " | ".join(f"Helios {_share(x)} | headroom {_share(x)}" for x in REACH) + " |\n|---|"
          + "---:|" * (2 * len(REACH)))
    for t in traces:
        base = by[t, "reactive"]["replica_hours"]
        mine = [point(by[t, p]) for p in helios_policies if (t, p) in by]
        cells = []
        for x in REACH:
            for c in (mine, curve(by, t)):
                cost = cost_to_reach(c, x, SHORTFALLS[0])
                cells.append("—" if cost is None else f"{cost / base:.2f}")
        print(f"| {t.removesuffix('.csv')} | " + " | ".join(cells) + " |")

    print("\n| policy | mean under-provisioned % | mean unserved % | median replica-h / reactive | mean scale events |"
          "\n|---|---:|---:|---:|---:|")
    for p in ["reactive", "reactive+20%", "reactive+50%", *helios_policies, "oracle"]:
        if all((t, p) in by for t in traces):
            under = statistics.fmean(by[t, p]["underprovisioned_fraction"] for t in traces)
            unserved = statistics.fmean(by[t, p]["unserved_fraction"] for t in traces)
            cost = statistics.median(by[t, p]["replica_hours"] / by[t, "reactive"]["replica_hours"] for t in traces)
            events = statistics.fmean(by[t, p]["scale_events"] for t in traces)
            print(f"| {p} | {100 * under:.2f} | {100 * unserved:.3f} | {cost:.3f} | {events:.0f} |")

    print("\n| target | measured | result |\n|---|---|---|")
    for s, label in zip(SHORTFALLS, ("under-provisioned time", "unserved demand"), strict=True):
        median = statistics.median(ratios[s])
        print(f"| {model}: median equal-cost ratio of {label} <= 0.7 (aim 0.5) | {median:.2f} | "
              f"{'PASS' if median <= 0.7 else 'FAIL'} |")
    worst = {s: max(ratios[s]) for s in SHORTFALLS}
    over = sorted({t.removesuffix('.csv') for s in SHORTFALLS for t, x in zip(traces, ratios[s], strict=True)
                   if x > 1.05})
    print(f"| {model}: no trace with an equal-cost ratio above 1.05 | worst {worst[SHORTFALLS[0]]:.2f} (time), "
          f"{worst[SHORTFALLS[1]]:.2f} (demand){'; above: ' + ', '.join(over) if over else ''} | "
          f"{'PASS' if not over else 'FAIL'} |")
    slo_policy = model if target == 0.02 else f"{model}@2%" if (traces[0], f"{model}@2%") in by else None
    if slo_policy is None:
        print("| targetShortfall 2% | not run: the default target is not 2% and --sweep has no 2% | — |")
        return
    attainable, within, savings = [], [], []
    for t in traces:
        h, c, base = by[t, slo_policy], curve(by, t), by[t, "reactive"]["replica_hours"]
        reach = cost_to_reach(c, 0.02, SHORTFALLS[0])
        if (reach is not None and reach <= cap * base) or \
                (h["underprovisioned_fraction"] <= 0.02 and h["replica_hours"] <= cap * base):
            attainable.append(t)
            within.append(h["underprovisioned_fraction"] <= 0.04)
        same = cost_to_reach(c, h["underprovisioned_fraction"], SHORTFALLS[0])
        if same is not None:
            savings.append(h["replica_hours"] / same)
    share = sum(within) / len(within) if within else float("nan")
    print(f"| {slo_policy} (targetShortfall 2%): simulated shortfall <= 4% on >= 80% of the traces where 2% is "
          f"attainable within {cap:g}x reactive's cost | {sum(within)}/{len(within)} = {share:.0%} | "
          f"{'PASS' if share >= 0.8 else 'FAIL'} |")
    median = statistics.median(savings) if savings else float("nan")
    print(f"| {slo_policy}: replica-hours / the cheapest headroom with the same shortfall <= 0.8 (median of "
          f"{len(savings)} traces where headroom reaches it) | {median:.2f} | {'PASS' if median <= 0.8 else 'FAIL'} |")


def plot(folder: Path, trace: str, rows: list[dict], model: str) -> Path:
    """The headroom frontier (cost against under-provisioned time) and the Helios and oracle points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {r["policy"]: r for r in rows if r["trace"] == trace}
    base = by["reactive"]["replica_hours"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    heads = [by[p] for p in HEADROOM_POLICIES]
    ax.plot([r["replica_hours"] / base for r in heads], [100 * r["underprovisioned_fraction"] for r in heads],
            "o-", color="grey", label="reactive + headroom (0..150 %)")
    for p, r in by.items():
        if headroom(p) is None:
            ax.plot(r["replica_hours"] / base, 100 * r["underprovisioned_fraction"], "*" if p != "oracle" else "x",
                    ms=12, label=p)
    ax.set_xlabel("replica-hours / reactive's")
    ax.set_ylabel("under-provisioned time %")
    ax.set_title(f"{trace.removesuffix('.csv')}: cost against shortfall")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"frontier_{trace.removesuffix('.csv')}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _share(x: float | None) -> str:
    return "off" if x is None else f"{100 * x:g}%"


def _pct(row: dict) -> str:
    return f"{100 * row['underprovisioned_fraction']:.1f}"


if __name__ == "__main__":
    main()
