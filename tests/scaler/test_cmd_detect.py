"""`helios detect`, run in-process on CSVs written here and on the shipped NAB series."""

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from helios.adapters.file import read_csv
from helios.engine.align import align
from helios.engine.anomaly.alerts import alerts
from helios.engine.anomaly.base import Severity
from helios.engine.anomaly.nab import NabScore, event_counts, nab_score, probation_steps
from helios.engine.anomaly.reference import RollingZScore, ThresholdRule
from helios.engine.types import Series
from helios.scaler.cli import main

DATA = Path(__file__).parent.parent / "data"
NAB_FILE = DATA / "nab_ec2_cpu_utilization_24ae8d.csv"
START = 1_700_000_100 // 300 * 300
SPIKE = 900  # step of the injected spike


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_spiky(path: Path, n: int = 1200, spike: int | None = SPIKE) -> Path:
    """Four days of a noisy daily cycle at 5-minute steps, with one spike far above it."""
    rng = np.random.default_rng(11)
    y = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 1, n)
    if spike is not None:
        y[spike] += 60
    path.write_text("timestamp,value\n" + "".join(f"{iso(START + 300 * i)},{v:.3f}\n" for i, v in enumerate(y)))
    return path


def detect(capsys, *args) -> tuple[int, list[dict] | str, str]:
    code = main(["detect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "json" in args and out else out), err


def row(rows, series, detector):
    (r,) = [r for r in rows if r["series"] == series and r["detector"] == detector]
    return r


def test_alerts_on_the_spike(tmp_path, capsys):
    path = write_spiky(tmp_path / "spiky.csv")
    code, rows, _ = detect(capsys, path, "--detectors", "zscore,threshold", "--format", "json")
    assert code == 0
    spike = iso(START + 300 * SPIKE)
    for detector in ("zscore", "threshold"):
        r = row(rows, "spiky.csv", detector)
        hits = [w for w in r["alerts"] if w["start"] <= spike <= w["end"]]
        assert len(hits) == 1 and hits[0]["severity"] == "critical" and hits[0]["peak_score"] > 4
        assert r["max_abs_score"] == pytest.approx(hits[0]["peak_score"])
        assert "windows" not in r  # no labels, no metrics
    # The zscore's day-long window absorbs the cycle: the spike is essentially the only thing it flags.
    assert row(rows, "spiky.csv", "zscore")["flagged_steps"] <= 3


def test_a_labelled_spike_is_detected_and_scored(tmp_path, capsys):
    path = write_spiky(tmp_path / "spiky.csv")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"spiky.csv": [[iso(START + 300 * (SPIKE - 10)), iso(START + 300 * (SPIKE + 10))]]}))
    _, rows, _ = detect(capsys, path, "--detectors", "zscore", "--labels", labels, "--format", "json")
    r = row(rows, "spiky.csv", "zscore")
    assert (r["windows"], r["detected"], r["false_positive_events"], r["flagged_steps"]) == (1, 1, 1, 2)
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((1 / 2, 1.0, 2 / 3))
    # Caught at step 10 of the 21-step window, position -11/21: sigma(-11/21) / sigma(-1) of A_tp. The one
    # false positive (a noise dip early on) has no window before it: the full -A_fp.
    caught = (2 / (1 + math.exp(-5 * 11 / 21)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    assert r["nab_raw"] == pytest.approx(caught - 0.11)
    assert r["nab"] == pytest.approx(100 * (caught - 0.11 + 1) / 2)


@pytest.mark.parametrize("detector_cls", [RollingZScore, ThresholdRule])
def test_metrics_on_a_real_nab_series_agree_with_the_nab_module(capsys, detector_cls):
    code, rows, _ = detect(capsys, NAB_FILE, "--detectors", detector_cls.name, "--labels", DATA / "labels.json",
                           "--format", "json")
    assert code == 0
    # The same computation, by hand: fit on NAB's probationary 15%, flag at WARNING, one alert per
    # excursion after the probation, judge the alerts.
    series = align(read_csv(str(NAB_FILE)), 300)
    skip = probation_steps(len(series))
    scores = detector_cls().fit(Series(series.timestamps[:skip], series.values[:skip])).score(series)
    flags = scores.severity >= Severity.WARNING
    flags[:skip] = False
    alerted = alerts(flags)
    windows = [(w[0] // 300 * 300, w[1] // 300 * 300) for w in
               [[int(datetime.fromisoformat(t).timestamp()) for t in pair]
                for pair in json.loads((DATA / "labels.json").read_text())[NAB_FILE.name]]]
    counts = event_counts(series.timestamps, alerted, windows, probation=skip)
    nab = nab_score(series.timestamps, alerted, windows, probation=skip)
    r = row(rows, NAB_FILE.name, detector_cls.name)
    assert r["steps"] == 4032 and r["scored_from"] == "2014-02-16T16:50:00Z"  # step 604
    assert (r["windows"], r["detected"], r["false_positive_events"]) == (2, 2, counts.false_positives)
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((counts.precision, 1.0, counts.f1))
    assert r["nab"] == pytest.approx(nab.normalized) and r["nab_raw"] == pytest.approx(nab.raw)
    assert r["flagged_steps"] == int(flags.sum()) and len(r["alerts"]) == int(alerted.sum())
    # One series: the total row is that series' numbers.
    total = row(rows, "TOTAL", detector_cls.name)
    assert total["f1"] == pytest.approx(r["f1"]) and total["nab"] == pytest.approx(r["nab"])


def test_one_alert_per_excursion_and_quiet_steps_0_judges_every_flag(capsys):
    """The threshold rule hovers around its line on this file: bursts of flags, one alert each, and
    fewer false positives to pay for; with --quiet-steps 0 every flagged step counts."""
    args = (NAB_FILE, "--detectors", "threshold", "--labels", DATA / "labels.json", "--format", "json")
    _, rows, _ = detect(capsys, *args)
    _, every, _ = detect(capsys, *args, "--quiet-steps", "0")
    by_excursion, by_step = row(rows, NAB_FILE.name, "threshold"), row(every, NAB_FILE.name, "threshold")
    assert by_excursion["flagged_steps"] == by_step["flagged_steps"] == len(by_step["alerts"])
    assert len(by_excursion["alerts"]) < by_excursion["flagged_steps"]
    assert by_excursion["false_positive_events"] < by_step["false_positive_events"]
    assert by_excursion["nab"] > by_step["nab"]
    # An excursion spans its flags: consecutive alerts are at least 12 unflagged steps apart.
    ends = [datetime.fromisoformat(a["end"]).timestamp() for a in by_excursion["alerts"]]
    starts = [datetime.fromisoformat(a["start"]).timestamp() for a in by_excursion["alerts"]]
    assert all(b - a > 12 * 300 for a, b in zip(ends[:-1], starts[1:], strict=True))


def test_totals_average_f1_and_score_nab_over_the_corpus(tmp_path, capsys):
    write_spiky(tmp_path / "spiky.csv")
    (tmp_path / "nab.csv").write_text(NAB_FILE.read_text())
    labels = json.loads((DATA / "labels.json").read_text())
    labels = {"nab.csv": labels[NAB_FILE.name], "spiky.csv": [[iso(START + 300 * 880), iso(START + 300 * 920)]]}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    code, rows, _ = detect(capsys, tmp_path, "--detectors", "zscore,threshold", "--labels", tmp_path / "labels.json",
                           "--format", "json")
    assert code == 0
    for detector in ("zscore", "threshold"):
        a, b, total = row(rows, "nab.csv", detector), row(rows, "spiky.csv", detector), row(rows, "TOTAL", detector)
        assert total["series_count"] == total["labelled_series"] == 2
        assert total["f1"] == pytest.approx((a["f1"] + b["f1"]) / 2)
        corpus = NabScore(a["nab_raw"], a["nab_null"], a["nab_perfect"]) + NabScore(
            b["nab_raw"], b["nab_null"], b["nab_perfect"])
        assert total["nab"] == pytest.approx(corpus.normalized) and total["windows"] == 3
        assert total["flagged_steps"] == a["flagged_steps"] + b["flagged_steps"]


def test_table_is_markdown_with_a_total_row_per_detector(tmp_path, capsys):
    path = write_spiky(tmp_path / "spiky.csv")
    code, out, _ = detect(capsys, path, "--detectors", "zscore,threshold")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("| series | detector |") and lines[1].startswith("|---|")
    assert sum(line.startswith("| **total** |") for line in lines) == 2
    assert any(line.startswith("| spiky.csv | zscore | 1200 |") and "critical" in line for line in lines)


def test_a_file_without_labels_gets_no_metrics(tmp_path, capsys):
    path = write_spiky(tmp_path / "other.csv")
    _, rows, _ = detect(capsys, path, "--detectors", "zscore", "--labels", DATA / "labels.json", "--format", "json")
    assert "f1" not in row(rows, "other.csv", "zscore") and "f1" not in row(rows, "TOTAL", "zscore")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.csv", "missing.csv: no such file or folder"),
        (lambda d: _write(d / "bad.csv", "timestamp,value\n2024-01-01T00:00:00Z,abc\n"), "bad.csv: line 2"),
        (lambda d: _write(d / "header.csv", "time,load\n1,2\n"), "header.csv: line 1 must be the header"),
        (lambda d: _write(d / "empty.csv", "timestamp,value\n"), "empty.csv: no samples"),
    ],
)
def test_bad_input_is_one_line_naming_the_file_and_exit_2(tmp_path, capsys, make, message):
    code, out, err = detect(capsys, make(tmp_path), "--detectors", "zscore")
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_labels_or_detectors_exit_2(tmp_path, capsys):
    path = write_spiky(tmp_path / "spiky.csv", n=400, spike=None)
    bad = _write(tmp_path / "labels.json", json.dumps({"spiky.csv": [["2024-01-01T00:00:00Z"]]}))
    code, _, err = detect(capsys, path, "--labels", bad, "--detectors", "zscore")
    assert code == 2 and "labels.json: spiky.csv: a window must be [start, end]" in err
    code, _, err = detect(capsys, path, "--labels", tmp_path / "nope.json", "--detectors", "zscore")
    assert code == 2 and "nope.json: no such file" in err
    code, _, err = detect(capsys, path, "--detectors", "zscore,magic")
    assert code == 2 and "unknown magic" in err
    code, _, err = detect(capsys, path, "--detectors", "zscore", "--quiet-steps", "-1")
    assert code == 2 and "--quiet-steps must be >= 0" in err


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
