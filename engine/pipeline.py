"""One refresh's computation for one workload, run in worker processes: fit or update, then forecast.

A fit is the expensive part (Prophet: about a second; auto: a backtest of every candidate) and runs on
its schedule; between fits `update` moves the fitted model to the newest data cheaply. The fitted model
travels between processes as its artifact bytes (Forecaster.to_bytes), never pickled.
"""

from dataclasses import dataclass, field
from typing import Any

from .align import align
from .errors import InsufficientData
from .models import create, load
from .types import Forecast, Series


@dataclass(frozen=True)
class Fitted:
    artifact: bytes  # the fitted model, for the next update
    forecast: Forecast
    details: dict[str, Any] = field(default_factory=dict)  # what the model says about itself (auto: its choice)


def fit_and_forecast(model: str, params: dict[str, Any], history: Series, step: int, horizon: int) -> Fitted:
    """Fit `model` on `history` and forecast `horizon` steps of `step` seconds after its last sample."""
    fitted = create(model, **params, step=step).fit(_aligned(history, step))
    return Fitted(fitted.to_bytes(), fitted.predict(horizon), fitted.describe())


def update_and_forecast(artifact: bytes, history: Series, step: int, horizon: int) -> Fitted:
    """Move a fitted model to the end of `history` (no refit) and forecast from there."""
    model = load(artifact).update(_aligned(history, step))
    return Fitted(model.to_bytes(), model.predict(horizon), model.describe())


def _aligned(history: Series, step: int) -> Series:
    aligned = align(history, step)
    if len(aligned) == 0:
        raise InsufficientData("no samples to fit on")
    return aligned
