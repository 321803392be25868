import numpy as np
import pytest

from helios.engine.anomaly import NAMES, detector_class
from helios.engine.anomaly.base import CRITICAL_SIGMA, WARNING_SIGMA, Severity
from helios.engine.anomaly.reference import RollingZScore, ThresholdRule
from helios.engine.errors import InsufficientData
from helios.engine.types import Series

STEP = 300


def series(values, start=1_700_000_100):
    values = np.asarray(values, dtype=float)
    return Series(start + STEP * np.arange(values.size), values)


def noisy(n=1000, seed=3):
    rng = np.random.default_rng(seed)
    return 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 1, n)


def test_the_registry_finds_the_reference_detectors_by_name():
    assert detector_class("zscore") is RollingZScore and detector_class("threshold") is ThresholdRule
    assert set(NAMES) == {"xgboost", "zscore", "threshold"}
    with pytest.raises(KeyError):
        detector_class("magic")


def test_zscore_is_the_distance_from_the_past_window_in_its_standard_deviations():
    y = noisy(600)
    s = series(y)
    z = RollingZScore(window=20).fit(s).score(s).scores
    for i in (20, 137, 599):
        past = y[i - 20 : i]
        assert z[i] == pytest.approx((y[i] - past.mean()) / past.std())


def test_zscore_flags_a_spike_and_only_around_it():
    y = noisy(1000)
    y[700] += 40  # the day-long past window spreads about 7 (mostly the cycle): this is about 5.7 of it
    s = series(y)
    scores = RollingZScore().fit(s).score(s)
    assert scores.severity[700] == Severity.CRITICAL and scores.scores[700] > 0
    assert scores.flagged[300:].sum() <= 5  # a few steps of the cycle's slope at most, besides the spike


def test_zscore_warms_up_on_its_own_past_and_continues_from_the_fitted_history():
    y = noisy(600)
    own = RollingZScore(window=100).fit(series(y)).score(series(y)).scores
    assert np.isnan(own[:25]).all() and np.isfinite(own[25:]).all()  # min_periods = window // 4
    history, newer = series(y[:300]), Series(series(y).timestamps[300:], y[300:])
    continued = RollingZScore(window=100).fit(history).score(newer).scores
    np.testing.assert_allclose(continued, own[300:])


def test_zscore_of_a_step_after_a_flat_stretch_is_finite():
    y = np.concatenate([np.linspace(0, 10, 300), np.full(300, 10.0), [10.5]])
    s = series(y)
    z = RollingZScore().fit(s).score(s).scores
    assert np.isfinite(z[-1]) and z[-1] >= CRITICAL_SIGMA  # floored sigma: large, not infinite


def test_threshold_defaults_to_the_99th_percentile_of_the_history():
    history = series(np.arange(1, 101, dtype=float))  # 1..100
    rule = ThresholdRule().fit(history)
    assert rule.threshold == pytest.approx(np.quantile(np.arange(1, 101), 0.99))
    scores = rule.score(series([rule.threshold, rule.threshold * 0.99, rule.threshold * 1.6]))
    assert scores.scores[0] == pytest.approx(WARNING_SIGMA)
    assert list(scores.severity) == [Severity.WARNING, Severity.NONE, Severity.CRITICAL]


def test_threshold_for_a_utilisation_metric_is_the_seed_80_percent():
    rule = ThresholdRule(threshold=80).fit(series(np.full(50, 99.0)))  # a fixed threshold ignores the history
    assert rule.threshold == 80
    assert list(rule.score(series([79.9, 80.0, 128.0])).severity) == [Severity.NONE, Severity.WARNING,
                                                                        Severity.CRITICAL]


def test_threshold_needs_a_positive_level():
    with pytest.raises(InsufficientData):
        ThresholdRule().fit(series(np.zeros(100)))
    with pytest.raises(ValueError):
        ThresholdRule(threshold=0)
