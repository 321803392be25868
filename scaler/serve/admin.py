"""helios.admin.v1.Admin: what the scaler tracks, forecasts, flags and recommends, and why.

For people (grpcurl through reflection) and dashboards; KEDA never calls it. This servicer only checks
and converts requests (admin_inputs.py) and responses; the work is runtime/inquiries.py's, and tracked
workloads are answered from their latest snapshot.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable

import numpy as np

from helios.engine.anomaly import NAMES as DETECTORS
from helios.engine.anomaly import Severity
from helios.engine.models import MODELS
from helios.engine.recommend import Recommendation, WorkloadInputs
from helios.engine.types import Forecast

from ..config.settings import Settings
from ..pb import admin_pb2 as pb
from ..pb import admin_pb2_grpc as pb_grpc
from ..runtime.inquiries import Inquiries, severity_of
from ..runtime.state import AnomalyReading, Availability, Snapshot, answer, current_choice, plan_for
from ..runtime.telemetry import Telemetry
from . import admin_inputs as inputs
from .calls import unary


class Admin(pb_grpc.AdminServicer):
    call_log_level = logging.INFO  # people's calls, few: each is worth a line (calls.unary)

    def __init__(self, inquiries: Inquiries, settings: Settings, telemetry: Telemetry,
                 clock: Callable[[], float] = time.time) -> None:
        self.telemetry = telemetry
        self._ask = inquiries
        self._settings = settings
        self._clock = clock

    # --- forecasts ---------------------------------------------------------------------------------

    @unary
    async def Predict(self, request: pb.PredictRequest, context) -> pb.PredictResponse:
        problems: list[str] = []
        level = inputs.level(request.interval_level, self._settings.models.interval_level, "interval_level", problems)
        target = request.WhichOneof("target")
        if target == "workload":
            horizon = inputs.duration(request.horizon, 0.0, "horizon", problems)
            if problems:
                raise inputs.invalid(problems)
            snap = self._ask.with_forecast(_key(request.workload))
            return _predict_response(_head(snap.forecast, horizon, request.horizon), level, snap.forecast_at,
                                     snap.data_end)
        if target != "series":
            raise inputs.invalid(["target: set `workload` (a tracked workload) or `series` (an ad-hoc series)"])
        models = self._settings.models
        model = request.model or models.default
        if model not in MODELS:
            problems.append(f"model: {model!r} is unknown; allowed: {', '.join(sorted(MODELS))}")
        series, step = self._series(request.series, "series", problems)
        horizon = inputs.duration(request.horizon, models.horizon, "horizon", problems)
        steps = math.ceil(horizon / step) if step > 0 else 0
        if steps > inputs.MAX_HORIZON_STEPS:
            problems.append(f"horizon: {request.horizon!r} is {steps} steps; at most {inputs.MAX_HORIZON_STEPS} "
                            "allowed")
        elif len(series) and series.end + steps * step > inputs.LATEST:
            problems.append(f"series.step: {step} s steps for {steps} steps end after 9999-12-31, the latest time an "
                            "answer can carry")
        if problems:
            raise inputs.invalid(problems)
        forecast = await self._ask.forecast(model, series, step, steps, "series")
        return _predict_response(forecast, level, self._clock(), series.end)

    # --- anomalies ---------------------------------------------------------------------------------

    @unary
    async def Detect(self, request: pb.DetectRequest, context) -> pb.DetectResponse:
        problems: list[str] = []
        detector = request.detector or self._ask.default_detector
        if detector not in DETECTORS:
            problems.append(f"detector: {request.detector!r} is unknown; allowed: {', '.join(DETECTORS)}")
        if request.last < 0:
            problems.append(f"last: {request.last} must be >= 0 (0: every point)")
        if _target(request, problems, "series", "an ad-hoc series") == "workload":
            aligned, scores = await self._ask.detect_workload(_key(request.workload), detector)
        else:
            series, step = self._series(request.series, "series", problems)
            if problems:
                raise inputs.invalid(problems)
            aligned, scores = await self._ask.detect_series(series, step, detector)
        likelihood = scores.likelihood if scores.likelihood is not None else np.full(len(scores.scores), np.nan)
        points = [_anomaly_point(t, v, s, lk, Severity(level)) for t, v, s, lk, level in zip(
            aligned.timestamps.tolist(), aligned.values.tolist(), scores.scores.tolist(), likelihood.tolist(),
            scores.severity.tolist(), strict=True)]
        return pb.DetectResponse(detector=detector, points=points[-request.last:] if request.last else points,
                                 flagged=int(scores.flagged.sum()), latest=points[-1] if points else None)

    # --- recommendations ---------------------------------------------------------------------------

    @unary
    async def Recommend(self, request: pb.RecommendRequest, context) -> pb.Recommendation:
        problems: list[str] = []
        if request.current_replicas < 0:
            problems.append(f"current_replicas: {request.current_replicas} must be >= 0")
        if _target(request, problems, "inputs", "ad-hoc metrics") == "workload":
            return _recommendation(*self._ask.recommend_tracked(_key(request.workload), request.current_replicas))
        if request.current_replicas < 1:
            problems.append("current_replicas: required with `inputs` (the replicas running now), >= 1")
        given = request.inputs
        if not (given.capacity_per_replica > 0 and math.isfinite(given.capacity_per_replica)):
            problems.append(f"inputs.capacity_per_replica: {given.capacity_per_replica} must be a finite number > 0 "
                            "(the load one replica serves: the trigger's targetValue)")
        load, step = self._series(given.load, "inputs.load", problems)
        level = inputs.level(given.forecast_interval_level, 0.8, "inputs.forecast_interval_level", problems)
        forecast = inputs.forecast_points(given.forecast, level, "inputs.forecast", problems)
        cpu = inputs.series(given.cpu_usage_cores, "inputs.cpu_usage_cores", problems, required=False)
        memory = inputs.series(given.memory_usage_bytes, "inputs.memory_usage_bytes", problems, required=False)
        for field in ("cpu_request_cores", "memory_limit_bytes"):
            value = getattr(given, field)
            if value < 0 or not math.isfinite(value):
                problems.append(f"inputs.{field}: {value} must be a finite number >= 0 (0: not known)")
        scored = given.HasField("anomaly_score")
        if scored and not math.isfinite(given.anomaly_score):
            problems.append("inputs.anomaly_score: must be finite")
        if problems:
            raise inputs.invalid(problems)
        facts = WorkloadInputs(
            current_replicas=request.current_replicas, capacity_per_replica=given.capacity_per_replica,
            load_history=load, load_forecast=forecast,
            cpu_usage_cores=cpu if len(cpu) else None, cpu_request_cores=given.cpu_request_cores or None,
            memory_usage_bytes=memory if len(memory) else None, memory_limit_bytes=given.memory_limit_bytes or None,
            anomaly_score=given.anomaly_score if scored else None,
            anomaly_severity=severity_of(given.anomaly_score) if scored else Severity.NONE,
        )
        rec = await self._ask.recommend_given(facts, step)
        return _recommendation(rec, "request", self._clock())

    # --- models and workloads ----------------------------------------------------------------------

    @unary
    async def ListModels(self, request: pb.ListModelsRequest, context) -> pb.ListModelsResponse:
        models = self._settings.models
        horizon = math.ceil(models.horizon / self._settings.metrics.step)
        infos = [
            pb.ModelInfo(name=name, description=_first_line(cls.__doc__ or sys.modules[cls.__module__].__doc__),
                         is_default=name == models.default,
                         parameters={k: json.dumps(v) for k, v in models.params_for(name, horizon).items()})
            for name, cls in sorted(MODELS.items())
        ]
        loaded = []
        for snap in self._ask.tracked_snapshots():
            if snap.forecast is None:
                continue
            row = pb.LoadedModel(ref=_ref(snap), model=snap.trigger.model, forecast_model=snap.forecast.model,
                                 version=snap.model_version, backtest_scores=_numbers(snap.backtest),
                                 selection_losses=_numbers((snap.model_details or {}).get("losses")),
                                 detector=snap.anomaly.detector if snap.anomaly else "")
            if snap.fitted_at:
                row.fitted_at.CopyFrom(inputs.timestamp(snap.fitted_at))
            loaded.append(row)
        return pb.ListModelsResponse(models=infos, detectors=list(DETECTORS), loaded=loaded)

    @unary
    async def ListWorkloads(self, request: pb.ListWorkloadsRequest, context) -> pb.ListWorkloadsResponse:
        now = self._clock()
        return pb.ListWorkloadsResponse(workloads=[
            self._status(snap, now) for snap in self._ask.tracked_snapshots(request.namespace)])

    @unary
    async def Explain(self, request: pb.ExplainRequest, context) -> pb.ExplainResponse:
        problems: list[str] = []
        horizon = inputs.duration(request.horizon, 0.0, "horizon", problems)
        if problems:
            raise inputs.invalid(problems)
        snap = self._ask.with_forecast(_key(request.workload))
        now = self._clock()
        level = self._settings.models.interval_level
        response = pb.ExplainResponse(
            status=self._status(snap, now),
            forecast=_predict_response(_head(snap.forecast, horizon, request.horizon), level, snap.forecast_at,
                                       snap.data_end),
            model_choice=self._ask.model_choice(snap),
            served_value_reason=self._answer(snap, now).reason,
        )
        if snap.recent is not None:
            response.recent_inputs.extend(pb.Sample(timestamp=inputs.timestamp(t), value=v) for t, v in zip(
                snap.recent.timestamps.tolist(), snap.recent.values.tolist(), strict=True))
        if snap.anomaly is not None:
            response.anomaly.CopyFrom(_reading_point(snap.anomaly))
        if snap.recommendation is not None:
            response.recommendation.CopyFrom(_recommendation(
                snap.recommendation, snap.current_replicas_source, snap.forecast_at or now))
        if snap.forecast_error is not None:
            e = snap.forecast_error
            response.rolling_mape, response.rolling_interval_coverage, response.rolling_matured = \
                e.mape, e.coverage, e.matured
        return response

    def _answer(self, snap: Snapshot, now: float):
        return answer(snap, snap.trigger, now, self._settings.metrics.staleness_limit)

    def _provisioning(self, snap: Snapshot) -> pb.Provisioning:
        t, choice = snap.trigger, current_choice(snap, snap.trigger)
        plan = plan_for(snap, t)
        out = pb.Provisioning(basis=plan.basis, plan=plan.label, reason=self._ask.provisioning_reason(snap),
                              target_shortfall=t.slo.target_shortfall if t.slo else 0.0)
        if choice is not None:
            out.attainable, out.replayed_hours = choice.attainable, choice.replayed_seconds / 3600
            for field, r in (("chosen", choice.replayed), ("headroom", choice.headroom)):
                getattr(out, field).CopyFrom(pb.ReplayOutcome(
                    plan=r.plan.label, shortfall=r.underprovisioned_fraction, unserved=r.unserved_fraction,
                    replica_hours_vs_reactive=r.replica_hours / choice.reactive_replica_hours
                    if choice.reactive_replica_hours else 0.0))
        return out

    def _status(self, snap: Snapshot, now: float) -> pb.WorkloadStatus:
        t = snap.trigger
        result = self._answer(snap, now)
        row = pb.WorkloadStatus(
            ref=_ref(snap), source=t.source, model=t.model, mode=t.mode, target_value=t.target_value,
            stale=result.availability is Availability.STALE, last_error=snap.last_error,
            consecutive_failures=snap.consecutive_failures,
            forecast_age_seconds=now - snap.forecast_at if snap.forecast_at else 0.0,
            selection_losses=_numbers((snap.model_details or {}).get("losses")), model_version=snap.model_version,
            backtest_scores=_numbers(snap.backtest), provisioning=self._provisioning(snap),
            owner=self._ask.owner_of(t.key),
        )
        if snap.observed is not None:
            row.observed_value = snap.observed
        if result.availability is Availability.OK:
            row.served_value = result.value
        if snap.refreshed_at is not None:
            row.last_refresh.CopyFrom(inputs.timestamp(snap.refreshed_at))
        if snap.forecast is not None:
            row.forecast_model = snap.forecast.model
        if snap.fitted_at:
            row.fitted_at.CopyFrom(inputs.timestamp(snap.fitted_at))
        return row

    def _series(self, message: pb.Series, field: str, problems: list[str]):
        step = inputs.duration(message.step, self._settings.metrics.step, f"{field}.step", problems)
        return inputs.series(message, field, problems), int(step)


def _target(request, problems: list[str], adhoc: str, what: str) -> str:
    """The request's `target`: "workload" or `adhoc`. A tracked workload needs no more fields, so the
    problems found so far are raised now."""
    target = request.WhichOneof("target")
    if target not in ("workload", adhoc):
        raise inputs.invalid([f"target: set `workload` (a tracked workload) or `{adhoc}` ({what})"])
    if target == "workload" and problems:
        raise inputs.invalid(problems)
    return target


def _key(ref: pb.WorkloadRef) -> tuple[str, str, str]:
    return ref.namespace, ref.name, ref.metric_name


def _head(forecast: Forecast, horizon: float, text: str) -> Forecast:
    if not horizon:
        return forecast
    steps = math.ceil(horizon / forecast.step)
    if steps > forecast.horizon:
        raise inputs.invalid([f"horizon: {text!r} reaches beyond the workload's forecast ({forecast.horizon} steps "
                              f"of {forecast.step}s); its trigger sets the horizon"])
    return forecast.head(steps)


def _predict_response(forecast: Forecast, level: float, made_at: float | None, data_end: int | None):
    lower, upper = forecast.interval(level)
    points = [
        pb.ForecastPoint(timestamp=inputs.timestamp(t), value=v, lower=lo, upper=hi)
        for t, v, lo, hi in zip(forecast.timestamps.tolist(), forecast.point.tolist(), lower.tolist(),
                                upper.tolist(), strict=True)
    ]
    response = pb.PredictResponse(model=forecast.model, interval_level=level, points=points)
    if made_at is not None:
        response.made_at.CopyFrom(inputs.timestamp(made_at))
    if data_end is not None:
        response.data_end.CopyFrom(inputs.timestamp(data_end))
    return response


def _recommendation(rec: Recommendation, source: str, at: float) -> pb.Recommendation:
    return pb.Recommendation(
        action=rec.action.value, target_replicas=rec.target_replicas, current_replicas=rec.current_replicas,
        reason=rec.reason, confidence=rec.confidence, urgency=rec.urgency.value,
        conditions=[pb.Condition(action=c.action.value, detail=c.detail) for c in rec.conditions],
        resources=[pb.ResourceSuggestion(resource=r.resource, current=r.current, suggested=r.suggested, unit=r.unit,
                                         basis=r.basis) for r in rec.resources],
        suppressed_by_cooldown=rec.suppressed_by_cooldown, current_replicas_source=source,
        made_at=inputs.timestamp(at),
    )


def _anomaly_point(t: int, value: float, score: float, likelihood: float, severity: Severity) -> pb.AnomalyPoint:
    return pb.AnomalyPoint(timestamp=inputs.timestamp(t), value=value, score=score, likelihood=likelihood,
                           anomaly=severity >= Severity.WARNING, severity=severity.name)


def _reading_point(reading: AnomalyReading) -> pb.AnomalyPoint:
    point = _anomaly_point(reading.timestamp, reading.value, reading.score, reading.likelihood, reading.severity)
    point.alert = reading.alert
    point.drivers.extend(pb.Driver(feature=f, value=v, contribution=c) for f, v, c in reading.drivers)
    if reading.beyond_range is not None:
        point.beyond_range = True
        point.range_low, point.range_high = reading.beyond_range
    return point


def _ref(snap: Snapshot) -> pb.WorkloadRef:
    t = snap.trigger
    return pb.WorkloadRef(namespace=t.namespace, name=t.name, metric_name=t.metric_name)


def _numbers(mapping: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (mapping or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc else ""
