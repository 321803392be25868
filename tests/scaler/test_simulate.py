"""`helios simulate`: the HPA's rule and behavior, pods' startup delay, the outcomes on hand-made traces,
no look-ahead for Helios, and the command's outputs and errors."""

import json

import numpy as np
import pytest

from helios.adapters.file import FileSource
from helios.engine.anomaly.base import Severity
from helios.engine.models import MODELS
from helios.engine.replay.hpa import HPA, Behavior
from helios.engine.replay.loop import Cluster
from helios.engine.replay.pods import Pods
from helios.engine.types import Series
from helios.scaler.cli import main
from helios.scaler.config.metadata import MetadataParser
from helios.scaler.config.settings import AnomalySettings, load_settings
from helios.scaler.tools.simulate.compare import Replay, compare
from helios.scaler.tools.simulate.policies import ForecastTape, Helios, Reactive

from ..helpers import write_trace

T0 = 1_700_000_100  # a multiple of 300


# --- the HPA ---------------------------------------------------------------------------------------

def test_the_ratio_to_the_current_replicas_inside_the_tolerance_keeps_the_count():
    hpa = HPA(target=10)
    assert hpa.proposal(54, current=5) == 5  # 54 / (10 x 5) = 1.08: inside 0.1
    assert hpa.proposal(45, current=5) == 5  # 0.9: on the edge, still inside
    assert hpa.proposal(56, current=5) == 6  # 1.12: ceil(56 / 10)
    assert hpa.proposal(44, current=4) == 4  # the ratio divides by the current count, ready or not
    assert hpa.proposal(44, current=3) == 5
    assert HPA(target=10, tolerance=0).proposal(41, current=4) == 5


def test_min_and_max_replicas_bound_the_count():
    hpa = HPA(target=10, min_replicas=2, max_replicas=7)
    assert hpa.sync(0, 1000, current=4) == 7
    now = Behavior(scaleDown={"stabilizationWindowSeconds": 0})
    down = HPA(target=10, min_replicas=2, max_replicas=7, behavior=now)
    assert down.sync(0, 0.0, current=6) == 2
    assert hpa.sync(15, 30, current=9) == 7  # above max: brought back at once, whatever the metric


def test_scale_up_is_limited_to_the_larger_of_100_percent_and_4_pods_per_15_seconds():
    hpa, current, seen = HPA(target=1), 1, []
    for t in range(0, 60, 15):
        current = hpa.sync(t, 100, current)
        seen.append(current)
    assert seen == [5, 10, 20, 40]  # +4 beats x2 at first, then doubling wins
    again = HPA(target=1)
    assert again.sync(0, 100, 2) == 6
    assert again.sync(5, 100, 6) == 6  # same 15 s period: counted from the period's start (2)
    assert again.sync(15, 100, 6) == 12


def test_scale_down_waits_for_the_highest_recommendation_of_the_last_300_seconds():
    hpa = HPA(target=10)
    assert hpa.sync(0, 100, 10) == 10
    for t in range(15, 300, 15):
        assert hpa.sync(t, 20, 10) == 10, t
    assert hpa.sync(300, 20, 10) == 2  # the 10 at t=0 has left the window; 100% per 15 s allows it all


@pytest.mark.parametrize("up, down", [(0, 300), (60, 300), (300, 60), (45, 0)])
def test_stabilisation_takes_the_extreme_proposal_of_each_window_as_a_full_scan_would(up, down):
    behavior = Behavior.model_validate({"scaleUp": {"stabilizationWindowSeconds": up},
                                        "scaleDown": {"stabilizationWindowSeconds": down}})
    hpa, rng, made = HPA(target=10, behavior=behavior), np.random.default_rng(up + down), []
    for t in range(0, 3000, 15):
        proposal, current = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        made.append((t, proposal))
        lowest = min(p for w, p in made if w > t - up or w == t)
        highest = max(p for w, p in made if w > t - down or w == t)
        assert hpa._stabilise(t, proposal, current) == min(max(current, lowest), highest), t


