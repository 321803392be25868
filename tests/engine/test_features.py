import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.engine.features import (
    CROSS_FEATURES,
    FEATURE_NAMES,
    LOOKBACK,
    METRIC_FEATURES,
    METRICS,
    PRIMARY_METRIC,
    TEMPORAL_FEATURES,
    build_features,
    feature_name,
)
from helios.engine.types import Series

STEP = 300
START = 1_704_067_200  # 2024-01-01T00:00:00Z, a Monday


def series(values, start=START, step=STEP):
    values = np.asarray(values, dtype=float)
    return Series(start + step * np.arange(values.size), values)


def test_108_named_columns_in_a_stable_order():
    assert len(FEATURE_NAMES) == 108 and len(set(FEATURE_NAMES)) == 108
    assert METRICS == (
        "cpu_utilization", "memory_utilization", "memory_bytes", "restart_count",
        "db_cpu_utilization", "db_memory_utilization", "db_connections",
    )
    assert FEATURE_NAMES[:8] == TEMPORAL_FEATURES == (
        "hour", "day_of_week", "is_weekend", "hour_sin", "hour_cos", "day_sin", "day_cos", "minutes_since_midnight",
    )
    assert len(METRIC_FEATURES) == 14
    assert FEATURE_NAMES[8:22] == tuple(f"cpu_utilization__{f}" for f in METRIC_FEATURES)
    assert FEATURE_NAMES[-14 - 2 : -2] == tuple(f"db_connections__{f}" for f in METRIC_FEATURES)
    assert FEATURE_NAMES[-2:] == CROSS_FEATURES == ("cpu_memory_ratio", "app_db_cpu_ratio")
    frame = build_features({"memory_bytes": series(np.arange(30.0))})
    assert tuple(frame.columns) == FEATURE_NAMES
    assert frame.index.name == "timestamp" and frame.index.dtype == np.int64


def test_row_t_reads_only_the_samples_before_t():
    x = np.array([10.0, 20, 40, 10, 50, 30, 0, 60, 70, 20, 80, 90, 30, 100, 110])
    frame = build_features({"cpu_utilization": series(x)})

    def col(f):
        return frame[feature_name("cpu_utilization", f)].to_numpy()

    t = 13  # row 13: the last sample it may read is x[12]
    assert col("lag_1")[t] == x[12] and col("lag_3")[t] == x[10]
    assert col("lag_6")[t] == x[7] and col("lag_12")[t] == x[1]
    assert col("rolling_mean_3")[t] == pytest.approx(x[10:13].mean())
    assert col("rolling_mean_12")[t] == pytest.approx(x[1:13].mean())
    assert col("rolling_std_6")[t] == pytest.approx(x[7:13].std())  # population std
    assert col("rolling_min_6")[t] == x[7:13].min() and col("rolling_max_6")[t] == x[7:13].max()
    assert col("pct_change_1")[t] == pytest.approx(x[12] / x[11] - 1)
    assert col("pct_change_3")[t] == pytest.approx(x[12] / x[9] - 1)


def test_metric_columns_match_a_pandas_reference():
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 10.0, 500)
    frame = build_features({"db_connections": series(x)})
    before = pd.Series(x).shift(1)  # what row t knows: the samples up to t - 1
    expected = {
        "lag_1": before, "lag_3": before.shift(2), "lag_6": before.shift(5), "lag_12": before.shift(11),
        "pct_change_1": before / before.shift(1) - 1, "pct_change_3": before / before.shift(3) - 1,
        "rolling_min_6": before.rolling(6).min(), "rolling_max_6": before.rolling(6).max(),
    }
    for w in (3, 6, 12):
        expected[f"rolling_mean_{w}"] = before.rolling(w).mean()
        expected[f"rolling_std_{w}"] = before.rolling(w).std(ddof=0)
    assert set(expected) == set(METRIC_FEATURES)
    for name, reference in expected.items():
        got = frame[feature_name("db_connections", name)].to_numpy()
        np.testing.assert_allclose(got, reference.to_numpy(), rtol=1e-9, atol=1e-9, err_msg=name)


