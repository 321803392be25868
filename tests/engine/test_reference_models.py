"""The reference forecasters (naive, seasonal naive) and the shared error-quantile calibration."""

from statistics import NormalDist

import numpy as np
import pytest

from helios.engine.calibration import MIN_ERRORS, error_quantiles, offsets
from helios.engine.models import MODELS, create
from helios.engine.pipeline import fit_and_forecast
from helios.engine.types import QUANTILE_LEVELS, Series

STEP = 300
DAY = 288  # 5-minute steps


def series(values, start=1_700_000_100, step=STEP):
    values = np.asarray(values, dtype=float)
    return Series(start + step * np.arange(values.size), values)


def coverage(name, y, first_origin, every, horizon=6, **params):
    """Share of the values after each rolling origin that fall inside the nominal 80% interval."""
    hits = total = 0
    for origin in range(first_origin, y.size - horizon, every):
        lower, upper = create(name, **params).fit(series(y[:origin])).predict(horizon).interval(0.8)
        actual = y[origin : origin + horizon]
        hits += int(((actual >= lower) & (actual <= upper)).sum())
        total += actual.size
    return hits / total


def test_models_are_registered():
    assert {"naive", "seasonal_naive"} <= set(MODELS)


def test_naive_repeats_the_last_value():
    f = create("naive").fit(series([3.0, 9.0, 4.0, 7.5])).predict(5)
    assert np.array_equal(f.point, np.full(5, 7.5))
    assert f.start == 1_700_000_100 + 4 * STEP and f.step == STEP and f.model == "naive"


def test_seasonal_naive_forecasts_a_pure_daily_pattern_exactly():
    rng = np.random.default_rng(0)
    day = rng.uniform(10, 100, DAY)  # any shape at all, repeated every day
    y = np.tile(day, 4)[: 3 * DAY + 100]
    f = create("seasonal_naive").fit(series(y)).predict(DAY + 50)  # more than a season ahead
    expected = np.tile(day, 6)[3 * DAY + 100 : 4 * DAY + 150]
    assert np.allclose(f.point, expected)
    lower, upper = f.interval(0.8)  # it never erred in the history: a zero-width interval
    assert np.allclose(lower, expected) and np.allclose(upper, expected)


def test_seasonal_naive_uses_the_configured_season():
    hour = np.arange(12.0) ** 2  # a one-hour cycle at 5-minute steps
    y = np.tile(hour, 30)[:-5]
    f = create("seasonal_naive", season_seconds=3600).fit(series(y)).predict(12)
    assert np.allclose(f.point, np.roll(hour, 5))
    assert create("naive").fit(series(y)).predict(1).point[0] != f.point[0]


def test_seasonal_naive_with_less_than_a_season_falls_back_to_naive():
    model = create("seasonal_naive").fit(series(np.arange(100.0)))  # 100 < 288 steps
    assert model.state["seasonal"] is False
    assert np.allclose(model.predict(10).point, 99.0)
    single = create("seasonal_naive", step=60).fit(series([5.0]))
    f = single.predict(2)
    assert f.step == 60 and np.allclose(f.point, 5.0)


def test_short_history_uses_gaussian_bounds():
    f = create("naive").fit(series([10.0, 12.0, 11.0, 13.0])).predict(3)
    lower, upper = f.interval(0.8)
    assert np.all(lower < f.point) and np.all(upper > f.point)
    assert np.all(np.diff(upper - lower) > 0)  # a random walk widens


@pytest.mark.parametrize("name", ["naive", "seasonal_naive"])
def test_interval_is_calibrated_out_of_sample(name):
    """On a noisy daily series the nominal 80% interval covers about 80% of what follows."""
    rng = np.random.default_rng(11)
    n = 8 * DAY
    noise = np.zeros(n)
    shocks = rng.normal(0, 4, n)
    for i in range(1, n):  # AR(1) noise: realistic persistence, not white noise
        noise[i] = 0.7 * noise[i - 1] + shocks[i]
    y = 200 + 60 * np.sin(2 * np.pi * np.arange(n) / DAY) + noise
    assert 0.72 <= coverage(name, y, first_origin=3 * DAY, every=7, calibration_horizon=6) <= 0.88


