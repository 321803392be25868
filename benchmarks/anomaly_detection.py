"""Anomaly detection on every labelled series of a data folder: XGBoost against the two references.

What it measures
    For each file listed in `<data>/labels.json` (NAB's windows; a file with [] has no anomaly, so any
    flag there is a false alarm) and each detector, the `helios detect` pipeline (scaler/tools/detection.py):
    align to 5 minutes, fit on NAB's probationary period (the first 15%, at most 750 steps), score the
    whole series without look-ahead, flag at |score| >= 2.5 (WARNING), raise one alert per excursion
    (flags with fewer than 12 unflagged steps between them; engine/anomaly/alerts.py), judge the alerts
    after the probation. Per detector: mean event-level F1, precision and recall over the files where
    they are defined, the NAB score of the whole corpus in NAB's three profiles (standard,
    reward_low_FP_rate, reward_low_FN_rate; engine/anomaly/nab.py), and false alarms per workload per
    day: alerts on unlabelled steps after the probation, per day of such steps (pooled over files).
    A detector with an anomaly likelihood (xgboost) flags by it (engine/anomaly/likelihood.py), the
    references by |score|. Every detector's flags become alerts by the same rule (engine/anomaly/alerts.py);
    `--quiet-steps 0` judges every flagged step. The default detector (xgboost) is listed first.

Targets (PASS/FAIL)
    XGBoost's mean F1 and NAB score both above those of `zscore` and `threshold`; issue 14's: XGBoost's
    NAB standard >= 70 and at most 0.3 false alerts per workload per day on the unlabelled stretches.

Run it
    .venv/bin/python benchmarks/anomaly_detection.py                 # ../shared/data, the summary table
    .venv/bin/python benchmarks/anomaly_detection.py --per-file      # and one row per file and detector
    .venv/bin/python benchmarks/anomaly_detection.py --data DIR --detectors zscore,threshold --format json

Labels only judge: no detector sees them, and no threshold here was chosen by looking at them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

from helios.engine.anomaly import NAMES, detector_class
from helios.engine.anomaly.alerts import QUIET_STEPS
from helios.engine.anomaly.nab import PROBATION_FRACTION, PROFILES, NabScore, nab_score, probation_steps
from helios.engine.errors import HeliosError
from helios.scaler.config.durations import parse_duration
from helios.scaler.tools import detection

REPO = Path(__file__).resolve().parents[1]
LEARNED, REFERENCES = "xgboost", ("zscore", "threshold")
SUMMARY = ("detector", "files", "mean F1", "mean P", "mean R", "NAB standard", "NAB low FP", "NAB low FN",
           "windows hit", "FP events", "alerts", "FP alerts/workload/day", "flagged steps", "seconds")
DAY = 86400


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"),
                   help="folder of CSVs with labels.json (default ../shared/data from the repository root)")
    p.add_argument("--detectors", default=",".join((LEARNED, *REFERENCES)))
    p.add_argument("--step", default="5m")
    p.add_argument("--probation", type=float, default=PROBATION_FRACTION)
    p.add_argument("--quiet-steps", type=int, default=QUIET_STEPS,
                   help=f"unflagged steps that end an excursion (default {QUIET_STEPS}; 0: every flag alerts)")
    p.add_argument("--per-file", action="store_true", help="also one row per file and detector")
    p.add_argument("--format", choices=("table", "json"), default="table")
    args = p.parse_args(argv)

    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    detectors.sort(key=lambda d: d != LEARNED)  # the default detector first
    unknown = [d for d in detectors if d not in NAMES]
    if unknown:
        return _fail(f"unknown detector(s) {', '.join(unknown)}; available: {', '.join(NAMES)}")
    if args.quiet_steps < 0:
        return _fail(f"--quiet-steps must be >= 0, got {args.quiet_steps}")
    data = Path(args.data)
    step = int(parse_duration(args.step))
    try:
        labels = detection.load_labels(str(data / "labels.json"))
        files = [data / name for name in sorted(labels)]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ValueError(f"{data}: labelled but missing: {', '.join(missing)}")
        series = {f.name: detection.load_series(f, step) for f in files}
    except (HeliosError, ValueError) as e:
        return _fail(str(e))

    rows = []
    for name, s in series.items():
        windows = detection.snap(labels[name], step)
        for detector in detectors:
            print(f"{name} {detector}", file=sys.stderr)
            row = detection.detect_series(name, s, detector_class(detector), windows, args.probation,
                                           args.quiet_steps)
            if row.get("error"):
                print(f"  error: {row['error']}", file=sys.stderr)
            if windows is not None and not row.get("error"):
                row.update(profiles_and_false_alarm_rate(row, s.timestamps, windows, args.probation, step))
            rows.append(row)
    totals = corpus_totals(rows, detectors)
    verdict = "\n".join(v for v in (_verdict(totals), _issue_14(totals)) if v)

    if args.format == "json":
        print(json.dumps(detection.json_safe({"totals": totals, "target": verdict,
                                                "files": rows if args.per_file else None}), indent=1))
        return 0
    print(f"Anomaly detection on {len(series)} labelled files of {data} "
          f"({sum(len(w) for w in labels.values())} windows)\n")
    print(summary_table(totals))
    if verdict:
        print(f"\nTarget: {verdict}")
    if args.per_file:
        print("\n" + detection.table(rows + totals, args.probation, args.quiet_steps))
    return 0


def summary_table(totals: list[dict]) -> str:
    lines = ["| " + " | ".join(SUMMARY) + " |", "|" + "---|" * len(SUMMARY)]
    for t in totals:
        cells = [t["detector"], t["labelled_series"], _num(t.get("f1"), 3), _num(t.get("precision"), 3),
                 _num(t.get("recall"), 3), _num(t.get("nab"), 1), _num(t.get("nab_reward_low_FP_rate"), 1),
                 _num(t.get("nab_reward_low_FN_rate"), 1), f"{t.get('detected', 0)}/{t.get('windows', 0)}",
                 t.get("false_positive_events", 0), t["alerts"], _num(t.get("false_alarms_per_day"), 3),
                 t["flagged_steps"], f"{t['seconds']:.1f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def corpus_totals(rows: list[dict], detectors: list[str]) -> list[dict]:
    """detection.totals, plus each detector's corpus NAB score in every profile and its false alarms per
    workload per day (pooled over the files whose rows carry profiles_and_false_alarm_rate)."""
    totals = detection.totals(rows, detectors)
    for t in totals:
        mine = [r for r in rows if r["detector"] == t["detector"] and "false_alarm_days" in r]
        for name in PROFILES:
            nab = sum((NabScore(*r[f"nab_{name}"]) for r in mine), NabScore(0, 0, 0))
            t[f"nab_{name}"] = nab.normalized
        days = sum(r["false_alarm_days"] for r in mine)
        t["false_alarms_per_day"] = sum(r["false_alarms"] for r in mine) / days if days else float("nan")
    return totals


def profiles_and_false_alarm_rate(row: dict, ts: np.ndarray, windows, probation: float, step: int) -> dict:
    """From a judged row's alerts: its NAB (raw, null, perfect) in every profile, and its false alarms
    (alerts outside every window after the probation) with the days of unlabelled steps they fell in."""
    skip = probation_steps(len(ts), probation)
    starts = np.array([datetime.fromisoformat(a["start"].replace("Z", "+00:00")).timestamp() for a in row["alerts"]],
                      dtype=np.int64)
    alerted = np.isin(ts, starts)
    out = {}
    for name, profile in PROFILES.items():
        score = nab_score(ts, alerted, windows, profile, probation=skip)
        out[f"nab_{name}"] = (score.raw, score.null, score.perfect)
    unlabelled = np.ones(ts.size, dtype=bool)
    for start, end in windows:
        unlabelled[(ts >= start) & (ts <= end)] = False
    unlabelled[:skip] = False
    out["false_alarms"] = int((alerted & unlabelled).sum())
    out["false_alarm_days"] = float(unlabelled.sum() * step / DAY)  # grid steps: time, missing samples or not
    return out


def _verdict(totals: list[dict]) -> str:
    by = {t["detector"]: t for t in totals}
    if LEARNED not in by or not all(r in by for r in REFERENCES):
        return ""
    learned = by[LEARNED]
    beats = {label: all(_above(learned.get(metric), by[r].get(metric)) for r in REFERENCES)
             for metric, label in (("f1", "mean F1"), ("nab", "NAB score"))}
    parts = [f"{'beats' if ok else 'does NOT beat'} both references on {label}" for label, ok in beats.items()]
    return ("PASS" if all(beats.values()) else "FAIL") + f": {LEARNED} " + "; ".join(parts)


def _issue_14(totals: list[dict]) -> str:
    """The alert-quality targets: NAB standard >= 70 (HTM scores 72.2 on these files), <= 0.3 false alerts
    per workload per day. (The third, no window lost that was found before, needs the earlier run: see
    RESULTS.md.)"""
    learned = next((t for t in totals if t["detector"] == LEARNED), None)
    if learned is None or "nab" not in learned:
        return ""
    nab, rate = learned["nab"], learned.get("false_alarms_per_day", float("nan"))
    return (f"{'PASS' if nab >= 70 else 'FAIL'}: {LEARNED} NAB standard {nab:.1f} (target >= 70); "
            f"{'PASS' if rate <= 0.3 else 'FAIL'}: {rate:.3f} false alerts per workload per day (target <= 0.3)")


def _above(a, b) -> bool:
    return a is not None and b is not None and a == a and b == b and a > b  # a == a: not NaN


def _num(value, digits: int) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def _fail(message: str) -> int:
    print(f"anomaly_detection: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
