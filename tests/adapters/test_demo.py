import numpy as np
import pytest

from helios.adapters.demo import TRACE_START, DemoParams, DemoSource, demo_trace
from helios.adapters.replay import replay
from helios.engine.types import Series

from .contract import ContractTarget, SourceContract, recent_origin


@pytest.fixture(scope="module")
def contract():
    # The demo reads no data of its own choosing: whatever metric is asked for, it serves its trace.
    return ContractTarget(DemoSource(), recent_origin(), lambda metric: DemoParams())


class TestDemoContract(SourceContract):
    # The trace loops against the wall clock and the demo reads no query, so no window lies before
    # its data and no answer is empty: the two NoData cases cannot apply. It is no QueryAdapter
    # (one synthetic series, no standard metrics), so AdapterContract's cases do not either.
    test_an_empty_answer_is_no_data = None
    test_a_window_before_the_data_is_no_data = None


def test_the_trace_is_reproducible():
    assert np.array_equal(demo_trace().values, demo_trace().values)


def test_the_trace_has_a_daily_cycle_quieter_weekends_and_a_surge_every_day():
    v = demo_trace().values.reshape(7, 288)
    by_hour = v[:5].reshape(5, 24, 12).mean(axis=(0, 2))
    assert by_hour.argmax() in range(12, 18) and by_hour.argmin() in range(0, 6)  # UTC afternoon peak, night low
    assert v[5:].mean() < 0.8 * v[:5].mean()
    for day in v:  # a surge: somewhere the load jumps by more than half within 15 minutes
        assert (day[3:] / day[:-3]).max() > 1.5


def test_demo_source_serves_wall_clock_samples_on_the_step_grid():
    now = 1_800_000_123
    s = DemoSource().fetch(DemoParams(), now - 3600, now, 300)
    assert len(s) == 12 and s.end <= now and all(t % 300 == 0 for t in s.timestamps)
    assert np.all(s.values > 0)


def test_replay_keeps_time_of_day_and_weekday_for_a_weekly_trace():
    trace = demo_trace()
    week_later = TRACE_START + 3 * 7 * 86400  # a Monday 00:00 UTC, three weeks on
    s = replay(trace, week_later, week_later + 86400 - 300, 300)
    assert np.allclose(s.values, trace.values[:288])


def test_replay_interpolates_between_samples_and_wraps_around():
    trace = Series(np.array([0, 300]), np.array([0.0, 10.0]))  # period 600
    s = replay(trace, 450, 600, 150)
    assert s.values.tolist() == [5.0, 0.0]  # 450: halfway from 10 back to 0; 600: start again
