"""What Helios concludes from each new forecast of a workload, beside the value KEDA is served:
the newest sample's anomaly score, how the served forecasts have turned out, and a recommendation.

Runs after the forecast is published, so none of it delays GetMetrics. Each recommendation writes
one audit line (logger `helios.audit`): the workload, a summary of the inputs, the action, the reason
and the confidence; never the series themselves.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import replace

from helios.engine.align import align
from helios.engine.anomaly.base import Severity
from helios.engine.errors import HeliosError
from helios.engine.recommend import Action, LastAction, Recommendation, WorkloadInputs, recommend
from helios.engine.tracking import ForecastLedger
from helios.engine.types import Series

from ..config.settings import Settings
from .runner import BATCH, ModelRunner
from .state import AnomalyReading, Availability, Snapshot, WorkloadKey
from .telemetry import Telemetry
from .workloads import Workload, Workloads

log = logging.getLogger(__name__)
audit = logging.getLogger("helios.audit")

RECENT_SECONDS = 2 * 3600  # inputs kept for Explain and the recommender (it looks back an hour)
_REPLICA_ACTIONS = {Action.SCALE_UP, Action.SCALE_DOWN, Action.PREEMPTIVE_SCALE}


class Insights:
    def __init__(self, runner: ModelRunner, workloads: Workloads, settings: Settings, telemetry: Telemetry,
                 clock: Callable[[], float]) -> None:
        self.policy = settings.scaling.policy()
        self._runner = runner
        self._workloads = workloads
        self._settings = settings
        self._telemetry = telemetry
        self._clock = clock
        # At most a batch of runs at a time: enough for their anomaly scores to go to a worker together
        # (runtime/runner.py), few enough that their continuations leave the event loop to GetMetrics.
        # Unbounded, a cycle of 1,000 workloads delayed the loop by 13-29 ms at p99 instead of 5-13 ms.
        self._slots = asyncio.Semaphore(BATCH)

    def follow(self, w: Workload, before: Snapshot, history: Series) -> None:
        """Derive, in a task of its own, the insights of the forecast just published for `before`'s
        workload, so its next refresh never waits for them (an xgboost fit takes seconds, and thousands
        may queue). One at a time per workload: a forecast published meanwhile is skipped."""
        key = before.trigger.key
        if w.insights is None or w.insights.done():
            w.insights = asyncio.get_running_loop().create_task(
                self._follow(w, key, before, history), name=f"insights {'/'.join(key)}")

    async def _follow(self, w: Workload, key: WorkloadKey, before: Snapshot, history: Series) -> None:
        try:
            async with self._slots:
                snap = self._workloads.snapshot(key)
                if snap is None or snap.forecast is None:
                    return
                derived = await self.after_forecast(w, before, snap, history)
            self._workloads.publish(key, **derived)  # the trigger may have changed meanwhile, or the workload gone
        except Exception:  # noqa: BLE001 - a bug here must not end anything else; it is logged
            log.exception("insights failed", extra={"workload": "/".join(key)})

    async def after_forecast(self, w: Workload, before: Snapshot, snap: Snapshot, history: Series) -> dict:
        """The Snapshot fields derived from `snap`'s new forecast: recent inputs, anomaly, forecast error
        and recommendation. `before` is the snapshot the last answer was made from."""
        key, trigger, now = snap.trigger.key, snap.trigger, self._clock()
        if w.ledger is None:
            w.ledger = ForecastLedger(interval_level=self._settings.models.interval_level)
        step = int(self._settings.metrics.step)
        aligned = w.history = align(history, step)
        w.ledger.settle(aligned)
        w.ledger.record(snap.forecast, now, trigger.lead_time)
        recent = aligned.between(aligned.end - RECENT_SECONDS, aligned.end)
        reading = await self._score(key, w, history, step, now)
        if reading is not None and reading.alert:
            self._telemetry.anomaly_detections.labels(reading.severity.name.lower()).inc()
        current = self.estimated_replicas(before, now)
        inputs = replace(self.inputs_for(snap, recent, reading, current), **self.served(snap, now))
        rec = recommend(inputs, self.policy, w.last_action, now)
        self._note(key, w, rec, snap, reading, now)
        return {"recent": recent, "anomaly": reading, "forecast_error": w.ledger.error(),
                "recommendation": rec, "current_replicas_source": "estimate"}

    def reconsider(self, key: WorkloadKey) -> None:
        """Recommend again from the workload's snapshot as it is now, after new context arrived: the
        resource rules need not wait for the next sample. Its anomaly reading raises no alert twice."""
        w, snap = self._workloads.get(key), self._workloads.snapshot(key)
        if w is None or snap is None or snap.forecast is None or snap.recommendation is None:
            return  # the first forecast's insights run reads the context itself
        now = self._clock()
        reading = replace(snap.anomaly, alert=False) if snap.anomaly is not None else None
        current = self.estimated_replicas(snap, now)
        inputs = replace(self.inputs_for(snap, snap.recent, reading, current), **self.served(snap, now))
        rec = recommend(inputs, self.policy, w.last_action, now)
        self._note(key, w, rec, snap, reading, now)
        self._workloads.publish(key, recommendation=rec)

    def inputs_for(self, snap: Snapshot, recent: Series | None, reading: AnomalyReading | None,
                   current_replicas: int) -> WorkloadInputs:
        score = None if reading is None or math.isnan(reading.score) else reading.score
        likelihood = None if reading is None or math.isnan(reading.likelihood) else reading.likelihood
        return WorkloadInputs(
            current_replicas=current_replicas, capacity_per_replica=self.capacity(snap),
            load_history=recent, load_forecast=snap.forecast, anomaly_score=score, anomaly_likelihood=likelihood,
            anomaly_beyond_range=reading.beyond_range if reading is not None else None,
            # ALERT_* once per incident: on the sample that raised the alert, not on each one after it
            anomaly_severity=reading.severity if reading is not None and reading.alert else Severity.NONE,
            **self._resources(snap),
        )

    def _resources(self, snap: Snapshot) -> dict:
        """The resource rules' inputs from the workload's context (runtime/context.py), and why any is
        missing: no context read for this trigger or source, or the last fetch's failure."""
        c = snap.context
        if c is None:
            off = snap.trigger.context is None or not self._settings.context.enabled
            return {"resource_note": "context is off" if off else "no context fetched yet"}
        return {"cpu_usage_cores": c.cpu_usage, "cpu_request_cores": c.cpu_request,
                "memory_usage_bytes": c.memory_usage, "memory_limit_bytes": c.memory_limit,
                "resource_note": c.note}

    def served(self, snap: Snapshot, now: float) -> dict:
        """What GetMetrics serves from `snap` now, for the recommender to say what it makes the HPA do
        (nothing while GetMetrics would fail, or in observe mode, where Helios steers nothing)."""
        result = self._workloads.answer_of(snap, now)  # GetMetrics' next answer, when `snap` is current
        if result.availability is not Availability.OK or snap.trigger.mode == "observe":
            return {}
        return {"served_value": result.value, "served_target": snap.trigger.target_value,
                "served_plan": result.plan.label if result.plan else result.basis,
                "hpa_tolerance": snap.trigger.cluster.tolerance}

    def capacity(self, snap: Snapshot) -> float:
        """The load one replica carries at 100 %: the HPA keeps each replica at targetValue, which is
        where Helios's recommender starts scaling up, so full is targetValue / cpu_scale_up_threshold.
        (At 100 % of targetValue every replica of a well-steered workload would read as overloaded.)"""
        return snap.trigger.target_value / self.policy.cpu_scale_up_threshold

    def estimated_replicas(self, snap: Snapshot, now: float) -> int:
        """The replicas the HPA was steered to by Helios's answer from `snap` (ceil(value / targetValue),
        within the configured bounds). Helios does not read the Kubernetes API, so this stands in for
        the running count; the Recommend call takes the real one."""
        result = self._workloads.answer_of(snap, now)
        value = result.value if result.availability is Availability.OK else (snap.observed or 0.0)
        wanted = math.ceil(value / snap.trigger.target_value)
        return min(max(wanted, self.policy.min_replicas, 1), self.policy.max_replicas)

    async def _score(self, key: WorkloadKey, w: Workload, history: Series, step: int,
                     now: float) -> AnomalyReading | None:
        detector = self._settings.anomaly.detector
        if detector == "none":
            return None
        snap = self._workloads.snapshot(key)
        context = snap.context.features if snap is not None and snap.context is not None else {}
        names = sorted(context)
        refit = w.detector_due(now, self._settings.anomaly.refit_interval, names)
        try:
            scored = await self._runner.score(detector, None if refit else w.detector, history, step,
                                              self._settings.models.fit_timeout, w.likelihood, context or None)
        except HeliosError as e:  # too little history yet, a timeout: no score this time
            log.info("anomaly scoring skipped", extra={"workload": "/".join(key), "error": str(e)})
            return None
        alert = w.take_score(scored, now, refit, names)
        return AnomalyReading(scored.detector, scored.timestamp, scored.value, scored.score, scored.severity,
                              scored.likelihood, alert, scored.drivers, scored.beyond_range)

    def _note(self, key: WorkloadKey, w: Workload, rec: Recommendation, snap: Snapshot,
              reading: AnomalyReading | None, now: float) -> None:
        resource_actions = [c.action.value for c in rec.conditions if c.resource is not None]
        for action in dict.fromkeys([rec.action.value, *resource_actions]):  # a resource action beside the replicas'
            self._telemetry.recommendations.labels(action).inc()
        changes = rec.action in _REPLICA_ACTIONS and rec.target_replicas != rec.current_replicas
        if changes and not rec.suppressed_by_cooldown:
            self._telemetry.scaling_actions.labels(rec.action.value).inc()
            w.last_action = LastAction(rec.action, now, rec.target_replicas)
        audit.info("recommendation", extra={
            "workload": "/".join(key), "action": rec.action.value, "target_replicas": rec.target_replicas,
            "current_replicas": rec.current_replicas, "current_replicas_source": "estimate",
            "confidence": round(rec.confidence, 4), "urgency": rec.urgency.value, "reason": rec.reason,
            "resources": rec.summary()["resources"],
            "inputs": {
                "observed": snap.observed, "model": snap.forecast.model,
                "forecast_peak": round(float(snap.forecast.point.max()), 6),
                "anomaly_score": None if reading is None or math.isnan(reading.score) else round(reading.score, 3),
                "anomaly_likelihood": None if reading is None or math.isnan(reading.likelihood)
                else round(reading.likelihood, 12),
                "anomaly_alert": reading is not None and reading.alert,
            },
        })


