import numpy as np
import pytest

from helios.engine.align import align
from helios.engine.errors import InvalidSeries
from helios.engine.types import Series


def test_samples_are_averaged_per_step_and_gaps_interpolated():
    s = Series(np.array([0, 100, 200, 900, 1500]), np.array([1.0, 2.0, 3.0, 7.0, 9.0]))
    a = align(s, 300)
    assert a.timestamps.tolist() == [0, 300, 600, 900, 1200, 1500]
    # step 0 = mean(1,2,3) = 2; steps 300 and 600 are empty: interpolated between 2 and 7
    assert np.allclose(a.values, [2.0, 2 + 5 / 3, 2 + 10 / 3, 7.0, 8.0, 9.0])


def test_missing_values_do_not_count():
    s = Series(np.array([0, 300, 600]), np.array([1.0, np.nan, 3.0]))
    assert np.allclose(align(s, 300).values, [1.0, 2.0, 3.0])


def test_timestamps_snap_to_multiples_of_the_step():
    a = align(Series(np.array([1_000_123, 1_000_400]), np.array([1.0, 2.0])), 300)
    assert all(t % 300 == 0 for t in a.timestamps)


def test_an_all_missing_series_aligns_to_empty():
    assert len(align(Series(np.array([0, 300]), np.array([np.nan, np.nan])), 300)) == 0


def test_a_series_already_on_the_grid_is_its_own_alignment():
    on_grid = Series(np.array([600, 900, 1200]), np.array([1.0, -2.0, 3.0]))
    assert align(on_grid, 300) is on_grid  # nothing to average or fill: no copy at every sample
    # The same span, but not one sample per step (0 and 1 share a step, 300 is empty): aligned.
    uneven = align(Series(np.array([0, 1, 600]), np.array([1.0, 3.0, 4.0])), 300)
    assert uneven.timestamps.tolist() == [0, 300, 600] and uneven.values.tolist() == [2.0, 3.0, 4.0]
    # -0.0 becomes 0.0, as every step's mean makes it.
    signed = align(Series(np.array([0, 300]), np.array([-0.0, 1.0])), 300)
    assert not np.signbit(signed.values[0])

@pytest.mark.parametrize(
    "ts, vs, message",
    [
        ([0, 300, 300], [1, 2, 3], "strictly increasing"),
        ([0, 300], [1, 2, 3], "equal length"),
        ([0, 300], [1, np.inf], "finite"),
    ],
)
def test_series_contract_is_enforced(ts, vs, message):
    with pytest.raises(InvalidSeries, match=message):
        Series(np.array(ts), np.array(vs, dtype=float))


def test_series_is_immutable_and_reports_its_last_present_value():
    s = Series(np.array([0, 300, 600]), np.array([1.0, 2.0, np.nan]))
    assert s.last_value() == 2.0 and s.end == 600
    assert Series(np.array([0, 300]), np.array([1.0, 3.0])).last_value() == 3.0
    assert Series(np.array([0]), np.array([np.nan])).last_value() is None
    assert Series(np.empty(0, np.int64), np.empty(0)).last_value() is None
    with pytest.raises(ValueError):
        s.values[0] = 5
