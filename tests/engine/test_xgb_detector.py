import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.adapters.file import read_csv
from helios.engine.anomaly import xgb as xgb_detector
from helios.engine.anomaly.base import AnomalyDetector, Severity
from helios.engine.anomaly.xgb import XGBoostDetector
from helios.engine.errors import InsufficientData
from helios.engine.features import LOOKBACK
from helios.engine.types import Series

STEP = 300
START = 1_704_067_200  # 2024-01-01T00:00:00Z
DAY, WEEK = 288, 2016  # steps
NOISE = 5.0
DATA = Path(__file__).resolve().parents[1] / "data"


def series(values, start=START):
    values = np.asarray(values, dtype=float)
    return Series(start + STEP * np.arange(values.size), values)


def traffic(n, seed):
    """A daily and a weekly cycle with Gaussian noise of sd NOISE."""
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, NOISE, n)
    return 100 + 40 * np.sin(2 * np.pi * t / DAY) + 10 * np.sin(2 * np.pi * t / WEEK) + noise


def flag_rate(scores):
    present = scores[np.isfinite(scores)]
    return float(np.mean(np.abs(present) >= 2.5))


def robust_spread(scores):
    present = scores[np.isfinite(scores)]
    return 1.4826 * float(np.median(np.abs(present - np.median(present))))


@pytest.fixture(scope="module")
def clean():
    """Two weeks of history to fit on, then a third week the detector has not seen."""
    y = traffic(3 * WEEK, seed=11)
    detector = XGBoostDetector().fit(series(y[: 2 * WEEK]))
    return detector, y


def test_seed_configuration_and_the_detector_contract():
    detector: AnomalyDetector = XGBoostDetector()
    assert detector.name == "xgboost"
    assert detector.params["n_estimators"] == 100 and detector.params["max_depth"] == 6


def test_clean_data_is_rarely_flagged_and_scores_are_in_standard_deviations(clean):
    detector, y = clean
    scores = detector.score(series(y)).scores
    history, unseen = scores[: 2 * WEEK], scores[2 * WEEK :]
    # 2.5 sigma is exceeded by 1.2 % of a normal distribution
    assert flag_rate(history) < 0.02 and flag_rate(unseen) < 0.02
    assert 0.9 <= robust_spread(history) <= 1.1  # the fit's own out-of-sample residuals: unit by construction
    assert 0.8 <= robust_spread(unseen) <= 1.2
    assert 0.8 <= np.nanstd(unseen) <= 1.2
    assert abs(np.nanmedian(unseen)) < 0.2


def test_injected_spikes_dips_and_a_level_shift_in_new_data_are_flagged(clean):
    detector, y = clean
    injected = {2 * WEEK + 300: 30.0, 2 * WEEK + 700: -30.0, 2 * WEEK + 1100: 80.0}
    shift_at = 2 * WEEK + 1500
    z = y.copy()
    for i, delta in injected.items():
        z[i] += delta
    z[shift_at:] += 30.0
    result = detector.score(series(z))
    scores, sev = result.scores, result.severity
    assert scores[2 * WEEK + 300] >= 2.5 and scores[2 * WEEK + 700] <= -2.5  # signed: above / below expected
    assert sev[2 * WEEK + 1100] == Severity.CRITICAL
    assert scores[shift_at] >= 2.5
    # Elsewhere (the next LOOKBACK steps excepted, which still see the anomaly) flags stay rare:
    # the model learnt departures from the recent mean, so it follows the new level.
    elsewhere = np.ones(z.size, bool)
    elsewhere[: 2 * WEEK] = False
    for i in [*injected, shift_at]:
        elsewhere[i : i + LOOKBACK + 1] = False
    assert flag_rate(scores[elsewhere]) < 0.03


def test_anomalies_inside_the_history_are_scored_out_of_sample():
    """Scoring the history it was fitted on: each step comes from a model that never saw it, so an
    anomaly in the history is not learnt away."""
    y = traffic(2 * WEEK, seed=12)
    y[1000] += 30.0
    y[2000] += 80.0
    y[3000] -= 30.0
    y[3500:] += 30.0
    s = series(y)
    result = XGBoostDetector().fit(s).score(s)
    assert result.scores[1000] >= 2.5 and result.scores[3000] <= -2.5 and result.scores[3500] >= 2.5
    # The spike itself is an alert; the likelihood of the run it starts passes CRITICAL within the hour.
    assert result.severity[2000] >= Severity.WARNING and result.severity[2000:2012].max() == Severity.CRITICAL
    assert flag_rate(result.scores) < 0.03


