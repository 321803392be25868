"""Does context change the anomaly detector's verdicts? The xgboost detector on a load with, and without,
a second metric of the same workload in its features (issue 15: the container and database metrics
fill their columns of engine/features.py).

The development data has one workload with two metrics: the Google 2019 cluster trace's CPU and memory
(`google2019_avg_cpu_5min.csv`, `google2019_avg_mem_5min.csv`). The detector is fitted on the first
week of CPU and scores the rest, once alone and once with memory as `memory_utilization`. There are no
labels, so the table says how much changes, not which is right: alerts raised (one per incident),
how many of them both raise, the flagged steps that differ, and how alike the scores are.

    .venv/bin/python benchmarks/anomaly_context.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from helios.engine.anomaly.alerts import alerts
from helios.engine.anomaly.xgb import XGBoostDetector
from helios.engine.types import Series
from helios.scaler.tools.detection import load_series

STEP = 300
FIT_DAYS = 7


def run(load: Series, context: dict[str, Series] | None) -> tuple[np.ndarray, np.ndarray, float]:
    fit_end = load.timestamps[0] + FIT_DAYS * 86400
    started = time.process_time()
    detector = XGBoostDetector().fit(load.between(load.timestamps[0], fit_end), context)
    later = load.between(fit_end + STEP, load.end)
    scored = detector.score(later, context)
    return scored.scores, scored.severity, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding the google2019 CSVs")
    args = parser.parse_args()
    cpu = load_series(args.data / "google2019_avg_cpu_5min.csv", STEP)
    memory = load_series(args.data / "google2019_avg_mem_5min.csv", STEP)
    alone, alone_severity, alone_s = run(cpu, None)
    with_context, context_severity, context_s = run(cpu, {"memory_utilization": memory})
    a, b = alerts(alone_severity >= 1), alerts(context_severity >= 1)
    both = int(np.sum(a & b))
    finite = np.isfinite(alone) & np.isfinite(with_context)
    ranks = [np.argsort(np.argsort(x[finite])) for x in (alone, with_context)]
    spearman = float(np.corrcoef(*ranks)[0, 1])
    days = finite.sum() * STEP / 86400
    print(f"xgboost on google2019 CPU, fitted on {FIT_DAYS} days, scoring {days:.1f} days\n")
    print("| features | alerts | alerts per day | mean abs score | CPU s (fit + score) |")
    print("|---|---:|---:|---:|---:|")
    for label, raised, scores, seconds in (("CPU alone", a, alone, alone_s),
                                           ("CPU + memory_utilization", b, with_context, context_s)):
        print(f"| {label} | {int(raised.sum())} | {raised.sum() / days:.2f} | "
              f"{np.nanmean(np.abs(scores)):.2f} | {seconds:.1f} |")
    print(f"\nalerts both raise: {both}; flagged steps that differ: "
          f"{int(np.sum((alone_severity >= 1) != (context_severity >= 1)))} of {int(finite.sum())}; "
          f"Spearman correlation of the scores: {spearman:.3f}")


if __name__ == "__main__":
    main()
