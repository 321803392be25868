"""Forecasting models behind one contract (models.base.Forecaster), looked up by name."""

from pydantic_core import from_json

from .auto import AutoModel
from .base import Forecaster
from .baseline import BaselineModel
from .naive import NaiveModel, SeasonalNaiveModel
from .prophet import ProphetModel
from .statsforecast_models import ETSModel, MSTLModel, SESModel, ThetaModel

MODELS: dict[str, type[Forecaster]] = {
    m.name: m for m in (
        BaselineModel, NaiveModel, SeasonalNaiveModel, ProphetModel, AutoModel,
        ETSModel, SESModel, MSTLModel, ThetaModel,
    )
}


def create(name: str, **params) -> Forecaster:
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}") from None
    return cls(**params)


def load(data: bytes) -> Forecaster:
    """Rebuild a fitted model from Forecaster.to_bytes(), whichever model wrote it."""
    doc = from_json(data)  # once: parsing a baseline's artifact twice was a quarter of its update
    name = doc.get("model")
    if name not in MODELS:
        raise ValueError(f"artifact names unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    return MODELS[name].from_doc(doc)


__all__ = ["MODELS", "Forecaster", "create", "load"]
