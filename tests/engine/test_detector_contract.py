"""The contract every registered anomaly detector meets (anomaly.base.AnomalyDetector), checked on each."""

import json
import zlib

import numpy as np
import pytest

from helios.engine.anomaly import NAMES, detector_class
from helios.engine.anomaly.likelihood import Likelihood
from helios.engine.features import FEATURE_NAMES, LOOKBACK
from helios.engine.pipeline import detect_all, score_latest
from helios.engine.types import Series

STEP = 300
DAY = 288  # 5-minute steps

# Per detector: parameters other than the defaults (a round trip that fell back on them would show),
# and how many steps of a series with nothing before it score NaN; a new detector needs its entry here.
CASES = {
    "xgboost": ({"n_estimators": 20, "max_depth": 3}, LOOKBACK),  # the lag window
    "zscore": ({"window": 48}, 12),  # min_periods: a quarter of the window
    "threshold": ({"quantile": 0.95}, 0),
}


def traffic(n: int = 2 * DAY) -> Series:
    rng = np.random.default_rng(6)
    values = 100 + 40 * np.sin(2 * np.pi * np.arange(n) / DAY) + rng.normal(0, 4, n)
    return Series(1_700_006_400 + STEP * np.arange(n), values)


SERIES = traffic()
HISTORY = Series(SERIES.timestamps[:DAY], SERIES.values[:DAY])  # the first day; the second is new data


def build(name: str):
    return detector_class(name)(**CASES[name][0])


@pytest.fixture(scope="module", params=NAMES)
def fitted(request):
    return build(request.param).fit(HISTORY)


@pytest.mark.parametrize("cut", [LOOKBACK + 5, DAY - 1, DAY, DAY + 100])
def test_a_score_never_reads_later_samples(fitted, cut):
    whole = fitted.score(SERIES).scores
    until = Series(SERIES.timestamps[: cut + 1], SERIES.values[: cut + 1])
    np.testing.assert_array_equal(fitted.score(until).scores, whole[: cut + 1])
    rewritten = SERIES.values.copy()
    rewritten[cut + 1 :] += 1000.0
    later = fitted.score(Series(SERIES.timestamps, rewritten)).scores
    np.testing.assert_array_equal(later[: cut + 1], whole[: cut + 1])


@pytest.mark.parametrize("name", NAMES)
def test_the_warm_up_scores_nan_and_every_step_after_it_a_number(name):
    scores = build(name).fit(SERIES).score(SERIES).scores
    warm_up = CASES[name][1]
    assert np.isnan(scores[:warm_up]).all() and np.isfinite(scores[warm_up:]).all()


def test_a_saved_detector_scores_as_the_one_it_was_saved_from(fitted):
    restored = type(fitted).from_bytes(fitted.to_bytes())
    newer = Series(SERIES.timestamps[DAY:], SERIES.values[DAY:])  # continues the history
    for s in (SERIES, newer):
        np.testing.assert_array_equal(restored.score(s).scores, fitted.score(s).scores)
    with pytest.raises(ValueError, match=fitted.name):
        type(fitted).from_bytes(json.dumps({"detector": "reference"}).encode())


def test_the_pipeline_keeps_what_the_detector_asks_and_scores_with_it(fitted):
    kept = score_latest(fitted.name, None, SERIES, STEP, CASES[fitted.name][0]).artifact
    assert (kept is not None) is type(fitted).keep_fitted
    _, scores = detect_all(fitted.name, SERIES, STEP, zlib.compress(fitted.to_bytes()))
    np.testing.assert_array_equal(scores.scores, fitted.score(SERIES).scores)


def test_drivers_name_features_largest_first_or_none_at_all(fitted):
    drivers = fitted.drivers(SERIES, k=3)
    assert len(drivers) <= 3
    assert all(name in FEATURE_NAMES and np.isfinite(value) and np.isfinite(c) for name, value, c in drivers)
    assert [abs(c) for _, _, c in drivers] == sorted((abs(c) for _, _, c in drivers), reverse=True)
    assert bool(drivers) is (fitted.name == "xgboost")  # the references predict from no features


def test_serving_carries_the_likelihood_on_by_one_sample_per_new_step():
    history = Series(SERIES.timestamps[:-1], SERIES.values[:-1])
    first = score_latest("xgboost", None, history, STEP, CASES["xgboost"][0])
    assert first.likelihood_state["at"] == history.end and first.drivers
    later = score_latest("xgboost", first.artifact, SERIES, STEP, None, first.likelihood_state)
    # One step on from the likelihood over the history's own scores: what a fresh run over them leaves.
    scores = detector_class("xgboost").from_bytes(zlib.decompress(first.artifact)).score(history).scores
    expected = Likelihood()
    expected.tail(scores, history.values)
    assert later.likelihood == pytest.approx(expected.update(later.score, later.value))
    assert later.likelihood_state["at"] == SERIES.end
    again = score_latest("xgboost", first.artifact, SERIES, STEP, None, later.likelihood_state)
    assert again.likelihood_state == later.likelihood_state  # a step already counted is not counted twice


def test_a_value_beyond_the_range_is_explained_with_the_range_it_left():
    history = Series(SERIES.timestamps[:-1], SERIES.values[:-1])
    first = score_latest("xgboost", None, history, STEP, CASES["xgboost"][0])
    assert first.beyond_range is None  # an ordinary last sample
    low, high = float(history.values.min()), float(history.values.max())
    jumped = Series(SERIES.timestamps, np.append(history.values, high + 0.5 * (high - low)))
    later = score_latest("xgboost", first.artifact, jumped, STEP, None, first.likelihood_state)
    assert later.beyond_range == pytest.approx((low, high))
    assert later.likelihood >= 1 - 1e-9  # the range channel makes it at least a warning
    again = score_latest("xgboost", first.artifact, jumped, STEP, None, later.likelihood_state)
    assert again.beyond_range == later.beyond_range  # the same sample, the same explanation
