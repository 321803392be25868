"""statsforecast's AutoETS, MSTL and AutoTheta as Helios forecasters (engine.models.statsforecast_models)."""

import json

import numpy as np
import pytest

from helios.engine.errors import InsufficientData
from helios.engine.models import MODELS, create, load
from helios.engine.models.statsforecast_models import ETSModel, MSTLModel, SESModel, ThetaModel, _sf
from helios.engine.types import Series

STEP = 300
DAY = 288  # 5-minute steps
START = 1_700_006_400
NEW = ("ets", "ses", "mstl", "theta")


def series(values, start=START, step=STEP):
    values = np.asarray(values, dtype=float)
    return Series(start + step * np.arange(values.size), values)


def daily(days: float, seed: int = 3, noise: float = 8.0) -> np.ndarray:
    """A daily sine around a level, plus white noise."""
    t = np.arange(int(days * DAY))
    return 200 + 60 * np.sin(2 * np.pi * t / DAY) + np.random.default_rng(seed).normal(0, noise, t.size)


def noisy_level(n: int, seed: int = 4) -> np.ndarray:
    """A slowly wandering level hidden under much larger noise: smoothing beats the last value."""
    rng = np.random.default_rng(seed)
    return 100 + np.cumsum(rng.normal(0, 0.3, n)) + rng.normal(0, 10, n)


def rolling(model, y: np.ndarray, fit_end: int, horizon: int, every: int):
    """Fit once on y[:fit_end], then move along the rest with update(); (forecast, actual) per origin."""
    model.fit(series(y[:fit_end]))
    out = []
    for origin in range(fit_end, y.size - horizon + 1, every):
        if origin > fit_end:
            model.update(series(y[:origin]))
        out.append((model.predict(horizon), y[origin : origin + horizon]))
    return out


def mae(runs) -> float:
    return float(np.mean([np.abs(f.point - a).mean() for f, a in runs]))


def coverage(runs) -> float:
    inside = [(a >= f.interval(0.8)[0]) & (a <= f.interval(0.8)[1]) for f, a in runs]
    return float(np.concatenate(inside).mean())


@pytest.fixture(scope="module")
def seasonal():
    """Rolling forecasts over the 8th day of a daily sine, each model fitted once on the 7 days before
    (the scaler's training window; with 3 days AutoTheta's seasonality test does not yet see the sine)."""
    y = daily(8)
    return {name: rolling(create(name), y, 7 * DAY, 12, 6) for name in ("mstl", "theta", "naive")}


@pytest.fixture(scope="module")
def fitted():
    """Each model fitted on 3 days of the daily sine."""
    y = daily(3)
    return {name: create(name).fit(series(y)) for name in NEW}, y


def test_registered():
    assert (MODELS["ets"], MODELS["ses"], MODELS["mstl"], MODELS["theta"]) == (ETSModel, SESModel, MSTLModel,
                                                                                  ThetaModel)


def test_seasonal_models_beat_naive_out_of_sample(seasonal):
    naive = mae(seasonal["naive"])
    assert mae(seasonal["mstl"]) < 0.8 * naive
    assert mae(seasonal["theta"]) < 0.8 * naive


def test_ets_beats_naive_on_a_noisy_level():
    y = noisy_level(3 * DAY)
    for name in ("ets", "ses"):
        assert mae(rolling(create(name), y, 2 * DAY, 6, 6)) < 0.85 * mae(rolling(create("naive"), y, 2 * DAY, 6, 6))


def test_interval_coverage_is_roughly_nominal(seasonal):
    # Measured on a holdout day; in sample, where the decomposition has seen the targets, they covered 0.72.
    for name in ("mstl", "theta"):
        assert 0.72 <= coverage(seasonal[name]) <= 0.9, name
    y = noisy_level(3 * DAY, seed=9)
    assert 0.7 <= coverage(rolling(create("ets"), y, 2 * DAY, 6, 3)) <= 0.9


def test_points_match_statsforecast(fitted):
    """Helios replays the fitted recursions itself: the forecasts must be the library's own."""
    models, y = fitted
    sf = _sf()
    reference = {
        "ets": sf.AutoETS(model="AZN").fit(y),
        "ses": sf.AutoETS(model="ANN").fit(y),
        "mstl": sf.MSTL(season_length=[DAY], trend_forecaster=sf.AutoETS(model="AZN")).fit(y),
        "theta": sf.AutoTheta(season_length=DAY, model="DSTM").fit(y),
    }
    for name, lib in reference.items():
        np.testing.assert_allclose(models[name].predict(48).point, lib.predict(48)["mean"], rtol=1e-9, err_msg=name)