def test_a_given_behavior_replaces_the_defaults():
    slow = Behavior.model_validate({"scaleDown": {"stabilizationWindowSeconds": 0,
                                                  "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}})
    hpa, current = HPA(target=10, behavior=slow), 5
    seen = []
    for t in range(0, 180, 15):
        current = hpa.sync(t, 10, current)
        seen.append(current)
    assert seen == [4, 4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2]
    assert slow.scale_up.policies == Behavior().scale_up.policies  # untouched direction keeps defaults


def test_pods_serve_after_the_startup_delay_and_the_youngest_go_first():
    pods = Pods(2, startup_delay=120)
    pods.scale_to(5, now=0)
    assert (pods.ready(119), pods.ready(120), len(pods)) == (2, 5, 5)
    pods.scale_to(7, now=60)
    pods.scale_to(4, now=100)  # the two from t=60 and one from t=0, none ready yet
    assert (pods.ready(100), pods.ready(120), pods.ready(1000)) == (2, 4, 4)


# --- the loop on hand-made traces ------------------------------------------------------------------

def step_trace(jump_at: int, before=5.0, after=45.0, hours=2, step=15) -> Series:
    ts = T0 + step * np.arange(hours * 3600 // step)
    return Series(ts, np.where(ts >= jump_at, after, before))


def run(trace, policies, **cluster):
    settings = load_settings()
    return compare("t.csv", trace, policies, Cluster(target_value=10, **cluster), Replay(warmup=3600), settings, 300)


def test_on_a_step_reactive_is_short_for_the_startup_delay_plus_the_poll_wait_and_the_oracle_never():
    jump = T0 + 3600 + 1815  # 15 s after a poll: KEDA sees it at the next one
    result = run(step_trace(jump), ["reactive", "oracle"])
    reactive, oracle = result.runs["reactive"], result.runs["oracle"]
    ticks = reactive.times.size
    assert ticks == 239  # to the last sample, 15 s before the end of the second hour
    # Seen at jump + 15 s, 5 pods at once (1 + 4), ready 120 s later: short at jump .. jump + 120.
    short = 9
    assert reactive.outcome.underprovisioned_fraction == pytest.approx(short / ticks)
    assert reactive.outcome.unserved_fraction == pytest.approx(short * 35 / reactive.demand.sum())
    after = int((reactive.times >= jump + 15).sum())
    assert reactive.outcome.replica_hours == pytest.approx(((ticks - after) * 1 + after * 5) * 15 / 3600)
    assert reactive.outcome.overprovision_mean == pytest.approx(0.5 * (ticks - short) / ticks)
    assert reactive.outcome.scale_events == 1
    assert oracle.outcome.underprovisioned_fraction == 0 and oracle.outcome.unserved_fraction == 0
    first_pod = oracle.times[np.argmax(oracle.replicas > 1)]
    assert jump - 165 <= first_pod <= jump - 120  # it looks startup + poll + sync ahead, no further


def test_helios_serves_at_least_the_observed_value_and_fits_on_the_refit_schedule():
    rng = np.random.default_rng(1)
    ts = T0 + 300 * np.arange(3 * 288)
    values = 100 + 50 * np.sin(2 * np.pi * np.arange(ts.size) / 288) + rng.normal(0, 5, ts.size)
    trace = Series(ts, values)
    settings = load_settings()
    replay = Replay(warmup=2 * 86400 + 6 * 3600, days=None)
    trigger = MetadataParser({"file": FileSource()}, settings.models, MODELS)(
        "sim", "t", {"source": "file", "path": "t.csv", "targetValue": "10", "model": "baseline"})
    tape = ForecastTape(trace, trigger, settings.models, settings.metrics, 300)
    helios, reactive = Helios(tape, trigger, settings.metrics.staleness_limit), Reactive(trace)
    start = T0 + replay.warmup
    served = [(helios.metric(t), reactive.metric(t)) for t in range(start, start + 6 * 3600, 30)]
    assert all(h >= r for h, r in served) and any(h > r for h, r in served)
    assert tape.fits == 6  # one per refit_interval (1 h) over 6 hours
    assert tape.updates == 6 * 12 - 6  # every other new 5-minute sample only moves the model


def test_the_tape_settles_its_served_forecasts_as_the_server_does_so_the_live_guard_sees_them_fail():
    rng = np.random.default_rng(3)
    ts = T0 + 300 * np.arange(3 * 288)
    calm = 100 + 50 * np.sin(2 * np.pi * np.arange(ts.size) / 288) + rng.normal(0, 3, ts.size)
    wild = ts >= ts[-72]  # the last 6 hours: noise the forecasts' intervals have never seen
    values = np.where(wild, calm + rng.normal(0, 60, ts.size), calm)
    settings = load_settings()
    trigger = MetadataParser({"file": FileSource()}, settings.models, MODELS)(
        "sim", "t", {"source": "file", "path": "t.csv", "targetValue": "10", "model": "baseline"})
    tape = ForecastTape(Series(ts, values), trigger, settings.models, settings.metrics, 300)
    errors = {}
    for now in range(int(ts[-72]) - 8 * 3600, int(ts[-1]) + 1, 30):
        tape.refresh(now)
        errors["calm" if now < ts[-72] else "wild"] = tape.snapshot.forecast_error
    assert errors["calm"].matured >= 24 and errors["wild"].matured > errors["calm"].matured
    # What engine.replay.provision.guarded compares: the coverage falls by more than GUARD_DROP.
    assert errors["wild"].coverage < errors["calm"].coverage - 0.15


def test_helios_decides_only_from_data_up_to_now():
    rng = np.random.default_rng(2)
    ts = T0 + 300 * np.arange(2 * 288)
    values = 100 + 40 * np.sin(2 * np.pi * np.arange(ts.size) / 288) + rng.normal(0, 5, ts.size)
    cut = int(ts[400])
    changed = np.where(ts > cut, values * 3 + 50, values)
    results = [compare("t.csv", Series(ts, v), ["baseline", "naive"], Cluster(target_value=10),
                       Replay(warmup=86400), load_settings(), 300) for v in (values, changed)]
    for policy in ("baseline", "naive"):
        a, b = (r.runs[policy] for r in results)
        before = a.times <= cut
        assert np.array_equal(a.metrics[before], b.metrics[before], equal_nan=True)
        assert np.array_equal(a.replicas[before], b.replicas[before])
        assert not np.array_equal(a.metrics[~before], b.metrics[~before])  # the change does matter after


def spiky(n=360):
    """Values alternating 99 / 101 (|zscore| 1), with three bursts at 130: samples 300-302, 336-338 (three
    hours later: a new incident) and 342-343 (three quiet samples after it: the same incident)."""
    ts = T0 + 300 * np.arange(n)
    values = 100 + np.where(np.arange(ts.size) % 2, 1.0, -1.0)
    for first, n in ((300, 3), (336, 3), (342, 2)):
        values[first : first + n] = 130
    return Series(ts, values)


def test_the_tape_alerts_as_serving_does_once_per_incident():
    trace = spiky()
    settings = load_settings()
    trigger = MetadataParser({"file": FileSource()}, settings.models, MODELS)(
        "sim", "t", {"source": "file", "path": "t.csv", "targetValue": "10", "model": "baseline"})
    tape = ForecastTape(trace, trigger, settings.models, settings.metrics, 300,
                        anomaly=AnomalySettings(detector="zscore"))
    for now in range(int(trace.timestamps[290]), int(trace.timestamps[-1]) + 1, 30):  # KEDA's 30 s polls
        tape.refresh(now)
    # Each sample is refreshed ten times, and refitted on every hour, yet it raises one alert at most;
    # the bursts' later samples and the burst three samples after one continue its incident.
    assert tape.fits >= 5
    at = trace.timestamps
    assert tape.alerts == [(int(at[300]), Severity.CRITICAL), (int(at[336]), Severity.CRITICAL)]
    # Without the anomaly settings the tape scores nothing.
    plain = ForecastTape(trace, trigger, settings.models, settings.metrics, 300)
    plain.refresh(int(trace.timestamps[301]))
    assert plain.alerts == []


# --- the command -----------------------------------------------------------------------------------

def daily(tmp_path, name="web.csv", days=2, seed=0):
    rng = np.random.default_rng(seed)
    n = days * 288
    values = 100 + 60 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 4, n)
    return write_trace(tmp_path / name, values, end=1_700_000_000)


def test_json_rows_per_trace_and_policy(tmp_path, capsys):
    path = daily(tmp_path)
    assert main(["simulate", str(path), "--warmup", "1d", "--days", "0.5", "--policies", "reactive,naive,oracle",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in rows] == ["reactive", "naive", "oracle"]
    assert all(set(r) == {"trace", "policy", "underprovisioned_fraction", "unserved_fraction", "replica_hours",
                          "overprovision_mean", "scale_events"} and r["trace"] == "web.csv" for r in rows)
    by = {r["policy"]: r for r in rows}
    assert by["oracle"]["underprovisioned_fraction"] < by["reactive"]["underprovisioned_fraction"]
    # 12 hours of 1..20 replicas (the 99th percentile needs 20)
    assert 12 * 1 < by["reactive"]["replica_hours"] < 12 * 20


def test_without_policies_helios_runs_its_configured_default_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HELIOS_MODELS__DEFAULT", "seasonal_naive")  # what `serve` would run, whatever it is
    assert main(["simulate", str(daily(tmp_path)), "--warmup", "1d", "--days", "0.25", "--format", "json"]) == 0
    assert [r["policy"] for r in json.loads(capsys.readouterr().out)] == ["reactive", "seasonal_naive", "oracle"]


def test_anomaly_alerts_are_counted_for_the_helios_policies_when_asked(tmp_path, capsys):
    write_trace(tmp_path / "spiky.csv", spiky().values, end=int(spiky().timestamps[-1]))
    config = tmp_path / "helios.yaml"
    config.write_text("anomaly:\n  detector: zscore\n")
    args = ["simulate", str(tmp_path / "spiky.csv"), "--warmup", "1d", "--policies", "reactive,naive",
            "--config", str(config), "--anomaly-alerts"]
    assert main([*args, "--format", "json"]) == 0
    by = {r["policy"]: r for r in json.loads(capsys.readouterr().out)}
    assert "anomaly_alerts" not in by["reactive"]  # no Helios, no detector
    assert by["naive"]["anomaly_alerts"] == 2 and all(a.endswith("critical") for a in by["naive"]["anomaly_alerted"])
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("| anomaly_alerts |") and lines[2].endswith("| - |") and lines[3].endswith("| 2 |")


def test_table_and_one_png_per_trace(tmp_path, capsys):
    daily(tmp_path, "a.csv")
    daily(tmp_path, "b.csv", seed=1)
    plots = tmp_path / "plots"
    assert main(["simulate", str(tmp_path), "--warmup", "1d", "--days", "0.25", "--policies", "reactive,oracle",
                 "--target-value", "20", "--plot", str(plots)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("| trace | policy | underprovisioned_fraction")
    assert out.count("| a.csv | reactive |") == 1 and out.count("| b.csv | oracle |") == 1
    for name in ("a.png", "b.png"):
        content = (plots / name).read_bytes()
        assert content.startswith(b"\x89PNG") and len(content) > 10_000


def test_bad_arguments_exit_2_with_one_line_naming_the_flag(tmp_path, capsys):
    path = str(daily(tmp_path))
    cases = [
        (["--policies", "reactive,arima"], "--policies: unknown arima"),
        (["--lead-time", "2h"], "--lead-time='2h': must not exceed horizon"),
        (["--quantile", "1.5"], "--quantile='1.5'"),
        (["--startup-delay", "soon"], "'soon' is not a duration"),
        (["--min-replicas", "5", "--max-replicas", "2"], "--min-replicas must be >= 1 and <= --max-replicas"),
        (["--warmup", "3d"], "nothing is left after a warm-up of 3 days"),
    ]
    behavior = tmp_path / "behavior.yaml"
    behavior.write_text("scaleUp:\n  policies: [{type: Nodes, value: 1, periodSeconds: 15}]\n")
    cases.append((["--behavior", str(behavior)], "scaleUp.policies.0.type"))
    for extra, message in cases:
        assert main(["simulate", path, "--warmup", "1d", *extra]) == 2, extra  # the last --warmup wins
        err = capsys.readouterr().err
        assert err.startswith("helios simulate: ") and message in err and "Traceback" not in err, (extra, err)
