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
    WARNING_TAIL,
    Likelihood,
    batch_tail,
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
    spiked[15_000] = 12.0  # one 12-sigma sample
    t2 = batch_tail(spiked)
    np.testing.assert_array_equal(t2[:15_000], tail[:15_000])  # causal
    assert t2[15_000] <= WARNING_TAIL < tail[15_000]
    shifted = z.copy()
    shifted[15_000:15_012] += 3.0  # an hour 3 sigma off: no single step extreme, the run is
    assert batch_tail(shifted)[15_000:15_012].min() <= WARNING_TAIL


def test_a_volatile_series_needs_a_larger_surprise_than_a_calm_one():
    calm, wild = noise(3000, 1), noise(3000, 1) * np.where(np.arange(3000) % 7 == 0, 6.0, 1.0)
    for z in (calm, wild):
        z[2500] = 15.0
    assert batch_tail(calm)[2500] <= WARNING_TAIL < batch_tail(wild)[2500]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(300, 1500), st.floats(0.0, 0.3))
def test_the_streaming_update_equals_the_batch_and_survives_a_round_trip(seed, n, missing):
    rng = np.random.default_rng(seed)
    z = rng.standard_t(3, n)
    z[rng.random(n) < missing] = np.nan
    cut = n // 2
    first = Likelihood()
    head = first.tail(z[:cut])
    restored = Likelihood.from_dict(json.loads(json.dumps(first.to_dict())))
    streamed = np.concatenate([head, [restored.update_tail(float(s)) for s in z[cut:]]])
    np.testing.assert_allclose(streamed, batch_tail(z), rtol=1e-9, atol=1e-300)
    assert len(json.dumps(restored.to_dict())) < 600  # a small state


def test_severity_follows_the_likelihood_and_falls_back_on_the_score_while_learning():
    scores = np.array([3.0, 3.0, 0.1, 5.0, np.nan])
    likelihood = np.array([np.nan, 1 - 1e-6, 1 - 1e-8, 0.5, np.nan])
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
