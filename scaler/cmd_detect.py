"""`helios detect PATH...`: run anomaly detectors over `timestamp,value` CSVs and, given labels, judge them.

Protocol, close to NAB's: each series is aligned to `--step`; each detector is fitted on the first
part of the series (NAB's probationary period: 15%, at most 750 steps; the whole series when that is
0 steps) and then scores the whole series, one step at a time without look-ahead. The fitted part is
not judged: alerts, score summaries and metrics cover the steps after it. Detection is unsupervised:
labels only judge the alerts, they never fit a detector or pick its threshold.

Flags and alerts (the same for every detector): a step is flagged when its severity
(engine.anomaly.base) is at least WARNING, i.e. |score| >= 2.5. Flags with fewer than `--quiet-steps`
(12) unflagged steps between them form one excursion, which raises one alert, at its first flag
(engine.anomaly.alerts): an incident is news once, not on each of its steps. Precision, recall, F1
and the NAB score judge the alerts; `--quiet-steps 0` judges every flagged step, as NAB's runner does.

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
import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from helios.adapters.file import read_csv
from helios.engine.align import align
from helios.engine.anomaly import NAMES, detector_class
from helios.engine.anomaly.alerts import QUIET_STEPS, excursions
from helios.engine.anomaly.base import Severity
from helios.engine.anomaly.nab import (
    PROBATION_FRACTION,
    EventCounts,
    NabScore,
    event_counts,
    nab_score,
    probation_steps,
)
from helios.engine.errors import HeliosError
from helios.engine.types import Series

from .durations import parse_duration

DEFAULT_DETECTORS = "xgboost,zscore,threshold"
TOTAL = "TOTAL"
Windows = list[tuple[int, int]]


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
        files = csv_files(args.paths)
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


def csv_files(paths: Sequence[str]) -> list[Path]:
    """The CSV files named, and those directly inside the folders named, in order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.csv"))
            if not found:
                raise ValueError(f"{p}: no .csv files in this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise ValueError(f"{p}: no such file or folder")
    return files


def load_series(path: Path, step: int) -> Series:
    aligned = align(read_csv(str(path)), step)
    if len(aligned) == 0:
        raise ValueError(f"{path}: no samples")
    return aligned


def load_labels(path: str) -> dict[str, Windows]:
    """{file name: [(start, end), ...]} in Unix seconds, from a NAB-style labels JSON file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON labels file ({e.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object {{file name: [[start, end], ...]}}")
    labels = {}
    for name, windows in data.items():
        try:
            labels[name] = [_window(w) for w in windows]
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {name}: {e}") from None
    return labels


def snap(windows: Windows, step: int) -> Windows:
    """Each window widened to the grid steps holding its ends: align() puts a sample at t on step t // step."""
    return [(start // step * step, end // step * step) for start, end in windows]


def detect_series(name: str, series: Series, detector_cls: type, windows: Windows | None = None,
                  probation: float = PROBATION_FRACTION, quiet_steps: int = QUIET_STEPS) -> dict:
    """Fit on the probationary part, score the whole series, summarise and (with windows) judge the
    alerts after it (see the module doc)."""
    skip = probation_steps(len(series), probation)
    fit_on = Series(series.timestamps[:skip], series.values[:skip]) if skip else series
    row: dict = {"series": name, "detector": detector_cls.name, "steps": len(series),
                 "scored_from": _iso(series.timestamps[min(skip, len(series) - 1)])}
    began = time.perf_counter()
    try:
        scores = detector_cls().fit(fit_on).score(series)
    except (HeliosError, ValueError) as e:
        return {**row, "error": str(e)}
    row["seconds"] = round(time.perf_counter() - began, 3)
    ts, values, severity = scores.timestamps, scores.scores, scores.severity
    flags = severity >= Severity.WARNING
    flags[:skip] = False  # the fitted part is not judged
    judged = np.abs(values[skip:])
    judged = judged[~np.isnan(judged)]
    row["flagged_steps"] = int(flags.sum())
    row["max_abs_score"] = float(judged.max()) if judged.size else math.nan
    row["p99_abs_score"] = float(np.quantile(judged, 0.99)) if judged.size else math.nan
    spans = excursions(flags, quiet_steps)
    # One alert per excursion, at its first flag: start; end is its last flag, severity its worst.
    row["alerts"] = [
        {"start": _iso(ts[a]), "end": _iso(ts[b]), "severity": Severity(int(severity[a : b + 1].max())).name.lower(),
         "peak_score": _peak(values[a : b + 1])}
        for a, b in spans
    ]
    if windows is not None:
        alerted = np.zeros(len(ts), dtype=bool)
        alerted[[a for a, _ in spans]] = True
        counts = event_counts(ts, alerted, windows, probation=skip)
        nab = nab_score(ts, alerted, windows, probation=skip)
        row.update(_metrics(counts, nab))
    return row


def totals(rows: list[dict], detectors: Sequence[str]) -> list[dict]:
    """One row per detector: sums, mean precision/recall/F1 over labelled series, corpus NAB score."""
    out = []
    for detector in detectors:
        mine = [r for r in rows if r["detector"] == detector and r["series"] != TOTAL and not r.get("error")]
        labelled = [r for r in mine if "windows" in r]
        total: dict = {"series": TOTAL, "detector": detector, "series_count": len(mine),
                       "labelled_series": len(labelled), "steps": sum(r["steps"] for r in mine),
                       "flagged_steps": sum(r["flagged_steps"] for r in mine),
                       "alerts": sum(len(r["alerts"]) for r in mine),
                       "seconds": round(sum(r["seconds"] for r in mine), 3)}
        if labelled:
            counts = sum((EventCounts(r["windows"], r["detected"], r["false_positive_events"]) for r in labelled),
                         EventCounts(0, 0, 0))
            nab = sum((NabScore(r["nab_raw"], r["nab_null"], r["nab_perfect"]) for r in labelled), NabScore(0, 0, 0))
            total.update(_metrics(counts, nab))
            for metric in ("precision", "recall", "f1"):  # the mean over series, not of the pooled counts
                total[metric] = _nanmean([r[metric] for r in labelled])
        out.append(total)
    return out


COLUMNS = ("series", "detector", "steps", "flagged steps", "alerts", "max abs score", "P", "R", "F1",
           "windows hit", "FP events", "NAB")


def table(rows: list[dict], probation: float = PROBATION_FRACTION, quiet_steps: int = QUIET_STEPS) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['series']} | {r['detector']} | {r['steps']} | error: {r['error']} |")
            continue
        total = r["series"] == TOTAL
        alerts = r["alerts"] if total else _describe(r["alerts"])
        hit = f"{r['detected']}/{r['windows']}" if "windows" in r else ""
        cells = [f"**{TOTAL.lower()}**" if total else r["series"], r["detector"], r["steps"], r["flagged_steps"],
                 alerts, "" if total else _num(r["max_abs_score"], 1), _num(r.get("precision"), 2),
                 _num(r.get("recall"), 2), _num(r.get("f1"), 2), hit, r.get("false_positive_events", ""),
                 _num(r.get("nab"), 1)]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    share = f"first {probation:.0%} (at most {probation * 5000:.0f} steps)" if probation else "none"
    lines.append(f"\nFitted on and not judged: the {share} of each series. Flagged: |score| >= 2.5. Alerts: "
                 f"one per excursion (flags with fewer than {quiet_steps} unflagged steps between them); P, R, "
                 "F1 and NAB judge the alerts. Totals: P, R, F1 averaged over labelled series; NAB (standard "
                 "profile) over the corpus.")
    return "\n".join(lines)


def _metrics(counts: EventCounts, nab: NabScore) -> dict:
    return {"windows": counts.windows, "detected": counts.detected, "false_positive_events": counts.false_positives,
            "precision": counts.precision, "recall": counts.recall, "f1": counts.f1, "nab": nab.normalized,
            "nab_raw": nab.raw, "nab_null": nab.null, "nab_perfect": nab.perfect}


def _window(pair) -> tuple[int, int]:
    if isinstance(pair, str) or len(pair) != 2:
        raise ValueError(f"a window must be [start, end], got {pair!r}")
    start, end = (_timestamp(t) for t in pair)
    if end < start:
        raise ValueError(f"window {pair!r} ends before it starts")
    return start, end


def _timestamp(value) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    moment = datetime.fromisoformat(str(value))
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _describe(windows: list[dict]) -> str:
    if not windows:
        return "0"
    top = max(windows, key=lambda w: abs(w["peak_score"]))
    return f"{len(windows)}; peak {top['start']} .. {top['end']} {top['severity']} {top['peak_score']:.1f}"


def _peak(scores: np.ndarray) -> float:
    """The score of largest magnitude, with its sign."""
    return float(scores[int(np.nanargmax(np.abs(scores)))])


def _nanmean(values: list[float]) -> float:
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / len(present) if present else math.nan


def _num(value, digits: int) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def json_safe(value):
    """NaN is not JSON: write null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def _iso(ts) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fail(message: str) -> int:
    print(f"helios detect: {message}", file=sys.stderr)
    return 2
