"""`helios train PATH... --out URL`: fit every Helios trigger's model, one Dask task per workload, and store it.

PATH is a ScaledObject manifest (multi-document YAML too) or a folder of them. The triggers are read as
serving reads them, so training sees exactly the metadata KEDA will send. Exit status: 0 when every
workload was trained, 1 when any failed (the others are still stored; the summary names each failure),
2 when the input or configuration is invalid (nothing trained).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from helios.engine.errors import HeliosError

from ..config.metadata import InvalidMetadata
from ..config.settings import ConfigError, load_settings
from .training import Progress, read_triggers, train_all


def register(commands) -> None:
    p = commands.add_parser("train", help="fit the models of ScaledObjects' Helios triggers and store them")
    p.add_argument("manifests", nargs="+", metavar="PATH", help="ScaledObject manifests, or folders of them")
    p.add_argument("--out", required=True, metavar="URL",
                   help="artifact store: a folder, s3://bucket/prefix or gs://bucket/prefix (serve reads it: "
                        "models.artifacts)")
    p.add_argument("--config", metavar="FILE", help="the YAML configuration serve uses")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler (tcp://host:8786); default: a local cluster of --workers processes")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes of the local cluster (default: the CPUs, at most 4)")
    p.add_argument("--backtest-origins", type=int, default=5, help="origins of the backtest stored with the model")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
        triggers = read_triggers([Path(m) for m in args.manifests], settings)
    except (ConfigError, InvalidMetadata, ValueError, OSError) as e:
        print(f"helios train: {e}", file=sys.stderr)
        return 2
    progress = Progress(len(triggers))
    try:
        summary = train_all(triggers, settings, args.out, scheduler=args.scheduler, workers=args.workers,
                            origins=args.backtest_origins, on_result=progress)
    except (OSError, HeliosError) as e:  # the store or the scheduler cannot be reached
        print(f"helios train: {e}", file=sys.stderr)
        return 2
    finally:
        progress.close()
    print("| workload | model | forecast model | mase | coverage_80 | fit s | version |\n|---|---|---|---|---|---|---|")
    for row in sorted(summary.rows, key=lambda r: r["workload"]):
        if "error" in row:
            print(f"| {row['workload']} | {row.get('model', '')} | failed: {row['error']} | | | | |")
        else:
            print(f"| {row['workload']} | {row['model']} | {row['forecast_model']} | {row['mase']:.3g} | "
                  f"{row['coverage_80']:.2f} | {row['fit_seconds']:.2f} | {row['version']} |")
    n, failed = len(summary.rows), len(summary.failed)
    print(f"\n{n - failed} of {n} workloads trained, {failed} failed, in {summary.finished - summary.started:.1f}s "
          f"on {summary.scheduler}")
    return 1 if failed else 0
