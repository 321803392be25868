"""Alert rules judged on cached XGBoost scores: the likelihood's level, the alternatives issue 14 tried,
and whether the choice holds on random halves of the labelled files.

Issue 14 keeps the XGBoost residual as the score; what follows it (engine/anomaly/likelihood.py) is the
alert rule. The scores do not depend on the rule and cost most of the time, so they are computed once
with the benchmark's protocol (benchmarks/anomaly_detection.py: fitted on NAB's probation, the whole
file scored without look-ahead) and cached under --cache (delete it after changing the detector). Each
rule is then judged in a fraction of a second, with the same alerts (engine/anomaly/alerts.py), NAB
profiles and false-alarm rate as the benchmark, whose figures the `shipped` row reproduces.

Rules (each gives a severity per step; a step is flagged at WARNING)
    raw               |score| >= 2.5: the score alone, before issue 14
    shipped           engine/anomaly/likelihood.py as it is: the 12-step likelihood and the range channel
    likelihood only   the 12-step likelihood without the range channel
    range only        the range channel alone (a value beyond the series' range is a WARNING)
    level 1e-N        both channels, WARNING from 1 - 1e-N (and CRITICAL two decades rarer)
    + score range     shipped, and a |score| more than RANGE_TOLERANCE beyond the largest |score| the series
                      has shown is a WARNING: the range channel's analogue on the residual
    + window K        shipped, and the likelihood of the K-step mean (its own running distribution) at the
                      shipped level: a short window beside the 12-step one
    seasonal ...      a cheap seasonal reference beside the XGBoost residual (issue 14, third pass), judged by
                      the shipped likelihood and range channel: distance_t, from the value to the nearest value
                      at the same time of day (+- --seasonal-jitter) on each of the --seasonal-days days before,
                      in the score's own standard deviations (s_t = distance_t / sigma_t), and
                      seasonal geo        the likelihood judges sign(score) * sqrt(|score| * s): the geometric
                                          mean of the two surprises; NaN (skipped) until an earlier day exists
                      seasonal geo, score before a day   the same, with the score itself where no earlier day
                                          holds a value (so the series' first day enters the likelihood unscaled)
                      seasonal min        the smaller of |score| and s, with the score's sign
                      seasonal veto       shipped, but no flag where s < 0.5 (the value was seen at this time of
                                          day within the week)
Where a level cuts
    the smallest likelihood tail inside each window the range channel does not find, and inside each
    of the likelihood's false-alarm excursions, per decade: how far a level stands from the windows.
Halvings
    --halvings N random splits (numpy seed --seed) of the files into two halves: each rule's NAB standard
    on each half, on how many halves it beats shipped and by how much it falls short at worst, so a
    choice that only one file's luck makes best shows up.

Run it
    .venv/bin/python benchmarks/anomaly_rules.py --data ../shared/data               # the table and 6 halvings
    .venv/bin/python benchmarks/anomaly_rules.py --data ../shared/data --per-file    # and windows, FP per file
    .venv/bin/python benchmarks/anomaly_rules.py --data ../shared/data --thin 12     # hourly files on 5 minutes
    .venv/bin/python benchmarks/anomaly_rules.py --data ../shared/data --seasonal-jitter 0   # other references

Labels only judge: no rule here sees them.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anomaly_detection import corpus_totals, profiles_and_false_alarm_rate, summary_table  # noqa: E402

from helios.engine.align import align  # noqa: E402
from helios.engine.anomaly import AnomalyScores, detector_class  # noqa: E402
from helios.engine.anomaly import xgb as xgb_detector  # noqa: E402
from helios.engine.anomaly.alerts import excursions  # noqa: E402
from helios.engine.anomaly.base import severity as severity_of_score  # noqa: E402
from helios.engine.anomaly.likelihood import (  # noqa: E402
    AVERAGING_STEPS,
    HISTORIC_STEPS,
    LEARNING_STEPS,
    RANGE_TOLERANCE,
    WARNING_TAIL,
    batch_tail,
    outside_range,
)
from helios.engine.anomaly.nab import PROBATION_FRACTION, NabScore, probation_steps  # noqa: E402
from helios.engine.types import Series  # noqa: E402
from helios.scaler.config.durations import parse_duration  # noqa: E402
from helios.scaler.tools import detection  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LEVELS = (1e-5, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12)
SHORT_WINDOWS = (1, 3, 6)

Rule = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (scores, values) -> severity per step
FileRule = Callable[[dict], np.ndarray]  # a cached file (ts, values, scores, sigma, skip) -> severity per step
DAY = 86400
VETO_SIGMA = 0.5


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--cache", default=str(REPO / "build" / "anomaly_scores"),
                   help="folder of cached scores (default build/anomaly_scores)")
    p.add_argument("--step", default="5m")
    p.add_argument("--probation", type=float, default=PROBATION_FRACTION)
    p.add_argument("--quiet-steps", type=int, default=detection.QUIET_STEPS)
    p.add_argument("--thin", type=int, default=1, metavar="K",
                   help="keep every K-th sample of each file before aligning it to --step (6: 30-minute data "
                        "interpolated onto 5 minutes, as nyc_taxi is): how the rules fare on coarser files")
    p.add_argument("--seasonal-days", type=int, default=7, help="days the seasonal reference looks back (default 7)")
    p.add_argument("--seasonal-jitter", default="15m",
                   help="how far from the same time of day a past value still counts (default 15m)")
    p.add_argument("--halvings", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-file", action="store_true", help="also the windows each rule loses and gains against raw")
    args = p.parse_args(argv)
    step = int(parse_duration(args.step))
    data = Path(args.data)
    labels = detection.load_labels(str(data / "labels.json"))
    if args.thin < 1:
        print("anomaly_rules: --thin must be >= 1", file=sys.stderr)
        return 2
    files = {name: _scored(data / name, Path(args.cache), step, args.probation, args.thin) for name in sorted(labels)}
    _check_reimplementation(files)
    jitter = int(parse_duration(args.seasonal_jitter))
    for f in files.values():
        f["seasonal"] = seasonal_distance(f["values"], step, args.seasonal_days, jitter) / f["sigma"]

    rules: dict[str, FileRule] = {name: (lambda f, r=r: r(f["scores"], f["values"])) for name, r in RULES().items()}
    rules.update(SEASONAL_RULES)
    rows, hits = [], {}
    for rule, severity in rules.items():
        for name, f in files.items():
            windows = detection.snap(labels[name], step)
            row = {"series": name, "detector": rule, "steps": f["ts"].size, "seconds": 0.0,
                   **detection.judge(f["ts"], f["scores"], severity(f), f["skip"], windows, args.quiet_steps)}
            row.update(profiles_and_false_alarm_rate(row, f["ts"], windows, args.probation, step))
            rows.append(row)
            hits[rule, name] = _hits(row, windows)
    totals = corpus_totals(rows, list(rules))
    print(f"Alert rules on the cached xgboost scores of {len(files)} labelled files of {data} "
          f"({sum(len(w) for w in labels.values())} windows; seasonal reference: {args.seasonal_days} days, "
          f"+-{args.seasonal_jitter})\n")
    print(summary_table(totals).replace("| detector |", "| rule |", 1))
    if args.per_file:
        for against in ("raw", "shipped"):
            print(f"\n| rule | windows lost against {against} | gained |\n|---|---|---|")
            for rule in rules:
                lost = [f"{n} #{i + 1}" for n in files for i, (h, h0) in
                        enumerate(zip(hits[rule, n], hits[against, n], strict=True)) if h0 and not h]
                gained = [f"{n} #{i + 1}" for n in files for i, (h, h0) in
                          enumerate(zip(hits[rule, n], hits[against, n], strict=True)) if h and not h0]
                print(f"| {rule} | {', '.join(lost) or '-'} | {', '.join(gained) or '-'} |")
        print("\n" + false_alarms_by_file(rows, list(rules), sorted(files)))
    if args.halvings:
        print("\n" + halvings_table(rows, list(rules), sorted(files), args.halvings, args.seed))
    print("\n" + tail_decades(files, {name: detection.snap(labels[name], step) for name in files}))
    return 0


def RULES() -> dict[str, Rule]:  # noqa: N802 - a table, built on call
    rules: dict[str, Rule] = {
        "raw": lambda s, v: severity_of_score(s),
        "shipped": lambda s, v: AnomalyScores("xgboost", np.arange(s.size), s, 1.0 - batch_tail(s, v)).severity,
        "likelihood only": lambda s, v: _severity(s, batch_tail(s)),
        "range only": lambda s, v: _severity(s, np.where(np.isfinite(batch_tail(s)), 1.0, np.nan),
                                             novel=outside_range(v)),
    }
    for level in LEVELS:
        rules[f"level {level:.0e}"] = lambda s, v, level=level: _severity(s, batch_tail(s), level, outside_range(v))
    rules["+ score range"] = lambda s, v: _severity(s, batch_tail(s), novel=outside_range(v) | score_records(s))
    for k in SHORT_WINDOWS:
        rules[f"+ window {k}"] = lambda s, v, k=k: _severity(s, np.fmin(batch_tail(s), mean_tail(s, k)),
                                                              novel=outside_range(v))
    return rules


def _shipped_on(surprise: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The shipped rule (likelihood at WARNING_TAIL and the range channel) with `surprise` in the score's place."""
    return AnomalyScores("xgboost", np.arange(surprise.size), surprise, 1.0 - batch_tail(surprise, values)).severity


