"""helios.admin.v1.Admin: what the scaler tracks, forecasts, flags and recommends, and why.

For people (grpcurl through reflection) and dashboards; KEDA never calls it. Tracked workloads are
answered from their latest snapshot; ad-hoc series are fitted in the worker processes, size-bounded.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable

import grpc

from helios.engine.anomaly import NAMES as DETECTORS
from helios.engine.anomaly import Severity, severity
from helios.engine.demand import HPA_TOLERANCE, expected_demand
from helios.engine.errors import HeliosError
from helios.engine.models import MODELS
from helios.engine.pipeline import detect_all
from helios.engine.recommend import Recommendation, WorkloadInputs, recommend
from helios.engine.replay.provision import GUARD_DROP
from helios.engine.types import Forecast, Series

from ..config.settings import Settings
from ..pb import admin_pb2 as pb
from ..pb import admin_pb2_grpc as pb_grpc
from ..runtime.insights import Insights
from ..runtime.runner import FitTimeout, ModelRunner, WorkerDied
from ..runtime.state import AnomalyReading, Availability, Snapshot, StateStore, answer, plan_for
from ..runtime.telemetry import Telemetry
from . import admin_inputs as inputs
from .calls import CallError, unary


class Admin(pb_grpc.AdminServicer):
    call_log_level = logging.INFO  # people's calls, few: each is worth a line (calls.unary)

    def __init__(self, store: StateStore, runner: ModelRunner, insights: Insights, settings: Settings,
                 telemetry: Telemetry, clock: Callable[[], float] = time.time) -> None:
        self.telemetry = telemetry
        self._store = store
        self._runner = runner
        self._insights = insights
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
            snap = self._with_forecast(request.workload)
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
        if problems:
            raise inputs.invalid(problems)
        forecast = await self._fit(model, series, step, steps, "series")
        return _predict_response(forecast, level, self._clock(), series.end)

    # --- anomalies ---------------------------------------------------------------------------------

    @unary
    async def Detect(self, request: pb.DetectRequest, context) -> pb.DetectResponse:
        problems: list[str] = []
        detector = request.detector or self._default_detector()
        if detector not in DETECTORS:
            problems.append(f"detector: {request.detector!r} is unknown; allowed: {', '.join(DETECTORS)}")
        if request.last < 0:
            problems.append(f"last: {request.last} must be >= 0 (0: every point)")
        target = request.WhichOneof("target")
        if target == "workload":
            if problems:
                raise inputs.invalid(problems)
            snap = self._tracked(request.workload)
            series, step = self._insights.history(snap.trigger.key), int(self._settings.metrics.step)
            saved = self._insights.detector(snap.trigger.key, detector)  # no refit when the workload has one
            if series is None:
                raise CallError(grpc.StatusCode.UNAVAILABLE,
                                f"workload: {_name(request.workload)} has no history yet; its first refresh is pending")
        elif target == "series":
            series, step = self._series(request.series, "series", problems)
            saved = None
            if problems:
                raise inputs.invalid(problems)
        else:
            raise inputs.invalid(["target: set `workload` (a tracked workload) or `series` (an ad-hoc series)"])
        try:
            aligned, scores = await self._runner.call(detect_all, detector, series, step, saved,
                                                      timeout=self._settings.models.fit_timeout)
        except (FitTimeout, WorkerDied) as e:
            raise _busy(e) from None
        except HeliosError as e:
            raise inputs.invalid([f"{target}: {e}"]) from None
        points = [_anomaly_point(t, v, s) for t, v, s in zip(
            aligned.timestamps.tolist(), aligned.values.tolist(), scores.scores.tolist(), strict=True)]
        return pb.DetectResponse(detector=detector, points=points[-request.last:] if request.last else points,
                                 flagged=int(scores.flagged.sum()), latest=points[-1] if points else None)

    def _default_detector(self) -> str:
        configured = self._settings.anomaly.detector
        return "xgboost" if configured == "none" else configured

    # --- recommendations ---------------------------------------------------------------------------

    @unary
    async def Recommend(self, request: pb.RecommendRequest, context) -> pb.Recommendation:
        problems: list[str] = []
        if request.current_replicas < 0:
            problems.append(f"current_replicas: {request.current_replicas} must be >= 0")
        target = request.WhichOneof("target")
        if target == "workload":
            if problems:
                raise inputs.invalid(problems)
            snap = self._with_forecast(request.workload)
            return _recommendation(*self._recommend_tracked(snap, request.current_replicas))
        if target != "inputs":
            raise inputs.invalid(["target: set `workload` (a tracked workload) or `inputs` (ad-hoc metrics)"])
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
        if given.HasField("anomaly_score") and not math.isfinite(given.anomaly_score):
            problems.append("inputs.anomaly_score: must be finite")
        if problems:
            raise inputs.invalid(problems)
        if forecast is None:
            horizon = math.ceil(self._settings.models.horizon / step)
            forecast = await self._fit(self._settings.models.default, load, step, horizon, "inputs.load")
        score, severity = await self._score(given, load, step)
        facts = WorkloadInputs(
            current_replicas=request.current_replicas, capacity_per_replica=given.capacity_per_replica,
            load_history=load, load_forecast=forecast,
            cpu_usage_cores=cpu if len(cpu) else None, cpu_request_cores=given.cpu_request_cores or None,
            memory_usage_bytes=memory if len(memory) else None, memory_limit_bytes=given.memory_limit_bytes or None,
            anomaly_score=score, anomaly_severity=severity,
        )
        # The caller's data sets the time: "now" is its last load sample, however old.
        rec = recommend(facts, self._insights.policy, None, float(load.end))
        return _recommendation(rec, "request", self._clock())

    def _recommend_tracked(self, snap: Snapshot, current_replicas: int) -> tuple[Recommendation, str, float]:
        now = self._clock()
        if current_replicas:
            facts = self._insights.inputs_for(snap, snap.recent, snap.anomaly, current_replicas)
            rec = recommend(facts, self._insights.policy, self._insights.last_action(snap.trigger.key), now)
            return rec, "request", now
        if snap.recommendation is None:
            raise CallError(grpc.StatusCode.UNAVAILABLE, f"workload: {'/'.join(snap.trigger.key)} has no "
                            "recommendation yet; pass current_replicas to get one now")
        return snap.recommendation, snap.current_replicas_source, snap.forecast_at or now

    async def _score(self, given: pb.RecommendInputs, load: Series, step: int) -> tuple[float | None, Severity]:
        if given.HasField("anomaly_score"):
            score = given.anomaly_score
            return score, _severity_of(score)
        if self._settings.anomaly.detector == "none":
            return None, Severity.NONE
        try:
            _, scores = await self._runner.call(detect_all, self._settings.anomaly.detector, load, step,
                                                timeout=self._settings.models.fit_timeout)
        except HeliosError:  # too short to score: the anomaly rules are not evaluated
            return None, Severity.NONE
        last = float(scores.scores[-1])
        return (None, Severity.NONE) if math.isnan(last) else (last, Severity(int(scores.severity[-1])))

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
        for snap in sorted(self._store.all(), key=lambda s: s.trigger.key):
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
            self._status(snap, now) for snap in sorted(self._store.all(), key=lambda s: s.trigger.key)
            if not request.namespace or snap.trigger.namespace == request.namespace
        ])

    @unary
    async def Explain(self, request: pb.ExplainRequest, context) -> pb.ExplainResponse:
        problems: list[str] = []
        horizon = inputs.duration(request.horizon, 0.0, "horizon", problems)
        if problems:
            raise inputs.invalid(problems)
        snap = self._with_forecast(request.workload)
        now = self._clock()
        level = self._settings.models.interval_level
        response = pb.ExplainResponse(
            status=self._status(snap, now),
            forecast=_predict_response(_head(snap.forecast, horizon, request.horizon), level, snap.forecast_at,
                                       snap.data_end),
            model_choice=_model_choice(snap, self._settings.models.default),
            served_value_reason=self._served_reason(snap, now),
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

    def _served_reason(self, snap: Snapshot, now: float) -> str:
        t = snap.trigger
        result = answer(snap, t, now, self._settings.metrics.staleness_limit)
        if result.availability is not Availability.OK:
            return f"GetMetrics fails now ({result.availability.value}): {result.detail}"
        if result.basis == "observed":
            why = "the trigger's mode is observe" if t.mode == "observe" else "no forecast yet"
            return f"{result.value:g}: the latest observed value ({why})"
        plan = result.plan
        hpa = (f"The HPA aims for ceil({result.value:g} / targetValue {t.target_value:g}) = "
               f"{math.ceil(result.value / t.target_value)} replicas")
        raised = f" x {1 + plan.margin:g} (the plan's margin)" if plan.margin else ""
        if result.basis == "headroom":
            return f"{result.value:g} = observed {snap.observed:g}{raised}: {plan.label}. {hpa}"
        peak = expected_demand(snap.forecast, 0.0, now, t.lead_time, plan.quantile)
        chosen = "the forecast" if peak >= (snap.observed or 0.0) else "the observed value (the floor)"
        if result.value > max(peak, snap.observed or 0.0) * (1 + plan.margin) * (1 + 1e-12):
            chosen = f"the forecast rises, by less than the HPA's tolerance: observed x {1 + HPA_TOLERANCE:g}"
        return (f"{result.value:g} = max(peak of the q{plan.quantile:g} forecast over the lead window (now, now + "
                f"{t.lead_time:g}s] = {peak:g}, observed {snap.observed:g}){raised}: {chosen}. {hpa}")

    def _provisioning(self, snap: Snapshot, now: float) -> pb.Provisioning:
        t = snap.trigger
        plan = plan_for(snap, t)
        out = pb.Provisioning(basis=plan.basis, plan=plan.label,
                              target_shortfall=t.slo.target_shortfall if t.slo else 0.0)
        choice = snap.provisioning
        if t.slo is None:
            out.reason = f"the trigger fixes its quantile ({t.quantile:g}): no replay"
        elif choice is None or not choice.made_for(t.slo, t.cluster):
            out.reason = snap.provisioning_note or f"no replay for this trigger yet: serving the default quantile " \
                                                   f"{t.quantile:g} until the next refit"
        else:
            out.attainable, out.replayed_hours = choice.attainable, choice.replayed_seconds / 3600
            out.reason = choice.reason + (f"; the last replay failed: {snap.provisioning_note}"
                                          if snap.provisioning_note else "")
            if plan != choice.plan:
                e = snap.forecast_error
                out.reason = (f"guard: the served forecasts' rolling interval coverage {e.coverage:.2f} is more than "
                              f"{GUARD_DROP:g} below the replay's {choice.forecast_coverage:.2f}: serving headroom "
                              f"until it recovers; the choice was {out.reason}")
            for field, r in (("chosen", choice.replayed), ("headroom", choice.headroom)):
                getattr(out, field).CopyFrom(pb.ReplayOutcome(
                    plan=r.plan.label, shortfall=r.underprovisioned_fraction, unserved=r.unserved_fraction,
                    replica_hours_vs_reactive=r.replica_hours / choice.reactive_replica_hours
                    if choice.reactive_replica_hours else 0.0))
        return out

    def _status(self, snap: Snapshot, now: float) -> pb.WorkloadStatus:
        t = snap.trigger
        result = answer(snap, t, now, self._settings.metrics.staleness_limit)
        row = pb.WorkloadStatus(
            ref=_ref(snap), source=t.source, model=t.model, mode=t.mode, target_value=t.target_value,
            stale=result.availability is Availability.STALE, last_error=snap.last_error,
            consecutive_failures=snap.consecutive_failures,
            forecast_age_seconds=now - snap.forecast_at if snap.forecast_at else 0.0,
            selection_losses=_numbers((snap.model_details or {}).get("losses")), model_version=snap.model_version,
            backtest_scores=_numbers(snap.backtest), provisioning=self._provisioning(snap, now),
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

    # --- shared ------------------------------------------------------------------------------------

    def _tracked(self, ref: pb.WorkloadRef) -> Snapshot:
        snap = self._store.get((ref.namespace, ref.name, ref.metric_name))
        if snap is None:
            raise CallError(grpc.StatusCode.NOT_FOUND, f"workload: {_name(ref)} is not tracked; ListWorkloads shows "
                            "what is")
        return snap

    def _with_forecast(self, ref: pb.WorkloadRef) -> Snapshot:
        snap = self._tracked(ref)
        if snap.forecast is None:
            detail = snap.last_error or "its first forecast is not ready yet"
            raise CallError(grpc.StatusCode.UNAVAILABLE, f"workload: {_name(ref)} has no forecast: {detail}")
        return snap

    def _series(self, message: pb.Series, field: str, problems: list[str]) -> tuple[Series, int]:
        step = inputs.duration(message.step, self._settings.metrics.step, f"{field}.step", problems)
        return inputs.series(message, field, problems), int(step)

    async def _fit(self, model: str, series: Series, step: int, horizon: int, field: str) -> Forecast:
        params = self._settings.models.params_for(model, horizon)
        try:
            fitted = await self._runner.fit(model, params, series, step, horizon, self._settings.models.fit_timeout)
        except (FitTimeout, WorkerDied) as e:
            raise _busy(e) from None
        except HeliosError as e:
            raise inputs.invalid([f"{field}: {e}"]) from None
        return fitted.forecast


def _busy(error: Exception) -> CallError:
    """The fit, not the input, failed: the time budget ran out or the worker died. Retrying may work."""
    return CallError(grpc.StatusCode.UNAVAILABLE, f"the model run did not finish: {error}")


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


def _model_choice(snap: Snapshot, default: str) -> str:
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
    origin = "the server default (models.default)" if t.model == default else "the trigger's `model` key"
    version = f", from trained artifact {snap.model_version}" if snap.model_version else ""
    return f"{t.model}, set by {origin}{version}"


def _anomaly_point(t: int, value: float, score: float) -> pb.AnomalyPoint:
    severity = Severity.NONE if math.isnan(score) else _severity_of(score)
    return pb.AnomalyPoint(timestamp=inputs.timestamp(t), value=value, score=score,
                           anomaly=severity >= Severity.WARNING, severity=severity.name)


def _reading_point(reading: AnomalyReading) -> pb.AnomalyPoint:
    return _anomaly_point(reading.timestamp, reading.value, reading.score)


def _severity_of(score: float) -> Severity:
    return Severity(int(severity([score])[0]))


def _ref(snap: Snapshot) -> pb.WorkloadRef:
    t = snap.trigger
    return pb.WorkloadRef(namespace=t.namespace, name=t.name, metric_name=t.metric_name)


def _name(ref: pb.WorkloadRef) -> str:
    return f"{ref.namespace}/{ref.name}/{ref.metric_name}"


def _numbers(mapping: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (mapping or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc else ""
