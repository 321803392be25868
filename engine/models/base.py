"""The one contract every forecaster meets, so the scaler, backtests and artifacts treat them alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic_core import from_json, to_json

from ..errors import InsufficientData
from ..types import QUANTILE_LEVELS, Forecast, Series


class Forecaster(ABC):
    """Fit on one regular series (see engine.align), then predict `h` steps after its last sample.

    Subclasses set `name`, keep their hyper-parameters in `params` and everything learnt in `state`
    (JSON-serialisable), so save/load needs no pickle and artifacts stay readable across versions.
    """

    name: ClassVar[str]
    min_history: ClassVar[int] = 1

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.state: dict[str, Any] | None = None

    def fit(self, history: Series) -> Forecaster:
        if len(history) < self.min_history:
            raise InsufficientData(f"{self.name} needs at least {self.min_history} samples, got {len(history)}")
        self.state = self._fit(history)
        return self

    def update(self, recent: Series) -> Forecaster:
        """Move the forecast origin to the end of `recent` (the full, newer history) without the cost
        of a new fit. Cheap models simply refit; models with a costly fit (Prophet) override this to
        keep what they learnt and follow only the new data."""
        return self.fit(recent)

    def predict(self, horizon: int, levels: Sequence[float] = QUANTILE_LEVELS) -> Forecast:
        if self.state is None:
            raise RuntimeError(f"{self.name}: predict() before fit()")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1 step, got {horizon}")
        return self._predict(horizon, tuple(levels))

    def backcast(self, history: Series, first: int, horizon: int) -> list[Forecast]:
        """The forecasts this model would have served from each origin `first`..n-1 of `history`, each
        made from the samples up to that origin only: fitted at `first`, then moved along with `update`,
        as the scaler moves a model between fits. Models with a vectorised rule override this with the
        same forecasts made faster."""
        ts, y = history.timestamps, history.values
        model = type(self)(**self.params).fit(Series(ts[: first + 1], y[: first + 1]))
        out = [model.predict(horizon)]
        for i in range(first + 1, len(history)):
            model = model.update(Series(ts[: i + 1], y[: i + 1]))
            out.append(model.predict(horizon))
        return out

    def describe(self) -> dict[str, Any]:
        """What the fitted model wants to show about itself (e.g. auto's choice); JSON-serialisable."""
        return {}

    def to_bytes(self) -> bytes:
        if self.state is None:
            raise RuntimeError(f"{self.name}: nothing to save before fit()")
        # pydantic_core's JSON (pydantic 2 is built on it), not the json module's: the same document (floats to
        # the last bit, NaN as NaN) about 8x faster each way, and a cheap model's update reads and writes one at
        # every sample (0.6 of baseline's 1.5 ms).
        return to_json({"model": self.name, "params": self.params, "state": self.state})

    @classmethod
    def from_bytes(cls, data: bytes) -> Forecaster:
        return cls.from_doc(from_json(data))

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Forecaster:
        """The model from its artifact already parsed (models.load reads the model's name from it)."""
        if doc.get("model") != cls.name:
            raise ValueError(f"artifact is for model {doc.get('model')!r}, not {cls.name!r}")
        model = cls(**doc["params"])
        model.state = doc["state"]
        return model

    @abstractmethod
    def _fit(self, history: Series) -> dict[str, Any]: ...

    @abstractmethod
    def _predict(self, horizon: int, levels: tuple[float, ...]) -> Forecast: ...
