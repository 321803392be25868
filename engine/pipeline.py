"""One refresh's computation for one workload: align, fit, forecast. Runs in worker processes."""

from typing import Any

from .align import align
from .errors import InsufficientData
from .models import create
from .types import Forecast, Series


def fit_and_forecast(model: str, params: dict[str, Any], history: Series, step: int, horizon: int) -> Forecast:
    """Forecast `horizon` steps of `step` seconds after the last sample of `history`."""
    aligned = align(history, step)
    if len(aligned) == 0:
        raise InsufficientData("no samples to fit on")
    return create(model, **params, step=step).fit(aligned).predict(horizon)
