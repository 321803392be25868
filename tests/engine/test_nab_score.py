"""NAB scores worked out by hand from NAB's definition (see engine/anomaly/nab.py)."""

import math

import numpy as np
import pytest

from helios.engine.anomaly.nab import (
    STANDARD,
    EventCounts,
    NabScore,
    event_counts,
    nab_score,
    probation_steps,
    runs,
    scaled_sigmoid,
)

TS = np.arange(100) * 60  # 100 steps of one minute
WINDOWS = [(20 * 60, 29 * 60), (60 * 60, 69 * 60)]  # steps 20..29 and 60..69: 10 steps each


def flags(*steps):
    f = np.zeros(TS.size, dtype=bool)
    f[list(steps)] = True
    return f


def test_scaled_sigmoid_matches_nabs_reference_points():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.01) == -1.0


def test_flagging_nothing_scores_zero():
    score = nab_score(TS, flags(), WINDOWS)
    assert (score.raw, score.null, score.perfect) == (-2.0, -2.0, 2.0)
    assert score.normalized == 0.0
    counts = event_counts(TS, flags(), WINDOWS)
    assert counts == EventCounts(windows=2, detected=0, false_positives=0)
    assert counts.recall == 0.0 and counts.f1 == 0.0 and math.isnan(counts.precision)


def test_flagging_each_window_start_scores_100():
    score = nab_score(TS, flags(20, 60), WINDOWS)
    assert score.raw == pytest.approx(2.0) and score.normalized == pytest.approx(100.0)
    counts = event_counts(TS, flags(20, 60), WINDOWS)
    assert (counts.precision, counts.recall, counts.f1) == (1.0, 1.0, 1.0)


def test_only_the_first_detection_in_a_window_counts():
    assert nab_score(TS, flags(20, 21, 25, 29, 60), WINDOWS).raw == pytest.approx(2.0)
    assert event_counts(TS, flags(20, 21, 25, 29, 60), WINDOWS).detected == 2


def test_a_late_detection_earns_less_than_an_early_one():
    # Step 25 of window 20..29: position -(29 - 25 + 1) / 10 = -0.5 -> 0.84828 / 0.98661 = 0.85979.
    late = nab_score(TS, flags(25, 60), WINDOWS)
    assert late.raw == pytest.approx(1.0 + 0.85979, abs=1e-5)
    last = nab_score(TS, flags(29, 60), WINDOWS)  # last step: -(1/10) -> 0.24492 / 0.98661
    assert last.raw == pytest.approx(1.0 + 0.24492 / 0.98661, abs=1e-5)
    assert last.normalized < late.normalized < 100.0


def test_one_false_positive_before_any_window_costs_the_full_fp_weight():
    score = nab_score(TS, flags(5, 20, 60), WINDOWS)
    assert score.raw == pytest.approx(2.0 - 0.11)
    assert score.normalized == pytest.approx(100 * (2.0 - 0.11 + 2.0) / 4.0)  # 97.25
    counts = event_counts(TS, flags(5, 20, 60), WINDOWS)
    assert counts == EventCounts(2, 2, 1)
    assert counts.precision == pytest.approx(2 / 3) and counts.f1 == pytest.approx(4 / 5)


def test_a_false_positive_just_after_a_window_costs_little_and_far_after_it_all():
    # Step 30 is 1 step after window 20..29: position 1 / (10 - 1) -> sigma = 2 / (1 + e^(5/9)) - 1 = -0.27085.
    near = nab_score(TS, flags(20, 30, 60), WINDOWS)
    assert near.raw == pytest.approx(2.0 + 0.11 * (2 / (1 + math.exp(5 / 9)) - 1))
    assert near.raw == pytest.approx(2.0 - 0.11 * 0.27085, abs=1e-6)
    # Step 99 is 30 steps after window 60..69: position 30 / 9 > 3 -> the full -0.11.
    assert nab_score(TS, flags(20, 60, 99), WINDOWS).raw == pytest.approx(2.0 - 0.11)


def test_false_positives_count_per_step_for_nab_and_per_run_for_events():
    f = flags(20, 60, 40, 41, 42)  # three consecutive steps, outside every window
    assert event_counts(TS, f, WINDOWS).false_positives == 1
    per_step = sum(0.11 * scaled_sigmoid((i - 29) / 9) for i in (40, 41, 42))
    assert nab_score(TS, f, WINDOWS).raw == pytest.approx(2.0 + per_step)


def test_probation_drops_early_detections_and_windows_inside_it():
    # Probation of 30 steps: window 20..29 lies inside it; the detection at 5 is ignored.
    score = nab_score(TS, flags(5, 20, 60), WINDOWS, probation=30)
    assert (score.raw, score.null, score.perfect) == (pytest.approx(1.0), -1.0, 1.0)
    assert event_counts(TS, flags(5, 20, 60), WINDOWS, probation=30) == EventCounts(1, 1, 0)
    assert probation_steps(4032) == 604 and probation_steps(15902) == 750  # NAB: 15%, at most 750


def test_windows_without_steps_are_ignored_and_no_windows_cannot_be_normalised():
    assert nab_score(TS, flags(20), [(20 * 60, 29 * 60), (10_000, 20_000)]).perfect == 1.0
    empty = nab_score(TS, flags(), [])
    assert (empty.raw, empty.null, empty.perfect) == (0.0, 0.0, 0.0) and math.isnan(empty.normalized)
    only_fp = event_counts(TS, flags(3), [])
    assert only_fp.precision == 0.0 and math.isnan(only_fp.recall) and only_fp.f1 == 0.0


def test_a_corpus_score_sums_before_normalising():
    a, b = NabScore(raw=1.0, null=-1.0, perfect=1.0), NabScore(raw=-3.0, null=-2.0, perfect=2.0)
    assert (a + b).normalized == pytest.approx(100 * (-2.0 + 3.0) / 6.0)
    assert EventCounts(2, 1, 3) + EventCounts(1, 1, 0) == EventCounts(3, 2, 3)


def test_runs_groups_consecutive_steps():
    assert runs(np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=bool)) == [(1, 2), (4, 4), (7, 7)]
    assert runs(np.zeros(3, dtype=bool)) == []
    assert STANDARD.tp == 1.0 and STANDARD.fp == 0.11 and STANDARD.fn == 1.0
