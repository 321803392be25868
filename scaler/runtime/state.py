"""What the gRPC handlers read: one immutable snapshot per workload, and the answer it gives (pure).

Handlers never wait on a lock: they read the current Snapshot object, which nobody mutates; a change
is a new Snapshot, published by runtime/workloads.py (the only writer).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

from helios.engine.anomaly.base import Severity
from helios.engine.demand import (
    HPA_TOLERANCE,
    Provisioned,
    Provisioning,
    forecast_covers,
    next_window_change,
    provision,
    sanitize,
)
from helios.engine.recommend import Recommendation
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
    severity: Severity  # by the likelihood where there is one, else by the score
    likelihood: float = float("nan")  # of the recent run of scores (anomaly.likelihood); NaN: none, or learning
    alert: bool = False  # this sample raised an alert: the first flag of an incident (anomaly.alerts)
    drivers: tuple[tuple[str, float, float], ...] = ()  # (feature, value, contribution) behind its prediction
    beyond_range: tuple[float, float] | None = None  # the range (low, high) the value fell outside, if it did


@dataclass(frozen=True, eq=False)
class Context:
    """The workload's pods as its source last reported them (runtime/context.py): per step, the usage
    of the busiest pod over the kept window; the newest requests and limits (the smallest memory limit)."""

    fetched_at: float | None  # wall-clock time of the last fetch that answered; None: none has yet
    cpu_usage: Series | None = None  # cores
    memory_usage: Series | None = None  # bytes, the working set
    cpu_request: float | None = None  # cores
    cpu_limit: float | None = None
    memory_request: float | None = None  # bytes
    memory_limit: float | None = None
    note: str = ""  # why the last fetch gave nothing new (its error, or the selector that matched nothing)
    # The container's and database's metrics by engine.features.METRICS name, for the features
    # (the load fills the workload's own slot, so its CPU utilisation is not among them).
    features: dict[str, Series] = field(default_factory=dict)


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
    # What runtime/insights.py derives after each new forecast (None until the first one):
    recent: Series | None = None  # the last samples the forecast was made from, aligned (Explain shows them)
    anomaly: AnomalyReading | None = None
    forecast_error: ForecastError | None = None  # rolling, of the served forecasts whose actuals arrived
    recommendation: Recommendation | None = None
    context: Context | None = None  # the pods' usage, requests and limits (runtime/context.py); None: not read
    current_replicas_source: str = ""  # "estimate": the replicas Helios's last answer asked the HPA for


@dataclass(frozen=True)
class Answer:
    """What GetMetrics says for a workload at one moment, and why."""

    availability: Availability
    value: float = 0.0
    basis: str = ""  # "forecast", "headroom" (the replay chose it), "observed" (no forecast yet, or mode observe)
    detail: str = ""  # why there is no value (what KEDA is told), "" when there is one
    valid_until: float = 0.0  # the same snapshot gives the same answer until then
    plan: Provisioning | None = None  # how the value was provisioned (forecast and headroom answers)
    # How the value was reached, as text: built only when Explain asks, not on every GetMetrics answer.
    explain: Callable[[], str] = field(default=str, compare=False, repr=False)

    @property
    def reason(self) -> str:
        """How the value was reached, for people (Explain)."""
        if self.availability is not Availability.OK:
            return f"GetMetrics fails now ({self.availability.value}): {self.detail}"
        return self.explain()


def plan_for(snap: Snapshot, trigger: TriggerSpec) -> Provisioning:
    """The provisioning plan to serve: the trigger's fixed quantile, the replay's choice for this trigger
    (headroom while the live guard finds the forecast off what the replay saw), or, until there is a
    choice (cold start, a changed trigger), the default quantile."""
    choice = current_choice(snap, trigger)
    if choice is not None:
        e = snap.forecast_error
        return guarded(choice, e.matured, e.coverage) if e is not None else choice.plan
    return Provisioning("forecast", trigger.quantile)


def current_choice(snap: Snapshot, trigger: TriggerSpec) -> Choice | None:
    """The replay's choice, when it was made for `trigger`'s shortfall target and cluster (None: no
    replay yet, one for an earlier version of the trigger, or a trigger that fixes its quantile)."""
    choice = snap.provisioning
    if trigger.slo is None or choice is None or not choice.made_for(trigger.slo, trigger.cluster):
        return None
    return choice


# The Snapshot fields answer() reads; forecast_error only through a replay's choice (plan_for's guard).
ANSWER_FIELDS = frozenset({"trigger", "observed", "refreshed_at", "last_error", "last_error_kind", "forecast",
                           "provisioning"})


def serves_alike(snap: Snapshot, changes: dict) -> bool:
    """Whether `snap` with `changes` answers as `snap` does at every moment: none of the fields answer()
    reads changes. Most publishes (insights, context) change none, and a remembered answer can stay."""
    for name, value in changes.items():
        if value is getattr(snap, name):
            continue
        if name in ANSWER_FIELDS or (name == "forecast_error" and current_choice(snap, snap.trigger) is not None):
            return False
    return True


def answer(snap: Snapshot | None, trigger: TriggerSpec, now: float, staleness_limit: float) -> Answer:
    """The metric value for `trigger` now, from the latest snapshot, and why (pure; no I/O)."""
    if snap is None or snap.refreshed_at is None or snap.observed is None:
        if snap is not None and snap.last_error_kind == "BadQuery":
            return _failing(Availability.BAD_QUERY, snap.last_error)
        why = f"; last error: {snap.last_error}" if snap and snap.last_error else ""
        return _failing(Availability.NO_DATA, f"no data yet, first refresh pending{why}")
    age = now - snap.refreshed_at
    fresh_until = snap.refreshed_at + staleness_limit
    if age > staleness_limit:
        return _failing(Availability.STALE, f"last good refresh {age:.0f}s ago exceeds the staleness limit of "
                                            f"{staleness_limit:.0f}s; last error: {snap.last_error or 'none'}")
    if trigger.mode == "observe":
        return _observed(snap, fresh_until, "the trigger's mode is observe")
    plan = plan_for(snap, trigger)
    if plan.basis == "headroom":
        served = provision(None, snap.observed, now, trigger.lead_time, plan)
        return Answer(Availability.OK, served.value, "headroom", valid_until=fresh_until, plan=plan,
                      explain=partial(_reason, served, snap, trigger, plan))
    if snap.forecast is None:
        return _observed(snap, fresh_until, "no forecast yet")
    if not forecast_covers(snap.forecast, now):
        return _failing(Availability.STALE, "the latest forecast ends before now: the source's data is too old")
    served = provision(snap.forecast, snap.observed, now, trigger.lead_time, plan)
    until = min(fresh_until, next_window_change(snap.forecast, now, trigger.lead_time))
    return Answer(Availability.OK, served.value, "forecast", valid_until=until, plan=plan,
                  explain=partial(_reason, served, snap, trigger, plan))


def _failing(availability: Availability, detail: str) -> Answer:
    return Answer(availability, detail=detail)


def _observed(snap: Snapshot, valid_until: float, why: str) -> Answer:
    value = sanitize(snap.observed)
    return Answer(Availability.OK, value, "observed", valid_until=valid_until,
                  explain=partial("{:g}: the latest observed value ({})".format, value, why))


_RULES = {
    "forecast": "the forecast",
    "observed floor": "the observed value (the floor)",
    "headroom floor": "the observed value with the plan's headroom (the floor)",
    "tolerance": f"the forecast rises, by less than the HPA's tolerance: observed x {1 + HPA_TOLERANCE:g}",
}


def _reason(served: Provisioned, snap: Snapshot, trigger: TriggerSpec, plan: Provisioning) -> str:
    hpa = (f"The HPA aims for ceil({served.value:g} / targetValue {trigger.target_value:g}) = "
           f"{math.ceil(served.value / trigger.target_value)} replicas")
    floor = f"observed {snap.observed:g} x {1 + plan.margin:g}" if plan.margin else f"observed {snap.observed:g}"
    if served.peak is None:
        return f"{served.value:g} = {floor}: {plan.label}. {hpa}"
    return (f"{served.value:g} = max(peak of the q{plan.quantile:g} forecast over the lead window (now, now + "
            f"{trigger.lead_time:g}s] = {served.peak:g}, {floor}): {_RULES[served.rule]}. {hpa}")