def test_the_first_complete_row_comes_after_the_lookback():
    frame = build_features(primary=series(np.arange(1.0, 41.0)))
    primary = frame[[feature_name(PRIMARY_METRIC, f) for f in METRIC_FEATURES]]
    complete = primary.notna().all(axis=1).to_numpy()
    assert LOOKBACK == 12
    assert not complete[:LOOKBACK].any() and complete[LOOKBACK:].all()


def test_calendar_columns_are_utc_and_agree_with_pandas():
    ts = START + 7 * 60 * np.arange(20 * 24 * 60 // 7)  # every 7 minutes for 20 days, on a 1-minute grid
    frame = build_features({"cpu_utilization": Series(ts, np.ones(ts.size))}, step=60)
    when = pd.to_datetime(frame.index.to_numpy(), unit="s", utc=True)
    np.testing.assert_array_equal(frame["hour"], when.hour)
    np.testing.assert_array_equal(frame["day_of_week"], when.day_of_week)
    np.testing.assert_array_equal(frame["is_weekend"], when.day_of_week >= 5)
    np.testing.assert_array_equal(frame["minutes_since_midnight"], when.hour * 60 + when.minute)
    assert np.allclose(frame["hour_sin"] ** 2 + frame["hour_cos"] ** 2, 1)
    assert np.allclose(frame["day_sin"] ** 2 + frame["day_cos"] ** 2, 1)


def test_cyclic_calendar_columns_wrap_around():
    sat_2355, sun_2355, mon_0000 = START + 5 * 86_400 + 86_100, START + 6 * 86_400 + 86_100, START + 7 * 86_400
    frame = build_features({"cpu_utilization": Series(np.array([sat_2355, sun_2355, mon_0000]), np.ones(3))})
    sat, sun, mon = (frame.loc[t] for t in (sat_2355, sun_2355, mon_0000))
    assert (sat["hour"], sat["day_of_week"], sat["is_weekend"], sat["minutes_since_midnight"]) == (23, 5, 1, 1435)
    assert (mon["day_of_week"], mon["is_weekend"]) == (0, 0)
    # 23:55 on Sunday sits next to 00:00 on Monday on both circles.
    assert np.hypot(sun["hour_sin"] - mon["hour_sin"], sun["hour_cos"] - mon["hour_cos"]) < 0.03
    assert np.hypot(sun["day_sin"] - mon["day_sin"], sun["day_cos"] - mon["day_cos"]) < 0.01


def test_a_metric_not_given_is_nan_never_zero():
    frame = build_features({"cpu_utilization": series(np.full(50, 5.0))})
    for metric in METRICS[1:]:
        assert frame[[feature_name(metric, f) for f in METRIC_FEATURES]].isna().all().all(), metric
    assert frame[list(CROSS_FEATURES)].isna().all().all()
    assert frame[feature_name("cpu_utilization", "lag_1")].iloc[LOOKBACK:].eq(5.0).all()


def test_a_signal_outside_the_seven_takes_the_primary_slot():
    requests = series(np.arange(100.0, 140.0))
    via_primary = build_features(primary=requests)
    via_name = build_features({PRIMARY_METRIC: requests})
    pd.testing.assert_frame_equal(via_primary, via_name)
    assert via_primary[feature_name(PRIMARY_METRIC, "lag_1")].iloc[1] == 100.0
    # The other metrics can still come along as context.
    context = build_features({"db_connections": series(np.full(40, 7.0))}, primary=requests)
    assert context[feature_name("db_connections", "lag_1")].iloc[1] == 7.0


def test_primary_and_the_primary_metric_together_are_refused():
    with pytest.raises(ValueError, match="cpu_utilization"):
        build_features({"cpu_utilization": series([1.0])}, primary=series([2.0]))


def test_unknown_metric_names_are_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="'request_rate'") as e:
        build_features({"request_rate": series([1.0]), "cpu_utilization": series([1.0])})
    assert all(m in str(e.value) for m in METRICS)


def test_inputs_are_aligned_and_merged_on_the_union_of_their_grids():
    cpu = Series(np.array([START + 10, START + 310, START + 610]), np.array([1.0, 2.0, 3.0]))  # off the grid
    mem = series([50.0, 60.0, 70.0], start=START + 2 * STEP)
    frame = build_features({"cpu_utilization": cpu, "memory_utilization": mem})
    assert frame.index.tolist() == [START + k * STEP for k in range(5)]
    assert frame[feature_name("cpu_utilization", "lag_1")].tolist()[1:4] == [1.0, 2.0, 3.0]
    assert np.isnan(frame[feature_name("memory_utilization", "lag_1")].iloc[:3]).all()
    assert frame[feature_name("memory_utilization", "lag_1")].iloc[3] == 50.0
    # Both known at row 3: cpu 3.0 at t - 1, memory 50.0 at t - 1.
    assert frame["cpu_memory_ratio"].iloc[3] == pytest.approx(3.0 / 50.0)


