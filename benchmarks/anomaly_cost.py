"""CPU of anomaly scoring per workload: the daily refit and each new sample, in the worker and in the server.

    python benchmarks/anomaly_cost.py [--data ../shared/data] [--samples 48] [--files nab_nyc_taxi,...]

On each file (default: three labelled NAB series of different kinds), 7 days of 5-minute history: the
xgboost detector's refit (engine.pipeline.score_latest without a saved detector: the fit, the history's
scores, the likelihood's state, the drivers), then --samples new samples one at a time, as serving scores
them (the saved detector, the likelihood carried on by one step). CPU seconds (time.process_time) of:
- the worker: score_latest itself (it runs in the scaler's worker processes);
- the server: what the serving process spends per sample outside the worker: pickling the call's
  arguments and unpickling its result (pebble's transport), the alert gate, and the reading.
Targets (issue 14): the server's share of one new sample <= 1 ms; the refit stays in the worker.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from pathlib import Path

from helios.adapters.file import read_csv
from helios.engine.align import align
from helios.engine.anomaly.alerts import AlertGate
from helios.engine.pipeline import score_latest
from helios.engine.types import Series
from helios.scaler.runtime.state import AnomalyReading

ROOT = Path(__file__).resolve().parents[1]
STEP = 300
WEEK = 7 * 288
FILES = ("nab_ec2_cpu_utilization_24ae8d", "nab_Twitter_volume_AAPL", "nab_nyc_taxi")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--samples", type=int, default=48, help="new samples scored after the refit (default 48)")
    p.add_argument("--files", default=",".join(FILES), help="comma-separated file names without .csv")
    args = p.parse_args(argv)
    if args.samples < 1:
        print("anomaly_cost: --samples must be >= 1", file=sys.stderr)
        return 2
    rows = []
    for name in args.files.split(","):
        path = Path(args.data) / f"{name}.csv"
        if not path.is_file():
            print(f"anomaly_cost: {path}: no such file", file=sys.stderr)
            return 2
        trace = align(read_csv(str(path)), STEP)
        if len(trace) < WEEK + args.samples:
            print(f"anomaly_cost: {name}: needs {WEEK + args.samples} steps, has {len(trace)}", file=sys.stderr)
            return 2
        rows.append(measure(name, trace, args.samples))
    print(f"Anomaly scoring CPU, xgboost, 7 days of 5-minute history, {args.samples} new samples each\n")
    print("| file | refit, worker s | new sample, worker ms (median) | new sample, server ms (median) | result |")
    print("|---|---:|---:|---:|---|")
    for name, refit, worker, server in rows:
        verdict = "PASS" if server <= 1.0 else "FAIL: server > 1 ms"
        print(f"| {name} | {refit:.2f} | {worker:.1f} | {server:.3f} | {verdict} |")
    return 0


def measure(name: str, trace: Series, samples: int) -> tuple[str, float, float, float]:
    def window(end: int) -> Series:  # the 7 days a refresh hands the insights, ending at `end`
        return Series(trace.timestamps[end - WEEK : end], trace.values[end - WEEK : end])

    started = time.process_time()
    scored = score_latest("xgboost", None, window(WEEK), STEP)
    refit = time.process_time() - started
    artifact, state, gate = scored.artifact, scored.likelihood_state, AlertGate()
    worker, server = [], []
    for end in range(WEEK + 1, WEEK + 1 + samples):
        history = window(end)
        started = time.process_time()
        sent = pickle.loads(pickle.dumps(("xgboost", artifact, history, STEP, None, state)))
        server_part = time.process_time() - started
        started = time.process_time()
        result = score_latest(*sent)
        worker.append(time.process_time() - started)
        started = time.process_time()
        result = pickle.loads(pickle.dumps(result))
        state = result.likelihood_state
        AnomalyReading(result.detector, result.timestamp, result.value, result.score, result.severity,
                       result.likelihood, gate.feed(result.severity), result.drivers)
        server.append(server_part + time.process_time() - started)
    return name, refit, 1000 * statistics.median(worker), 1000 * statistics.median(server)


if __name__ == "__main__":
    sys.exit(main())
