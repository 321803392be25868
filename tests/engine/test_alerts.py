import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios.engine.anomaly.alerts import QUIET_STEPS, alerts, excursions


def mask(n, flagged):
    out = np.zeros(n, bool)
    out[list(flagged)] = True
    return out


def test_a_burst_of_flags_is_one_alert_at_its_first_step():
    flags = mask(100, [10, 11, 12, 15, 20])  # gaps of at most 4 unflagged steps
    assert excursions(flags) == [(10, 20)]
    assert np.flatnonzero(alerts(flags)).tolist() == [10]


def test_quiet_steps_unflagged_steps_end_an_excursion():
    q = QUIET_STEPS
    flags = mask(200, [10, 10 + q, 10 + q + q + 1])  # q - 1, then q unflagged steps in between
    assert excursions(flags) == [(10, 10 + q), (10 + 2 * q + 1, 10 + 2 * q + 1)]
    assert np.flatnonzero(alerts(flags)).tolist() == [10, 10 + 2 * q + 1]


def test_quiet_steps_0_makes_every_flag_an_alert():
    flags = mask(30, [3, 4, 5, 20])
    np.testing.assert_array_equal(alerts(flags, quiet_steps=0), flags)


def test_no_flags_no_alerts_and_a_negative_quiet_period_is_refused():
    assert excursions(np.zeros(10, bool)) == [] and not alerts(np.zeros(10, bool)).any()
    with pytest.raises(ValueError, match="quiet_steps"):
        alerts(mask(5, [1]), quiet_steps=-1)


@given(st.lists(st.booleans(), min_size=1, max_size=200), st.integers(0, 30), st.integers(0, 199))
def test_alerts_are_causal_flagged_and_one_per_excursion(bits, quiet, cut):
    flags = np.array(bits)
    raised = alerts(flags, quiet)
    assert not (raised & ~flags).any()  # only flagged steps alert
    assert raised.sum() == len(excursions(flags, quiet))
    # Rewriting the flags after `cut` never changes an alert at or before it.
    changed = flags.copy()
    changed[cut + 1 :] = ~changed[cut + 1 :]
    np.testing.assert_array_equal(alerts(changed, quiet)[: cut + 1], raised[: cut + 1])
    # Every flag lies in exactly one excursion, and excursions are ordered and disjoint.
    spans = excursions(flags, quiet)
    covered = np.zeros(flags.size, int)
    for a, b in spans:
        covered[a : b + 1] += 1
    assert (covered[flags] == 1).all()
    assert all(b1 < a2 for (_, b1), (a2, _) in zip(spans[:-1], spans[1:], strict=True))
