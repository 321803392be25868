import numpy as np
import pytest

from helios.engine import scores
from helios.engine.backtest import backtest, origins_for, run_origins
from helios.engine.models import create
from helios.engine.models.auto import AutoModel
from helios.engine.models.base import Forecaster
from helios.engine.types import Series

STEP = 300


def series(values, start=1_700_000_100):
    values = np.asarray(values, dtype=float)
    return Series(start + STEP * np.arange(values.size), values)


def test_scores_by_hand():
    actual, forecast = np.array([10.0, 0.0, 20.0]), np.array([8.0, 1.0, 20.0])
    assert scores.mae(actual, forecast) == pytest.approx(1.0)
    assert scores.mape(actual, forecast) == pytest.approx(100 * (0.2 + 0.0) / 2)  # the zero actual is skipped
    assert scores.smape(np.array([0.0, 10.0]), np.array([0.0, 30.0])) == pytest.approx(100 * (0 + 1.0) / 2)
    assert scores.naive_scale(np.array([1.0, 3.0, 2.0])) == pytest.approx(1.5)
    assert np.isnan(scores.naive_scale(np.array([5.0, 5.0])))
    # under by 10 at level 0.9 costs 9; over by 10 costs 1
    assert scores.pinball(np.array([20.0, 0.0]), np.array([10.0, 10.0]), 0.9) == pytest.approx((9 + 1) / 2)
    assert scores.coverage(np.array([1.0, 5.0, 9.0]), np.array([0.0, 0, 0]), np.array([5.0, 5, 5])) == 2 / 3


def test_origins_are_spaced_back_from_the_end_and_respect_the_training_minimum():
    assert origins_for(100, horizon=6, count=3, min_train=10) == [82, 88, 94]
    assert origins_for(100, horizon=6, count=3, min_train=10, spacing=20) == [54, 74, 94]
    assert origins_for(20, horizon=6, count=5, min_train=10) == [14]
    assert origins_for(10, horizon=6, count=5, min_train=10) == []


class Spy(Forecaster):
    """Records what it was fitted on; forecasts the training mean."""

    name = "spy"
    seen: list = []

    def _fit(self, history):
        Spy.seen.append(history.timestamps.copy())
        return {"mean": float(history.values.mean()), "end": int(history.timestamps[-1])}

    def _predict(self, horizon, levels):
        from helios.engine.types import Forecast

        point = np.full(horizon, self.state["mean"])
        quantiles = np.repeat(point[None], len(levels), 0)
        return Forecast(self.name, self.state["end"] + STEP, STEP, point, quantiles, levels)


def test_each_origin_sees_only_its_past_and_is_judged_on_what_follows():
    s = series(np.arange(50.0))
    Spy.seen = []
    results = run_origins(s, Spy, horizon=5, origins=[20, 30], train_window=8)
    assert [ts[-1] for ts in Spy.seen] == [s.timestamps[19], s.timestamps[29]]  # never the origin itself
    assert [len(ts) for ts in Spy.seen] == [8, 8]
    assert results[0].actual.tolist() == [20, 21, 22, 23, 24]
    assert results[0].forecast.start == s.timestamps[20]


def test_backtest_scores_a_model_against_the_truth():
    rng = np.random.default_rng(0)
    walk = series(100 + rng.normal(0, 1, 3000).cumsum())
    naive = backtest(walk, "naive", horizon=6, origins=20)
    assert naive.origins == 20 and naive.horizon_steps == 6
    assert 0.3 < naive.mase < 4  # a random walk: naive is about as good as its own one-step error allows
    assert 0.6 <= naive.coverage_80 <= 0.95


def test_backtest_refuses_a_too_short_series():
    with pytest.raises(ValueError, match="too short"):
        backtest(series([1.0, 2.0]), "naive", horizon=6)


def test_auto_picks_naive_for_a_random_walk_and_baseline_for_a_noisy_trend():
    rng = np.random.default_rng(1)
    walk = series(100 + rng.normal(0, 1, 1500).cumsum())
    trend = series(np.arange(1500) * 0.5 + rng.normal(0, 8, 1500))
    picked = {}
    for name, s in (("walk", walk), ("trend", trend)):
        model = AutoModel(candidates=("naive", "baseline"), horizon=6).fit(s)
        losses = model.describe()["losses"]
        point = {k.removeprefix("point:"): v for k, v in losses.items() if k.startswith("point:")}
        upper = {k.removeprefix("q0.9:"): v for k, v in losses.items() if k.startswith("q0.9:")}
        expected = {frozenset({"naive"}), frozenset({"baseline"}), frozenset({"naive", "baseline"})}
        assert {frozenset(k.split("+")) for k in point} == {frozenset(k.split("+")) for k in upper} == expected
        assert model.state["point"] == min(point, key=point.get).split("+")
        assert model.state["quantiles"] == min(upper, key=upper.get).split("+")
        picked[name] = model.state["point"]
    assert picked == {"walk": ["naive"], "trend": ["baseline"]}


def test_auto_chooses_the_point_and_the_quantiles_separately_and_averages_quantile_by_quantile():
    rng = np.random.default_rng(4)
    s = series(100 + 20 * np.sin(np.arange(2000) / 40) + rng.normal(0, 6, 2000))
    auto = AutoModel(candidates=("naive", "baseline"), horizon=6)
    rigged = {"naive": 0.5, "baseline": 0.1, "naive+baseline": 0.4}  # point: baseline
    auto._losses = lambda runs, actuals, loss: rigged if loss(np.zeros(6), (np.zeros(6), np.ones(6))) == 0 \
        else {"naive": 0.5, "baseline": 0.5, "naive+baseline": 0.1}  # quantiles: the average
    auto.fit(s)
    f = auto.predict(6)
    naive, baseline = create("naive").fit(s).predict(6), create("baseline").fit(s).predict(6)
    assert f.model == "baseline (quantiles: naive+baseline)" == auto.describe()["chosen"]
    assert np.allclose(f.point, baseline.point)
    assert np.allclose(f.quantile(0.9), (naive.quantile(0.9) + baseline.quantile(0.9)) / 2)


def test_auto_leaves_out_seasonal_candidates_without_two_days_of_history():
    auto = AutoModel(horizon=6)
    everything = ["naive", "seasonal_naive", "baseline", "prophet", "ets", "ses", "mstl", "theta"]
    assert auto.eligible(n=288 + 2 * 288, step=STEP) == everything
    assert auto.eligible(n=288 + 287, step=STEP) == ["naive", "baseline", "ets", "ses"]
    short = auto.fit(series(np.sin(np.arange(400) / 10)))
    labels = [k.split(":", 1)[1] for k in short.describe()["losses"]]
    assert {m for label in labels for m in label.split("+")} <= {"naive", "baseline", "ets", "ses"}
