"""statsforecast's AutoETS, MSTL and AutoTheta behind the Forecaster contract.

statsforecast estimates (ETS parameters and model choice, the STL decomposition, theta's parameters and
seasonality test); Helios keeps only what forecasting needs from then on, as plain numbers in the
state, so artifacts are JSON and `update` costs a few recursions instead of a fit:

- `ets`: AutoETS with additive errors and no seasonal states (AZN: level, optional trend, optionally
  damped; chosen by AICc). Seasonal ETS with a daily season of 288 five-minute steps is not usable:
  one fit took 34 s in a measurement and still chose a non-seasonal model; `mstl` is the seasonal ETS.
- `ses`: the same with level only (ANN): the cheapest smoother of noisy series.
- `mstl`: MSTL's daily (and, from two weeks of history, weekly) seasonal components, repeated season
  by season as MSTL does, plus an AZN ETS on the seasonally adjusted series.
- `theta`: AutoTheta (its seasonality test and classical decomposition) with one theta variant,
  dynamic standard theta by default: all four variants take 2 s per fit, DSTM 0.15 s, and its
  states are causal, which the calibration below relies on.

The library's own intervals are not used. Bounds come from the model's own k-step errors
(engine.calibration), measured on a forecast rule replayed from every recent origin with the state the
model had there:
- `ets`, `ses`: over the whole history, with the fitted parameters (in sample; the states are not).
- `mstl`, `theta` (`calibration="holdout"`): a second fit without the last day, moved through that
  day exactly as `update` moves a model between fits. In sample, their decompositions have seen the
  targets (each phase's seasonal estimate averages the target's own day in): on a synthetic daily sine
  the in-sample 80 % interval covered 0.72, the holdout one 0.81-0.86. The price is a second fit.

statsforecast 2.x runs its estimation in a compiled extension (no numba, so no JIT warm-up); the
import itself takes about a second, so it is deferred to the first fit. The theta recursion is
replayed with the extension's `pegels_resid`, a private function: the dependency is pinned to a
minor version for it.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..calibration import MIN_ERRORS, error_quantiles, offsets, step_sigma
from ..errors import InsufficientData
from ..types import Forecast, Series
from .base import Forecaster

DAY = 86400
WEEK = 7 * DAY
WEEKLY_STL = {"seasonal_jump": 10, "trend_jump": 10, "low_pass_jump": 10}


class _StatsforecastModel(Forecaster):
    """What the three share: parameters, the seasonal patterns by phase, the prediction."""

    min_history = 24

    def __init__(self, calibration_window: int = 2016, calibration_horizon: int = 36, step: int = 300,
                 **params: Any) -> None:
        if calibration_window < 1 or calibration_horizon < 1 or step < 1:
            raise ValueError(f"{self.name}: calibration sizes >= 1, step >= 1")
        super().__init__(calibration_window=calibration_window, calibration_horizon=calibration_horizon, step=step,
                         **params)

    def _history(self, history: Series) -> tuple[np.ndarray, int, int]:
        """(values, step, span in seconds); missing values are the aligner's job, not ours."""
        y = history.values
        if np.isnan(y).any():
            raise ValueError(f"{self.name}: history has missing values; align it first (engine.align)")
        step = int(history.timestamps[1] - history.timestamps[0])
        return y, step, int(history.timestamps[-1] - history.timestamps[0]) + step

    def _calibrate(self, y: np.ndarray, rule, first_origin: int) -> list:
        errors = error_quantiles(y, rule, np.arange(first_origin, y.size), self.params["calibration_horizon"],
                                 self.params["calibration_window"], step_sigma(y))
        return errors.tolist()  # (len(QUANTILE_LEVELS), calibration_horizon)

    def _forecast(self, point: np.ndarray, horizon: int, levels: tuple[float, ...]) -> Forecast:
        s = self.state
        return Forecast(
            model=self.name, start=s["last_timestamp"] + s["step"], step=s["step"],
            point=point, quantiles=point + offsets(s["error_quantiles"], horizon, levels), levels=levels,
        )

    def _phase(self, timestamps: np.ndarray) -> np.ndarray:
        """Steps from the fit's last sample: the index into the seasonal patterns."""
        s = self.state
        return np.rint((np.asarray(timestamps, dtype=np.int64) - s["anchor"]) / s["step"]).astype(np.int64)

    def _seasonal(self, timestamps: np.ndarray) -> np.ndarray:
        """Sum of the seasonal patterns at these timestamps (zeros without seasons)."""
        i = self._phase(timestamps)
        out = np.zeros(i.size)
        for pattern in self.state["patterns"]:
            p = np.asarray(pattern)
            out += p[i % p.size]
        return out

    def _targets(self, horizon: int) -> np.ndarray:
        s = self.state
        return s["last_timestamp"] + s["step"] * np.arange(1, horizon + 1, dtype=np.int64)


