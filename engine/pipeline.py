"""One refresh's computation for one workload, run in worker processes: fit or update, then forecast.

A fit is the expensive part (Prophet: about a second; auto: a backtest of every candidate) and runs on
its schedule; between fits `update` moves the fitted model to the newest data cheaply. The fitted model
travels between processes as its artifact bytes (Forecaster.to_bytes), never pickled.
"""

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .align import align
from .anomaly import detector_class
from .anomaly.base import AnomalyScores, Context, Severity
from .anomaly.likelihood import Likelihood
from .demand import Provisioning
from .errors import InsufficientData
from .models import create, load
from .replay.loop import Cluster
from .replay.provision import SLO, Choice, choose
from .types import Forecast, Series

WARM_STEPS = 36  # before the first replayed origin: 3 hours of 5-minute steps for the model to start from


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


def choose_provisioning(model: str, params: dict[str, Any], history: Series, step: int, lead: float, slo: SLO,
                        cluster: Cluster, replay_seconds: float, min_replay_seconds: float,
                        previous: Provisioning | None = None) -> Choice:
    """How much to provision for this workload: its last `replay_seconds` replayed through KEDA + the
    HPA (`cluster`) under each candidate plan, with the forecasts `model` would have made from the data
    up to each moment (engine.replay.provision); `previous` is the plan in force. Raises InsufficientData when less than
    `min_replay_seconds` can be replayed: a cold start, served the default quantile meanwhile."""
    aligned = _aligned(history, step)
    n = len(aligned)
    warm = max(create(model, **params, step=step).min_history, WARM_STEPS)  # history the first origin needs
    first = max(n - 1 - math.ceil(replay_seconds / step), warm)
    replayable = (n - 1 - first) * step
    if replayable < min_replay_seconds:
        need, start = (min_replay_seconds + warm * step) / 3600, warm * step / 3600
        raise InsufficientData(f"cold start: {n * step / 3600:.1f} h of history, the replay needs {need:.1f} h "
                               f"({min_replay_seconds / 3600:g} h to replay after {start:g} h to start from)")
    tape = create(model, **params, step=step).backcast(aligned, first, 1 + math.ceil(lead / step))
    return choose(aligned, first, tape, lead, slo, cluster, previous)


def _aligned(history: Series, step: int) -> Series:
    aligned = align(history, step)
    if len(aligned) == 0:
        raise InsufficientData("no samples to fit on")
    return aligned


@dataclass(frozen=True)
class Scored:
    """The anomaly score of a workload's newest sample, and the detector to score the next one with."""

    detector: str
    # The fitted detector, zlib-compressed (xgboost's trees shrink about 4x: it is kept per workload),
    # when it is worth keeping (AnomalyDetector.keep_fitted); None: it is refitted next time.
    artifact: bytes | None
    timestamp: int
    value: float
    score: float  # standard deviations, signed; NaN when the detector cannot say yet
    severity: Severity  # by the likelihood where there is one (anomaly.base.AnomalyScores.severity)
    likelihood: float = math.nan  # anomaly.likelihood of the newest step; NaN: none, or still learning
    # The likelihood's state after the newest step (anomaly.likelihood.Likelihood.to_dict, with "at": the
    # step's timestamp), for the next call; None for detectors without a likelihood.
    likelihood_state: dict | None = None
    drivers: tuple[tuple[str, float, float], ...] = ()  # what drove the newest step's prediction (Explain)
    # The range (low, high) the newest value fell outside, when the likelihood's range channel flagged it.
    beyond_range: tuple[float, float] | None = None


def detect_all(detector: str, series: Series, step: int, artifact: bytes | None = None,
               context: Context | None = None) -> tuple[Series, AnomalyScores]:
    """Score every step of `series` (the admin API's Detect): with the saved detector (`artifact`, from
    score_latest, fitted on this workload's history), else with one fitted on `series` now."""
    aligned = _aligned(series, step)
    cls = detector_class(detector)
    if artifact is not None:
        return aligned, cls.from_bytes(zlib.decompress(artifact)).score(aligned, context)
    return aligned, cls().fit(aligned, context).score(aligned, context)


def score_latest(detector: str, artifact: bytes | None, history: Series, step: int, params: dict | None = None,
                 likelihood_state: dict | None = None, context: Context | None = None) -> Scored:
    """Score the newest step of `history`. With `artifact` the saved detector scores it (cheap) and the
    likelihood carries on from `likelihood_state` by that one step (a step already counted is not counted
    again); without, a detector is fitted on the history first (xgboost: seconds), as at each model fit,
    and the likelihood is the history's own."""
    aligned = _aligned(history, step)
    cls = detector_class(detector)
    end = int(aligned.end)
    recent = aligned.between(aligned.end - step * 288, aligned.end)  # a day: enough context for any lag
    if artifact is not None:
        fitted = cls.from_bytes(zlib.decompress(artifact))
        scores = fitted.score(recent, context)
        state = _carried(likelihood_state, float(scores.scores[-1]), float(aligned.values[-1]), end)
        scored = recent
    elif not cls.keep_fitted:  # refitted at every sample (zscore, threshold): the newest score alone is read
        fitted = cls(**(params or {})).fit(aligned, context)
        scores = fitted.score(recent, context)
        scored = recent
        state = None
    else:  # the fit kept until the next one: its likelihood learns from the whole history's scores
        fitted = cls(**(params or {})).fit(aligned, context)
        artifact = zlib.compress(fitted.to_bytes())
        scores = fitted.score(aligned, context)
        scored = aligned
        state = None
        if scores.likelihood is not None:  # the detector judges runs of scores: its state after the history
            likelihood = Likelihood()
            likelihood.tail(scores.scores, aligned.values)
            state = {**likelihood.to_dict(), "at": end, "likelihood": float(scores.likelihood[-1]),
                     "beyond_range": likelihood.outside}
    score = float(scores.scores[-1])
    likelihood = state["likelihood"] if state is not None else math.nan
    level = AnomalyScores(detector, scores.timestamps[-1:], scores.scores[-1:],
                          None if state is None else np.array([likelihood])).severity[0]
    return Scored(detector, artifact, end, float(aligned.values[-1]), score,
                  Severity(int(level)) if not math.isnan(score) else Severity.NONE, likelihood, state,
                  tuple(fitted.drivers(scored, context=context)),
                  _range(state.get("beyond_range")) if state is not None and state["at"] == end else None)


def _carried(state: dict | None, score: float, value: float, at: int) -> dict | None:
    """The likelihood state moved on by the newest step's score and value, once per step."""
    if state is None or at <= state["at"]:
        return state
    likelihood = Likelihood.from_dict(state)
    newest = likelihood.update(score, value)
    return {**likelihood.to_dict(), "at": at, "likelihood": newest, "beyond_range": likelihood.outside}


def _range(pair) -> tuple[float, float] | None:
    return None if pair is None else (float(pair[0]), float(pair[1]))
