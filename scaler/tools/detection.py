"""Anomaly detectors judged on series: the protocol `helios detect` and benchmarks/anomaly_detection.py share.

Close to NAB's: each detector is fitted on the first part of the series (NAB's probationary period:
15%, at most 750 steps; the whole series when that is 0 steps) and then scores the whole series, one
step at a time without look-ahead. The fitted part is not judged: alerts, score summaries and metrics
cover the steps after it. Detection is unsupervised: labels only judge the alerts, they never fit a
detector or pick its threshold.

A step is flagged when its severity (engine.anomaly.base) is at least WARNING. Flags with fewer than
`quiet_steps` unflagged steps between them form one excursion, which raises one alert, at its first
flag (engine.anomaly.alerts). Windows are widened to the grid steps holding their ends (`snap`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from helios.adapters.file import read_csv
from helios.engine.align import align
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

from .tables import utc_iso

TOTAL = "TOTAL"


Windows = list[tuple[int, int]]


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
                 "scored_from": utc_iso(series.timestamps[min(skip, len(series) - 1)])}
    began = time.perf_counter()
    try:
        scores = detector_cls().fit(fit_on).score(series)
    except (HeliosError, ValueError) as e:
        return {**row, "error": str(e)}
    row["seconds"] = round(time.perf_counter() - began, 3)
    return {**row, **judge(scores.timestamps, scores.scores, scores.severity, skip, windows, quiet_steps)}


def judge(ts: np.ndarray, scores: np.ndarray, severity: np.ndarray, skip: int, windows: Windows | None = None,
          quiet_steps: int = QUIET_STEPS) -> dict:
    """What `detect_series` reports of one scored series: its flags (severity >= WARNING) after the first
    `skip` steps, their alerts (one per excursion) and, with windows, the event counts and NAB score.
    Apart so that other alert rules can be judged on the same scores alike (benchmarks/anomaly_rules.py)."""
    row: dict = {}
    flags = np.asarray(severity) >= Severity.WARNING
    flags[:skip] = False  # the fitted part is not judged
    judged = np.abs(scores[skip:])
    judged = judged[~np.isnan(judged)]
    row["flagged_steps"] = int(flags.sum())
    row["max_abs_score"] = float(judged.max()) if judged.size else math.nan
    row["p99_abs_score"] = float(np.quantile(judged, 0.99)) if judged.size else math.nan
    spans = excursions(flags, quiet_steps)
    # One alert per excursion, at its first flag: start, with that flag's severity (what serving alerts
    # with); end is its last flag.
    row["alerts"] = [
        {"start": utc_iso(ts[a]), "end": utc_iso(ts[b]), "severity": Severity(int(severity[a])).name.lower(),
         "peak_score": _peak(scores[a : b + 1])}
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


def _peak(scores: np.ndarray) -> float:
    """The score of largest magnitude, with its sign."""
    return float(scores[int(np.nanargmax(np.abs(scores)))])


def _nanmean(values: list[float]) -> float:
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / len(present) if present else math.nan




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
    lines.append(f"\nFitted on and not judged: the {share} of each series. Flagged: WARNING or worse (by the "
                 "likelihood where the detector has one, else |score| >= 2.5). Alerts: "
                 f"one per excursion (flags with fewer than {quiet_steps} unflagged steps between them); P, R, "
                 "F1 and NAB judge the alerts. Totals: P, R, F1 averaged over labelled series; NAB (standard "
                 "profile) over the corpus.")
    return "\n".join(lines)


def _describe(windows: list[dict]) -> str:
    if not windows:
        return "0"
    top = max(windows, key=lambda w: abs(w["peak_score"]))
    return f"{len(windows)}; peak {top['start']} .. {top['end']} {top['severity']} {top['peak_score']:.1f}"


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
