"""The anomaly likelihood (engine.anomaly.likelihood) and the streaming alert gate (engine.anomaly.alerts)."""

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.engine.anomaly.alerts import AlertGate, alerts
from helios.engine.anomaly.base import AnomalyScores, Severity
from helios.engine.anomaly.likelihood import (
    AVERAGING_STEPS,
    LEARNING_STEPS,
    RANGE_TOLERANCE,
    WARNING_TAIL,
    Likelihood,
    batch_tail,
    outside_range,
)

READY = AVERAGING_STEPS - 1 + LEARNING_STEPS  # the first step with a likelihood


def noise(n, seed=0):
    return np.random.default_rng(seed).normal(0, 1, n)


def test_stationary_noise_stays_below_warning_and_a_spike_run_raises_it():
    z = noise(20_000)
    tail = batch_tail(z)
    assert np.isnan(tail[:READY]).all() and np.isfinite(tail[READY:]).all()
    assert (tail[READY:] <= WARNING_TAIL).mean() < 1e-3  # a few steps in 20,000 at most
    spiked = z.copy()
    spiked[15_000] = 20.0  # one 20-sigma sample (a 12-sigma one: tail 1e-7, not rare enough alone)
    t2 = batch_tail(spiked)
    np.testing.assert_array_equal(t2[:15_000], tail[:15_000])  # causal
    assert t2[15_000] <= WARNING_TAIL < tail[15_000]
    shifted = z.copy()
    shifted[15_000:15_012] += 3.0  # an hour 3 sigma off: no single step extreme, the run is
    assert batch_tail(shifted)[15_000:15_012].min() <= WARNING_TAIL


def test_a_volatile_series_needs_a_larger_surprise_than_a_calm_one():
    calm, wild = noise(3000, 1), noise(3000, 1) * np.where(np.arange(3000) % 7 == 0, 6.0, 1.0)
    for z in (calm, wild):
        z[2500] = 20.0
    assert batch_tail(calm)[2500] <= WARNING_TAIL < batch_tail(wild)[2500]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(300, 1500), st.floats(0.0, 0.3), st.floats(0.0, 0.3))
def test_the_streaming_update_equals_the_batch_and_survives_a_round_trip(seed, n, missing, missing_value):
    rng = np.random.default_rng(seed)
    z = rng.standard_t(3, n)
    z[rng.random(n) < missing] = np.nan
    values = np.cumsum(rng.standard_t(2, n))  # a random walk: it leaves its range now and then
    values[rng.random(n) < missing_value] = np.nan
    cut = n // 2
    first = Likelihood()
    head = first.tail(z[:cut], values[:cut])
    restored = Likelihood.from_dict(json.loads(json.dumps(first.to_dict())))
    rest = [restored.update_tail(float(s), float(v)) for s, v in zip(z[cut:], values[cut:], strict=True)]
    streamed = np.concatenate([head, rest])
    np.testing.assert_allclose(streamed, batch_tail(z, values), rtol=1e-9, atol=1e-300)
    assert len(json.dumps(restored.to_dict())) < 600  # a small state


def test_a_value_outside_the_range_seen_is_an_anomaly_however_ordinary_its_score():
    z = noise(3000, 4)  # the detector's scores: nothing unusual anywhere
    values = 50 + 10 * np.sin(np.arange(3000) * 2 * np.pi / 288)  # a daily cycle between 40 and 60
    tolerance = RANGE_TOLERANCE * 20
    values[2000] = 60 + 0.5 * tolerance  # higher than ever, but within the tolerance
    values[2500] = 60 + 2 * tolerance  # beyond it
    values[2600] = 40 - 2 * tolerance  # below the lowest, beyond it
    tail = batch_tail(z, values)
    assert np.flatnonzero(outside_range(values)[READY:]).tolist() == [2500 - READY, 2600 - READY]
    assert max(tail[2500], tail[2600]) <= WARNING_TAIL
    assert tail[2000] == batch_tail(z)[2000] > WARNING_TAIL  # within the tolerance: the scores alone
    assert (tail <= WARNING_TAIL).sum() == 2  # nothing else: a cycle within its range is no news
    values[100] = 99.0  # during the learning: no likelihood, but the range it learns is wider
    tail = batch_tail(z, values)
    assert np.isnan(tail[100]) and tail[2500] > WARNING_TAIL


def test_a_state_saved_before_the_range_existed_starts_its_range_empty():
    state = Likelihood()
    state.tail(noise(400, 5), np.linspace(0, 1, 400))
    doc = state.to_dict()
    assert (doc["low"], doc["high"]) == (0.0, 1.0)
    old = Likelihood.from_dict({k: v for k, v in doc.items() if k not in ("low", "high")})
    assert old.update_tail(0.0, 5.0) > WARNING_TAIL  # no range yet: nothing is outside it
    assert Likelihood.from_dict(doc).update_tail(0.0, 5.0) <= WARNING_TAIL
    assert Likelihood().to_dict()["low"] is None  # JSON has no infinity


def test_severity_follows_the_likelihood_and_falls_back_on_the_score_while_learning():
    scores = np.array([3.0, 3.0, 0.1, 5.0, np.nan])
    likelihood = np.array([np.nan, 1 - 1e-10, 1 - 1e-12, 0.5, np.nan])
    got = AnomalyScores("x", np.arange(5), scores, likelihood).severity
    assert got.tolist() == [Severity.WARNING, Severity.WARNING, Severity.CRITICAL, Severity.NONE, Severity.NONE]
    assert AnomalyScores("x", np.arange(5), scores).severity.tolist()[:4] == [1, 1, 0, 2]  # no likelihood: |score|


@given(st.lists(st.integers(0, 2), min_size=1, max_size=300), st.integers(0, 30))
def test_the_streaming_alert_gate_equals_the_batch_alerts(severities, quiet):
    gate = AlertGate(quiet)
    streamed = [gate.feed(s) for s in severities]
    np.testing.assert_array_equal(streamed, alerts(np.array(severities) >= Severity.WARNING, quiet))


def test_one_incident_one_alert():
    z = noise(5000, 3)
    z[4000:4030] += 6.0  # a 2.5-hour incident
    tail = batch_tail(z)
    sev = AnomalyScores("x", np.arange(z.size), z, 1.0 - tail).severity
    raised = np.flatnonzero(alerts(sev >= Severity.WARNING))
    late = raised[raised >= READY]
    assert late.size == 1 and 4000 <= late[0] < 4000 + AVERAGING_STEPS


def test_the_update_says_which_range_a_value_fell_outside():
    state = Likelihood()
    state.tail(noise(400, 6), np.linspace(10, 20, 400))
    state.update_tail(0.1, 15.0)
    assert state.outside is None
    state.update_tail(0.1, 30.0)
    assert state.outside == (10.0, 20.0)
    assert "outside" not in state.to_dict()  # an explanation, not state
