"""When a refresh fetches the whole history window again rather than its newest steps (runtime/kept.py)."""

import numpy as np

from helios.engine.types import Series
from helios.scaler.runtime.kept import REFETCH_STEPS, KeptHistory

STEP = 300
END = 1_800_000_000
KEPT = KeptHistory(Series(END - STEP * np.arange(10)[::-1], np.arange(10.0)), ("prometheus", "q1"), whole_at=1000.0)


def test_the_newest_steps_are_fetched_from_a_few_steps_before_the_last_sample_kept():
    assert KEPT.tail_start(("prometheus", "q1"), END - 9 * STEP, 1500.0, 3600, STEP) == END - REFETCH_STEPS * STEP
    assert KEPT.tail_start(("prometheus", "q1"), END - STEP, 1500.0, 3600, STEP) == END - STEP  # not before the window


def test_the_whole_window_is_fetched_for_an_edited_query_a_due_refetch_or_a_window_past_the_kept_samples():
    assert KEPT.tail_start(("prometheus", "q2"), END - 9 * STEP, 1500.0, 3600, STEP) is None
    assert KEPT.tail_start(("prometheus", "q1"), END - 9 * STEP, 4600.0, 3600, STEP) is None
    assert KEPT.tail_start(("prometheus", "q1"), END + STEP, 1500.0, 3600, STEP) is None


def test_a_tail_that_brings_nothing_new_keeps_the_same_window_and_a_new_sample_extends_it():
    since = END - REFETCH_STEPS * STEP
    same = KEPT.series.between(since, END)
    assert KEPT.extended(same, since, END - 9 * STEP) is KEPT  # not a copy beside the models' window
    newer = Series(np.append(same.timestamps, END + STEP), np.append(same.values, 42.0))
    extended = KEPT.extended(newer, since, END - 9 * STEP).series
    assert extended.timestamps.tolist() == [*KEPT.series.timestamps.tolist(), END + STEP]
    assert extended.values.tolist() == [*KEPT.series.values.tolist(), 42.0]
    revised = Series(same.timestamps, np.append(same.values[:-1], 99.0))
    assert KEPT.extended(revised, since, END - 9 * STEP).series.values[-1] == 99.0
    slid = KEPT.extended(same, since, END - 8 * STEP).series  # the window's start passed the oldest sample
    assert slid.timestamps[0] == END - 8 * STEP and len(slid) == 9