def _by_phase(last_season: np.ndarray) -> list[float]:
    """The last season of a component as a pattern indexed by (steps after the last sample) mod p:
    its final value is at phase 0, the next step at phase 1 (one season earlier, so its first value)."""
    return np.roll(np.asarray(last_season, dtype=np.float64), 1).tolist()


def _one_season_back(component: np.ndarray, origins: np.ndarray, k: int, p: int) -> np.ndarray:
    """The component's value at the last time <= origin that shares the phase of origin + k."""
    return component[origins + k - p * -(-k // p)]  # -(-k // p) = ceil(k / p)


# --- ETS (additive error, no season): level l, slope b, damping phi ---------------------------------


def _damped_sum(phi: float, k: np.ndarray) -> np.ndarray:
    """phi + phi**2 + ... + phi**k: how much of the slope k steps carry."""
    k = np.asarray(k, dtype=np.float64)
    return k if phi == 1.0 else phi * (1 - phi**k) / (1 - phi)


def _ets_parameters(fitted: dict[str, Any]) -> dict[str, Any]:
    components = fitted["components"]  # e.g. "AADN": error, trend, season, damped
    trend = components[1] != "N"
    alpha, beta, _gamma, phi = (float(v) for v in fitted["par"][:4])
    return {
        "method": fitted["method"], "alpha": alpha, "beta": beta if trend else 0.0,
        "phi": phi if trend and components[3] == "D" else 1.0,
    }


class _EtsFilter:
    """The additive-error ETS recursion with the parameters statsforecast chose (mixin)."""

    state: dict[str, Any]

    def _ets_step(self, observations: list[tuple[int, float]]) -> None:
        """Follow new observations (phase, adjusted value), predicting through gaps without correcting."""
        s = self.state
        level, slope, at = s["level"], s["slope"], s["at"]
        alpha, beta, phi = s["alpha"], s["beta"], s["phi"]
        for phase, value in observations:
            gap = phase - at - 1  # steps with no observation: the state just moves forward
            if gap > 0:
                level += float(_damped_sum(phi, gap)) * slope
                slope *= phi**gap
            error = value - (level + phi * slope)
            level += phi * slope + alpha * error
            slope = phi * slope + beta * error
            at = phase
        s.update(level=level, slope=slope, at=at)

    def _ets_point(self, horizon: int) -> np.ndarray:
        s = self.state  # the state is that after the last sample, so the first target is one step on
        return s["level"] + s["slope"] * _damped_sum(s["phi"], np.arange(1, horizon + 1))


class ETSModel(_EtsFilter, _StatsforecastModel):
    """AutoETS without a seasonal component: level and (damped) trend, chosen by AICc.

    `update` runs the ETS recursion over the samples after the last one it saw (microseconds); the
    parameters and the model choice wait for the next fit."""

    name = "ets"
    model_spec = "AZN"

    def __init__(self, model: str | None = None, calibration_window: int = 2016, calibration_horizon: int = 36,
                 step: int = 300) -> None:
        model = model or self.model_spec
        if len(model) != 3 or model[0] != "A" or model[1] not in "NAZ" or model[2] != "N":
            raise ValueError(f"{self.name}: model is A[N|A|Z]N (additive error, no season), not {model!r}")
        super().__init__(calibration_window, calibration_horizon, step, model=model)

    def _fit(self, history: Series) -> dict[str, Any]:
        y, step, _ = self._history(history)
        fitted = _sf().AutoETS(model=self.params["model"]).fit(y).model_
        return _level_state(self, fitted, y, history, step, patterns=[], components=[])

    def update(self, recent: Series) -> ETSModel:
        _follow(self, recent)
        return self

    def _predict(self, horizon: int, levels: tuple[float, ...]) -> Forecast:
        point = self._ets_point(horizon) + self._seasonal(self._targets(horizon))  # no patterns: zeros
        return self._forecast(point, horizon, levels)

    def describe(self) -> dict[str, Any]:
        s = self.state or {}
        return {"method": s.get("method"), "alpha": s.get("alpha"), "phi": s.get("phi")}


class SESModel(ETSModel):
    """Simple exponential smoothing (ETS(A,N,N)): the last level, smoothed; the cheapest of them."""

    name = "ses"
    model_spec = "ANN"


class MSTLModel(ETSModel):
    """MSTL: daily (from 2 days of history) and weekly (from 2 weeks) STL seasons, an AZN ETS on the rest.

    The forecast is the ETS forecast of the seasonally adjusted series plus each component's last
    season, repeated (what MSTL itself predicts). `update` subtracts those patterns from the new
    samples and runs the ETS recursion on what remains; the patterns wait for the next fit.
    `stl_kwargs` go to statsmodels' STL. By default the weekly case interpolates STL's loess between
    every 10th point (WEEKLY_STL): on 14 days of 5-minute steps the full loess took 26 s per fit on a
    busy 2-CPU machine, 2.5 s with the jumps; daily-only fits (0.45 s on 7 days) use the full loess.
    """

    name = "mstl"
    min_history = 2 * DAY // 300

    def __init__(self, trend_model: str = "AZN", weekly: bool = True, stl_kwargs: dict | None = None,
                 calibration: str = "holdout", holdout_seconds: int = DAY, calibration_window: int = 2016,
                 calibration_horizon: int = 36, step: int = 300) -> None:
        super().__init__(trend_model, calibration_window, calibration_horizon, step)
        _check_calibration(self.name, calibration, holdout_seconds)
        self.params = {"trend_model": self.params.pop("model"), "weekly": weekly, "stl_kwargs": stl_kwargs,
                       "calibration": calibration, "holdout_seconds": holdout_seconds, **self.params}
        self.min_history = _min_history(step)

    def _fit(self, history: Series) -> dict[str, Any]:
        state = self._fit_in_sample(history)
        cut = _holdout_cut(self, history, max(state["seasons"]))
        if cut is None:
            return state
        # Errors out of sample: a fit without the last day, moved through that day by update().
        early = MSTLModel(**{**self.params, "calibration": "in_sample"}).fit(Series(history.timestamps[:cut],
                                                                                    history.values[:cut]))
        h = self.params["calibration_horizon"]
        paths = []
        for o in range(cut - 1, len(history)):
            if o >= cut:
                early.update(Series(history.timestamps[o : o + 1], history.values[o : o + 1]))
            paths.append(early._ets_point(h) + early._seasonal(early._targets(h)))
        return {**state, "error_quantiles": self._calibrate(history.values, _from_paths(np.array(paths), cut - 1),
                                                            cut - 1)}

    def _fit_in_sample(self, history: Series) -> dict[str, Any]:
        y, step, span = self._history(history)
        seasons = [p for p, spans in _seasons(step) if span >= spans * p * step]
        if not self.params["weekly"]:
            seasons = seasons[:1] if seasons and seasons[0] == round(DAY / step) else []
        if not seasons:
            raise InsufficientData(f"mstl: {span / DAY:.1f} days of history hold no season twice")
        stl = self.params["stl_kwargs"]
        if stl is None:  # the weekly season's loess windows span days: fit them on every 10th point
            stl = WEEKLY_STL if len(seasons) > 1 else {}
        sf = _sf()
        model = sf.MSTL(season_length=seasons, trend_forecaster=sf.AutoETS(model=self.params["trend_model"]),
                        stl_kwargs=stl).fit(y)
        frame = model.model_
        names = [c for c in frame.columns if c.startswith("seasonal")]  # in the order of the sorted seasons
        components = [frame[c].to_numpy(dtype=np.float64) for c in names]
        return _level_state(
            self, model.trend_forecaster.model_, y, history, step,
            patterns=[_by_phase(c[-p:]) for c, p in zip(components, seasons, strict=True)], components=components,
            seasons=seasons,
        )

    def describe(self) -> dict[str, Any]:
        s = self.state or {}
        return {"seasons": s.get("seasons"), "trend": s.get("method"), "phi": s.get("phi")}


def _level_state(model: ETSModel, fitted: dict, y: np.ndarray, history: Series, step: int, patterns: list,
                 components: list[np.ndarray], seasons: list[int] | None = None) -> dict[str, Any]:
    """State of an ETS on (possibly seasonally adjusted) data, with its k-step error quantiles."""
    par = _ets_parameters(fitted)
    states = np.asarray(fitted["states"], dtype=np.float64)  # row i: the state after i observations
    level = states[:, 0]
    slope = states[:, 1] if states.shape[1] > 1 and par["beta"] else np.zeros(level.size)
    seasons = seasons or []

    def rule(origins: np.ndarray, k: int) -> np.ndarray:
        point = level[origins + 1] + slope[origins + 1] * _damped_sum(par["phi"], np.array(k))
        for c, p in zip(components, seasons, strict=True):
            point = point + _one_season_back(c, origins, k, p)
        return point

    first = max(seasons, default=1) - 1  # origins with a full season behind them
    return {
        **par, "level": float(level[-1]), "slope": float(slope[-1]), "at": 0,
        "seasons": seasons, "patterns": patterns,
        "anchor": int(history.timestamps[-1]), "last_timestamp": int(history.timestamps[-1]), "step": step,
        "error_quantiles": model._calibrate(y, rule, first),
    }


def _follow(model: ETSModel, recent: Series) -> None:
    """Feed the samples of `recent` after the last one the model saw into its ETS recursion."""
    if model.state is None:
        raise RuntimeError(f"{model.name}: update() before fit()")
    s = model.state
    new = recent.timestamps > s["last_timestamp"]
    ts, values = recent.timestamps[new], recent.values[new]
    present = ~np.isnan(values)
    if not present.any():
        return
    ts, values = ts[present], values[present]
    model._ets_step(list(zip(model._phase(ts).tolist(), (values - model._seasonal(ts)).tolist(), strict=True)))
    s["last_timestamp"] = int(ts[-1])


def _check_calibration(name: str, calibration: str, holdout_seconds: int) -> None:
    if calibration not in ("holdout", "in_sample") or holdout_seconds < 1:
        raise ValueError(f"{name}: calibration is 'holdout' or 'in_sample', holdout_seconds >= 1")


def _holdout_cut(model: _StatsforecastModel, history: Series, season: int) -> int | None:
    """Where the calibration's holdout starts: the last `holdout_seconds` (at least 2 * MIN_ERRORS
    steps), or None (errors in sample) when what precedes it holds the longest season less than twice."""
    if model.params["calibration"] != "holdout":
        return None
    step = int(history.timestamps[1] - history.timestamps[0])
    cut = len(history) - max(round(model.params["holdout_seconds"] / step), 2 * MIN_ERRORS)
    return cut if cut >= 2 * season else None


def _from_paths(paths: np.ndarray, first: int):
    """A calibration rule reading k-step forecasts from paths[origin - first, k - 1]."""
    return lambda origins, k: paths[origins - first, k - 1]


# --- Theta -------------------------------------------------------------------------------------------

THETA_VARIANTS = ("STM", "OTM", "DSTM", "DOTM")


class ThetaModel(_StatsforecastModel):
    """AutoTheta on one variant (`model`; default DSTM, dynamic standard theta), with its seasonal test.

    When the history spans two days and shows a daily season (two weeks, a weekly one, for a daily
    series), AutoTheta divides it out (or subtracts
    it, for series that touch zero) by classical decomposition, a fixed pattern by phase; theta runs on
    the adjusted series. `update` replays the theta recursion with the fitted parameters over the
    adjusted `recent` (a few milliseconds for a week of 5-minute steps: theta's running mean and
    regression line depend on the whole window) and keeps the last state."""

    name = "theta"
    min_history = 2 * DAY // 300

    def __init__(self, model: str = "DSTM", calibration: str = "holdout", holdout_seconds: int = DAY,
                 calibration_window: int = 2016, calibration_horizon: int = 36, step: int = 300) -> None:
        if model not in THETA_VARIANTS:
            raise ValueError(f"theta: model is one of {', '.join(THETA_VARIANTS)}, not {model!r}")
        _check_calibration(self.name, calibration, holdout_seconds)
        super().__init__(calibration_window, calibration_horizon, step, model=model, calibration=calibration,
                         holdout_seconds=holdout_seconds)
        self.min_history = _min_history(step)

    def _fit(self, history: Series) -> dict[str, Any]:
        state = self._fit_in_sample(history)
        cut = _holdout_cut(self, history, state["season"])
        if cut is None:
            return state
        # Errors out of sample: a fit without the last day, its recursion replayed through that day.
        ts, y = history.timestamps, history.values
        early = ThetaModel(**{**self.params, "calibration": "in_sample"}).fit(Series(ts[:cut], y[:cut]))
        e = early.state
        adjusted = _deseason(y, early._theta_seasonal(ts), e["decomposition"])
        _, _, states, _ = _sf().theta_lib.pegels_resid(adjusted, _sf().switch_theta(self.params["model"]),
                                                       e["initial_smoothed"], e["alpha"], e["theta"], 3)
        origins = np.arange(cut - 1, y.size)
        h = self.params["calibration_horizon"]
        paths = _theta_paths(np.asarray(states)[origins], origins + 1, e["alpha"], e["theta"], h,
                             self.params["model"].startswith("D"))
        targets = ts[origins][:, None] + e["step"] * np.arange(1, h + 1)[None, :]
        seasonal = early._theta_seasonal(targets.ravel()).reshape(targets.shape)
        paths = _reseason(paths, seasonal, e["decomposition"])
        return {**state, "error_quantiles": self._calibrate(y, _from_paths(paths, cut - 1), cut - 1)}

    def _fit_in_sample(self, history: Series) -> dict[str, Any]:
        y, step, span = self._history(history)
        seasons = _seasons(step)  # daily; weekly for a daily series
        m = seasons[0][0] if seasons else 1
        if m < 2 or span < 2 * m * step:
            raise InsufficientData(f"theta: needs two seasons of history, got {span / DAY:.1f} days")
        fitted = _sf().AutoTheta(season_length=m, model=self.params["model"]).fit(y).model_
        par = {key: float(fitted["par"][key]) for key in ("initial_smoothed", "alpha", "theta")}
        decomposition = fitted["decomposition_type"] if fitted.get("decompose") else None
        n = y.size
        if decomposition:
            pattern = np.roll(np.asarray(fitted["seas_forecast"]["mean"], dtype=np.float64), 1)  # see _by_phase
            seasonal = pattern[(np.arange(n) - (n - 1)) % m]  # classical decomposition: strictly periodic
        else:
            pattern, seasonal = np.zeros(1), np.zeros(n)
        states = np.asarray(fitted["states"], dtype=np.float64)  # row i: after observation i
        dynamic = self.params["model"].startswith("D")
        h = self.params["calibration_horizon"]
        first = 3  # theta's recursion needs a few samples before its regression line means anything
        origins = np.arange(max(first, n - self.params["calibration_window"] - h), n)
        paths = _theta_paths(states[origins], origins + 1, par["alpha"], par["theta"], h, dynamic)

        def rule(o: np.ndarray, k: int) -> np.ndarray:
            adjusted = paths[o - origins[0], k - 1]
            return _reseason(adjusted, seasonal[o + k], decomposition)

        return {
            **par, "decomposition": decomposition, "season": m, "patterns": [pattern.tolist()],
            "theta_state": states[-1].tolist(), "n": n,
            "anchor": int(history.timestamps[-1]), "last_timestamp": int(history.timestamps[-1]), "step": step,
            "error_quantiles": self._calibrate(y, rule, int(origins[0])),
        }

    def update(self, recent: Series) -> ThetaModel:
        if self.state is None:
            raise RuntimeError("theta: update() before fit()")
        s = self.state
        present = np.flatnonzero(~np.isnan(recent.values))
        if present.size < 4 or recent.timestamps[present[-1]] <= s["last_timestamp"]:
            return self  # nothing newer (or too little to replay): keep the state
        ts = recent.timestamps[present[0]: present[-1] + 1]
        y = recent.values[present[0]: present[-1] + 1]
        if np.isnan(y).any():  # the recursion needs every step; a gap is bridged by a straight line
            ok = ~np.isnan(y)
            y = np.interp(np.arange(y.size), np.flatnonzero(ok), y[ok])
        adjusted = _deseason(y, self._theta_seasonal(ts), s["decomposition"])
        lib = _sf().theta_lib
        _, _, states, _ = lib.pegels_resid(adjusted, _sf().switch_theta(self.params["model"]), s["initial_smoothed"],
                                           s["alpha"], s["theta"], 3)
        self.state = {**s, "theta_state": np.asarray(states)[-1].tolist(), "n": int(adjusted.size),
                      "last_timestamp": int(ts[-1])}
        return self

    def _predict(self, horizon: int, levels: tuple[float, ...]) -> Forecast:
        s = self.state
        path = _theta_paths(np.asarray([s["theta_state"]]), np.asarray([s["n"]]), s["alpha"], s["theta"], horizon,
                            self.params["model"].startswith("D"))[0]
        point = _reseason(path, self._theta_seasonal(self._targets(horizon)), s["decomposition"])
        return self._forecast(point, horizon, levels)

    def _theta_seasonal(self, timestamps: np.ndarray) -> np.ndarray:
        if not self.state["decomposition"]:
            return np.zeros(len(timestamps))
        return self._seasonal(timestamps)

    def describe(self) -> dict[str, Any]:
        s = self.state or {}
        return {"variant": self.params["model"], "decomposition": s.get("decomposition"), "theta": s.get("theta"),
                "alpha": s.get("alpha")}


def _reseason(adjusted: np.ndarray, seasonal, decomposition: str | None):
    if decomposition == "multiplicative":
        return adjusted * seasonal
    return adjusted + seasonal  # additive, or no decomposition (seasonal is 0)


def _deseason(y: np.ndarray, seasonal: np.ndarray, decomposition: str | None) -> np.ndarray:
    if decomposition == "multiplicative":
        return y / seasonal
    return y - seasonal


def _theta_paths(rows: np.ndarray, n: np.ndarray, alpha: float, theta: float, h: int, dynamic: bool) -> np.ndarray:
    """Theta's point forecasts 1..h steps ahead (columns) from each state row after n observations.

    The recursion of statsforecast's compiled forecast, vectorised over origins: the smoothed level
    follows its own forecasts and, for the dynamic variants, so do the running mean and the
    regression line (A intercept, B slope). Checked against the library's output in the tests.
    """
    level, mean_y, a, b = (rows[:, j].astype(np.float64) for j in range(4))
    i = np.asarray(n, dtype=np.float64)
    out = np.empty((rows.shape[0], h))
    decay = 1 - alpha
    for k in range(h):
        f = level + (1 - 1 / theta) * (a * decay**i + b * (1 - decay ** (i + 1)) / alpha)
        out[:, k] = f
        level = alpha * f + decay * level
        if dynamic:
            old_mean = mean_y
            mean_y = (i * mean_y + f) / (i + 1)
            b = ((i - 1) * b + 6 * (f - old_mean) / (i + 1)) / (i + 2)
            a = mean_y - b * (i + 2) / 2
        i = i + 1
    return out


# --- shared -----------------------------------------------------------------------------------------


def _seasons(step: int) -> list[tuple[int, int]]:
    """(season in steps, how many seasons of history it needs): daily from 2 days, weekly from 2 weeks;
    a season shorter than 2 steps is no season (a daily series has only the weekly one)."""
    return [(p, 2) for p in (round(DAY / step), round(WEEK / step)) if p >= 2]


def _min_history(step: int) -> int:
    """Samples for two of the shortest usable season: two days at sub-daily steps, two weeks if daily."""
    seasons = _seasons(step)
    return 2 * seasons[0][0] if seasons else 2


@functools.cache
def _sf() -> SimpleNamespace:
    """Import statsforecast on first use: about a second (pandas, statsmodels, scipy behind it)."""
    from statsforecast._lib import theta as theta_lib
    from statsforecast.models import MSTL, AutoETS, AutoTheta
    from statsforecast.theta import switch_theta

    return SimpleNamespace(AutoETS=AutoETS, MSTL=MSTL, AutoTheta=AutoTheta, theta_lib=theta_lib,
                           switch_theta=switch_theta)
