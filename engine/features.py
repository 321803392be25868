"""The seed design's 108 features: 7 raw metrics on one time grid -> one row of model inputs per step.

Rows and timing
---------------
`build_features` returns a DataFrame indexed by int64 Unix seconds (index name `timestamp`, the same
clock as `Series`), one row per `step` from the earliest to the latest aligned sample of any input.

Row t holds the inputs for predicting the value at t: every metric-derived column reads samples
strictly before t (lag_1 is the sample at t - step, rolling windows end at t - step), and the
calendar columns describe t itself, which is known in advance. So a regressor reads row t to predict
the value at t, and the most recent sample is always a feature (lag_1) -- with windows ending at t the
freshest value would appear only inside averages. Nothing in row t depends on a sample at or after t
(tested), except that `align` fills an interior gap by interpolating towards the sample after it.

Inputs (METRICS, in this order): cpu_utilization, memory_utilization, memory_bytes, restart_count (the
container's), db_cpu_utilization, db_memory_utilization, db_connections (its database's).

Columns, in order (FEATURE_NAMES, 108)
--------------------------------------
Calendar, UTC (8; columns 0-7):
    hour                    0..23
    day_of_week             0..6, Monday = 0
    is_weekend              1.0 on Saturday and Sunday, else 0.0
    hour_sin, hour_cos      position in the day (minute resolution) on the unit circle: 23:55 is next to 00:00
    day_sin, day_cos        position in the week (minute resolution) on the unit circle: Sunday is next to Monday
    minutes_since_midnight  0..1439

Per metric, named `<metric>__<feature>` (14 x 7 = 98; columns 8-105): the metrics in METRICS order, each
one's 14 in this order, so cpu_utilization__lag_1 is column 8, memory_utilization__lag_1 column 22, and
db_connections__pct_change_3 column 105:
    lag_1, lag_3, lag_6, lag_12                      the sample k steps before t
    rolling_mean_3, rolling_mean_6, rolling_mean_12  over the last w samples before t (t - w .. t - 1)
    rolling_std_3, rolling_std_6, rolling_std_12     likewise; population std (ddof 0), so 0 for a flat window
    rolling_min_6, rolling_max_6                     likewise
    pct_change_1, pct_change_3                       lag_1 / lag_(1+k) - 1, the change over the last k steps;
                                                     NaN when the older sample is 0

Cross-metric (2; columns 106-107), from the latest samples (lag_1) of two metrics:
    cpu_memory_ratio   cpu_utilization / memory_utilization
    app_db_cpu_ratio   cpu_utilization / db_cpu_utilization: which tier the load is binding on. Well above
                       its usual value the application is the bottleneck, and replicas help; falling while
                       db CPU climbs, the load is database-bound, and more replicas only add connections
                       to a saturated database. Both are utilisations, so the ratio has no unit.

Missing data is NaN, never zero (XGBoost treats NaN as missing and learns where it goes): a metric
not given has NaN columns; a given one is NaN wherever its lag or window reaches outside its own span
(its warm-up: the first LOOKBACK rows; and past its last sample when the others go on), and a ratio
is NaN where its denominator is 0. Every value is finite or NaN.

One-signal workloads
--------------------
A workload scaled on a signal that is not one of the 7 (requests/s, queue depth) passes it as
`primary=`: it fills the PRIMARY_METRIC slot, so its lags and windows land in the `cpu_utilization__*`
columns (the slot of the workload's own load), and the other metrics may still be given as context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from .align import align
from .types import Series

METRICS: tuple[str, ...] = (
    "cpu_utilization",  # container
    "memory_utilization",
    "memory_bytes",
    "restart_count",
    "db_cpu_utilization",  # database
    "db_memory_utilization",
    "db_connections",
)
PRIMARY_METRIC = "cpu_utilization"  # the slot of the workload's own load signal

TEMPORAL_FEATURES: tuple[str, ...] = (
    "hour", "day_of_week", "is_weekend", "hour_sin", "hour_cos", "day_sin", "day_cos", "minutes_since_midnight",
)
LAGS: tuple[int, ...] = (1, 3, 6, 12)
ROLLING_WINDOWS: tuple[int, ...] = (3, 6, 12)
MIN_MAX_WINDOW = 6
PCT_CHANGES: tuple[int, ...] = (1, 3)
METRIC_FEATURES: tuple[str, ...] = (
    *(f"lag_{k}" for k in LAGS),
    *(f"rolling_mean_{w}" for w in ROLLING_WINDOWS),
    *(f"rolling_std_{w}" for w in ROLLING_WINDOWS),
    f"rolling_min_{MIN_MAX_WINDOW}", f"rolling_max_{MIN_MAX_WINDOW}",
    *(f"pct_change_{k}" for k in PCT_CHANGES),
)
CROSS_FEATURES: tuple[str, ...] = ("cpu_memory_ratio", "app_db_cpu_ratio")
FEATURE_NAMES: tuple[str, ...] = (
    *TEMPORAL_FEATURES,
    *(f"{metric}__{feature}" for metric in METRICS for feature in METRIC_FEATURES),
    *CROSS_FEATURES,
)
# Samples before t a row needs to be complete: the longest lag and window.
LOOKBACK = max(*LAGS, *ROLLING_WINDOWS, MIN_MAX_WINDOW, *(k + 1 for k in PCT_CHANGES))

_COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}
_DAY = 86_400
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def feature_name(metric: str, feature: str) -> str:
    """The column of one metric's feature, e.g. feature_name("cpu_utilization", "lag_1")."""
    return f"{metric}__{feature}"


