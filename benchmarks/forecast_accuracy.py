"""Forecast accuracy of every model on real series, and the forecasting issue's targets.

    python benchmarks/forecast_accuracy.py [--data ../shared/data] [--horizon 30m] [--origins 10]

Runs the same rolling-origin backtest as `helios backtest` (engine.backtest: each origin fits on the
7 days before it, forecasts the horizon, is scored on what followed; origins 3 h apart; each series on
its own sampling step) on every `*.csv` in --data, for naive, seasonal_naive, baseline, prophet, auto
and statsforecast's ets, ses, mstl and theta; with `--auto-candidates a,b,...` also for an auto that
chooses among those (`auto_ext`). Prints per model the mean MASE, sMAPE, 80%-interval coverage and 0.9
pinball loss (scaled by the series' naive error), then the targets: auto's MASE below seasonal_naive's
and naive's on >= 80% of series, auto's mean scaled pinball below prophet's, and every model's mean
coverage within 0.75-0.85. `--rows FILE` keeps the JSON rows.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from helios.adapters.file import read_csv
from helios.engine import scores
from helios.engine.align import align
from helios.engine.backtest import backtest
from helios.engine.errors import HeliosError
from helios.scaler.config.durations import parse_duration
from helios.scaler.tools.traces import native_step

MODELS = ("naive", "seasonal_naive", "baseline", "prophet", "auto", "ets", "ses", "mstl", "theta")
EXTENDED = "auto_ext"  # auto with --auto-candidates, beside the default auto
ROOT = Path(__file__).resolve().parents[1]


def run_series(job: tuple[str, float, int, float, tuple[str, ...]]) -> list[dict]:
    path, horizon_seconds, origins, spacing_seconds, auto_candidates = job
    trace = read_csv(path)
    step = native_step(trace)  # 30-minute and daily series are forecast on their own grid
    horizon = max(1, math.ceil(horizon_seconds / step))
    spacing = max(1, round(spacing_seconds / step))
    s = align(trace, step)
    scale = scores.naive_scale(s.values)
    rows = []
    runs = [(m, m, {"horizon": horizon} if m == "auto" else {}) for m in MODELS]
    if auto_candidates:
        runs.append((EXTENDED, "auto", {"horizon": horizon, "candidates": list(auto_candidates)}))
    for label, model, params in runs:
        try:
            r = backtest(s, model, horizon, origins, max(7 * 86400 // step, 60), params, spacing).as_dict()
            r["model"] = label
        except (ValueError, HeliosError) as e:  # e.g. too little history for the model: no row
            print(f"{Path(path).name} {model}: {e}", file=sys.stderr)
            continue
        r["pinball_90_scaled"] = r["pinball_90"] / scale
        rows.append({"series": Path(path).name, **r})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--horizon", default="30m")
    p.add_argument("--origins", type=int, default=10)
    p.add_argument("--spacing", default="3h")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rows", help="also write the per-series rows as JSON here")
    p.add_argument("--auto-candidates", default="",
                   help=f"comma-separated candidates for a second auto, reported as {EXTENDED}")
    args = p.parse_args()
    horizon = parse_duration(args.horizon)
    files = sorted(str(f) for f in Path(args.data).glob("*.csv"))
    started = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        extended = tuple(c for c in args.auto_candidates.split(",") if c)
        jobs = [(f, horizon, args.origins, parse_duration(args.spacing), extended) for f in files]
        rows = [r for chunk in pool.map(run_series, jobs) for r in chunk]
    if args.rows:
        Path(args.rows).write_text(json.dumps(rows, indent=1))
    by_model = {m: [r for r in rows if r["model"] == m] for m in (*MODELS, EXTENDED)}
    print(f"{len(files)} series from {args.data}, each on its own sampling step; horizon {args.horizon} (at least "
          f"one step), {args.origins} origins {args.spacing} apart (at least a step), training windows of 7 days "
          f"(at least 60 steps); {time.time() - started:.0f} s\n")
    print("| model | series | mean MASE | median MASE | mean sMAPE % | mean coverage_80 | mean pinball_90 / naive MAE "
          "| median fit s |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for m, rs in by_model.items():
        if rs:
            print(f"| {m} | {len(rs)} | {statistics.fmean(r['mase'] for r in rs):.3f} | "
                  f"{statistics.median(r['mase'] for r in rs):.3f} | {statistics.fmean(r['smape'] for r in rs):.1f} | "
                  f"{statistics.fmean(r['coverage_80'] for r in rs):.3f} | "
                  f"{statistics.fmean(r['pinball_90_scaled'] for r in rs):.3f} | "
                  f"{statistics.median(r['fit_seconds'] for r in rs):.3f} |")
    mase = {(r["series"], r["model"]): r["mase"] for r in rows}
    series = sorted({r["series"] for r in rows})
    print("\n| target | measured | result |\n|---|---|---|")
    pin = {m: statistics.fmean(r["pinball_90_scaled"] for r in rs) for m, rs in by_model.items() if rs}
    for auto in ("auto", EXTENDED):
        if auto not in pin:
            continue
        for ref in ("seasonal_naive", "naive"):
            wins = [s for s in series if (s, auto) in mase and (s, ref) in mase and mase[s, auto] < mase[s, ref]]
            share = len(wins) / len(series)
            print(f"| {auto} MASE < {ref} MASE on >= 80% of series | {len(wins)}/{len(series)} = {share:.0%} | "
                  f"{'PASS' if share >= 0.8 else 'FAIL'} |")
        print(f"| {auto} mean pinball < prophet's | {pin[auto]:.3f} vs {pin['prophet']:.3f} | "
              f"{'PASS' if pin[auto] < pin['prophet'] else 'FAIL'} |")
    for m, rs in by_model.items():
        if not rs:
            continue
        c = statistics.fmean(r["coverage_80"] for r in rs)
        print(f"| {m} mean coverage_80 in [0.75, 0.85] | {c:.3f} | {'PASS' if 0.75 <= c <= 0.85 else 'FAIL'} |")


if __name__ == "__main__":
    main()
