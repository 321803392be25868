"""What the recommender answers: the triggered conditions and the one recommendation built from them."""

from __future__ import annotations

from dataclasses import dataclass

from .policy import Action, Urgency


@dataclass(frozen=True)
class ResourceSuggestion:
    resource: str  # "memory" | "cpu"
    current: float
    suggested: float
    unit: str  # "bytes" | "cores"
    basis: str  # how `suggested` was computed, with the numbers


@dataclass(frozen=True)
class Condition:
    """One rule that triggered, with a human-readable detail carrying its numbers."""

    action: Action
    detail: str
    confidence: float = 1.0  # in [0, 1]
    urgency: Urgency = Urgency.LOW
    target_replicas: int | None = None  # replica rules only: the replicas this rule asks for (unclamped)
    act_by: float | None = None  # PREEMPTIVE_SCALE: latest Unix time to request pods so they are ready
    resource: ResourceSuggestion | None = None  # resource rules only
    rule: str = ""  # which rule raised it, e.g. "replica_bounds" for the min/max correction


@dataclass(frozen=True)
class Recommendation:
    action: Action
    target_replicas: int
    current_replicas: int
    reason: str  # every triggered condition, in precedence order, plus cooldown/clamp notes and checks
    confidence: float  # in [0, 1]
    urgency: Urgency
    conditions: tuple[Condition, ...]  # all that triggered, in precedence order (suppressed ones too)
    resources: tuple[ResourceSuggestion, ...] = ()
    suppressed_by_cooldown: bool = False
    act_by: float | None = None  # set when the action is PREEMPTIVE_SCALE
    notes: tuple[str, ...] = ()  # rules that did not trigger or could not be evaluated, and why

    def summary(self) -> dict:
        """A JSON-ready summary (for audit logs and the admin API): plain strings and numbers."""
        return {
            "action": self.action.value,
            "target_replicas": self.target_replicas,
            "current_replicas": self.current_replicas,
            "confidence": round(self.confidence, 4),
            "urgency": self.urgency.value,
            "reason": self.reason,
            "conditions": [c.action.value for c in self.conditions],
            "suppressed_by_cooldown": self.suppressed_by_cooldown,
            "act_by": self.act_by,
            "resources": [
                {"resource": r.resource, "current": r.current, "suggested": r.suggested, "unit": r.unit}
                for r in self.resources
            ],
        }
