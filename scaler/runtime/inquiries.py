"""The Admin API's questions that take work, not only a snapshot: ad-hoc forecasts and anomaly scores,
recommendations on request, and why a workload is provisioned and modelled as it is.

Ad-hoc fits run in the worker processes like the workloads' own. Failures are typed, so the servicer
maps them to statuses without knowing how they arose.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from helios.engine.anomaly import AnomalyScores, Severity, detector_class, severity
from helios.engine.errors import HeliosError
from helios.engine.pipeline import detect_all
from helios.engine.recommend import Recommendation, WorkloadInputs, recommend
from helios.engine.replay.provision import GUARD_DROP
from helios.engine.types import Forecast, Series

from ..config.settings import Settings
from .cluster import Cluster
from .insights import Insights
from .runner import FitTimeout, ModelRunner, WorkerDied
from .state import Snapshot, WorkloadKey, current_choice, plan_for
from .workloads import Workloads


class NotTracked(LookupError):
    """No such workload: KEDA has not asked about it (or not within the idle timeout)."""


class NotReady(Exception):
    """Not yet: the workload has no forecast, history or recommendation yet, or a model run did not
    finish (time budget, lost worker). Retrying later may work."""


class Rejected(ValueError):
    """The input cannot be used; the message starts with the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


class Inquiries:
    def __init__(self, workloads: Workloads, runner: ModelRunner, insights: Insights, settings: Settings,
                 clock: Callable[[], float], cluster: Cluster | None = None) -> None:
        self._workloads = workloads
        self._cluster = cluster
        self._runner = runner
        self._insights = insights
        self._settings = settings
        self._clock = clock

    # --- tracked workloads -------------------------------------------------------------------------

    def owner_of(self, key: WorkloadKey) -> str:
        """The replica that refreshes the workload (runtime/cluster.py); "" with one replica."""
        return (self._cluster.owner(key) or "") if self._cluster is not None else ""

    def tracked(self, key: WorkloadKey) -> Snapshot:
        snap = self._workloads.snapshot(key)
        if snap is None:
            raise NotTracked(f"workload: {'/'.join(key)} is not tracked; ListWorkloads shows what is")
        return snap

    def with_forecast(self, key: WorkloadKey) -> Snapshot:
        snap = self.tracked(key)
        if snap.forecast is None:
            detail = snap.last_error or "its first forecast is not ready yet"
            raise NotReady(f"workload: {'/'.join(key)} has no forecast: {detail}")
        return snap

    def tracked_snapshots(self, namespace: str = "") -> list[Snapshot]:
        return sorted((s for s in self._workloads.snapshots() if not namespace or s.trigger.namespace == namespace),
                      key=lambda s: s.trigger.key)

    # --- forecasts and anomalies -------------------------------------------------------------------

    async def forecast(self, model: str, series: Series, step: int, horizon: int, field: str) -> Forecast:
        """A forecast of an ad-hoc series by `model` with the configured parameters."""
        params = self._settings.models.params_for(model, horizon)
        try:
            fitted = await self._runner.fit(model, params, series, step, horizon, self._settings.models.fit_timeout)
        except (FitTimeout, WorkerDied) as e:
            raise _busy(e) from None
        except HeliosError as e:
            raise Rejected(field, str(e)) from None
        return fitted.forecast

    @property
    def default_detector(self) -> str:
        configured = self._settings.anomaly.detector
        return "xgboost" if configured == "none" else configured

    async def detect_workload(self, key: WorkloadKey, detector: str) -> tuple[Series, AnomalyScores]:
        """Every step of the workload's last history scored, by its saved detector when it is a `detector`
        one (no refit), else by one fitted now."""
        self.tracked(key)
        w = self._workloads.get(key)
        if w is None or w.history is None:
            raise NotReady(f"workload: {'/'.join(key)} has no history yet; its first refresh is pending")
        saved = w.detector if detector == self._settings.anomaly.detector else None
        return await self._detect(detector, w.history, int(self._settings.metrics.step), saved, "workload")

    async def detect_series(self, series: Series, step: int, detector: str) -> tuple[Series, AnomalyScores]:
        # A series too short for the detector is refused here, not after starting a worker for it: on its
        # step grid it cannot hold more samples than its span does.
        need = getattr(detector_class(detector), "min_history", 0)
        steps = int((series.timestamps[-1] - series.timestamps[0]) // step) + 1 if len(series) else 0
        if steps < need:
            raise Rejected("series", f"{detector} needs at least {need} samples, got {len(series)}")
        return await self._detect(detector, series, step, None, "series")

    async def _detect(self, detector: str, series: Series, step: int, saved: bytes | None,
                      field: str) -> tuple[Series, AnomalyScores]:
        try:
            return await self._runner.call(detect_all, detector, series, step, saved,
                                           timeout=self._settings.models.fit_timeout)
        except (FitTimeout, WorkerDied) as e:
            raise _busy(e) from None
        except HeliosError as e:
            raise Rejected(field, str(e)) from None

    # --- recommendations ---------------------------------------------------------------------------

    def recommend_tracked(self, key: WorkloadKey, current_replicas: int) -> tuple[Recommendation, str, float]:
        """(recommendation, where current_replicas came from, when it was made): made now for the replicas
        given, else the one made after the workload's last forecast."""
        snap = self.with_forecast(key)
        now = self._clock()
        if current_replicas:
            w = self._workloads.get(key)
            facts = self._insights.inputs_for(snap, snap.recent, snap.anomaly, current_replicas)
            return recommend(facts, self._insights.policy, w.last_action if w else None, now), "request", now
        if snap.recommendation is None:
            raise NotReady(f"workload: {'/'.join(key)} has no recommendation yet; pass current_replicas to get "
                           "one now")
        return snap.recommendation, snap.current_replicas_source, snap.forecast_at or now

    async def recommend_given(self, facts: WorkloadInputs, step: int) -> Recommendation:
        """A recommendation from the caller's metrics, their load forecast by the default model when they
        give none and their newest load sample scored when they give no anomaly score. The caller's data
        sets the time: "now" is its last load sample, however old."""
        load = facts.load_history
        if facts.load_forecast is None:
            horizon = math.ceil(self._settings.models.horizon / step)
            facts = replace(facts, load_forecast=await self.forecast(self._settings.models.default, load, step,
                                                                     horizon, "inputs.load"))
        if facts.anomaly_score is None:
            score, level = await self._score(load, step)
            facts = replace(facts, anomaly_score=score, anomaly_severity=level)
        return recommend(facts, self._insights.policy, None, float(load.end))

    async def _score(self, load: Series, step: int) -> tuple[float | None, Severity]:
        if self._settings.anomaly.detector == "none":
            return None, Severity.NONE
        try:
            _, scores = await self._runner.call(detect_all, self._settings.anomaly.detector, load, step,
                                                timeout=self._settings.models.fit_timeout)
        except HeliosError:  # too short to score: the anomaly rules are not evaluated
            return None, Severity.NONE
        last = float(scores.scores[-1])
        return (None, Severity.NONE) if math.isnan(last) else (last, Severity(int(scores.severity[-1])))

    # --- why ---------------------------------------------------------------------------------------

    def provisioning_reason(self, snap: Snapshot) -> str:
        """Why the workload is provisioned by its current plan (state.plan_for)."""
        t, choice = snap.trigger, current_choice(snap, snap.trigger)
        if t.slo is None:
            return f"the trigger fixes its quantile ({t.quantile:g}): no replay"
        if choice is None:
            return snap.provisioning_note or f"no replay for this trigger yet: serving the default quantile " \
                                             f"{t.quantile:g} until the next refit"
        reason = choice.reason + (f"; the last replay failed: {snap.provisioning_note}"
                                  if snap.provisioning_note else "")
        if plan_for(snap, t) != choice.plan:
            e = snap.forecast_error
            reason = (f"guard: the served forecasts' rolling interval coverage {e.coverage:.2f} is more than "
                      f"{GUARD_DROP:g} below the replay's {choice.forecast_coverage:.2f}: serving headroom "
                      f"until it recovers; the choice was {reason}")
        return reason

    def model_choice(self, snap: Snapshot) -> str:
        """Which model forecasts the workload, and who chose it."""
        t, details = snap.trigger, snap.model_details or {}
        losses = details.get("losses") or {}
        if t.model == "auto" and losses:
            def best(kind: str) -> str:  # the three lowest of one loss, e.g. "prophet 1.16, naive+prophet 1.18, ..."
                mine = sorted((loss, name.split(":", 1)[1]) for name, loss in losses.items() if name.startswith(kind))
                return ", ".join(f"{name} {loss:.4g}" for loss, name in mine[:3])
            quantile = f"q{t.quantile:g}:"
            return (f"auto chose {snap.forecast.model} by its holdout losses (lower is better; see "
                    f"engine/models/auto.py). Point, mean absolute error: {best('point:')}. Quantile {t.quantile:g}, "
                    f"pinball loss: {best(quantile)}")
        default = self._settings.models.default
        origin = "the server default (models.default)" if t.model == default else "the trigger's `model` key"
        version = f", from trained artifact {snap.model_version}" if snap.model_version else ""
        return f"{t.model}, set by {origin}{version}"


def severity_of(score: float) -> Severity:
    return Severity.NONE if math.isnan(score) else Severity(int(severity([score])[0]))


def _busy(error: Exception) -> NotReady:
    """The run, not the input, failed: the time budget ran out or the worker died."""
    return NotReady(f"the model run did not finish: {error}")
