"""The contract every registered forecaster meets (models.base.Forecaster), checked on each of them.

Model-specific behaviour (accuracy, calibration, what update does with the new data) stays in the
model's own test file.
"""

import json

import numpy as np
import pytest

from helios.engine.errors import InsufficientData
from helios.engine.models import MODELS, create, load
from helios.engine.types import QUANTILE_LEVELS, Series

STEP = 300
DAY = 288  # 5-minute steps
HORIZON = 48  # beyond the 36 calibrated steps, where the bounds are extrapolated

# Parameters other than the defaults, so that a round trip which fell back on them would show;
# a new model needs its entry here.
PARAMS = {
    "auto": {"candidates": ["naive", "baseline"], "origins": 12},
    "baseline": {"window": 6, "trend_window": 12},
    "naive": {"calibration_window": 500},
    "prophet": {"level_window": 6},
    "seasonal_naive": {"calibration_window": 500, "season_seconds": 7200},
    "ets": {"model": "AAN", "calibration_window": 500},
    "ses": {"calibration_window": 500, "calibration_horizon": 24},
    "mstl": {"weekly": False, "calibration": "in_sample", "calibration_window": 500},
    "theta": {"model": "STM", "holdout_seconds": 43200},
}


def traffic(n: int) -> Series:
    """A daily cycle with noise, on the 5-minute grid."""
    rng = np.random.default_rng(4)
    values = 100 + 40 * np.sin(2 * np.pi * np.arange(n) / DAY) + rng.normal(0, 4, n)
    return Series(1_700_006_400 + STEP * np.arange(n), values)


HISTORY, NEWER = traffic(2 * DAY), traffic(2 * DAY + 12)  # NEWER: an hour more of the same series


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request):
    """One fit per model, shared by the tests that only read it (prophet's fit takes about a second)."""
    return create(request.param, step=STEP, **PARAMS[request.param]).fit(HISTORY)


def copy(model):
    return load(model.to_bytes())


def assert_same(a, b):
    assert (a.start, a.step, a.levels) == (b.start, b.step, b.levels)
    np.testing.assert_array_equal(a.point, b.point)
    np.testing.assert_array_equal(a.quantiles, b.quantiles)


def test_the_forecast_has_the_horizon_asked_for_on_the_step_after_the_history(fitted):
    f = fitted.predict(HORIZON)
    assert f.horizon == HORIZON and f.point.shape == (HORIZON,)
    assert f.quantiles.shape == (len(QUANTILE_LEVELS), HORIZON) and f.levels == QUANTILE_LEVELS
    np.testing.assert_array_equal(f.timestamps, HISTORY.end + STEP * np.arange(1, HORIZON + 1))
    assert np.isfinite(f.point).all() and np.isfinite(f.quantiles).all()
    other = fitted.predict(3, (0.1, 0.5, 0.9))
    assert other.levels == (0.1, 0.5, 0.9) and other.quantiles.shape == (3, 3)


def test_quantiles_are_ordered_at_every_step(fitted):
    f = fitted.predict(HORIZON)
    assert np.all(np.diff(f.quantiles, axis=0) >= 0)
    lower, upper = f.interval(0.8)
    assert np.all(lower <= upper)


def test_update_forecasts_from_after_the_new_data(fitted):
    moved = copy(fitted).update(NEWER)
    f = moved.predict(HORIZON)
    assert f.start == NEWER.end + STEP and f.horizon == HORIZON
    assert_same(copy(moved).predict(HORIZON), f)  # the moved origin is saved too


def test_save_and_load_forecast_the_same(fitted):
    data = fitted.to_bytes()
    for restored in (load(data), type(fitted).from_bytes(data)):
        assert type(restored) is type(fitted) and restored.params == fitted.params
        assert_same(restored.predict(HORIZON), fitted.predict(HORIZON))
        assert restored.describe() == fitted.describe()
    legacy = json.dumps(json.loads(data)).encode()  # as artifacts were written before pydantic's JSON
    assert_same(load(legacy).predict(HORIZON), fitted.predict(HORIZON))
    other = next(cls for name, cls in MODELS.items() if name != fitted.name)
    with pytest.raises(ValueError, match=fitted.name):
        other.from_bytes(data)


def test_describe_is_json(fitted):
    details = fitted.describe()
    assert isinstance(details, dict) and json.loads(json.dumps(details)) == details


@pytest.mark.parametrize("name", sorted(MODELS))
def test_min_history_is_the_least_a_fit_takes(name):
    model = create(name, step=STEP, **PARAMS[name])
    short = Series(HISTORY.timestamps[: model.min_history - 1], HISTORY.values[: model.min_history - 1])
    with pytest.raises(InsufficientData):
        model.fit(short)
    enough = Series(HISTORY.timestamps[: model.min_history], HISTORY.values[: model.min_history])
    assert model.fit(enough).predict(1).start == enough.end + STEP
