"""The HorizontalPodAutoscaler's decision for one KEDA external metric with an `AverageValue` target.

Modelled on the HPA controller (k8s.io/kubernetes pkg/controller/podautoscaler): the replica
proposal of an external per-pod metric, then `behavior` — stabilisation windows first, then the
rate limits of the scaling policies — then min/max replicas. `Behavior` takes the same fields as the
HPA's `spec.behavior` (camelCase), with the same defaults.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ScalingPolicy(_Spec):
    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0)
    period_seconds: int = Field(gt=0, le=1800)


class _Rules(_Spec):
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"


class ScaleUpRules(_Rules):
    stabilization_window_seconds: int = Field(0, ge=0, le=3600)
    policies: list[ScalingPolicy] = Field([ScalingPolicy(type="Percent", value=100, period_seconds=15),
                                           ScalingPolicy(type="Pods", value=4, period_seconds=15)], min_length=1)


class ScaleDownRules(_Rules):
    stabilization_window_seconds: int = Field(300, ge=0, le=3600)
    policies: list[ScalingPolicy] = Field([ScalingPolicy(type="Percent", value=100, period_seconds=15)], min_length=1)


class Behavior(_Spec):
    """The HPA's `spec.behavior`; every field left out takes the Kubernetes default."""

    scale_up: ScaleUpRules = ScaleUpRules()
    scale_down: ScaleDownRules = ScaleDownRules()


@dataclass
class HPA:
    """One HPA whose only metric is a KEDA external metric with target `AverageValue: target`."""

    target: float
    min_replicas: int = 1
    max_replicas: int = 100
    tolerance: float = 0.1
    behavior: Behavior = field(default_factory=Behavior)
    _recommended_at: deque[float] = field(default_factory=deque)  # when each proposal below was made
    _recommendations: deque[int] = field(default_factory=deque)  # the unstabilised proposals, oldest first
    _up_events: list[tuple[float, int]] = field(default_factory=list)  # (time, replicas added)
    _down_events: list[tuple[float, int]] = field(default_factory=list)  # (time, replicas removed)

    def proposal(self, metric: float, current: int) -> int:
        """The replica count the metric asks for. The usage ratio divides the total by the *current*
        replicas (the scale's status count: pods not ready yet included); inside the tolerance the HPA
        keeps the current count."""
        # (KEDA hands values over as milli-quantities; the simulation keeps full precision so that
        # traces in small units, e.g. CPU cores, scale like any other.)
        if 1 - self.tolerance <= metric / (self.target * current) <= 1 + self.tolerance:  # as Kubernetes 1.33+
            return current
        return math.ceil(metric / self.target - 1e-9)  # not one replica more for a rounding error

    def sync(self, now: float, metric: float, current: int) -> int:
        """One sync period: the replica count the HPA sets (== current when it does not scale)."""
        if current == 0:
            return 0  # scaling from and to zero is KEDA's activation, not the HPA's
        if current > self.max_replicas:
            desired = self.max_replicas
        elif current < self.min_replicas:
            desired = self.min_replicas
        else:
            stabilised = self._stabilise(now, self.proposal(metric, current), current)
            desired = self._rate_limited(now, stabilised, current)
        if desired > current:
            self._up_events.append((now, desired - current))
        elif desired < current:
            self._down_events.append((now, current - desired))
        longest = max(p.period_seconds for r in (self.behavior.scale_up, self.behavior.scale_down) for p in r.policies)
        self._up_events = [e for e in self._up_events if e[0] > now - longest]
        self._down_events = [e for e in self._down_events if e[0] > now - longest]
        return desired

    def _stabilise(self, now: float, proposal: int, current: int) -> int:
        """Scale up no further than the lowest, down no further than the highest proposal of each
        direction's stabilisation window (the current proposal included)."""
        up_window = self.behavior.scale_up.stabilization_window_seconds
        down_window = self.behavior.scale_down.stabilization_window_seconds
        times, recs = self._recommended_at, self._recommendations
        keep = max(up_window, down_window)
        while times and times[0] <= now - keep:  # oldest first: drop what no window reaches any more
            times.popleft()
            recs.popleft()
        # (This runs at every sync of every replay: a window that reaches every kept proposal, as the
        # default scale-down window does, needs no scan by time.)
        kept = zip(times, recs, strict=True)
        up = proposal if up_window == 0 else min([proposal, *(r for w, r in kept if w > now - up_window)])
        if down_window == keep:
            down = max(proposal, max(recs)) if recs else proposal
        else:
            down = max([proposal, *(r for w, r in zip(times, recs, strict=True) if w > now - down_window)])
        times.append(now)
        recs.append(proposal)
        return min(max(current, up), down)

    def _rate_limited(self, now: float, desired: int, current: int) -> int:
        if desired > current:
            limit = max(current, _up_limit(now, current, self._up_events, self._down_events, self.behavior.scale_up))
            return min(desired, self.max_replicas, limit)
        if desired < current:
            limit = min(current, _down_limit(now, current, self._up_events, self._down_events,
                                             self.behavior.scale_down))
            return max(desired, self.min_replicas, limit)
        return desired


def _changed_within(now: float, period: int, events: Sequence[tuple[float, int]]) -> int:
    return sum(n for when, n in events if when > now - period)


def _period_start(now: float, current: int, policy: ScalingPolicy, up, down) -> int:
    """How many replicas there were when the policy's period began."""
    return current - _changed_within(now, policy.period_seconds, up) + _changed_within(now, policy.period_seconds, down)


def _up_limit(now: float, current: int, up, down, rules: _Rules) -> int:
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = _period_start(now, current, p, up, down)
        proposals.append(start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100)))
    return (min if rules.select_policy == "Min" else max)(proposals)


def _down_limit(now: float, current: int, up, down, rules: _Rules) -> int:
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = _period_start(now, current, p, up, down)
        proposals.append(start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100)))
    # "Max" selects the policy allowing the biggest change: for scaling down, the fewest replicas.
    return (max if rules.select_policy == "Min" else min)(proposals)
