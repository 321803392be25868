"""`auto`: per workload, the candidate model that backtests best on the workload's own history.

Choice: each eligible candidate is fitted once on the history minus its last `holdout` steps, then
moved through the holdout with `update` (no refit: exactly how the scaler uses a model between
fits), forecasting `horizon` steps from `origins` evenly spaced origins. The loss of a candidate is

    (pinball_0.5(point forecast) + pinball_q(q-quantile forecast)) / 2 / naive_scale

with q the quantile Helios provisions for (0.9 by default). The pinball loss at q charges an
under-forecast q / (1 - q) times more than an over-forecast of the same size (9x at 0.9): running
short of replicas hurts users, a spare replica only costs money. The 0.5 term keeps the point forecast
honest; dividing by the series' mean one-step change makes losses comparable across series.

Eligibility: the baseline and naive always compete; a seasonal model only when the history covers
two of its seasons besides the holdout (e.g. < 2 days + holdout: no daily seasonality to learn).
The chosen model is then fitted on the whole history. A fit re-evaluates, so the choice follows the
workload on the refit schedule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import scores
from ..errors import HeliosError
from ..types import Forecast, Series
from .base import Forecaster

SEASONAL = {"seasonal_naive": 2 * 86400, "prophet": 2 * 86400}  # history (seconds) each needs to compete
ALWAYS = ("baseline", "naive")


class AutoModel(Forecaster):
    name = "auto"
    min_history = 1

    def __init__(
        self,
        candidates: tuple[str, ...] | list[str] = ("naive", "seasonal_naive", "baseline", "prophet"),
        horizon: int = 6,
        holdout: int = 288,
        origins: int = 48,
        quantile: float = 0.9,
        step: int = 300,
        candidate_params: dict[str, dict] | None = None,
    ) -> None:
        super().__init__(candidates=list(candidates), horizon=horizon, holdout=holdout, origins=origins,
                         quantile=quantile, step=step, candidate_params=candidate_params or {})
        self._inner: Forecaster | None = None

    def _create(self, name: str) -> Forecaster:
        from . import create  # the registry imports this module

        return create(name, **{"step": self.params["step"], **self.params["candidate_params"].get(name, {})})

    def eligible(self, n: int, step: int) -> list[str]:
        holdout = self.params["holdout"]
        out = []
        for name in self.params["candidates"]:
            if name in ALWAYS or (name in SEASONAL and (n - holdout) * step >= SEASONAL[name]):
                out.append(name)
        return out

    def _fit(self, history: Series) -> dict[str, Any]:
        step = int(history.timestamps[1] - history.timestamps[0]) if len(history) > 1 else self.params["step"]
        losses: dict[str, float] = {}
        if len(history) > self.params["holdout"] + 2:
            for name in self.eligible(len(history), step):
                try:
                    losses[name] = self._holdout_loss(name, history)
                except (HeliosError, ValueError):
                    continue  # a candidate that cannot fit this history is simply not chosen
        finite = {k: v for k, v in losses.items() if np.isfinite(v)}
        chosen = min(finite, key=finite.get) if finite else "baseline"
        self._inner = self._create(chosen).fit(history)
        return {"chosen": chosen, "losses": losses, "inner": self._inner.to_bytes().decode()}

    def _holdout_loss(self, name: str, history: Series) -> float:
        p = self.params
        y, ts = history.values, history.timestamps
        n, h, cut = len(y), p["horizon"], len(y) - p["holdout"]
        scale = scores.naive_scale(y[:cut])
        scale = scale if np.isfinite(scale) else 1.0
        model = self._create(name).fit(Series(ts[:cut], y[:cut]))
        losses = []
        for origin in np.linspace(cut, n - h, p["origins"]).astype(int):
            if origin > cut:
                model.update(Series(ts[:origin], y[:origin]))
            f = model.predict(h)
            actual = y[origin : origin + h]
            q = p["quantile"]
            losses.append(scores.pinball(actual, f.point, 0.5) + scores.pinball(actual, f.quantile(q), q))
        return float(np.mean(losses)) / 2 / scale

    def describe(self) -> dict[str, Any]:
        return {"chosen": self.state["chosen"], "losses": self.state["losses"]}

    def _model(self) -> Forecaster:
        if self._inner is None:
            from . import load

            self._inner = load(self.state["inner"].encode())
        return self._inner

    def update(self, recent: Series) -> AutoModel:
        inner = self._model().update(recent)
        self.state = {**self.state, "inner": inner.to_bytes().decode()}
        return self

    def _predict(self, horizon: int, levels: tuple[float, ...]) -> Forecast:
        return self._model().predict(horizon, levels)
