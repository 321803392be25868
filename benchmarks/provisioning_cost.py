"""CPU of one provisioning replay (engine.pipeline.choose_provisioning) per workload per refit, beside the fit.

    python benchmarks/provisioning_cost.py [--data ../shared/data] [--model baseline] [--repeat 3]

On each load trace of benchmarks/scaling.py: the 7 days of 5-minute history a refit sees (the last 7 days
before the trace's final 2), scaled so its 99th percentile needs 20 replicas; the replay of the default
settings (a 2-day replay, 2 % target, 2x cap, the default HPA). CPU seconds of this process (time.process_time),
the median of --repeat runs, so another process on the machine does not count. Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from scaling import LOAD_TRACES  # the same traces (benchmarks/ is the script's folder)

from helios.adapters.file import read_csv
from helios.engine.align import align
from helios.engine.pipeline import choose_provisioning, fit_and_forecast
from helios.engine.replay.loop import Cluster
from helios.engine.replay.provision import SLO
from helios.engine.types import Series
from helios.scaler.config.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def cpu(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        started = time.process_time()
        out = fn()
        times.append(time.process_time() - started)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--model", default="baseline")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    settings = load_settings()
    prov = settings.provisioning
    params = settings.models.params_for(args.model, 6, settings.models.quantile)
    rows = []
    for name in LOAD_TRACES:
        trace = align(read_csv(str(Path(args.data) / f"{name}.csv")), 300)
        end = trace.timestamps[-1] - 2 * 86400
        history = trace.between(end - 7 * 86400, end)
        history = Series(history.timestamps, history.values)
        target = float(np.percentile(history.values, 99)) / 20
        cluster = Cluster(target_value=target, capacity=target)
        fit, _ = cpu(lambda h=history: fit_and_forecast(args.model, params, h, 300, 6), args.repeat)
        slo = SLO(prov.target_shortfall, prov.cost_cap)
        replay, choice = cpu(lambda h=history, c=cluster, s=slo: choose_provisioning(
            args.model, params, h, 300, 300, s, c, prov.replay, prov.min_replay), args.repeat)
        rows.append((name, len(history), fit, replay, choice.plan.label))
    print(f"Provisioning replay CPU per workload per refit, `{args.model}`, 7 days of 5-minute history, "
          f"replay {prov.replay / 3600:g} h, median of {args.repeat}\n")
    print("| trace | samples | fit CPU s | replay CPU s | replay / fit | plan chosen |\n|---|---:|---:|---:|---:|---|")
    for name, n, fit, replay, plan in rows:
        print(f"| {name} | {n} | {fit:.3f} | {replay:.3f} | {replay / fit:.0f}x | {plan} |")
    replays = [r[3] for r in rows]
    print(f"\nreplay CPU: median {statistics.median(replays):.3f} s, max {max(replays):.3f} s; target <= 1 s: "
          f"{'PASS' if statistics.median(replays) <= 1 else 'FAIL'} (median), "
          f"{sum(r <= 1 for r in replays)}/{len(replays)} traces within it")


if __name__ == "__main__":
    main()
