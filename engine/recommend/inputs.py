"""What the recommender is told about one workload, and what it did last (the only state it reads).

Every series is optional: a missing one (None, or no samples in the window a rule reads) means the
rules that need it are not evaluated, and the recommendation's reason says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..anomaly.base import Severity
from ..types import Forecast, Series
from .policy import Action


@dataclass(frozen=True, eq=False)
class WorkloadInputs:
    current_replicas: int
    capacity_per_replica: float  # load one replica handles at 100% (the trigger's targetValue)
    load_history: Series | None  # observed total load of the workload, oldest first
    load_forecast: Forecast | None  # forecast of the total load (point + quantiles)
    # Per-pod figures: the pod nearest its limit is the one that is throttled or OOM-killed, so a
    # caller with several pods passes their maximum.
    cpu_usage_cores: Series | None = None
    cpu_request_cores: float | None = None
    memory_usage_bytes: Series | None = None
    memory_limit_bytes: float | None = None
    # Why the per-pod figures are missing or old, when the caller knows (e.g. "context fetch failed: ..."):
    # the resource rules quote it when they cannot be evaluated.
    resource_note: str = ""
    anomaly_score: float | None = None  # latest score in standard deviations (engine.anomaly)
    # The severity of the alert the latest sample raised: NONE while there is none, and on the later
    # samples of an incident already alerted (engine.anomaly.alerts: one alert per incident).
    anomaly_severity: Severity = Severity.NONE
    anomaly_likelihood: float | None = None  # the likelihood the severity follows, when the detector has one
    # The range (low, high) of the workload's past values that the newest one fell outside, when that is
    # what the likelihood flagged (engine.anomaly.likelihood's range channel): the alert says so.
    anomaly_beyond_range: tuple[float, float] | None = None
    # What the workload's trigger serves KEDA now, when Helios steers it: the replica actions then say what
    # that value makes the HPA do (ceil(value / target) outside the tolerance), and the forecast-threshold
    # rules become advisory lines instead of contradicting targets.
    served_value: float | None = None
    served_target: float | None = None  # the trigger's targetValue
    served_plan: str = ""  # how the value was provisioned, e.g. "forecast q0.9 +10%"
    hpa_tolerance: float = 0.1

    def __post_init__(self) -> None:
        replicas = self.current_replicas
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ValueError(f"current_replicas must be an integer >= 0, got {replicas!r}")
        _positive("capacity_per_replica", self.capacity_per_replica)
        if (self.served_value is None) != (self.served_target is None):
            raise ValueError("served_value and served_target come together")
        if self.served_value is not None and not (_is_number(self.served_value) and self.served_value >= 0):
            raise ValueError(f"served_value must be a number >= 0, got {self.served_value!r}")
        for name in ("cpu_request_cores", "memory_limit_bytes", "served_target"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        score = self.anomaly_score
        if score is not None and not (_is_number(score) and math.isfinite(score)):
            raise ValueError(f"anomaly_score must be a finite number or None, got {score!r}")
        likelihood = self.anomaly_likelihood
        if likelihood is not None and not (_is_number(likelihood) and 0 <= likelihood <= 1):
            raise ValueError(f"anomaly_likelihood must be a number in [0, 1] or None, got {likelihood!r}")
        try:
            object.__setattr__(self, "anomaly_severity", Severity(self.anomaly_severity))
        except ValueError:
            allowed = ", ".join(f"{s.value} ({s.name})" for s in Severity)
            raise ValueError(f"anomaly_severity must be one of {allowed}, got {self.anomaly_severity!r}") from None


@dataclass(frozen=True)
class LastAction:
    """The last replica action taken for the workload: the cooldown is measured from `at`."""

    action: Action
    at: float  # Unix seconds
    target_replicas: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))
        if not (_is_number(self.at) and math.isfinite(self.at)):
            raise ValueError(f"last action's at must be a finite Unix time, got {self.at!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(name: str, value: object) -> None:
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
