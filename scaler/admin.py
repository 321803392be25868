"""helios.admin.v1.Admin: what the scaler tracks and what it forecasts, for people and dashboards."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from helios.engine.errors import HeliosError
from helios.engine.models import MODELS
from helios.engine.types import Forecast, Series

from .calls import CallError, unary
from .durations import parse_duration
from .pb import admin_pb2 as pb
from .pb import admin_pb2_grpc as pb_grpc
from .runner import ModelRunner
from .settings import Settings
from .state import Availability, Snapshot, StateStore, answer
from .telemetry import Telemetry

MAX_SAMPLES = 20_000  # an ad-hoc series: about 70 days at 5 minutes
MAX_HORIZON_STEPS = 2016  # a week at 5 minutes


class Admin(pb_grpc.AdminServicer):
    def __init__(self, store: StateStore, runner: ModelRunner, settings: Settings, telemetry: Telemetry,
                 clock: Callable[[], float] = time.time) -> None:
        self.telemetry = telemetry
        self._store = store
        self._runner = runner
        self._settings = settings
        self._clock = clock

    @unary
    async def Predict(self, request: pb.PredictRequest, context) -> pb.PredictResponse:
        level = request.interval_level or self._settings.models.interval_level
        problems = [] if 0 < level <= 0.98 else [f"interval_level: {level} must be in (0, 0.98]"]
        target = request.WhichOneof("target")
        if target == "workload":
            horizon = _duration(request.horizon, 0.0, "horizon", problems)
            if problems:
                raise _invalid(problems)
            snap = self._tracked(request.workload)
            forecast = snap.forecast
            if horizon:
                steps = math.ceil(horizon / forecast.step)
                if steps > forecast.horizon:
                    raise _invalid([f"horizon: {request.horizon!r} reaches beyond the workload's forecast "
                                    f"({forecast.horizon} steps of {forecast.step}s); its trigger sets the horizon"])
                forecast = forecast.head(steps)
            return _predict_response(forecast, level, snap.forecast_at, snap.data_end)
        if target != "series":
            raise _invalid(["target: set `workload` (a tracked workload) or `series` (an ad-hoc series)"])
        series, step, horizon, model = self._adhoc(request, problems)
        params = self._settings.models.params_for(model, horizon)
        try:
            fitted = await self._runner.fit(model, params, series, step, horizon, self._settings.models.fit_timeout)
        except HeliosError as e:
            raise _invalid([f"series: {e}"]) from None
        forecast = fitted.forecast
        return _predict_response(forecast, level, self._clock(), series.end)

    def _tracked(self, ref: pb.WorkloadRef) -> Snapshot:
        key = (ref.namespace, ref.name, ref.metric_name)
        snap = self._store.get(key)
        if snap is None:
            raise CallError(grpc.StatusCode.NOT_FOUND,
                            f"workload: {'/'.join(key)} is not tracked; ListWorkloads shows what is")
        if snap.forecast is None:
            detail = snap.last_error or "its first forecast is not ready yet"
            raise CallError(grpc.StatusCode.UNAVAILABLE, f"workload: {'/'.join(key)} has no forecast: {detail}")
        return snap

    def _adhoc(self, request: pb.PredictRequest, problems: list[str]) -> tuple[Series, int, int, str]:
        models = self._settings.models
        model = request.model or models.default
        if model not in MODELS:
            problems.append(f"model: {model!r} is unknown; allowed: {', '.join(sorted(MODELS))}")
        step = _duration(request.series.step, self._settings.metrics.step, "series.step", problems)
        horizon = _duration(request.horizon, models.horizon, "horizon", problems)
        steps = math.ceil(horizon / step) if step > 0 else 0
        if steps > MAX_HORIZON_STEPS:
            problems.append(f"horizon: {request.horizon!r} is {steps} steps; at most {MAX_HORIZON_STEPS} allowed")
        samples = request.series.samples
        if not 1 <= len(samples) <= MAX_SAMPLES:
            problems.append(f"series.samples: {len(samples)} given; 1 to {MAX_SAMPLES} allowed")
        ts = np.fromiter((s.timestamp.seconds for s in samples), np.int64, len(samples))
        values = np.fromiter((s.value for s in samples), np.float64, len(samples))
        if not np.isfinite(values).all():
            problems.append(f"series.samples[{int(np.argmin(np.isfinite(values)))}].value: must be finite")
        if ts.size > 1 and not (np.diff(ts) > 0).all():
            i = int(np.argmin(np.diff(ts) > 0)) + 1
            problems.append(f"series.samples[{i}].timestamp: must be later than samples[{i - 1}] (oldest first)")
        if problems:
            raise _invalid(problems)
        return Series(ts, values), int(step), steps, model

    @unary
    async def ListWorkloads(self, request: pb.ListWorkloadsRequest, context) -> pb.ListWorkloadsResponse:
        now = self._clock()
        limit = self._settings.metrics.staleness_limit
        rows = []
        for snap in sorted(self._store.all(), key=lambda s: s.trigger.key):
            t = snap.trigger
            if request.namespace and t.namespace != request.namespace:
                continue
            result = answer(snap, t, now, limit)
            row = pb.WorkloadStatus(
                ref=pb.WorkloadRef(namespace=t.namespace, name=t.name, metric_name=t.metric_name),
                source=t.source, model=t.model, mode=t.mode, target_value=t.target_value,
                stale=result.availability is Availability.STALE,
                last_error=snap.last_error, consecutive_failures=snap.consecutive_failures,
                forecast_age_seconds=now - snap.forecast_at if snap.forecast_at else 0.0,
            )
            if snap.observed is not None:
                row.observed_value = snap.observed
            if result.availability is Availability.OK:
                row.served_value = result.value
            if snap.refreshed_at is not None:
                row.last_refresh.CopyFrom(_timestamp(snap.refreshed_at))
            if snap.forecast is not None:
                row.forecast_model = snap.forecast.model
            if snap.fitted_at:
                row.fitted_at.CopyFrom(_timestamp(snap.fitted_at))
            row.selection_losses.update((snap.model_details or {}).get("losses", {}))
            row.model_version = snap.model_version
            row.backtest_scores.update({k: v for k, v in (snap.backtest or {}).items()
                                        if isinstance(v, int | float) and not isinstance(v, bool)})
            rows.append(row)
        return pb.ListWorkloadsResponse(workloads=rows)


def _predict_response(forecast: Forecast, level: float, made_at: float | None, data_end: int | None):
    lower, upper = forecast.interval(level)
    points = [
        pb.ForecastPoint(timestamp=_timestamp(t), value=v, lower=lo, upper=hi)
        for t, v, lo, hi in zip(forecast.timestamps.tolist(), forecast.point.tolist(), lower.tolist(),
                                upper.tolist(), strict=True)
    ]
    response = pb.PredictResponse(model=forecast.model, interval_level=level, points=points)
    if made_at is not None:
        response.made_at.CopyFrom(_timestamp(made_at))
    if data_end is not None:
        response.data_end.CopyFrom(_timestamp(data_end))
    return response


def _duration(text: str, default: float, field: str, problems: list[str]) -> float:
    if not text:
        return default
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        problems.append(f"{field}: {e}")
        return 0.0
    if seconds <= 0:
        problems.append(f"{field}: {text!r} must be > 0")
    return seconds


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _invalid(problems: list[str]) -> CallError:
    return CallError(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems))
