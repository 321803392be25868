"""Prophet (piecewise-linear trend, daily and weekly seasonality), corrected by its latest residual.

Prophet's own uncertainty intervals are not used: they need sampling (slow) and were miscalibrated on
real data (the seed's 80 % interval covered 46.9 %). Bounds come from the model's own k-step errors
instead (engine.calibration), as for the baseline.
"""

from __future__ import annotations

import functools
import logging
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..calibration import error_quantiles, offsets, step_sigma
from ..errors import InsufficientData
from ..types import Forecast, Series
from .base import Forecaster

DAY = 86400
DAILY_FROM = 2 * DAY  # fit a seasonality only once the history shows it at least twice
WEEKLY_FROM = 14 * DAY


class ProphetModel(Forecaster):
    """Prophet's curve plus a decaying correction by the newest residual; conformal quantiles.

    Point forecast k steps after origin t: yhat(t + k) + phi**k * r(t), where r(t) = y(t) - yhat(t) is
    the residual at the origin and phi the lag-1 autocorrelation of the fitted residuals, clipped to
    [0, 0.99]. Residuals of a smooth curve fit are strongly autocorrelated (a busy hour stays busy), so
    the correction carries the latest deviation forward and lets it fade as k grows.

    Quantiles: the errors this rule made over the last `calibration_window` origins of the history,
    e_k(t) = r(t + k) - phi**k * r(t) (no refits: residuals of the one fit), their quantiles added to
    the point forecast. The residuals are in sample, which flatters them a little; the measured
    coverage on real series is reported with the model's introduction.

    `update(recent)` moves the origin to the newest sample of `recent` without refitting: it evaluates
    the stored curve there and takes that sample's residual as r(t). The scaler refits hourly and
    updates on every refresh, so forecasts follow the data in between. The error quantiles are kept.

    Multiplicative seasonality scales with the trend and breaks down when the series touches zero or
    goes negative, so such histories are fitted with additive seasonality; the state's `mode` says
    which was used. Daily seasonality is fitted once the history spans 2 days, weekly once it spans
    14 days; never yearly.
    """

    name = "prophet"
    min_history = 288  # one day of 5-minute steps: less and the daily shape is a guess

    def __init__(
        self,
        seasonality_mode: str = "multiplicative",
        changepoint_prior_scale: float = 0.05,
        calibration_window: int = 2016,
        calibration_horizon: int = 36,
        step: int = 300,
    ) -> None:
        if seasonality_mode not in ("multiplicative", "additive"):
            raise ValueError(f"prophet: seasonality_mode is 'multiplicative' or 'additive', not {seasonality_mode!r}")
        if changepoint_prior_scale <= 0 or calibration_window < 1 or calibration_horizon < 1 or step < 1:
            raise ValueError("prophet: changepoint_prior_scale > 0, calibration sizes >= 1, step >= 1")
        super().__init__(
            seasonality_mode=seasonality_mode, changepoint_prior_scale=changepoint_prior_scale,
            calibration_window=calibration_window, calibration_horizon=calibration_horizon, step=step,
        )
        self._fitted: tuple[str, Any] | None = None  # (the state's model JSON, that model rebuilt)

    def update(self, recent: Series) -> ProphetModel:
        """Forecast from after the newest non-missing sample of `recent`, with its residual; no refit."""
        if self.state is None:
            raise RuntimeError("prophet: update() before fit()")
        present = np.flatnonzero(~np.isnan(recent.values))
        if not present.size:
            raise InsufficientData("prophet: update() needs at least one non-missing sample")
        t, y = int(recent.timestamps[present[-1]]), float(recent.values[present[-1]])
        residual = y - float(self._curve(np.array([t]))[0])
        self.state = {**self.state, "residual": residual, "last_timestamp": t}
        return self

    def _fit(self, history: Series) -> dict[str, Any]:
        y, ts = history.values, history.timestamps
        if np.isnan(y).any():
            raise ValueError("prophet: history has missing values; align it first (engine.align)")
        step = int(ts[1] - ts[0])
        span = int(ts[-1] - ts[0]) + step
        mode = self.params["seasonality_mode"]
        if mode == "multiplicative" and y.min() <= 0:
            mode = "additive"
        api = _prophet()
        model = api.Prophet(
            growth="linear", seasonality_mode=mode, changepoint_prior_scale=self.params["changepoint_prior_scale"],
            daily_seasonality=span >= DAILY_FROM, weekly_seasonality=span >= WEEKLY_FROM, yearly_seasonality=False,
            uncertainty_samples=0,
        )
        model.fit(_frame(ts, y), show_console=False)
        if model.stan_backend is not None:
            model.stan_backend.cleanup()  # cmdstan's output files would pile up in a long-lived worker
        state_json = api.model_to_json(model)
        self._fitted = (state_json, model)
        r = y - _yhat(model, ts)
        phi = _lag1_autocorrelation(r)
        errors = error_quantiles(
            r, lambda o, k: phi**k * r[o], np.arange(r.size), self.params["calibration_horizon"],
            self.params["calibration_window"], step_sigma(r),
        )
        return {
            "model": state_json,
            "mode": mode,
            "phi": phi,
            "residual": float(r[-1]),
            "last_timestamp": int(ts[-1]),
            "step": step,
            "error_quantiles": errors.tolist(),  # (len(QUANTILE_LEVELS), calibration_horizon)
        }

    def _predict(self, horizon: int, levels: tuple[float, ...]) -> Forecast:
        s = self.state
        k = np.arange(1, horizon + 1)
        point = self._curve(s["last_timestamp"] + s["step"] * k) + s["phi"] ** k * s["residual"]
        return Forecast(
            model=self.name, start=s["last_timestamp"] + s["step"], step=s["step"],
            point=point, quantiles=point + offsets(s["error_quantiles"], horizon, levels), levels=levels,
        )

    def _curve(self, timestamps: np.ndarray) -> np.ndarray:
        """The fitted curve at Unix timestamps, from the state's model (rebuilt once after a load)."""
        state_json = self.state["model"]
        if self._fitted is None or self._fitted[0] is not state_json:
            self._fitted = (state_json, _prophet().model_from_json(state_json))
        return _yhat(self._fitted[1], timestamps)


