"""`helios backtest PATH...`: rolling-origin backtests of the models on `timestamp,value` CSVs."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from helios.adapters.file import read_csv
from helios.engine.align import align
from helios.engine.backtest import backtest, origins_for, run_origins
from helios.engine.errors import HeliosError
from helios.engine.models import MODELS, create
from helios.engine.types import Series

from ..config.durations import parse_duration
from .tables import markdown_table
from .traces import csv_files, native_step

COLUMNS = ("series", "model", "horizon_steps", "mae", "mape", "smape", "mase", "coverage_80", "pinball_90",
           "fit_seconds", "predict_seconds")


def register(commands) -> None:
    p = commands.add_parser("backtest", help="rolling-origin backtests of forecasting models on CSV series")
    p.add_argument("paths", nargs="+", metavar="PATH", help="timestamp,value CSV files or folders of them")
    p.add_argument("--horizon", default="30m", help="how far ahead each forecast reaches (default 30m)")
    p.add_argument("--models", default="naive,seasonal_naive,baseline,prophet,auto",
                   help="comma-separated model names")
    p.add_argument("--origins", type=int, default=10, help="forecast origins per series (default 10)")
    p.add_argument("--spacing", default="3h", help="time between origins (default 3h)")
    p.add_argument("--train-window", default="7d", help="history each fit sees (default 7d)")
    p.add_argument("--step", default="native",
                   help="grid the series are aligned to: a duration, or `native`, each file's own most common "
                        "step (default)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--plot", metavar="DIR", help="write one PNG per series: history, forecasts, intervals, actuals")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        fixed_step = None if args.step == "native" else int(parse_duration(args.step))
        durations = {k: parse_duration(getattr(args, k)) for k in ("horizon", "spacing", "train_window")}
    except ValueError as e:
        return _fail(str(e))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        return _fail(f"--models: unknown {', '.join(unknown)}; available: {', '.join(sorted(MODELS))}")
    try:
        raw = {f.name: read_csv(str(f)) for f in csv_files(args.paths)}
    except (HeliosError, ValueError) as e:
        return _fail(str(e))
    rows = []
    for name, trace in raw.items():
        step = fixed_step or native_step(trace)
        s = align(trace, step)
        horizon = max(1, math.ceil(durations["horizon"] / step))
        spacing = max(1, round(durations["spacing"] / step))
        window = max(60, round(durations["train_window"] / step))
        for model in models:
            params = {"horizon": horizon} if model == "auto" else {}
            try:
                result = backtest(s, model, horizon, args.origins, window, params, spacing)
            except (HeliosError, ValueError) as e:
                print(f"helios backtest: {name} {model}: {e}", file=sys.stderr)
                continue
            rows.append({"series": name, **result.as_dict()})
        if args.plot:
            plot(Path(args.plot), name, s, models, horizon, window, step)
    for row in rows:
        row.pop("origins", None)
    print(json.dumps(rows, indent=1) if args.format == "json" else table(rows))
    return 0


def table(rows: list[dict]) -> str:
    return markdown_table(rows, COLUMNS)


def plot(folder: Path, name: str, s: Series, models: list[str], horizon: int, window: int, step: int) -> None:
    """History before the last origin, each model's forecast and 80% interval from it, and the actuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    origin = origins_for(len(s), horizon, 1, min_train=min(window, len(s) // 2))[0]
    shown = slice(max(0, origin - 72), origin + horizon)  # six hours of context at 5-minute steps
    when = s.timestamps.astype("datetime64[s]")
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(when[shown], s.values[shown], color="black", lw=1, label="actual")
    for model in models:
        params = {"horizon": horizon} if model == "auto" else {}
        try:
            (r,) = run_origins(s, lambda m=model, p=params: create(m, step=step, **p), horizon, [origin], window)
        except (HeliosError, ValueError):
            continue
        lower, upper = r.forecast.interval(0.8)
        t = r.forecast.timestamps.astype("datetime64[s]")
        line = ax.plot(t, r.forecast.point, lw=1.5, label=model)[0]
        ax.fill_between(t, lower, upper, color=line.get_color(), alpha=0.15)
    ax.axvline(np.datetime64(int(s.timestamps[origin]), "s"), color="grey", ls=":")
    ax.set_title(f"{name}: forecasts from the last origin, 80% intervals")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / f"{Path(name).stem}.png", dpi=90)
    plt.close(fig)


def _fail(message: str) -> int:
    print(f"helios backtest: {message}", file=sys.stderr)
    return 2


