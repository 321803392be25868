"""What the recommender can say (actions, urgencies, their precedence) and the policy it says it under.

`ScalingPolicy` is the `scaling:` configuration section, one field per key; every field is checked on
construction and a bad one raises ValueError naming it and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import StrEnum


class Action(StrEnum):
    SCALE_UP = "SCALE_UP"
    SCALE_DOWN = "SCALE_DOWN"
    PREEMPTIVE_SCALE = "PREEMPTIVE_SCALE"
    INCREASE_MEMORY = "INCREASE_MEMORY"
    DECREASE_CPU = "DECREASE_CPU"
    ALERT_WARNING = "ALERT_WARNING"
    ALERT_CRITICAL = "ALERT_CRITICAL"
    NONE = "NONE"


class Urgency(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _URGENCY_ORDER.index(self)


_URGENCY_ORDER = (Urgency.LOW, Urgency.MEDIUM, Urgency.HIGH, Urgency.CRITICAL)

# Which action names the recommendation when several conditions hold, highest first. Safety first:
# - a critical anomaly outranks everything, because the forecasts the other rules read may be wrong
#   while it lasts (the replica target still honours any capacity condition, see decide.py);
# - capacity before cost: actions that add capacity (replicas, memory) outrank the warning, and the
#   warning outranks the cost-saving actions, so nothing saves money while something looks wrong;
# - PREEMPTIVE_SCALE before SCALE_UP: both add replicas (the target is the larger of the two), but the
#   preemptive one carries the deadline (act_by) by which pods must be requested;
# - SCALE_DOWN before DECREASE_CPU: fewer replicas raise the per-pod CPU that DECREASE_CPU sized on.
PRECEDENCE: tuple[Action, ...] = (
    Action.ALERT_CRITICAL,
    Action.PREEMPTIVE_SCALE,
    Action.SCALE_UP,
    Action.INCREASE_MEMORY,
    Action.ALERT_WARNING,
    Action.SCALE_DOWN,
    Action.DECREASE_CPU,
    Action.NONE,
)
SCALE_UP_ACTIONS = frozenset({Action.SCALE_UP, Action.PREEMPTIVE_SCALE})
SCALE_DOWN_ACTIONS = frozenset({Action.SCALE_DOWN})


@dataclass(frozen=True)
class ScalingPolicy:
    """Thresholds and windows of the recommender. Times are seconds; thresholds are fractions of capacity.

    "CPU" in the thresholds' names is the workload's load relative to its capacity (load over
    replicas x capacity_per_replica), as in the issue's table; per-pod CPU and memory usage are only
    read by the resource rules (DECREASE_CPU, INCREASE_MEMORY).
    """

    cpu_scale_up_threshold: float = 0.80
    cpu_scale_down_threshold: float = 0.20
    memory_warning_threshold: float = 0.85
    min_replicas: int = 1
    max_replicas: int = 10
    cooldown_seconds: float = 300
    confidence_threshold: float = 0.8  # SCALE_UP needs confidence above this
    preemptive_ratio: float = 2.0  # PREEMPTIVE_SCALE when predicted load > ratio x baseline
    scale_up_window: float = 1800  # "predicted CPU over the next 30 min"
    scale_down_window: float = 3600  # "CPU < 20% for the last hour"; also the baseline's window
    pod_startup_seconds: float = 120  # pods must be requested this long before a predicted spike
    preemptive_window: float = 3600  # how far ahead PREEMPTIVE_SCALE looks for a spike
    # SCALE_DOWN reads this upper quantile of the forecast, not its point: a cost-saving step must
    # hold even if the load comes in at the high side of the prediction.
    scale_down_quantile: float = 0.9
    # KEDA and the HPA never delay a scale-up (the HPA's default scale-up stabilisation window is 0);
    # set True to hold scale-ups as well within the cooldown after a scale-down.
    cooldown_blocks_scale_up: bool = False
    # "for the last hour" needs data over at least this fraction of the hour (and likewise for the
    # baseline and the CPU request windows); less data and the rule is not evaluated.
    min_window_coverage: float = 0.75
    memory_window: float = 3600  # INCREASE_MEMORY reads the peak usage over this window
    memory_margin: float = 0.15  # safety margin on top of that peak (VPA's default margin fraction)
    cpu_window: float = 86400  # DECREASE_CPU reads this much usage: a day covers the daily cycle
    cpu_request_percentile: float = 0.9  # VPA's target CPU percentile
    cpu_request_margin: float = 0.15  # VPA's default safety margin fraction
    cpu_request_floor_cores: float = 0.025  # VPA's default minimum CPU recommendation (25 millicores)
    # The most INCREASE_MEMORY suggests (VPA's maxAllowed); None: no bound. The least DECREASE_CPU
    # suggests is cpu_request_floor_cores. Beyond these, the rules say so rather than suggest.
    memory_limit_max_bytes: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int":
                self._require(f.name, isinstance(value, int) and not isinstance(value, bool), "an integer")
            elif f.type == "bool":
                self._require(f.name, isinstance(value, bool), "true or false")
            elif value is None and "None" in str(f.type):
                continue
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                self._require(f.name, ok, "a finite number")
        up = self.cpu_scale_up_threshold
        self._require("cpu_scale_up_threshold", 0 < up <= 1, "in (0, 1]")
        # 0 turns SCALE_DOWN and DECREASE_CPU off; confidence_threshold 1 turns SCALE_UP off.
        self._require("cpu_scale_down_threshold", 0 <= self.cpu_scale_down_threshold < up,
                           f"in [0, cpu_scale_up_threshold={up})")
        self._require("memory_warning_threshold", 0 < self.memory_warning_threshold <= 1, "in (0, 1]")
        self._require("min_replicas", self.min_replicas >= 0, ">= 0")
        self._require("max_replicas", self.max_replicas >= max(1, self.min_replicas),
                           f">= 1 and >= min_replicas={self.min_replicas}")
        self._require("confidence_threshold", 0 <= self.confidence_threshold <= 1, "in [0, 1]")
        self._require("preemptive_ratio", self.preemptive_ratio > 1, "> 1")
        self._require("scale_down_quantile", 0.5 <= self.scale_down_quantile <= 0.99, "in [0.5, 0.99]")
        self._require("cpu_request_percentile", 0 < self.cpu_request_percentile <= 1, "in (0, 1]")
        self._require("min_window_coverage", 0 < self.min_window_coverage <= 1, "in (0, 1]")
        for name in ("scale_up_window", "scale_down_window", "preemptive_window", "memory_window", "cpu_window"):
            self._require(name, getattr(self, name) > 0, "> 0")
        for name in ("cooldown_seconds", "pod_startup_seconds", "memory_margin", "cpu_request_margin",
                     "cpu_request_floor_cores"):
            self._require(name, getattr(self, name) >= 0, ">= 0")
        if self.memory_limit_max_bytes is not None:
            self._require("memory_limit_max_bytes", self.memory_limit_max_bytes > 0, "> 0, or null for no bound")
        self._require("preemptive_window", self.preemptive_window >= self.pod_startup_seconds,
                           f">= pod_startup_seconds={self.pod_startup_seconds} (pods must start before a spike)")

    def _require(self, name: str, ok: bool, allowed: str) -> None:
        if not ok:
            raise ValueError(f"scaling.{name} must be {allowed}, got {getattr(self, name)!r}")


