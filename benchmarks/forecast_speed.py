"""How long models take: one fit + predict per model, and one refresh cycle of many workloads.

    python benchmarks/forecast_speed.py                     # 1,000 workloads, models: all
    python benchmarks/forecast_speed.py --workloads 200 --repeat 3

Part 1, per model, on 7 days of 5-minute data (2,016 samples, the demo trace with other seeds): the
median time of a fit, of a 30-minute predict, and of an `update` (what the scaler does between fits).

Part 2, the scaler's refresh between fits: `--workloads` workloads whose models were fitted with
`auto` (fitted once on `--distinct` different series, their artifacts shared round-robin, each
workload with its own history), every one updated and forecast through a pool of `--workers` worker
processes, exactly as the refresher does (engine.pipeline.update_and_forecast, artifact bytes in,
forecast out). The target: the whole cycle inside one 5-minute refresh period on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from helios.adapters.demo import demo_trace
from helios.engine.models import create
from helios.engine.pipeline import fit_and_forecast, update_and_forecast
from helios.engine.types import Series

STEP = 300
HORIZON = 6  # 30 minutes
CYCLE_BUDGET = 300.0


def workload_series(seed: int) -> Series:
    """A week of demo-like traffic, different per seed (level, noise, surges)."""
    base = demo_trace(seed=seed)
    scale = 0.5 + (seed % 7) / 3
    return Series(base.timestamps, base.values * scale)


def per_model(models: list[str], repeat: int) -> list[dict]:
    rows = []
    for name in models:
        fits, predicts, updates = [], [], []
        for r in range(repeat):
            s = workload_series(100 + r)
            train = Series(s.timestamps[:-12], s.values[:-12])
            params = {"horizon": HORIZON} if name == "auto" else {}
            t0 = time.perf_counter()
            model = create(name, step=STEP, **params).fit(train)
            t1 = time.perf_counter()
            model.predict(HORIZON)
            t2 = time.perf_counter()
            model.update(s)
            t3 = time.perf_counter()
            fits.append(t1 - t0)
            predicts.append(t2 - t1)
            updates.append(t3 - t2)
        rows.append({"model": name, "fit_s": statistics.median(fits), "predict_s": statistics.median(predicts),
                     "update_s": statistics.median(updates)})
    return rows


def refresh_cycle(workloads: int, distinct: int, workers: int) -> dict:
    with ProcessPoolExecutor(workers) as pool:
        series = [workload_series(seed) for seed in range(distinct)]
        started = time.perf_counter()
        fitted = list(pool.map(_fit_auto, series))
        fit_seconds = time.perf_counter() - started
        chosen = Counter(f.details.get("chosen", "?") for f in fitted)
        list(pool.map(_noop, range(workers)))  # workers warm
        jobs = []
        for i in range(workloads):
            s = workload_series(1000 + i)
            jobs.append((fitted[i % distinct].artifact, s))
        started = time.perf_counter()
        done = list(pool.map(_update, jobs, chunksize=8))
        cycle = time.perf_counter() - started
    assert all(np.isfinite(f.forecast.point).all() for f in done)
    return {"workloads": workloads, "workers": workers, "distinct_fits": distinct, "fit_wall_s": fit_seconds,
            "cycle_wall_s": cycle, "per_workload_ms": 1000 * cycle / workloads, "chosen": dict(chosen)}


def _fit_auto(s: Series):
    return fit_and_forecast("auto", {"horizon": HORIZON}, s, STEP, HORIZON)


def _update(job):
    artifact, s = job
    return update_and_forecast(artifact, s, STEP, HORIZON)


def _noop(_):
    return os.getpid()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="naive,seasonal_naive,baseline,prophet,auto")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--workloads", type=int, default=1000)
    p.add_argument("--distinct", type=int, default=20)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = p.parse_args()

    print(f"## One fit, predict ({HORIZON} steps) and update on 7 days of 5-minute data, median of {args.repeat}\n")
    print("| model | fit s | predict s | update s |\n|---|---:|---:|---:|")
    rows = per_model(args.models.split(","), args.repeat)
    for r in rows:
        print(f"| {r['model']} | {r['fit_s']:.4f} | {r['predict_s']:.4f} | {r['update_s']:.4f} |")
    by = {r["model"]: r for r in rows}
    if "prophet" in by and "baseline" in by:
        cost = {m: by[m]["fit_s"] + by[m]["predict_s"] for m in ("prophet", "baseline")}
        print(f"\nprophet fit+predict / baseline fit+predict: {cost['prophet'] / cost['baseline']:.0f}x")

    c = refresh_cycle(args.workloads, args.distinct, args.workers)
    verdict = "PASS" if c["cycle_wall_s"] <= CYCLE_BUDGET else "FAIL"
    print(f"\n## Refresh cycle between fits: {c['workloads']} workloads with `auto`, {c['workers']} workers\n")
    print("| workloads | wall s | ms per workload | budget s | result | auto chose |\n|---:|---:|---:|---:|---|---|")
    print(f"| {c['workloads']} | {c['cycle_wall_s']:.1f} | {c['per_workload_ms']:.1f} | {CYCLE_BUDGET:.0f} | {verdict} "
          f"| {', '.join(f'{k} {v}' for k, v in sorted(c['chosen'].items()))} (of {c['distinct_fits']} fits, "
          f"{c['fit_wall_s']:.0f} s) |")


if __name__ == "__main__":
    main()
