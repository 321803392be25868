"""XGBoost anomaly detector: how far each sample lands from a gradient-boosted one-step-ahead forecast.

A regressor on the 108 features (engine.features; the workload's signal in the primary slot) reads
row t, built from the samples before t, and predicts the sample at t. The score at t is the residual
(actual - predicted) in standard deviations, so a score depends only on data at or before t, and 2.5
(the seed's anomaly_threshold_sigma) / 4 mean WARNING / CRITICAL (anomaly.base).

Out-of-sample, because a 100-tree, depth-6 model reproduces its own training data far too well: its
in-sample residuals would make the scale tiny and flag everything, and a spike it trained on would
score low. So fit() cross-fits: the history is cut into `folds` contiguous blocks, each predicted by
a model trained on the other blocks. Those residuals give the scale, and scoring the history itself
uses them too (each step by the model that never saw its block). Steps outside the history are
predicted by the mean of the fold models, and a series that continues the history borrows its last
samples (and residuals) for its lags (and its volatility), so it is scored from its first step.

The standard deviation of step t is `calibration * max(scale, volatility_t)`:
- scale: the robust spread (1.4826 MAD) of the out-of-sample residuals of the whole history.
- volatility_t: the same spread over the residuals of the day before t (_VOLATILITY_WINDOW steps), so
  a stretch where the forecast is routinely poorer (a busy hour of a bursty signal) needs a larger
  surprise to be flagged. It only widens the global scale: a day's median alone collapses on
  quantised or flat stretches, where every routine step would then look like an anomaly.
- calibration (>= 1): real residuals are heavy-tailed, so a MAD-based sigma puts far more than the
  Gaussian 1.24 % of steps beyond 2.5. The factor makes exactly that share of the history's own
  out-of-sample residuals score 2.5 or more, which is what "2.5 sigma" promises; it never shrinks
  the scale below the robust one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xgboost as xgb

from ..errors import InsufficientData
from ..features import FEATURE_NAMES, LOOKBACK, PRIMARY_METRIC, build_features, feature_name
from ..types import Series
from .base import WARNING_SIGMA, AnomalyScores, Context, pack, unpack
from .likelihood import Likelihood, batch_tail

# The model predicts the departure from the mean of the last 12 samples, not the level itself:
# trees predict constants learnt from the training range, so a level never seen (a shift, a trend)
# would be pinned at the range's edge and every later step flagged. Relative to the recent mean the
# model learns the shape of the cycle, which carries over to a new level.
_BASE = feature_name(PRIMARY_METRIC, "rolling_mean_12")
_MAD_TO_SIGMA = 1.4826  # median absolute deviation of a normal distribution, in its standard deviations
_MEAN_AD_TO_SIGMA = 1.2533  # mean absolute deviation, likewise: the fallback when nearly all residuals tie
_RELATIVE_FLOOR = 1e-9  # smallest scale, relative to the signal's largest value
# The share of a normal distribution within +-WARNING_SIGMA (98.76 %): calibrated so that the same
# share of the history's out-of-sample residuals scores below WARNING_SIGMA.
_CALIBRATION_QUANTILE = 2 * NormalDist().cdf(WARNING_SIGMA) - 1
_VOLATILITY_WINDOW = 288  # steps of past residuals for the local spread: a day at 5 minutes, as the zscore's window
_VOLATILITY_MIN_PERIODS = _VOLATILITY_WINDOW // 4  # fewer present: the global scale alone


class XGBoostDetector:
    """An AnomalyDetector (anomaly.base) for one regular signal: fit on its history, score any stretch of it."""

    name: ClassVar[str] = "xgboost"
    min_history: ClassVar[int] = 120  # samples: 10 h at 5-minute steps, ~36 scored steps per fold
    keep_fitted: ClassVar[bool] = True  # a fit takes seconds; a score with the saved one ~10 ms

    def __init__(
        self, n_estimators: int = 100, max_depth: int = 6, folds: int = 3, n_jobs: int = 1, random_state: int = 0
    ) -> None:
        # n_jobs 1: fits run in the scaler's worker processes, and threads beyond the free cores only contend.
        if n_estimators < 1 or max_depth < 1 or folds < 2 or n_jobs < 1:
            raise ValueError("xgboost detector: n_estimators >= 1, max_depth >= 1, folds >= 2, n_jobs >= 1")
        self.params: dict[str, Any] = {
            "n_estimators": n_estimators, "max_depth": max_depth, "folds": folds, "n_jobs": n_jobs,
            "random_state": random_state,
        }
        self.state: dict[str, Any] | None = None
        self._boosters: list[xgb.Booster] = []

    def fit(self, history: Series, context: Context | None = None) -> XGBoostDetector:
        """`context`: the workload's other metrics (engine.features.METRICS names but the load's own slot,
        e.g. memory_utilization, db_connections), which fill their feature columns. The detector keeps
        the names it was fitted with and reads only those when it scores."""
        if len(history) < self.min_history:
            raise InsufficientData(f"{self.name} needs at least {self.min_history} samples, got {len(history)}")
        step = int(np.diff(history.timestamps).min())
        context = _within(context, history)
        grid, features, base, actual = _design(history, step, context)
        trainable = np.flatnonzero(np.isfinite(base) & np.isfinite(actual))
        if trainable.size < 2 * self.params["folds"]:
            raise InsufficientData(f"{self.name}: only {trainable.size} complete samples after the warm-up")
        blocks = np.array_split(trainable, self.params["folds"])
        target = actual - base
        residuals = np.full(grid.size, np.nan)
        self._boosters = []
        for block in blocks:
            # Rows just after the block read its samples through their lags and windows: leave them out too.
            train = np.setdiff1d(trainable, np.arange(block[0], block[-1] + LOOKBACK + 1))
            if train.size == 0:
                raise InsufficientData(f"{self.name}: too little history for {len(blocks)} folds")
            booster = self._train(features[train], target[train])
            residuals[block] = target[block] - _predict(booster, features[block])
            self._boosters.append(booster)
        floor = _RELATIVE_FLOOR * max(1.0, float(np.nanmax(np.abs(actual))))
        bias, scale = _robust_location_and_scale(residuals[trainable], floor)
        z = (residuals - bias) / np.fmax(scale, _volatility(residuals - bias))  # fmax: NaN volatility = none yet
        calibration = _calibration(z[trainable])
        tail = history.between(int(grid[-1]) - LOOKBACK * step, int(grid[-1]))
        present = ~np.isnan(tail.values)
        recent = np.flatnonzero(np.isfinite(residuals) & (grid > grid[-1] - _VOLATILITY_WINDOW * step))
        self.state = {
            "step": step, "bias": bias, "scale": scale, "calibration": calibration, "context": sorted(context),
            "fold_starts": [int(grid[0])] + [int(grid[b[0]]) for b in blocks[1:]],
            "history_end": int(grid[-1]),
            # The history's last samples and residuals: a series that continues it is scored from its
            # first step, with the history's recent volatility.
            "tail": [tail.timestamps[present].tolist(), tail.values[present].tolist()],
            "residual_tail": [grid[recent].tolist(), residuals[recent].tolist()],
        }
        # The anomaly likelihood's state after the history's own (out-of-sample) scores: a series that
        # continues the history, or the serving path one sample at a time, carries on from it.
        state = Likelihood()
        state.tail(self.score(history, context).scores, history.values)
        self.state["likelihood"] = state.to_dict()
        return self

    def score(self, series: Series, context: Context | None = None) -> AnomalyScores:
        if self.state is None:
            raise RuntimeError(f"{self.name}: score() before fit()")
        s = self.state
        full = self._after_tail(series)
        grid, features, base, actual = _design(full, s["step"], self._fitted_context(context, full))
        predicted = np.full(grid.size, np.nan)
        ready = np.isfinite(base) & np.isfinite(actual)  # NaN scores in the warm-up and at missing samples
        # Which model predicts each step depends on its timestamp only, never on the values.
        fold = np.searchsorted(s["fold_starts"], grid, side="right") - 1
        fold[(grid < s["fold_starts"][0]) | (grid > s["history_end"])] = -1
        for k, booster in enumerate(self._boosters):
            rows = ready & (fold == k)
            if rows.any():
                predicted[rows] = _predict(booster, features[rows])
        new = ready & (fold == -1)
        if new.any():
            predicted[new] = np.mean([_predict(b, features[new]) for b in self._boosters], axis=0)
        residuals = actual - base - predicted - s["bias"]
        volatility = self._volatility(grid, residuals, series.timestamps[0] if len(series) else 0)
        scores = residuals / (s["calibration"] * np.fmax(s["scale"], volatility))
        rows = _rows(series.timestamps, grid, s["step"])
        on_input = np.full(len(series), np.nan)
        on_input[rows >= 0] = scores[rows[rows >= 0]]
        likelihood = 1.0 - self._likelihood_tail(series, on_input)
        return AnomalyScores(self.name, series.timestamps.copy(), on_input, likelihood)

    def drivers(self, series: Series, k: int = 3, context: Context | None = None) -> list[tuple[str, float, float]]:
        """What drove the forecast of the LAST step of `series` (scored as `score` scores it): the k
        features with the largest |contribution|, as (name from engine.features.FEATURE_NAMES, the
        feature's value in that row, its contribution to the prediction in the signal's units).

        Contributions are XGBoost's own (SHAP, Booster.predict(pred_contribs=True)), from the model that
        predicts the step: the mean over the fold models for a step after the history (as the prediction
        is), that fold's model inside it. They explain the predicted departure from the recent mean
        (`cpu_utilization__rolling_mean_12`, the model's base): predicted = that mean + bias + the sum of
        all 108 contributions (`_contributions`). Empty when the last step cannot be scored (warm-up).
        Cost: the features of one row and one contribution pass per fold model."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        explained = self._contributions(series, context)
        if explained is None:
            return []
        values, contributions, _ = explained
        order = np.argsort(-np.abs(contributions), kind="stable")[:k]
        return [(FEATURE_NAMES[i], float(values[i]), float(contributions[i])) for i in order]

    def _contributions(self, series: Series, context: Context | None = None,
                       ) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(feature values, per-feature contributions, bias) of the last step of `series`; None when it
        has no score (no base, or the sample is missing). bias + contributions.sum() is the predicted
        departure from the base, the same number `score` subtracts."""
        if self.state is None:
            raise RuntimeError(f"{self.name}: drivers() before fit()")
        if len(series) == 0 or not np.isfinite(series.values[-1]):
            return None
        s, step = self.state, self.state["step"]
        full = self._after_tail(series)
        last = int(full.timestamps[-1])
        # One row needs LOOKBACK steps before it; one sample more keeps align's interpolation of a gap
        # that straddles the window's start what it is in the whole series.
        first = max(0, int(np.searchsorted(full.timestamps, last - LOOKBACK * step)) - 1)
        window = Series(full.timestamps[first:], full.values[first:])
        grid, features, base, _ = _design(window, step, self._fitted_context(context, window))
        row = features[-1:]
        if grid[-1] != last or not np.isfinite(base[-1]):
            return None
        if s["fold_starts"][0] <= last <= s["history_end"]:
            models = [self._boosters[int(np.searchsorted(s["fold_starts"], last, side="right")) - 1]]
        else:
            models = self._boosters
        matrix = xgb.DMatrix(row, feature_names=list(FEATURE_NAMES), missing=np.nan)
        contribs = np.mean([m.predict(matrix, pred_contribs=True)[0] for m in models], axis=0).astype(np.float64)
        return row[0], contribs[:-1], float(contribs[-1])

    def _likelihood_tail(self, series: Series, scores: np.ndarray) -> np.ndarray:
        """anomaly.likelihood over the scores and the series' values: from the state the fit left (when
        there is one: artifacts saved before it existed have none) for a series after the history, from
        scratch otherwise."""
        saved = self.state.get("likelihood")
        if saved is not None and len(series) and series.timestamps[0] > self.state["history_end"]:
            return Likelihood.from_dict(saved).tail(scores, series.values)
        return batch_tail(scores, series.values)

    def _volatility(self, grid: np.ndarray, residuals: np.ndarray, first: int) -> np.ndarray:
        """_volatility of each grid step's past residuals. Before `first` (the series' first sample: the
        grid's borrowed tail, and the day before it) the past is the history's, so its stored residuals
        stand in there; from `first` on, the series' own."""
        if grid.size == 0:
            return np.empty(0)
        s, step = self.state, self.state["step"]
        ts, rs = (np.asarray(a) for a in s["residual_tail"])
        keep = (ts < first) & (ts >= first - _VOLATILITY_WINDOW * step)
        start = min(int(grid[0]), int(ts[keep].min())) if keep.any() else int(grid[0])
        timeline = np.full((int(grid[-1]) - start) // step + 1, np.nan)  # one slot per step from `start`
        timeline[(ts[keep] - start) // step] = rs[keep] - s["bias"]
        own = grid >= first
        timeline[(grid[own] - start) // step] = residuals[own]
        return _volatility(timeline)[(int(grid[0]) - start) // step :]

    def _fitted_context(self, context: Context | None, series: Series) -> dict[str, Series]:
        """The context metrics this detector was fitted with, within `series`' span (others are ignored:
        the trees never saw them). Detectors saved before context existed were fitted without any."""
        fitted = set(self.state.get("context", []))
        return _within({k: v for k, v in (context or {}).items() if k in fitted}, series)

    def _after_tail(self, series: Series) -> Series:
        """The series preceded by the fitted history's samples in the LOOKBACK steps before it, if any."""
        if len(series) == 0:
            return series
        ts, vs = (np.asarray(a) for a in self.state["tail"])
        first = series.timestamps[0]
        keep = (ts < first) & (ts >= first - LOOKBACK * self.state["step"])
        return Series(np.concatenate([ts[keep], series.timestamps]), np.concatenate([vs[keep], series.values]))

    def to_bytes(self) -> bytes:
        """JSON: parameters, scale and the fold models in XGBoost's own binary format (UBJSON, base64)."""
        if self.state is None:
            raise RuntimeError(f"{self.name}: nothing to save before fit()")
        boosters = [base64.b64encode(b.save_raw("ubj")).decode("ascii") for b in self._boosters]
        return pack(self.name, self.params, self.state, boosters=boosters)

    @classmethod
    def from_bytes(cls, data: bytes) -> XGBoostDetector:
        doc = unpack(cls.name, data)
        detector = cls(**doc["params"])
        detector.state = doc["state"]
        for encoded in doc["boosters"]:
            booster = xgb.Booster(params={"nthread": detector.params["n_jobs"]})
            booster.load_model(bytearray(base64.b64decode(encoded)))
            detector._boosters.append(booster)
        return detector

    def _train(self, features: np.ndarray, target: np.ndarray) -> xgb.Booster:
        p = self.params
        model = xgb.XGBRegressor(
            n_estimators=p["n_estimators"], max_depth=p["max_depth"], tree_method="hist",
            n_jobs=p["n_jobs"], random_state=p["random_state"],
            # Absolute error: the targets are heavy-tailed (bursts, spikes), and squared error lets each
            # of them drag whole leaves; a leaf's median ignores them. The smaller step (0.1, not 0.3)
            # keeps 100 trees from chasing noise. Judged without labels, on the cross-fitted residuals
            # of the 15 labelled NAB files' probation periods: MAD -57 %, 98.8 % quantile -5 %; and
            # after the probation, that quantile -19 % (geometric means over the files).
            objective="reg:absoluteerror", learning_rate=0.1,
            # Every step weighs 1, so a leaf needs 10 steps: a one-off spike in the history cannot get
            # a leaf of its own and be "predicted" at the same hour on other days.
            min_child_weight=10,
        )
        booster = model.fit(features, target).get_booster()
        booster.feature_names = list(FEATURE_NAMES)  # saved models say what each split reads
        return booster


def _within(context: Context | None, series: Series) -> dict[str, Series]:
    """The context series cut to `series`' span, so the feature grid stays the load's own; empty ones go."""
    if not context or len(series) == 0:
        return {}
    first, last = int(series.timestamps[0]), int(series.timestamps[-1])
    cut = {name: s.between(first, last) for name, s in context.items()}
    return {name: s for name, s in cut.items() if len(s)}


def _design(series: Series, step: int, context: Mapping[str, Series] | None = None,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grid, feature matrix, base (mean of the last 12 samples) and the actual samples, all per grid step.
    `context` (within the series' span) fills the other metrics' feature columns."""
    if np.any(series.timestamps % step):
        raise ValueError(f"timestamps must lie on the {step} s grid; align the series first (engine.align)")
    frame = build_features(dict(context or {}), step=step, primary=series)
    grid = frame.index.to_numpy()
    actual = np.full(grid.size, np.nan)
    rows = _rows(series.timestamps, grid, step)
    actual[rows[rows >= 0]] = series.values[rows >= 0]
    return grid, frame.to_numpy(dtype=np.float64), frame[_BASE].to_numpy(), actual


def _rows(timestamps: np.ndarray, grid: np.ndarray, step: int) -> np.ndarray:
    """The grid row of each timestamp; -1 for those off the grid (missing samples before its first one)."""
    if grid.size == 0:
        return np.full(timestamps.size, -1)
    rows = (timestamps - grid[0]) // step
    return np.where((rows >= 0) & (rows < grid.size), rows, -1)


def _predict(booster: xgb.Booster, features: np.ndarray) -> np.ndarray:
    return np.asarray(booster.inplace_predict(features), dtype=np.float64)


def _robust_location_and_scale(residuals: np.ndarray, floor: float) -> tuple[float, float]:
    """The median, and 1.4826 * MAD: an estimate of sigma that anomalies in the history barely move."""
    bias = float(np.median(residuals))
    deviations = np.abs(residuals - bias)
    scale = _MAD_TO_SIGMA * float(np.median(deviations))
    if scale == 0:  # nearly every residual equals the median: a mostly flat signal
        scale = _MEAN_AD_TO_SIGMA * float(np.mean(deviations))
    # A history predicted exactly (a constant signal): any departure is news, but scores stay finite.
    return bias, max(scale, floor)


def _volatility(deviations: np.ndarray) -> np.ndarray:
    """1.4826 * the median |deviation| over the _VOLATILITY_WINDOW steps before each step (never the
    step itself); NaN where fewer than _VOLATILITY_MIN_PERIODS of them are present. A median, so the
    anomalies inside the window barely move it."""
    past = pd.Series(np.abs(deviations)).shift(1)
    spread = past.rolling(_VOLATILITY_WINDOW, min_periods=_VOLATILITY_MIN_PERIODS).median()
    return _MAD_TO_SIGMA * spread.to_numpy()


def _calibration(z: np.ndarray) -> float:
    """The factor (>= 1) that leaves exactly the Gaussian share of these scores below WARNING_SIGMA.

    Real residuals are heavy-tailed: scaled by a robust sigma, many more than 1.24 % of them pass 2.5.
    A score tied with the calibration quantile lands just below WARNING_SIGMA (the 1e-9), so a
    quantised signal whose routine jumps all tie is not flagged on every jump.
    """
    z = np.abs(z[np.isfinite(z)])
    if z.size == 0:
        return 1.0
    return max(1.0, float(np.quantile(z, _CALIBRATION_QUANTILE)) / WARNING_SIGMA * (1 + 1e-9))