def _geo(f: dict, before_a_day: bool = False) -> np.ndarray:
    z, s = f["scores"], f["seasonal"]
    geo = np.sign(z) * np.sqrt(np.abs(z) * s)  # NaN without an earlier day: the likelihood skips the step
    return np.where(np.isnan(s), z, geo) if before_a_day else geo


def _veto(f: dict) -> np.ndarray:
    seen = np.isfinite(f["seasonal"]) & (f["seasonal"] < VETO_SIGMA)
    return np.where(seen, 0, _shipped_on(f["scores"], f["values"]))


SEASONAL_RULES: dict[str, FileRule] = {
    "seasonal geo": lambda f: _shipped_on(_geo(f), f["values"]),
    "seasonal geo, score before a day": lambda f: _shipped_on(_geo(f, before_a_day=True), f["values"]),
    # np.minimum keeps NaN: skipped until an earlier day exists, as in seasonal geo
    "seasonal min": lambda f: _shipped_on(np.sign(f["scores"]) * np.minimum(np.abs(f["scores"]), f["seasonal"]),
                                          f["values"]),
    "seasonal veto": _veto,
}


def seasonal_distance(values: np.ndarray, step: int, days: int, jitter: int) -> np.ndarray:
    """Per step of a regular series, the distance from its value to the nearest value within `jitter`
    seconds of the same time of day on each of the `days` days before it; NaN where none holds a value
    (or the step's own value is missing). Only values before the step: causal."""
    x = np.asarray(values, dtype=float)
    out = np.full(x.size, np.inf)
    period = DAY // step if DAY % step == 0 and step < DAY else 0
    for k in range(1, days + 1 if period else 1):
        for j in range(-(jitter // step), jitter // step + 1):
            lag = k * period - j
            if 0 < lag < x.size:
                out[lag:] = np.fmin(out[lag:], np.abs(x[lag:] - x[:-lag]))  # fmin: a missing neighbour is none
    out[~np.isfinite(out)] = np.nan
    return out


def false_alarms_by_file(rows: list[dict], rules: list[str], names: list[str]) -> str:
    """False-alarm events per file and rule (the files where any rule differs from shipped)."""
    by = {(r["detector"], r["series"]): r["false_positive_events"] for r in rows}
    shown = [n for n in names if any(by[rule, n] != by["shipped", n] for rule in rules if rule != "raw")]
    lines = ["False-alarm events per file (files where a rule other than raw differs from shipped):\n",
             "| rule | " + " | ".join(n.removeprefix("nab_").removesuffix(".csv") for n in shown) + " |",
             "|---|" + "---:|" * len(shown)]
    lines += [f"| {rule} | " + " | ".join(str(by[rule, n]) for n in shown) + " |" for rule in rules]
    return "\n".join(lines)


def _severity(scores: np.ndarray, tail: np.ndarray, level: float = WARNING_TAIL,
              novel: np.ndarray | None = None) -> np.ndarray:
    """AnomalyScores.severity with WARNING from `level` (CRITICAL two decades rarer); `novel` steps are at
    least WARNING where the likelihood has learnt, as the range channel is."""
    tail = np.array(tail, dtype=float)
    if novel is not None:
        tail[novel] = np.minimum(tail[novel], level)  # NaN (learning, missing) stays NaN
    learnt = np.isfinite(tail)
    by_tail = np.where(tail <= level / 100, 2, np.where(tail <= level, 1, 0))
    return np.where(learnt, by_tail, severity_of_score(scores))


def score_records(scores: np.ndarray, tolerance: float = RANGE_TOLERANCE) -> np.ndarray:
    """Per step, whether |score| exceeds the largest |score| before it by more than `tolerance` of it."""
    a = np.where(np.isfinite(scores), np.abs(scores), np.nan)
    before = np.concatenate([[np.nan], np.fmax.accumulate(a)[:-1]])
    with np.errstate(invalid="ignore"):
        return np.isfinite(a) & (before > 0) & (a > (1 + tolerance) * before)


def mean_tail(scores: np.ndarray, k: int) -> np.ndarray:
    """likelihood.batch_tail's likelihood (without the range channel) over k-step means instead of
    AVERAGING_STEPS; equal to it for k = AVERAGING_STEPS (checked on every run)."""
    s = np.asarray(scores, dtype=float)
    out = np.full(s.size, np.nan)
    present = np.flatnonzero(np.isfinite(s))
    if present.size < k:
        return out
    averages = np.lib.stride_tricks.sliding_window_view(np.abs(s[present]), k).sum(axis=1) / k
    z = np.full(averages.size, np.nan)
    mean = var = 0.0
    for i, average in enumerate(averages.tolist()):
        if i >= LEARNING_STEPS:
            z[i] = (average - mean) / max(math.sqrt(var), 1e-9)
        weight = 1.0 / min(i + 1, HISTORIC_STEPS)
        delta = average - mean
        mean += weight * delta
        var = (1.0 - weight) * (var + weight * delta * delta)
    out[present[k - 1 :]] = [0.5 * math.erfc(v / math.sqrt(2)) if math.isfinite(v) else math.nan for v in z]
    return out


def halvings_table(rows: list[dict], rules: list[str], names: list[str], n: int, seed: int) -> str:
    """Each rule's NAB standard on both halves of n random splits of the files."""
    rng = np.random.default_rng(seed)
    halves = []
    for _ in range(n):
        order = rng.permutation(len(names))
        halves += [[names[i] for i in order[: len(names) // 2]], [names[i] for i in order[len(names) // 2 :]]]
    by = {(r["detector"], r["series"]): r for r in rows}
    score = {(rule, h): sum((NabScore(*by[rule, name]["nab_standard"]) for name in half), NabScore(0, 0, 0)).normalized
             for rule in rules for h, half in enumerate(halves)}
    cols = [f"{i // 2 + 1}{'ab'[i % 2]}" for i in range(len(halves))]
    lines = [f"NAB standard on {n} random halvings (seed {seed}; split k: halves ka and kb of "
             f"{len(names) // 2} and {len(names) - len(names) // 2} files):\n",
             "| rule | " + " | ".join(cols) + " | mean | halves above shipped | worst against shipped |",
             "|---|" + "---:|" * (len(cols) + 3)]
    for rule in rules:
        values = [score[rule, h] for h in range(len(halves))]
        above = sum(score[rule, h] > score["shipped", h] for h in range(len(halves)))
        worst = min(score[rule, h] - score["shipped", h] for h in range(len(halves)))
        lines.append(f"| {rule} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {np.mean(values):.1f} | "
                     f"{above} | {worst:+.1f} |")
    levels = [f"level {level:.0e}" for level in LEVELS]
    best = [max(levels, key=lambda r, h=h: score[r, h]) for h in range(len(halves))]
    lines.append("\nBest level on each half: " + ", ".join(b.removeprefix("level ") for b in best))
    return "\n".join(lines)


def tail_decades(files: dict[str, dict], windows: dict[str, list]) -> str:
    """Where a level would cut: the smallest likelihood tail inside each window that holds no range flag
    (a window with one is found at any level), and inside each excursion of the likelihood's own flags
    at 1e-5 outside every window (a false alarm at that level), counted per decade after the probation."""
    in_windows, false_alarms, ranged = [], [], 0
    for name, f in files.items():
        tail, novel, ts = batch_tail(f["scores"]), outside_range(f["values"]), f["ts"]
        tail[: f["skip"]] = np.nan
        inside = np.zeros(ts.size, dtype=bool)
        for a, b in windows[name]:
            w = (ts >= a) & (ts <= b)
            w[: f["skip"]] = False
            inside |= w
            if (novel & w & np.isfinite(tail)).any():
                ranged += 1
            elif w.any():
                in_windows.append(float(np.nanmin(tail[w])) if np.isfinite(tail[w]).any() else 1.0)
        with np.errstate(invalid="ignore"):
            flags = (tail <= 1e-5) & ~inside & ~novel
        false_alarms += [float(np.nanmin(tail[a : b + 1])) for a, b in excursions(flags)]
    edges = [1.0, *(10.0 ** -k for k in range(5, 14)), 0.0]
    lines = [f"The smallest likelihood tail inside each window without a range flag ({len(in_windows)}; "
             f"{ranged} windows hold one), and inside each likelihood excursion outside the windows:\n",
             "| tail in | windows | false-alarm excursions |", "|---|---:|---:|"]
    for high, low in zip(edges[:-1], edges[1:], strict=True):
        count = [sum(low < x <= high for x in xs) for xs in (in_windows, false_alarms)]
        lines.append(f"| ({low:.0e}, {high:.0e}] | {count[0]} | {count[1]} |")
    lines.append("\nWindows' smallest tails: " + ", ".join(f"{x:.1e}" for x in sorted(in_windows)))
    return "\n".join(lines)


def _hits(row: dict, windows) -> list[bool]:
    starts = [np.datetime64(a["start"].rstrip("Z"), "s").astype(np.int64) for a in row["alerts"]]
    return [any(a <= t <= b for t in starts) for a, b in windows]


def _scored(path: Path, cache: Path, step: int, probation: float, thin: int = 1) -> dict:
    """The xgboost scores of one file as the benchmark computes them (of every `thin`-th sample of it,
    aligned to `step` again), cached by the file's content."""
    digest = hashlib.sha256(path.read_bytes() + f"{step} {probation} {thin} sigma".encode()).hexdigest()
    cached = cache / f"{path.stem}{f'.thin{thin}' if thin > 1 else ''}.npz"
    if cached.is_file():
        with np.load(cached) as f:
            if str(f["digest"]) == digest:
                return {"ts": f["ts"], "values": f["values"], "scores": f["scores"], "sigma": f["sigma"],
                        "skip": int(f["skip"])}
    print(f"scoring {path.name}", file=sys.stderr)
    series = detection.load_series(path, step)
    if thin > 1:
        series = align(Series(series.timestamps[::thin], series.values[::thin]), step)
    skip = probation_steps(len(series), probation)
    fit_on = Series(series.timestamps[:skip], series.values[:skip]) if skip else series
    detector = detector_class("xgboost")().fit(fit_on)
    scores = detector.score(series)
    residuals, sigma = _residuals_and_sigma(detector, series)
    if not np.allclose(residuals / sigma, scores.scores, rtol=1e-9, atol=0, equal_nan=True):
        raise SystemExit(f"anomaly_rules: the residual and sigma of {path.name} do not give the detector's scores")
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(cached, digest=digest, ts=scores.timestamps, values=series.values, scores=scores.scores, sigma=sigma,
             skip=skip)
    return {"ts": scores.timestamps, "values": series.values, "scores": scores.scores, "sigma": sigma, "skip": skip}


def _residuals_and_sigma(detector, series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Per sample of `series`, the XGBoost residual and the standard deviation its score divides it by
    (engine/anomaly/xgb.py's score, step by step; _scored checks that their ratio is the score)."""
    s = detector.state
    full = detector._after_tail(series)
    grid, features, base, actual = xgb_detector._design(full, s["step"], {})
    predicted = np.full(grid.size, np.nan)
    ready = np.isfinite(base) & np.isfinite(actual)
    fold = np.searchsorted(s["fold_starts"], grid, side="right") - 1
    fold[(grid < s["fold_starts"][0]) | (grid > s["history_end"])] = -1
    for k, booster in enumerate(detector._boosters):
        rows = ready & (fold == k)
        if rows.any():
            predicted[rows] = xgb_detector._predict(booster, features[rows])
    new = ready & (fold == -1)
    if new.any():
        predicted[new] = np.mean([xgb_detector._predict(b, features[new]) for b in detector._boosters], axis=0)
    residuals = actual - base - predicted - s["bias"]
    sigma = s["calibration"] * np.fmax(s["scale"], detector._volatility(grid, residuals, series.timestamps[0]))
    rows = xgb_detector._rows(series.timestamps, grid, s["step"])
    out = np.full((2, len(series)), np.nan)
    out[:, rows >= 0] = np.vstack([residuals, sigma])[:, rows[rows >= 0]]
    return out[0], out[1]


def _check_reimplementation(files: dict[str, dict]) -> None:
    """mean_tail(., AVERAGING_STEPS) must be the shipped likelihood, or the short windows compare unlike things."""
    for name, f in files.items():
        ours, shipped = mean_tail(f["scores"], AVERAGING_STEPS), batch_tail(f["scores"])
        if not np.allclose(ours, shipped, rtol=1e-9, atol=0, equal_nan=True):
            raise SystemExit(f"anomaly_rules: mean_tail differs from likelihood.batch_tail on {name}")


if __name__ == "__main__":
    sys.exit(main())
