"""Rolling error of served forecasts: recorded at the lead step, settled when the actual arrives."""

import math

import numpy as np
import pytest

from helios.engine.demand import interval_confidence
from helios.engine.tracking import ForecastLedger
from helios.engine.types import QUANTILE_LEVELS, Forecast, Series

STEP = 300


def flat(start: int, value: float, spread: float, horizon: int = 6) -> Forecast:
    """A forecast of `value` whose quantiles spread linearly from value - spread to value + spread."""
    offsets = np.interp(QUANTILE_LEVELS, [0.01, 0.99], [-spread, spread])
    point = np.full(horizon, value)
    return Forecast("test", start, STEP, point, point[None, :] + offsets[:, None])


def actuals(pairs: dict[int, float]) -> Series:
    ts = sorted(pairs)
    return Series(np.array(ts), np.array([pairs[t] for t in ts], dtype=float))


def test_mape_and_coverage_of_settled_forecasts():
    ledger = ForecastLedger(interval_level=0.8)
    for made in (0, 300, 600):  # each forecast serves the step one lead (300 s) ahead
        ledger.record(flat(made + STEP, 100.0, 20.0), made, 300)
    assert ledger.error().matured == 0
    ledger.settle(actuals({300: 110.0, 600: 100.0, 900: 50.0}))
    e = ledger.error()
    assert e.matured == 3
    assert e.mape == pytest.approx((0.1 / 1.1 + 0 + 1.0) / 3)
    lower, upper = flat(0, 100.0, 20.0).interval(0.8)
    assert lower[0] < 110 < upper[0]
    assert e.coverage == pytest.approx(2 / 3)  # 50 is outside the interval


def test_only_the_first_forecast_for_a_step_counts():
    ledger = ForecastLedger()
    ledger.record(flat(300, 100.0, 1.0), 0, 300)
    ledger.record(flat(300, 200.0, 1.0), 10, 300)  # a later forecast for the same step: ignored
    ledger.settle(actuals({300: 100.0}))
    assert ledger.error().mape == 0.0


def test_a_step_the_source_never_delivers_is_dropped_and_a_zero_actual_has_no_percentage():
    ledger = ForecastLedger()
    ledger.record(flat(300, 100.0, 1.0), 0, 300)
    ledger.record(flat(600, 5.0, 1.0), 300, 300)
    ledger.settle(actuals({600: 0.0, 300 + 3600: 1.0}))  # 300 never arrived and is an hour behind
    e = ledger.error()
    assert e.matured == 1 and math.isnan(e.mape) and e.coverage == 0.0


def test_a_missing_actual_leaves_its_forecast_pending_and_steps_past_the_data_wait():
    ledger = ForecastLedger()
    ledger.record(flat(300, 100.0, 1.0), 0, 300)
    ledger.record(flat(600, 100.0, 1.0), 300, 300)
    ledger.record(flat(7200, 100.0, 1.0), 6900, 300)  # beyond the newest actual: not yet due
    ledger.settle(actuals({0: 1.0, 300: math.nan, 600: 101.0}))
    assert ledger.error().matured == 1  # 600 settled; 300 (NaN) and 7200 (not reached) wait
    ledger.settle(actuals({300: 100.0, 7200: 100.0}))
    assert ledger.error().matured == 3 and ledger.error().mape == pytest.approx((1 / 101) / 3)


def test_the_window_keeps_the_newest():
    ledger = ForecastLedger(window=2)
    for i, actual in enumerate((1000.0, 100.0, 100.0)):
        ledger.record(flat((i + 1) * STEP, 100.0, 1.0), i * STEP, STEP)
        ledger.settle(actuals({(i + 1) * STEP: actual}))
    assert ledger.error().matured == 2 and ledger.error().mape == 0.0


def test_forecast_from_interval_keeps_the_interval_and_confidence_reads_its_width():
    f = Forecast.from_interval("given", 0, STEP, [100.0, 100.0], [80.0, 90.0], [120.0, 130.0], 0.8)
    lower, upper = f.interval(0.8)
    assert lower == pytest.approx([80.0, 70.0]) and upper == pytest.approx([120.0, 130.0])  # wider side kept
    assert interval_confidence(f, 0, 0.8) == pytest.approx(0.8)
    assert interval_confidence(f, 1, 0.8) == pytest.approx(0.7)
    zero = Forecast.from_interval("given", 0, STEP, [0.0], [-1.0], [1.0], 0.8)
    assert interval_confidence(zero, 0, 0.8) == 0.0
    exact = Forecast.from_interval("given", 0, STEP, [5.0], [5.0], [5.0], 0.8)
    assert interval_confidence(exact, 0, 0.8) == 1.0
