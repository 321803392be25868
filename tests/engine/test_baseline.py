import numpy as np
import pytest

from helios.engine.models import create, load
from helios.engine.pipeline import fit_and_forecast
from helios.engine.types import Series

STEP = 300


def series(values, start=1_700_000_100):
    values = np.asarray(values, dtype=float)
    return Series(start + STEP * np.arange(values.size), values)


def test_constant_series_forecasts_the_constant_with_a_zero_width_interval():
    f = create("baseline").fit(series(np.full(400, 42.0))).predict(6)
    assert np.allclose(f.point, 42.0)
    lower, upper = f.interval(0.8)
    assert np.allclose(lower, 42.0) and np.allclose(upper, 42.0)


def test_linear_series_is_extrapolated_exactly():
    # y = 3 + 2i: the MA sits (window-1)/2 steps back; the trend correction must bring it forward.
    y = 3 + 2.0 * np.arange(100)
    f = create("baseline").fit(series(y)).predict(4)
    assert np.allclose(f.point, 3 + 2.0 * np.arange(100, 104))
    assert f.start == 1_700_000_100 + 100 * STEP and f.step == STEP


def test_seed_windows_are_used():
    # Only the last 12 samples set the level: changing older samples must not move the forecast
    # of a flat-trend tail (trend_window 24 sees a flat line in both cases).
    tail = np.full(24, 10.0)
    a = create("baseline").fit(series(np.concatenate([np.full(200, 0.0), tail]))).predict(1)
    b = create("baseline").fit(series(np.concatenate([np.full(200, 99.0), tail]))).predict(1)
    assert a.point[0] == pytest.approx(10.0) and b.point[0] == pytest.approx(10.0)


def test_interval_is_calibrated_out_of_sample():
    """The nominal 80% interval covers about 80% of the values that follow, for noisy data."""
    rng = np.random.default_rng(7)
    n = 4000
    y = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 5, n)
    hits = total = 0
    for origin in range(2000, n - 6, 37):
        f = create("baseline").fit(series(y[:origin])).predict(6)
        lower, upper = f.interval(0.8)
        actual = y[origin : origin + 6]
        hits += int(((actual >= lower) & (actual <= upper)).sum())
        total += actual.size
    assert 0.72 <= hits / total <= 0.88


def test_quantiles_are_ordered_and_widen_with_the_horizon():
    rng = np.random.default_rng(1)
    f = create("baseline").fit(series(50 + rng.normal(0, 3, 1000).cumsum() * 0.1)).predict(48)
    assert np.all(np.diff(f.quantiles, axis=0) >= 0)
    width = f.quantile(0.9) - f.quantile(0.1)
    assert width[-1] > width[0]


def test_short_history_still_forecasts_with_gaussian_bounds():
    f = create("baseline").fit(series([10.0, 12.0, 11.0, 13.0])).predict(3)
    lower, upper = f.interval(0.8)
    assert np.all(lower < f.point) and np.all(upper > f.point)


def test_single_sample_uses_the_configured_step():
    f = create("baseline", step=60).fit(series([5.0])).predict(2)
    assert f.step == 60 and np.allclose(f.point, 5.0)


def test_unknown_model_and_artifact_are_refused():
    available = "available: auto, baseline, ets, mstl, naive, prophet, seasonal_naive, ses, theta"
    with pytest.raises(ValueError, match=available):
        create("arima")
    with pytest.raises(ValueError, match="unknown model 'arima'"):
        load(b'{"model": "arima", "params": {}, "state": {}}')


def test_pipeline_aligns_irregular_samples_before_fitting():
    ts = np.array([0, 290, 610, 905, 1200, 1490]) + 1_700_000_000
    f = fit_and_forecast("baseline", {}, Series(ts, np.array([1.0, 2, 3, 4, 5, 6])), STEP, 2).forecast
    assert f.start % STEP == 0 and f.step == STEP and f.horizon == 2
