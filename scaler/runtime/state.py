"""What the gRPC handlers read: one immutable snapshot per workload, replaced whole by the refresher.

Handlers never wait on a lock: they read the current Snapshot object, which nobody mutates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from helios.engine.anomaly.base import Severity
from helios.engine.demand import Provisioning, forecast_covers, next_window_change, provisioned_demand, sanitize
from helios.engine.replay.provision import Choice, guarded
from helios.engine.tracking import ForecastError
from helios.engine.types import Forecast, Series

from ..config.metadata import TriggerSpec

WorkloadKey = tuple[str, str, str]  # namespace, ScaledObject name, metric name


class Availability(Enum):
    OK = "ok"
    NO_DATA = "no_data"  # nothing fetched yet (or ever)
    STALE = "stale"  # the last good refresh is older than the staleness limit
    BAD_QUERY = "bad_query"  # the source rejects this trigger's query: the user must fix it


@dataclass(frozen=True)
class AnomalyReading:
    """The anomaly score of the newest sample."""

    detector: str
    timestamp: int
    value: float
    score: float  # standard deviations; NaN when the detector cannot say yet
    severity: Severity


@dataclass(frozen=True)
class Snapshot:
    trigger: TriggerSpec
    observed: float | None = None  # latest sample
    data_end: int | None = None  # its timestamp
    forecast: Forecast | None = None
    refreshed_at: float | None = None  # wall-clock time of the last good fetch
    forecast_at: float | None = None  # wall-clock time the forecast was made
    fitted_at: float | None = None  # wall-clock time of the model's last fit (updates in between)
    model_details: dict | None = None  # what the fitted model says about itself (auto: its choice, losses)
    model_version: str = ""  # the artifact version it came from, or "" when fitted by this process
    backtest: dict | None = None  # the artifact's backtest scores
    last_error: str = ""
    last_error_kind: str = ""  # engine.errors class name, "" when the last refresh succeeded
    consecutive_failures: int = 0
    # How much to provision, chosen at the last refit by replaying the workload (None: not yet, or the
    # trigger fixes its quantile); `provisioning_note` says why there is none, or why the last replay failed.
    provisioning: Choice | None = None
    provisioning_note: str = ""
    # What insights.py derives after each new forecast (None until the first one):
    recent: Series | None = None  # the last samples the forecast was made from, aligned (Explain shows them)
    anomaly: AnomalyReading | None = None
    forecast_error: ForecastError | None = None  # rolling, of the served forecasts whose actuals arrived
    recommendation: Any = None  # engine.recommend.Recommendation
    current_replicas_source: str = ""  # "estimate": the replicas Helios's last answer asked the HPA for

    def with_trigger(self, trigger: TriggerSpec) -> Snapshot:
        return self if trigger == self.trigger else replace(self, trigger=trigger)


@dataclass(frozen=True)
class Answer:
    """What GetMetrics says for a workload at one moment, and why."""

    availability: Availability
    value: float = 0.0
    basis: str = ""  # "forecast", "headroom" (the replay chose it), "observed" (no forecast yet, or mode observe)
    detail: str = ""
    valid_until: float = 0.0  # the same snapshot gives the same answer until then
    plan: Provisioning | None = None  # how the value was provisioned (forecast and headroom answers)


def plan_for(snap: Snapshot, trigger: TriggerSpec) -> Provisioning:
    """The provisioning plan to serve: the trigger's fixed quantile, the replay's choice for this trigger
    (headroom while the live guard finds the forecast off what the replay saw), or, until there is a
    choice (cold start, a changed trigger), the default quantile."""
    choice = snap.provisioning
    if trigger.slo is not None and choice is not None and choice.made_for(trigger.slo, trigger.cluster):
        e = snap.forecast_error
        return guarded(choice, e.matured, e.coverage) if e is not None else choice.plan
    return Provisioning("forecast", trigger.quantile)


def answer(snap: Snapshot | None, trigger: TriggerSpec, now: float, staleness_limit: float) -> Answer:
    """The metric value for `trigger` now, from the latest snapshot (pure; no I/O)."""
    if snap is None or snap.refreshed_at is None or snap.observed is None:
        if snap is not None and snap.last_error_kind == "BadQuery":
            return Answer(Availability.BAD_QUERY, detail=snap.last_error)
        why = f"; last error: {snap.last_error}" if snap and snap.last_error else ""
        return Answer(Availability.NO_DATA, detail=f"no data yet, first refresh pending{why}")
    age = now - snap.refreshed_at
    fresh_until = snap.refreshed_at + staleness_limit
    if age > staleness_limit:
        return Answer(
            Availability.STALE,
            detail=f"last good refresh {age:.0f}s ago exceeds the staleness limit of {staleness_limit:.0f}s; "
            f"last error: {snap.last_error or 'none'}",
        )
    if trigger.mode == "observe":
        return Answer(Availability.OK, sanitize(snap.observed), "observed", valid_until=fresh_until)
    plan = plan_for(snap, trigger)
    if plan.basis == "headroom":
        value = provisioned_demand(None, snap.observed, now, trigger.lead_time, plan)
        return Answer(Availability.OK, value, "headroom", valid_until=fresh_until, plan=plan)
    if snap.forecast is None:
        return Answer(Availability.OK, sanitize(snap.observed), "observed", valid_until=fresh_until)
    if not forecast_covers(snap.forecast, now):
        return Answer(Availability.STALE, detail="the latest forecast ends before now: the source's data is too old")
    value = provisioned_demand(snap.forecast, snap.observed, now, trigger.lead_time, plan)
    until = min(fresh_until, next_window_change(snap.forecast, now, trigger.lead_time))
    return Answer(Availability.OK, value, "forecast", valid_until=until, plan=plan)


class StateStore:
    """Snapshots by workload key. Written only from the event loop; read from anywhere."""

    def __init__(self, staleness_limit: float) -> None:
        self._staleness_limit = staleness_limit
        self._snapshots: dict[WorkloadKey, Snapshot] = {}
        self._answers: dict[WorkloadKey, tuple[TriggerSpec, Answer]] = {}

    def get(self, key: WorkloadKey) -> Snapshot | None:
        return self._snapshots.get(key)

    def put(self, snap: Snapshot) -> None:
        key = snap.trigger.key
        self._snapshots[key] = snap
        self._answers.pop(key, None)

    def remove(self, key: WorkloadKey) -> None:
        self._snapshots.pop(key, None)
        self._answers.pop(key, None)

    def answer(self, trigger: TriggerSpec, now: float) -> Answer:
        """state.answer for the event loop, remembered until the snapshot or the lead window changes:
        KEDA and the HPA ask about each workload several times a minute, the answer moves once a step."""
        key = trigger.key
        hit = self._answers.get(key)
        if hit is not None and hit[0] is trigger and now < hit[1].valid_until:
            return hit[1]
        result = answer(self._snapshots.get(key), trigger, now, self._staleness_limit)
        self._answers[key] = (trigger, result)
        return result

    def all(self) -> list[Snapshot]:
        # list(dict.values()) runs without releasing the GIL, so the /metrics thread gets a
        # consistent list even while the event loop adds or removes workloads.
        return list(self._snapshots.values())
