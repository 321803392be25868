"""The contract every anomaly detector meets, and the severity scale the recommender maps to alerts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Protocol

import numpy as np

from ..types import Series
from .likelihood import severity_of_likelihood

# A workload's other metrics beside its load, by engine.features.METRICS name (memory_utilization,
# db_connections, ...): what a detector that reads features may use; the others ignore it.
Context = Mapping[str, Series]

WARNING_SIGMA = 2.5  # seed config anomaly_threshold_sigma: at or above this, an anomaly
CRITICAL_SIGMA = 4.0  # at or above this, a critical one


class Severity(IntEnum):
    NONE = 0
    WARNING = 1  # -> ALERT_WARNING
    CRITICAL = 2  # -> ALERT_CRITICAL


def severity(scores: np.ndarray, warning: float = WARNING_SIGMA, critical: float = CRITICAL_SIGMA) -> np.ndarray:
    """Severity per score (absolute value, in standard deviations); NaN scores are NONE."""
    a = np.abs(np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0))
    return np.where(a >= critical, Severity.CRITICAL, np.where(a >= warning, Severity.WARNING, Severity.NONE))


@dataclass(frozen=True, eq=False)
class AnomalyScores:
    """One score per step of an aligned series: how unusual each value is, in standard deviations
    (signed: positive when the value is above what the detector expected; NaN where it cannot say,
    e.g. during warm-up)."""

    detector: str
    timestamps: np.ndarray  # int64 seconds
    scores: np.ndarray  # float64
    # Optional, per step: the anomaly likelihood of the recent scores and of the value (anomaly.likelihood),
    # in [0, 1]; NaN while it learns (its first day of scores) and at missing samples. Where it is a
    # number, severity follows it (WARNING from 1 - 1e-9, CRITICAL from 1 - 1e-11), not |score|; where it
    # is still learning, severity falls back on |score| (2.5 / 4 sigma), as without a likelihood.
    likelihood: np.ndarray | None = None

    @property
    def severity(self) -> np.ndarray:
        by_score = severity(self.scores)
        if self.likelihood is None:
            return by_score
        learnt = np.isfinite(self.likelihood)
        return np.where(learnt, severity_of_likelihood(self.likelihood), by_score)

    @property
    def flagged(self) -> np.ndarray:
        return self.severity >= Severity.WARNING


class AnomalyDetector(Protocol):
    """Fit on a workload's history, then score a series (the history itself, or newer data).

    Both take a regular series (engine.align); score() must use only data at or before each step
    for that step's score (no look-ahead), so a score can be computed the moment a sample arrives.
    A fitted detector saves itself as bytes (JSON, in `pack`'s envelope) and from_bytes rebuilds
    it to score exactly as it did.
    """

    name: ClassVar[str]
    # Whether the scaler keeps the fitted detector and scores with it until the next refit (a costly
    # fit: xgboost's takes seconds) instead of fitting one on the newest history for every score.
    keep_fitted: ClassVar[bool]

    def fit(self, history: Series, context: Context | None = None) -> AnomalyDetector: ...

    def score(self, series: Series, context: Context | None = None) -> AnomalyScores: ...

    def drivers(self, series: Series, k: int = 3, context: Context | None = None) -> list[tuple[str, float, float]]:
        """What drove the prediction the last step of `series` is measured from: up to k (feature, its
        value, its contribution), largest first; [] for a detector that predicts from no features."""
        ...

    def to_bytes(self) -> bytes: ...

    @classmethod
    def from_bytes(cls, data: bytes) -> AnomalyDetector: ...


def pack(name: str, params: dict[str, Any], state: dict[str, Any], **extra: Any) -> bytes:
    """A detector's artifact: JSON {"detector": name, "params", "state", ...extra}."""
    return json.dumps({"detector": name, "params": params, "state": state, **extra}).encode()


def unpack(name: str, data: bytes) -> dict[str, Any]:
    """The document `pack` wrote; ValueError when another detector wrote it."""
    doc = json.loads(data)
    if doc.get("detector") != name:
        raise ValueError(f"artifact is for detector {doc.get('detector')!r}, not {name!r}")
    return doc