def _lag1_autocorrelation(r: np.ndarray) -> float:
    c = r - r.mean()
    denominator = float(c @ c)
    if denominator == 0.0:  # a perfect fit: nothing to carry forward
        return 0.0
    return float(np.clip((c[:-1] @ c[1:]) / denominator, 0.0, 0.99))


def _frame(timestamps: np.ndarray, values: np.ndarray | None = None) -> Any:
    """Prophet's input: naive-UTC datetimes in `ds`, values in `y`."""
    pd = _prophet().pd
    columns = {"ds": pd.to_datetime(np.asarray(timestamps, dtype=np.int64), unit="s")}
    if values is not None:
        columns["y"] = values
    return pd.DataFrame(columns)


def _yhat(model: Any, timestamps: np.ndarray) -> np.ndarray:
    return model.predict(_frame(timestamps))["yhat"].to_numpy(dtype=np.float64)


@functools.cache
def _prophet() -> SimpleNamespace:
    """Import Prophet on first use: it takes about a second and most processes never fit it."""
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)  # "plotly failed" at import: we never plot
    import cmdstanpy
    import pandas as pd
    from prophet import Prophet
    from prophet.serialize import model_from_json, model_to_json

    cmdstanpy.utils.get_logger().setLevel(logging.WARNING)  # its INFO lines come on every fit
    logging.getLogger("prophet").setLevel(logging.WARNING)  # prophet sets INFO on import; set after it
    return SimpleNamespace(Prophet=Prophet, model_to_json=model_to_json, model_from_json=model_from_json, pd=pd)
