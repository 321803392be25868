"""Anomaly detectors by name: the learned one and the two references it is measured against.

`DETECTORS` ({name: class}) and `XGBoostDetector` are resolved on first use: importing xgboost takes
about two seconds, which `helios serve`, and anything that needs only the scoring code, should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import AnomalyDetector, AnomalyScores, Severity, severity
from .reference import RollingZScore, ThresholdRule

if TYPE_CHECKING:
    from .xgb import XGBoostDetector

    DETECTORS: dict[str, type[AnomalyDetector]]

__all__ = [
    "DETECTORS", "NAMES", "AnomalyDetector", "AnomalyScores", "RollingZScore", "Severity", "ThresholdRule",
    "XGBoostDetector", "detector_class", "severity",
]

NAMES: tuple[str, ...] = ("xgboost", RollingZScore.name, ThresholdRule.name)  # DETECTORS' keys, known up front
_REFERENCES = {cls.name: cls for cls in (RollingZScore, ThresholdRule)}


def detector_class(name: str) -> type[AnomalyDetector]:
    """The detector registered as `name` (KeyError if none); imports xgboost only for "xgboost"."""
    if name not in NAMES:
        raise KeyError(f"no anomaly detector {name!r}; available: {', '.join(NAMES)}")
    return _REFERENCES[name] if name in _REFERENCES else _registry()[name]


def __getattr__(name: str):
    if name == "DETECTORS":
        return _registry()
    if name == "XGBoostDetector":
        return _registry()["xgboost"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _registry() -> dict[str, type[AnomalyDetector]]:
    from .xgb import XGBoostDetector

    detectors = {cls.name: cls for cls in (XGBoostDetector, *_REFERENCES.values())}
    globals().update(XGBoostDetector=XGBoostDetector, DETECTORS=detectors)  # later lookups skip __getattr__
    return detectors
