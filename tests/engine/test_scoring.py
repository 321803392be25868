"""Scoring a workload's newest sample in the worker: fit with the model, reuse the saved detector between."""

import numpy as np
import pytest

from helios.engine.anomaly import Severity
from helios.engine.errors import InsufficientData
from helios.engine.pipeline import detect_all, score_latest
from helios.engine.types import Series

STEP = 300


def daily(n: int = 2016, spike: float = 0.0) -> Series:
    rng = np.random.default_rng(3)
    values = 100 + 50 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 2, n)
    values[-1] += spike
    return Series(1_700_000_100 // STEP * STEP + STEP * np.arange(n), values)


def test_a_spike_on_the_newest_sample_is_critical_and_the_saved_detector_agrees():
    fitted = score_latest("xgboost", None, daily(spike=80), STEP)
    assert fitted.severity is Severity.CRITICAL and fitted.score > 4
    assert fitted.artifact is not None and len(fitted.artifact) < 1_000_000  # compressed: kept per workload
    reused = score_latest("xgboost", fitted.artifact, daily(spike=80), STEP)
    assert reused.artifact is fitted.artifact and reused.severity is Severity.CRITICAL
    calm = score_latest("xgboost", fitted.artifact, daily(), STEP)
    assert calm.severity is Severity.NONE and abs(calm.score) < 2.5


def test_reference_detectors_refit_each_time_and_detect_all_scores_every_step():
    scored = score_latest("zscore", None, daily(spike=300), STEP)  # its sigma is the whole cycle
    assert scored.artifact is None and scored.severity is Severity.CRITICAL
    aligned, scores = detect_all("threshold", daily(spike=500), STEP)
    assert len(scores.scores) == len(aligned) == 2016
    assert scores.flagged[-1] and scores.flagged.sum() < 30


@pytest.mark.parametrize("detector", ["zscore", "threshold"])
@pytest.mark.parametrize("spike", [0.0, 40.0, 300.0])
def test_a_detector_refitted_at_each_sample_scores_the_newest_as_scoring_the_whole_history_does(detector, spike):
    history = daily(spike=spike)
    values = history.values.copy()
    values[-400:-380] = np.nan  # a gap the alignment fills, within the day before the newest sample
    history = Series(history.timestamps, values)
    scored = score_latest(detector, None, history, STEP)
    _, whole = detect_all(detector, history, STEP)  # fitted on the history, every step scored
    # The same to rounding: zscore's running sums start from another sample.
    assert scored.score == pytest.approx(whole.scores[-1], rel=1e-12) and scored.severity == whole.severity[-1]


def test_too_short_a_history_is_a_typed_error():
    with pytest.raises(InsufficientData):
        score_latest("xgboost", None, daily(n=50), STEP)


def test_detect_all_with_the_saved_detector_scores_the_history_as_fitting_it_does():
    history = daily(spike=80)
    saved = score_latest("xgboost", None, history, STEP).artifact
    _, refitted = detect_all("xgboost", history, STEP)
    _, reused = detect_all("xgboost", history, STEP, saved)
    assert np.allclose(refitted.scores, reused.scores, equal_nan=True)  # cross-fitted scores, no refit
