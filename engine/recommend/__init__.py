"""The recommendation engine: pure functions from a workload's inputs, the scaling policy, the last
replica action and the time to one Recommendation {action, target_replicas, current_replicas, reason,
confidence, urgency} (plus resource suggestions). No clock, no I/O, no globals: `now` is the clock and
`last` is the only state.

Utilisation is load / (current_replicas x capacity_per_replica), the load being the trigger's metric
and capacity_per_replica its target value. The rules (rules.py, resources.py) each say whether they
trigger; decide.py applies the cooldown and the precedence below and sizes the replica target.

| precedence | action | when (defaults) |
|---|---|---|
| 1 | ALERT_CRITICAL | the anomaly detector reports a critical anomaly (>= 4 sigma) |
| 2 | PREEMPTIVE_SCALE | a forecast within the next hour > 2 x the last hour's median load, and more replicas needed |
| 3 | SCALE_UP | peak point forecast over the next 30 min > 80% of capacity with confidence > 0.8 |
| 4 | INCREASE_MEMORY | per-pod memory peak over the last hour > 85% of the limit |
| 5 | ALERT_WARNING | the anomaly detector reports an anomaly (>= 2.5 sigma) |
| 6 | SCALE_DOWN | load < 20% of capacity over the last hour and the forecast's 90% quantile < 20% over the next hour |
| 7 | DECREASE_CPU | p90 per-pod CPU usage over the last day < 20% of the request |
| 8 | NONE | nothing triggered |

Why this order (safety first): a critical anomaly puts the inputs of every other rule in doubt, so it
names the recommendation; actions that add capacity come before the warning, and the warning before
the actions that save money, so a cost-saving action never wins over a capacity one. Whatever names
the recommendation, a scale-up condition still sets the replica target, and a scale-down only applies
when SCALE_DOWN itself names it. `reason` lists every triggered condition in this order, then the
cooldown and clamp notes, then what the other rules checked.

Cooldown: no opposite replica move within `cooldown_seconds` of the last one; scale-ups are let
through (as KEDA and the HPA do) unless `cooldown_blocks_scale_up`.
"""

from .decide import recommend
from .inputs import LastAction, WorkloadInputs
from .policy import PRECEDENCE, Action, ScalingPolicy, Urgency
from .result import Condition, Recommendation, ResourceSuggestion

__all__ = [
    "PRECEDENCE", "Action", "Condition", "LastAction", "Recommendation", "ResourceSuggestion", "ScalingPolicy",
    "Urgency", "WorkloadInputs", "recommend",
]
