import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios.engine.demand import (
    Provisioning,
    expected_demand,
    lead_window_peak,
    next_window_change,
    provision,
    provisioned_demand,
    sanitize,
)
from helios.engine.types import QUANTILE_LEVELS, Forecast


def ramp_forecast(start=1000, step=300, h=6, spread=10.0):
    point = 100.0 + 10 * np.arange(h)
    offsets = np.array([(q - 0.5) * 2 * spread for q in QUANTILE_LEVELS])[:, None]
    return Forecast("baseline", start, step, point, point + offsets)


def test_takes_the_peak_upper_quantile_within_the_lead_window():
    f = ramp_forecast()  # steps at 1000, 1300, 1600, ...; q=0.9 is point + 8
    # now=950, lead=700 -> steps 1000, 1300, 1600 are inside; the peak is at 1600 (point 120).
    assert expected_demand(f, observed=0, now=950, lead_seconds=700, quantile=0.9) == pytest.approx(128)


def test_a_lead_shorter_than_a_step_uses_the_next_step():
    f = ramp_forecast()
    assert expected_demand(f, 0, now=1001, lead_seconds=60, quantile=0.5) == pytest.approx(110)


def test_never_below_the_observed_value():
    assert expected_demand(ramp_forecast(), observed=500, now=950, lead_seconds=300, quantile=0.9) == 500


def test_a_rise_within_the_hpa_tolerance_is_served_past_it():
    f = ramp_forecast(spread=0)  # the next step's forecast is 100 at every level
    assert expected_demand(f, observed=95, now=950, lead_seconds=300, quantile=0.9) == pytest.approx(104.5)
    assert expected_demand(f, observed=80, now=950, lead_seconds=300, quantile=0.9) == pytest.approx(100)
    assert expected_demand(f, observed=100, now=950, lead_seconds=300, quantile=0.9) == 100  # no rise: observed


def test_a_forecast_that_ended_is_refused():
    with pytest.raises(ValueError, match="before now"):
        expected_demand(ramp_forecast(), 0, now=10_000, lead_seconds=300, quantile=0.9)


def test_quantiles_between_stored_levels_interpolate():
    f = ramp_forecast()
    assert f.quantile(0.85)[0] == pytest.approx((f.quantile(0.8)[0] + f.quantile(0.9)[0]) / 2)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_sanitize_always_gives_a_finite_non_negative_value(x):
    y = sanitize(x)
    assert math.isfinite(y) and y >= 0


@given(
    point=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20),
    observed=st.floats(-1e6, 1e6),
    quantile=st.floats(0.5, 0.99),
)
def test_demand_is_finite_non_negative_and_at_least_observed(point, observed, quantile):
    p = np.asarray(point)
    f = Forecast("baseline", 1000, 300, p, np.repeat(p[None, :], len(QUANTILE_LEVELS), axis=0))
    v = expected_demand(f, observed, now=999, lead_seconds=300, quantile=quantile)
    assert math.isfinite(v) and v >= 0 and v >= observed


@given(now=st.floats(900, 2400), lead=st.floats(1, 1500), offset=st.floats(0, 1))
def test_the_answer_holds_until_the_next_window_change(now, lead, offset):
    """Caching an answer until next_window_change never serves a value that a fresh call would not."""
    f = ramp_forecast()
    change = next_window_change(f, now, lead)
    later = now + offset * (min(change, f.end) - now) * 0.999
    if later >= f.end:
        return
    assert expected_demand(f, 0, later, lead, 0.9) == expected_demand(f, 0, now, lead, 0.9)
    if change < f.end:  # and at the change itself the window really is different
        ts = f.timestamps
        assert ((ts > now) & (ts <= now + lead)).tolist() != ((ts > change) & (ts <= change + lead)).tolist()


@given(observed=st.floats(0, 200), margin=st.sampled_from([0.0, 0.1, 0.5]), quantile=st.sampled_from([0.5, 0.9]),
       basis=st.sampled_from(["forecast", "headroom"]))
def test_provision_explains_exactly_the_value_provisioned_demand_serves(observed, margin, quantile, basis):
    f, plan = ramp_forecast(), Provisioning(basis, quantile, margin)
    served = provision(f, observed, 950, 300, plan)
    assert served.value == provisioned_demand(f, observed, 950, 300, plan)
    if basis == "headroom":
        assert (served.rule, served.peak) == ("observed", None)
    else:
        assert served.peak == lead_window_peak(f, 950, 300, quantile)
        bare = provision(f, observed, 950, 300, Provisioning(basis, quantile))  # the forecast without headroom
        assert bare.rule == ("observed floor" if served.peak <= observed else
                             "tolerance" if observed * 1.1 > served.peak else "forecast")
        raised = observed * (1 + margin)
        assert served.value == pytest.approx(max(bare.value, raised))
        assert served.rule == ("headroom floor" if margin and raised >= bare.value else bare.rule)