def build_features(
    metrics: Mapping[str, Series] | None = None, step: int = 300, *, primary: Series | None = None
) -> pd.DataFrame:
    """The FEATURE_NAMES columns for every step of the union of the inputs' grids (see the module doc).

    `metrics` maps names from METRICS to raw series (any subset; each is aligned to `step` seconds
    with engine.align). `primary` is the workload's own signal when it is not one of the 7; it takes
    the PRIMARY_METRIC slot, which `metrics` must then leave free. Unknown names raise ValueError.
    """
    given = dict(metrics or {})
    unknown = sorted(set(given) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(METRICS)}")
    if primary is not None:
        if PRIMARY_METRIC in given:
            raise ValueError(f"primary= fills the {PRIMARY_METRIC!r} slot; pass one or the other, not both")
        given[PRIMARY_METRIC] = primary
    aligned = {name: align(series, step) for name, series in given.items()}
    grid = _union_grid(aligned.values(), step)
    table = np.full((grid.size, len(FEATURE_NAMES)), np.nan)
    columns = _calendar(grid)
    latest = {name: _shift(_on_grid(series, grid, step), 1) for name, series in aligned.items()}  # before t
    for name, previous in latest.items():
        columns.update({feature_name(name, f): column for f, column in _metric_features(previous).items()})
    nan = np.full(grid.size, np.nan)
    cpu = latest.get("cpu_utilization", nan)
    columns["cpu_memory_ratio"] = _ratio(cpu, latest.get("memory_utilization", nan))
    columns["app_db_cpu_ratio"] = _ratio(cpu, latest.get("db_cpu_utilization", nan))
    for name, column in columns.items():
        table[:, _COLUMN[name]] = column
    table[~np.isfinite(table)] = np.nan  # overflow on extreme inputs (the std of 1e200s) is unknown, not inf
    return pd.DataFrame(table, index=pd.Index(grid, name="timestamp"), columns=list(FEATURE_NAMES))


def _union_grid(aligned: Iterable[Series], step: int) -> np.ndarray:
    """Every step from the earliest to the latest sample: a regular grid, so shifting rows shifts time."""
    present = [s for s in aligned if len(s)]
    if not present:
        return np.empty(0, np.int64)
    first, last = min(s.timestamps[0] for s in present), max(s.timestamps[-1] for s in present)
    return np.arange(first, last + step, step, dtype=np.int64)


def _on_grid(series: Series, grid: np.ndarray, step: int) -> np.ndarray:
    """The aligned series' values at their rows of the grid; NaN outside its span."""
    out = np.full(grid.size, np.nan)
    if len(series):
        out[(series.timestamps - grid[0]) // step] = series.values
    return out


def _calendar(grid: np.ndarray) -> dict[str, np.ndarray]:
    seconds_of_day = grid % _DAY
    minutes = (seconds_of_day // 60).astype(float)
    weekday = (grid // _DAY + _EPOCH_WEEKDAY) % 7
    day_angle = 2 * np.pi * seconds_of_day / _DAY
    week_angle = 2 * np.pi * (weekday + seconds_of_day / _DAY) / 7
    return {
        "hour": (seconds_of_day // 3600).astype(float),
        "day_of_week": weekday.astype(float),
        "is_weekend": (weekday >= 5).astype(float),
        "hour_sin": np.sin(day_angle),
        "hour_cos": np.cos(day_angle),
        "day_sin": np.sin(week_angle),
        "day_cos": np.cos(week_angle),
        "minutes_since_midnight": minutes,
    }


def _metric_features(x: np.ndarray) -> dict[str, np.ndarray]:
    """The 14 features of one metric, where x[t] is already the latest sample known at row t."""
    out = {f"lag_{k}": _shift(x, k - 1) for k in LAGS}
    for w in ROLLING_WINDOWS:
        out[f"rolling_mean_{w}"] = _rolling(x, w, np.mean)
        out[f"rolling_std_{w}"] = _rolling(x, w, np.std)
    out[f"rolling_min_{MIN_MAX_WINDOW}"] = _rolling(x, MIN_MAX_WINDOW, np.min)
    out[f"rolling_max_{MIN_MAX_WINDOW}"] = _rolling(x, MIN_MAX_WINDOW, np.max)
    for k in PCT_CHANGES:
        out[f"pct_change_{k}"] = _ratio(x, _shift(x, k)) - 1
    return out


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """The value k rows earlier, NaN where there is none."""
    out = np.full(x.size, np.nan)
    if k < x.size:
        out[k:] = x[: x.size - k]
    return out


def _rolling(x: np.ndarray, w: int, reduce) -> np.ndarray:
    """reduce() over the trailing w rows (ending at each row); NaN until w rows exist or if one is NaN."""
    out = np.full(x.size, np.nan)
    if x.size >= w:
        with np.errstate(over="ignore", invalid="ignore"):  # extreme values: cleared in build_features
            out[w - 1 :] = reduce(sliding_window_view(x, w), axis=1)
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 or the result is not finite."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = numerator / denominator
    return np.where(np.isfinite(r), r, np.nan)