def test_cross_features_divide_the_latest_samples():
    frame = build_features({
        "cpu_utilization": series([40.0, 80.0, 0.0]),
        "memory_utilization": series([20.0, 0.0, 10.0]),
        "db_cpu_utilization": series([10.0, 20.0, 30.0]),
    })
    assert frame["cpu_memory_ratio"].iloc[1] == 2.0
    assert np.isnan(frame["cpu_memory_ratio"].iloc[2])  # memory 0: NaN, not inf
    assert frame["app_db_cpu_ratio"].tolist()[1:] == [4.0, 4.0]


def test_a_zero_base_gives_nan_percent_changes_never_inf():
    frame = build_features(primary=series([0.0, 0.0, 5.0, 0.0, 3.0, 6.0]))
    pct1 = frame[feature_name(PRIMARY_METRIC, "pct_change_1")].to_numpy()
    # row t: x[t-1] / x[t-2] - 1
    assert np.isnan(pct1[:4]).all() and pct1[4] == -1.0 and np.isnan(pct1[5])


def test_no_input_gives_an_empty_frame_with_every_column():
    frame = build_features({})
    assert frame.shape == (0, 108) and tuple(frame.columns) == FEATURE_NAMES
    empty = build_features({"cpu_utilization": Series(np.empty(0, np.int64), np.empty(0))})
    assert empty.shape == (0, 108)


def test_a_step_of_zero_is_refused():
    with pytest.raises(ValueError, match="step"):
        build_features(primary=series([1.0, 2.0]), step=0)


def test_8000_steps_of_7_metrics_in_well_under_a_second():
    rng = np.random.default_rng(0)
    metrics = {m: series(rng.gamma(2.0, 10.0, 8000)) for m in METRICS}
    build_features(metrics)  # warm up imports and caches
    started = time.perf_counter()
    frame = build_features(metrics)
    elapsed = time.perf_counter() - started
    assert frame.shape == (8000, 108)
    assert elapsed < 0.5, f"{elapsed:.3f} s"


# --- properties -----------------------------------------------------------------------------------------------

metric_inputs = st.dictionaries(
    keys=st.sampled_from(METRICS),
    values=st.tuples(
        st.integers(0, 20),  # first step of this metric on the common grid
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40),
    ),
    min_size=1,
    max_size=4,
)


def as_series(inputs) -> dict[str, Series]:
    return {name: series(values, start=START + offset * STEP) for name, (offset, values) in inputs.items()}


@settings(max_examples=150, deadline=None)
@given(inputs=metric_inputs, cut=st.integers(0, 60), data=st.data())
def test_no_row_reads_its_own_time_or_later(inputs, cut, data):
    """Rewrite every sample at or after `t` (any values): rows up to and including t do not change."""
    t = START + cut * STEP
    changed = {}
    for name, (offset, values) in inputs.items():
        ts = START + STEP * (offset + np.arange(len(values)))
        new = data.draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=len(values), max_size=len(values)))
        changed[name] = (offset, np.where(ts >= t, new, values))
    before, after = build_features(as_series(inputs)), build_features(as_series(changed))
    pd.testing.assert_frame_equal(before.loc[:t], after.loc[:t])


@settings(max_examples=150, deadline=None)
@given(
    inputs=st.dictionaries(
        keys=st.sampled_from(METRICS),
        values=st.tuples(
            st.integers(0, 20),
            st.lists(st.one_of(st.floats(-1e300, 1e300), st.just(0.0), st.just(np.nan)), min_size=1, max_size=40),
        ),
        min_size=1,
    )
)
def test_every_value_is_finite_or_nan(inputs):
    frame = build_features(as_series(inputs))
    values = frame.to_numpy()
    assert not np.isinf(values).any()
    assert tuple(frame.columns) == FEATURE_NAMES