def test_ets_update_follows_the_library_recursion():
    """update() with new samples gives what statsforecast's forward() gives with the same parameters."""
    y = noisy_level(2 * DAY)
    model = create("ets").fit(series(y[:-12]))
    lib = _sf().AutoETS(model="AZN").fit(y[:-12])
    model.update(series(y))
    np.testing.assert_allclose(model.predict(12).point, lib.forward(y, h=12)["mean"], rtol=1e-9)


def test_quantiles_are_ordered_around_the_point(fitted):
    models, _ = fitted
    for name, model in models.items():
        f = model.predict(36)
        assert np.all(np.diff(f.quantiles, axis=0) >= 0), name
        assert np.all(f.quantile(0.1) < f.quantile(0.5)) and np.all(f.quantile(0.5) < f.quantile(0.9)), name
        assert np.all((f.point > f.quantile(0.2)) & (f.point < f.quantile(0.8))), name
        assert f.quantile(0.9)[-1] - f.quantile(0.1)[-1] > 0.5 * (f.quantile(0.9)[0] - f.quantile(0.1)[0]), name


def test_json_round_trip_predicts_the_same(fitted):
    models, y = fitted
    for name, model in models.items():
        data = model.to_bytes()
        assert json.loads(data)["model"] == name  # plain JSON, no pickle
        again = load(data)
        f, g = model.predict(60), again.predict(60)
        assert (f.start, f.step) == (g.start, g.step)
        np.testing.assert_array_equal(f.quantiles, g.quantiles)
        np.testing.assert_array_equal(f.point, g.point)


def test_update_moves_the_forecast_start(fitted):
    models, y = fitted
    more = np.concatenate([y, daily(3.2)[3 * DAY :]])  # the sine goes on for 0.2 days
    for name, fitted_model in models.items():
        model = load(fitted_model.to_bytes())
        before = model.predict(6)
        model.update(series(more))
        after = model.predict(6)
        assert after.start == START + STEP * more.size, name
        assert after.start == before.start + STEP * (more.size - y.size), name
        assert not np.allclose(after.point, before.point), name
        again = load(model.to_bytes())  # an updated state survives the round trip too
        np.testing.assert_array_equal(again.predict(6).point, after.point)


def test_update_with_nothing_new_changes_nothing(fitted):
    models, y = fitted
    for name, fitted_model in models.items():
        model = load(fitted_model.to_bytes())
        before = model.predict(6).point
        model.update(series(y[: -DAY]))
        np.testing.assert_array_equal(model.predict(6).point, before, err_msg=name)


@pytest.mark.parametrize("name", NEW)
def test_insufficient_history(name):
    model = create(name)
    with pytest.raises(InsufficientData):
        model.fit(series(daily(3)[: model.min_history - 1]))


def test_seasonal_models_need_two_days():
    assert MSTLModel.min_history == ThetaModel.min_history == 2 * DAY
    assert create("mstl", step=3600).min_history == 48  # two days of hourly steps


def test_weekly_season_from_two_weeks():
    """Hourly steps keep the decomposition cheap: 24-step days, 168-step weeks."""
    t = np.arange(14 * 24)
    y = 50 + 10 * np.sin(2 * np.pi * t / 24) + 5 * (t % 168 >= 120) + np.random.default_rng(1).normal(0, 1, t.size)
    assert create("mstl", step=3600).fit(series(y, step=3600)).describe()["seasons"] == [24, 168]
    assert create("mstl", step=3600).fit(series(y[:-1], step=3600)).describe()["seasons"] == [24]
    assert create("mstl", step=3600, weekly=False).fit(series(y, step=3600)).describe()["seasons"] == [24]


def test_missing_values_in_history_are_refused():
    y = daily(3)
    y[100] = np.nan
    with pytest.raises(ValueError, match="align"):
        create("ets").fit(series(y))


def test_bad_parameters():
    with pytest.raises(ValueError):
        create("ets", model="MAN")
    with pytest.raises(ValueError):
        create("theta", model="XYZ")