def test_quantiles_are_ordered_and_widen_with_the_horizon():
    rng = np.random.default_rng(1)
    f = create("naive").fit(series(50 + rng.normal(0, 1, 1500).cumsum())).predict(48)
    assert np.all(np.diff(f.quantiles, axis=0) >= 0)
    width = f.quantile(0.9) - f.quantile(0.1)
    assert width[-1] > 2 * width[0]


def test_missing_values_and_bad_params_are_refused():
    with pytest.raises(ValueError, match="align"):
        create("seasonal_naive").fit(series([1.0, np.nan, 3.0]))
    with pytest.raises(ValueError):
        create("seasonal_naive", season_seconds=0)
    with pytest.raises(ValueError):
        create("naive", calibration_window=0)


def test_pipeline_passes_the_step():
    ts = 1_700_000_000 + 60 * np.arange(3000)
    f = fit_and_forecast("seasonal_naive", {}, Series(ts, np.sin(np.arange(3000) / 50)), 60, 4).forecast
    assert f.step == 60 and f.horizon == 4 and f.model == "seasonal_naive"


def test_error_quantiles_are_empirical_with_enough_origins_and_gaussian_without():
    y = np.arange(100.0)
    # rule "y[o] + k" is exact on a line; "y[o]" is off by exactly k
    exact = error_quantiles(y, lambda o, k: y[o] + k, np.arange(100), 3, 50, 1.0)
    assert np.allclose(exact, 0.0)
    lagged = error_quantiles(y, lambda o, k: y[o], np.arange(100), 3, 50, 1.0)
    assert np.allclose(lagged, [[1.0, 2.0, 3.0]] * len(QUANTILE_LEVELS))
    few = error_quantiles(y[:MIN_ERRORS], lambda o, k: y[o], np.arange(MIN_ERRORS), 2, 50, 2.0)
    median_row = QUANTILE_LEVELS.index(0.5)
    assert np.allclose(few[median_row], 0.0) and few[-1, 1] == pytest.approx(few[-1, 0] * np.sqrt(2))


@pytest.mark.parametrize("n, first, horizon, window", [
    (2016, 23, 36, 2016),  # a week: fewer origins than the window, so each k has its own count
    (4000, 0, 36, 2016),   # more: every k has the whole window
    (60, 10, 40, 25),      # the far steps below MIN_ERRORS: Gaussian there, empirical before
    (300, 0, 7, 1),        # a window below MIN_ERRORS: Gaussian throughout
])
def test_error_quantiles_are_np_quantile_of_each_steps_errors_to_the_bit(n, first, horizon, window):
    rng = np.random.default_rng(n)
    y = np.round(rng.normal(50, 10, n), 1)  # ties, as integer request counts have
    y[n // 2] = np.nan if n == 60 else y[n // 2]  # a NaN error gives NaN, as np.quantile does

    def rule(o, k):
        return 0.9 * y[o] + 0.1 * k

    got = error_quantiles(y, rule, np.arange(first, n), horizon, window, 1.5)
    origins = np.arange(first, n)[-window - horizon:]
    for k in range(1, horizon + 1):
        usable = origins[origins + k < n][-window:]
        if usable.size >= MIN_ERRORS:
            expected = np.quantile(y[usable + k] - rule(usable, k), QUANTILE_LEVELS)
        else:
            expected = [NormalDist().inv_cdf(q) * 1.5 * np.sqrt(k) for q in QUANTILE_LEVELS]
        np.testing.assert_array_equal(got[:, k - 1], expected, err_msg=f"k = {k}")


def test_offsets_widen_beyond_the_calibrated_steps_and_interpolate_levels():
    errq = np.outer(np.linspace(-1, 1, len(QUANTILE_LEVELS)), [1.0, 2.0])
    wide = offsets(errq, 8, QUANTILE_LEVELS)
    assert wide.shape == (len(QUANTILE_LEVELS), 8)
    assert wide[-1, 7] == pytest.approx(2.0 * np.sqrt(8 / 2))
    assert offsets(errq, 2, (0.5,))[0] == pytest.approx([0.0, 0.0])