def test_heavy_tailed_noise_is_calibrated_to_the_gaussian_share_of_flags():
    """Student-t noise (3 degrees of freedom): scaled by its MAD, 6-7 % of steps would pass 2.5 sigma.
    The calibration on the history's out-of-sample residuals brings unseen data back to about the
    Gaussian 1.24 %."""
    t = np.arange(3 * WEEK)
    noise = 3.0 * np.random.default_rng(21).standard_t(3, t.size)
    y = 100 + 40 * np.sin(2 * np.pi * t / DAY) + noise
    detector = XGBoostDetector().fit(series(y[: 2 * WEEK]))
    assert detector.state["calibration"] > 1.2
    assert 0.004 < flag_rate(detector.score(series(y)).scores[2 * WEEK :]) < 0.025


def test_a_volatile_stretch_raises_the_scale_and_a_calm_spike_still_stands_out(clean, monkeypatch):
    """Noise three times as strong from a day into the new week. Its first hours flood (the past day's
    residuals are still calm); a day in, they set the scale and flags are rare again, where the global
    scale alone would keep flooding. A spike in the calm day before is flagged all the same."""
    detector, y = clean
    z = y.copy()
    loud = 2 * WEEK + DAY
    z[loud:] += np.random.default_rng(13).normal(0, 2 * NOISE * np.sqrt(2), z.size - loud)  # sd 3x NOISE
    z[2 * WEEK + 100] += 30.0
    scores = detector.score(series(z)).scores
    assert scores[2 * WEEK + 100] >= 2.5
    assert flag_rate(scores[loud : loud + DAY // 4]) > 0.2
    assert flag_rate(scores[loud + DAY :]) < 0.04
    monkeypatch.setattr(xgb_detector, "_volatility", lambda deviations: np.full(len(deviations), np.nan))
    assert flag_rate(detector.score(series(z)).scores[loud + DAY :]) > 0.2


def test_a_score_never_reads_later_samples(clean):
    detector, y = clean
    before = detector.score(series(y)).scores
    for t in (LOOKBACK + 5, 1000, 2 * WEEK - 1, 2 * WEEK, 2 * WEEK + 50):
        later = y.copy()
        later[t + 1 :] = 0.0 if t % 2 else later[t + 1 :] * 3
        np.testing.assert_array_equal(detector.score(series(later)).scores[: t + 1], before[: t + 1])
        now = y.copy()
        now[t] += 100.0
        after = detector.score(series(now)).scores
        np.testing.assert_array_equal(after[:t], before[:t])
        assert after[t] > before[t] + 5  # ... while the sample itself moves its own score


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(0, 3 * WEEK - 2), seed=st.integers(0, 2**32 - 1), scale=st.floats(0.0, 10.0))
def test_no_look_ahead_for_any_cut_and_any_future(clean, cut, seed, scale):
    detector, y = clean
    future = y.copy()
    future[cut + 1 :] = np.random.default_rng(seed).normal(100, 50, future.size - cut - 1) * scale
    a, b = detector.score(series(y)).scores, detector.score(series(future)).scores
    np.testing.assert_array_equal(a[: cut + 1], b[: cut + 1])


def test_new_data_that_continues_the_history_is_scored_from_its_first_step(clean):
    detector, y = clean
    whole = detector.score(series(y)).scores
    continuation = detector.score(series(y[2 * WEEK :], start=START + STEP * 2 * WEEK)).scores
    assert np.isfinite(continuation).all()  # the history's last samples stand in for the warm-up
    np.testing.assert_array_equal(continuation, whole[2 * WEEK :])


def test_warm_up_and_missing_samples_score_nan(clean):
    detector, y = clean
    recent = y[-60:].copy()
    recent[40] = np.nan
    scores = detector.score(series(recent, start=START + STEP * (y.size - 60))).scores
    assert np.isnan(scores[:LOOKBACK]).all()  # a week after the history: no complete lag window yet
    assert np.isnan(scores[40])
    assert np.isfinite(np.delete(scores, 40)[LOOKBACK:]).all()


def test_a_real_nab_file_is_flagged_inside_a_labelled_window():
    name = "nab_ec2_cpu_utilization_24ae8d.csv"
    trace = read_csv(str(DATA / name))
    windows = json.loads((DATA / "labels.json").read_text())[name]
    result = XGBoostDetector().fit(trace).score(trace)
    inside = np.zeros(len(trace), bool)
    for start, end in windows:
        inside |= (trace.timestamps >= datetime.fromisoformat(start).timestamp()) & (
            trace.timestamps <= datetime.fromisoformat(end).timestamp()
        )
    assert result.flagged[inside].any()
    assert inside[np.nanargmax(np.abs(result.scores))]  # the strongest score of the two weeks is labelled
    assert flag_rate(result.scores) < 0.05


def test_routine_steps_of_a_quantised_signal_are_not_anomalies():
    """CloudWatch-style CPU: 0.134 most of the time, 0.066 a fifth of it, at random. Most residuals tie,
    so a MAD-only scale would be tiny and every routine drop would score far beyond 2.5 (12 % flagged)."""
    y = np.where(np.random.default_rng(5).random(WEEK) < 0.2, 0.066, 0.134)
    y[1500] = 1.0
    s = series(y)
    result = XGBoostDetector().fit(s).score(s)
    assert flag_rate(np.delete(result.scores, 1500)) < 0.02
    assert result.severity[1500] >= Severity.WARNING and result.severity[1500:1512].max() == Severity.CRITICAL


def test_the_artifact_keeps_its_layout(clean):
    """What the scaler keeps per workload; the round trip itself is in test_detector_contract."""
    detector, _ = clean
    doc = json.loads(detector.to_bytes())
    assert list(doc) == ["detector", "params", "state", "boosters"] and doc["detector"] == "xgboost"
    assert doc["params"] == detector.params and len(doc["boosters"]) == detector.params["folds"]


def test_a_constant_history_keeps_scores_finite_and_calls_any_change_critical():
    flat = np.full(400, 50.0)
    detector = XGBoostDetector().fit(series(flat))
    assert np.nanmax(np.abs(detector.score(series(flat)).scores)) == 0
    bumped = flat.copy()
    bumped[300] = 51.0
    result = detector.score(series(bumped))
    assert np.isfinite(result.scores[LOOKBACK:]).all() and result.severity[300] == Severity.CRITICAL


def test_too_little_history_or_an_unaligned_series_is_refused(clean):
    with pytest.raises(InsufficientData):
        XGBoostDetector().fit(series(np.arange(50.0)))
    detector, y = clean
    with pytest.raises(ValueError, match="align"):
        detector.score(Series(START + 7 + STEP * np.arange(30), y[:30]))
    with pytest.raises(RuntimeError, match="before fit"):
        XGBoostDetector().score(series(y[:30]))


def test_the_likelihood_continues_from_the_fitted_state_and_old_artifacts_still_score(clean):
    """A series after the history carries on the likelihood the fit left; an artifact saved before the
    likelihood existed (no state["likelihood"]) still loads and scores, its likelihood learning afresh."""
    from helios.engine.anomaly.likelihood import Likelihood

    detector, y = clean
    history_end = detector.state["history_end"]
    later = Series(history_end + STEP * np.arange(1, 251), y[:250])  # shorter than the learning
    got = detector.score(later)
    expected = 1.0 - Likelihood.from_dict(detector.state["likelihood"]).tail(got.scores, later.values)
    np.testing.assert_array_equal(got.likelihood, expected)
    assert np.isfinite(got.likelihood[LOOKBACK + 1 :]).any()  # no day of learning after a fit
    doc = json.loads(detector.to_bytes())
    del doc["state"]["likelihood"]
    old = XGBoostDetector.from_bytes(json.dumps(doc).encode())
    again = old.score(later)
    np.testing.assert_array_equal(again.scores, got.scores)
    assert np.isnan(again.likelihood).all()  # learning: severity falls back on |score|
    by_score = xgb_detector.AnomalyScores("x", later.timestamps, got.scores).severity
    np.testing.assert_array_equal(again.severity, by_score)


def test_drivers_name_the_features_behind_the_last_forecast_and_add_up_to_it(clean):
    detector, y = clean
    new = y[2 * WEEK : 2 * WEEK + DAY].copy()
    new[-2] += 40 * NOISE  # the sample before the last jumps: the last forecast reads it through lag_1
    s = series(new, start=START + 2 * WEEK * STEP)
    top = detector.drivers(s, k=3)
    assert len(top) == 3 and all(name in xgb_detector.FEATURE_NAMES for name, _, _ in top)
    assert abs(top[0][2]) >= abs(top[1][2]) >= abs(top[2][2])
    assert XGBoostDetector.from_bytes(detector.to_bytes()).drivers(s, k=3) == top  # a saved model explains alike
    name, value, _ = top[0]
    assert name.startswith("cpu_utilization__") or name in xgb_detector.FEATURE_NAMES[:8]
    # The feature values are the last row's, and bias + all contributions is the prediction `score` uses.
    grid, features, _, _ = xgb_detector._design(detector._after_tail(s), STEP)
    row = features[-1:]
    assert value == pytest.approx(row[0][xgb_detector.FEATURE_NAMES.index(name)], nan_ok=True)
    values, contributions, bias = detector._contributions(s)
    expected = np.mean([xgb_detector._predict(b, row) for b in detector._boosters])
    assert bias + contributions.sum() == pytest.approx(expected, rel=1e-4, abs=1e-4)
    np.testing.assert_array_equal(np.isnan(values), np.isnan(row[0]))
    # Inside the history, the step's own fold model explains it (as it predicts it out of sample).
    inside = series(y[: WEEK])
    _, c, b = detector._contributions(inside)
    fold = int(np.searchsorted(detector.state["fold_starts"], inside.timestamps[-1], side="right")) - 1
    row = xgb_detector._design(inside, STEP)[1][-1:]
    assert b + c.sum() == pytest.approx(float(xgb_detector._predict(detector._boosters[fold], row)[0]), abs=1e-4)
    # The last step in its warm-up or missing: nothing to explain.
    assert detector.drivers(series(y[:5])) == []
    assert detector.drivers(series([*new[:-1], np.nan], start=START + 2 * WEEK * STEP)) == []


def test_a_jump_in_a_random_walk_is_explained_by_the_primary_metric_s_recent_samples():
    """A random walk is best predicted by its latest samples: after a jump, a lag or window of the
    primary metric drives the forecast, not the calendar."""
    walk = 500 + np.cumsum(np.random.default_rng(5).normal(0, 1, WEEK + DAY))
    detector = XGBoostDetector(n_estimators=30).fit(series(walk[:WEEK]))
    new = walk[WEEK:].copy()
    new[-2:] += 30  # the walk jumps 30 sd at the sample before the last, and stays there
    top = detector.drivers(series(new, start=START + WEEK * STEP), k=3)
    name, value, contribution = top[0]
    assert name.startswith("cpu_utilization__") and any(w in name for w in ("lag", "rolling", "pct_change"))
    assert contribution > 0  # the jump pulls the forecast up, above the recent mean


def test_context_fills_its_feature_columns_and_only_the_fitted_ones_are_read():
    """A load that follows its workload's memory with a lag: with memory as context the trees use it;
    without context, or with a metric the fit never saw, the scores are what they are without."""
    rng = np.random.default_rng(21)
    memory = 0.5 + 0.3 * np.sin(2 * np.pi * np.arange(WEEK) / 97) + rng.normal(0, 0.01, WEEK)
    load = 100 + 200 * np.roll(memory, 1) + rng.normal(0, 1, WEEK)  # what memory did one step ago
    s = series(load)
    context = {"memory_utilization": series(memory)}
    alone = XGBoostDetector().fit(s)
    informed = XGBoostDetector().fit(s, context)
    assert alone.state["context"] == [] and informed.state["context"] == ["memory_utilization"]
    with_memory = informed.score(s, context)
    assert np.nanmean(np.abs(with_memory.scores)) > 0  # scored, and differently from the load alone
    assert not np.allclose(np.nan_to_num(with_memory.scores), np.nan_to_num(alone.score(s).scores))
    assert any(name.startswith("memory_utilization__") for name, _, _ in informed.drivers(s, k=5, context=context))
    # A metric the fit never saw is ignored; no context at all scores as the load alone always did.
    extra = {**context, "db_connections": series(rng.normal(50, 5, WEEK))}
    np.testing.assert_array_equal(informed.score(s, extra).scores, with_memory.scores)
    np.testing.assert_array_equal(alone.score(s, context).scores, alone.score(s).scores)
    restored = XGBoostDetector.from_bytes(informed.to_bytes())
    np.testing.assert_array_equal(restored.score(s, context).scores, with_memory.scores)
