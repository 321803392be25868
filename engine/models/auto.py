"""`auto`: per workload, the forecast that backtests best on the workload's own history.

Each eligible candidate is fitted once on the history minus its last day (`holdout_seconds`), then
moved through that day with `update` (no refit: exactly how the scaler uses a model between fits),
forecasting `horizon` steps from `origins` evenly spaced origins. Besides each candidate alone, the
equal-weight averages of the three best (each pair and the trio) compete on the same origins:
averaging cuts any one model's bad days and the risk of choosing on a noisy holdout.

The point forecast and the quantiles are chosen separately, each by its own loss (scaled by the
series' mean one-step change so losses compare across series):
- the point by mean absolute error, the numerator of MASE;
- the quantiles by the pinball loss at q, the quantile Helios provisions for (the trigger's
  `quantile`, 0.9 by default). It charges an under-forecast q / (1 - q) times an over-forecast of the
  same size (9x at 0.9): running short of replicas hurts users, a spare replica only costs money.
A smooth model often has the better upper quantile while the last value is the better point forecast
of a noisy series; choosing once for both would give up one of them. Quantiles are averaged level by
level, which keeps a combination's bounds as calibrated as its members'.

Eligibility: baseline, naive, ets and ses always compete; a seasonal model only when the history covers
two of its seasons besides the holdout (< 2 days + holdout: no daily seasonality to learn). The chosen
members are then fitted on the whole history. Every fit chooses again, so the choice follows the
workload on the refit schedule.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .. import scores
from ..errors import HeliosError
from ..types import Forecast, Series
from .base import Forecaster

SEASONAL = {  # history (seconds) each needs to compete
    "seasonal_naive": 2 * 86400, "prophet": 2 * 86400, "mstl": 2 * 86400, "theta": 2 * 86400,
}
ALWAYS = ("baseline", "naive", "ets", "ses")  # only when in `candidates`
# statsforecast's four beside the seed's: on the development series (benchmarks/forecast_accuracy.py)
# auto's mean 0.9-pinball fell from 0.278 to 0.248 of the naive error and its median MASE from 0.924 to
# 0.859, for a fit 1.7x as long (median 4.9 s against 2.9 s on 7 days of 5-minute data).
CANDIDATES = ("naive", "seasonal_naive", "baseline", "prophet", "ets", "ses", "mstl", "theta")


class AutoModel(Forecaster):
    name = "auto"
    min_history = 1

    def __init__(
        self,
        candidates: tuple[str, ...] | list[str] = CANDIDATES,
        horizon: int = 6,
        holdout_seconds: int = 86400,
        origins: int = 48,
        quantile: float = 0.9,
        step: int = 300,
        candidate_params: dict[str, dict] | None = None,
    ) -> None:
        super().__init__(candidates=list(candidates), horizon=horizon, holdout_seconds=holdout_seconds, origins=origins,
                         quantile=quantile, step=step, candidate_params=candidate_params or {})
        self._members: dict[str, Forecaster] | None = None

    def _create(self, name: str) -> Forecaster:
        from . import create  # the registry imports this module

        return create(name, **{"step": self.params["step"], **self.params["candidate_params"].get(name, {})})

    def eligible(self, n: int, step: int) -> list[str]:
        holdout = self._holdout(step)
        out = []
        for name in self.params["candidates"]:
            if name in ALWAYS or (name in SEASONAL and (n - holdout) * step >= SEASONAL[name]):
                out.append(name)
        return out

    def _fit(self, history: Series) -> dict[str, Any]:
        step = int(history.timestamps[1] - history.timestamps[0]) if len(history) > 1 else self.params["step"]
        runs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        actuals: list[np.ndarray] = []
        if len(history) > self._holdout(step) + 2:
            for name in self.eligible(len(history), step):
                try:
                    runs[name], actuals = self._holdout_run(name, history, step)
                except (HeliosError, ValueError):
                    continue  # a candidate that cannot fit this history is simply not chosen
        cut = len(history) - self._holdout(step)
        scale = scores.naive_scale(history.values[:cut])
        scale = scale if np.isfinite(scale) else 1.0
        q = self.params["quantile"]
        point_losses = self._losses(runs, actuals, lambda a, f: scores.mae(a, f[0]) / scale)
        upper_losses = self._losses(runs, actuals, lambda a, f: scores.pinball(a, f[1], q) / scale)
        point = min(point_losses, key=point_losses.get).split("+") if runs else ["baseline"]
        upper = min(upper_losses, key=upper_losses.get).split("+") if runs else ["baseline"]
        members = list(dict.fromkeys(point + upper))
        self._members = {name: self._create(name).fit(history) for name in members}
        return {
            "point": point, "quantiles": upper,
            "losses": {**{f"point:{k}": v for k, v in point_losses.items()},
                       **{f"q{q:g}:{k}": v for k, v in upper_losses.items()}},
            "members": {name: m.to_bytes().decode() for name, m in self._members.items()},
        }

    def _holdout(self, step: int) -> int:
        return max(12, round(self.params["holdout_seconds"] / step))

    def _holdout_run(self, name: str, history: Series, step: int) -> tuple[list, list]:
        """(point, q-quantile) forecasts of one candidate from each holdout origin, and the actuals."""
        p = self.params
        y, ts = history.values, history.timestamps
        n, h, cut = len(y), p["horizon"], len(y) - self._holdout(step)
        model = self._create(name).fit(Series(ts[:cut], y[:cut]))
        forecasts, actuals = [], []
        for origin in np.unique(np.linspace(cut, n - h, p["origins"]).astype(int)):
            if origin > cut:
                model.update(Series(ts[:origin], y[:origin]))
            f = model.predict(h)
            forecasts.append((f.point, f.quantile(p["quantile"])))
            actuals.append(y[origin : origin + h])
        return forecasts, actuals

    @staticmethod
    def _losses(runs: dict[str, list], actuals: list[np.ndarray], loss) -> dict[str, float]:
        """Mean holdout loss of each candidate and of the equal-weight averages of the three best."""

        def mean_loss(members: tuple[str, ...]) -> float:
            return float(np.mean([
                loss(actual, np.mean([runs[m][i] for m in members], axis=0)) for i, actual in enumerate(actuals)
            ]))

        singles = {name: mean_loss((name,)) for name in runs}
        best = [n for n in sorted(singles, key=singles.get) if np.isfinite(singles[n])][:3]
        combos = {"+".join(sorted(c)): mean_loss(c) for r in (2, 3) for c in itertools.combinations(best, r)}
        return {k: v for k, v in {**singles, **combos}.items() if np.isfinite(v)}

    @property
    def label(self) -> str:
        """e.g. `naive` or `naive (quantiles: prophet+naive)`."""
        point, upper = "+".join(self.state["point"]), "+".join(self.state["quantiles"])
        return point if point == upper else f"{point} (quantiles: {upper})"

    def describe(self) -> dict[str, Any]:
        return {"chosen": self.label, "losses": self.state["losses"]}

    def _models(self) -> dict[str, Forecaster]:
        if self._members is None:
            from . import load

            self._members = {name: load(m.encode()) for name, m in self.state["members"].items()}
        return self._members

    def backcast(self, history: Series, first: int, horizon: int) -> list[Forecast]:
        """As Forecaster.backcast, without an `update` of every member at every origin: the choice is made
        by a fit on the data up to `first`, then each chosen member forecasts every origin with its own
        backcast (data up to each origin only), averaged as `_predict` averages them. The choice stays the
        one made at `first`, as it stays between refits."""
        ts, y = history.timestamps, history.values
        chosen = AutoModel(**self.params).fit(Series(ts[: first + 1], y[: first + 1]))
        tapes = {name: chosen._create(name).backcast(history, first, horizon) for name in chosen._models()}
        point, upper, label = chosen.state["point"], chosen.state["quantiles"], chosen.label
        out = []
        for j in range(len(history) - first):
            at = {name: tape[j] for name, tape in tapes.items()}
            one = at[point[0]]
            out.append(Forecast(label, one.start, one.step, np.mean([at[m].point for m in point], axis=0),
                                np.mean([at[m].quantiles for m in upper], axis=0), one.levels))
        return out

    def update(self, recent: Series) -> AutoModel:
        members = {name: m.update(recent) for name, m in self._models().items()}
        self.state = {**self.state, "members": {name: m.to_bytes().decode() for name, m in members.items()}}
        return self

    def _predict(self, horizon: int, levels: tuple[float, ...]) -> Forecast:
        forecasts = {name: m.predict(horizon, levels) for name, m in self._models().items()}
        first = next(iter(forecasts.values()))
        # Averaging quantile by quantile keeps a combination's bounds as calibrated as its members'.
        return Forecast(
            model=self.label, start=first.start, step=first.step,
            point=np.mean([forecasts[m].point for m in self.state["point"]], axis=0),
            quantiles=np.mean([forecasts[m].quantiles for m in self.state["quantiles"]], axis=0), levels=first.levels,
        )
