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
