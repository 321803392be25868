"""`helios detect PATH...`: run anomaly detectors over `timestamp,value` CSVs and, given labels, judge them.

The protocol (tools/detection.py): each detector is fitted on the first part of the series (NAB's
probationary period) and then scores the whole series without look-ahead; only the steps after the
fitted part are judged. A step is flagged at WARNING (by the likelihood where the detector has one,
else |score| >= 2.5); flags with fewer than `--quiet-steps` (12) unflagged steps between them raise
one alert, at the first flag, with its severity. Precision, recall, F1 and the
NAB score judge the alerts; `--quiet-steps 0` judges every flagged step, as NAB's runner does.

Labels: a JSON object {CSV file name: [[start, end], ...]} with inclusive ISO-8601 timestamps (NAB's
combined_windows.json). Each window is widened to the grid steps holding its first and last
timestamps. Metrics (engine.anomaly.nab): event-level precision, recall and F1, and the NAB score,
standard profile. Each detector's total row averages precision, recall and F1 over the labelled
series where they are defined, and computes the NAB score of the whole corpus (raw, null and perfect
scores summed first, as NAB does).
"""

from __future__ import annotations

import argparse
import json
import sys

from helios.engine.anomaly import NAMES, detector_class
from helios.engine.anomaly.alerts import QUIET_STEPS
from helios.engine.anomaly.nab import PROBATION_FRACTION
from helios.engine.errors import HeliosError

from ..config.durations import parse_duration
from .detection import detect_series, json_safe, load_labels, load_series, snap, table, totals
from .traces import csv_files

DEFAULT_DETECTORS = ",".join(NAMES)


def register(commands) -> None:
    p = commands.add_parser("detect", help="anomaly detection on CSV series, judged against labelled windows")
    p.add_argument("paths", nargs="+", metavar="PATH", help="timestamp,value CSV files or folders of them")
    p.add_argument("--detectors", default=DEFAULT_DETECTORS,
                   help=f"comma-separated names (default {DEFAULT_DETECTORS})")
    p.add_argument("--labels", metavar="FILE", help="JSON {file name: [[start, end], ...]}: adds precision, recall, "
                   "F1 and the NAB score")
    p.add_argument("--step", default="5m", help="grid the series are aligned to (default 5m)")
    p.add_argument("--probation", type=float, default=PROBATION_FRACTION,
                   help="share of each series to fit on and not judge, capped as in NAB at 5000 x share steps "
                   "(default 0.15: at most 750 steps)")
    p.add_argument("--quiet-steps", type=int, default=QUIET_STEPS,
                   help=f"steps without a flag that end an excursion; one alert per excursion (default "
                   f"{QUIET_STEPS}; 0: every flagged step is an alert)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    unknown = [d for d in detectors if d not in NAMES]
    if unknown or not detectors:
        return _fail(f"--detectors: unknown {', '.join(unknown) or '(none given)'}; available: {', '.join(NAMES)}")
    if not 0 <= args.probation < 1:
        return _fail(f"--probation must be in [0, 1), got {args.probation}")
    if args.quiet_steps < 0:
        return _fail(f"--quiet-steps must be >= 0, got {args.quiet_steps}")
    try:
        step = int(parse_duration(args.step))
        if step < 1:
            raise ValueError(f"--step must be at least 1s, got {args.step!r}")
        labels = load_labels(args.labels) if args.labels else None
        files = csv_files(args.paths, every_folder=True)
        twice = sorted({f.name for f in files if [g.name for g in files].count(f.name) > 1})
        if twice:  # rows and labels go by file name
            raise ValueError(f"more than one file named {', '.join(twice)}")
        series = {f.name: load_series(f, step) for f in files}
    except (HeliosError, ValueError) as e:
        return _fail(str(e))
    rows = []
    for name, s in series.items():
        windows = snap(labels[name], step) if labels is not None and name in labels else None
        for detector in detectors:
            row = detect_series(name, s, detector_class(detector), windows, args.probation, args.quiet_steps)
            if row.get("error"):
                print(f"helios detect: {name}: {detector}: {row['error']}", file=sys.stderr)
            rows.append(row)
    rows += totals(rows, detectors)
    print(json.dumps(json_safe(rows), indent=1) if args.format == "json"
          else table(rows, args.probation, args.quiet_steps))
    return 1 if any(r.get("error") for r in rows) else 0


def _fail(message: str) -> int:
    print(f"helios detect: {message}", file=sys.stderr)
    return 2
