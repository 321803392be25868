"""The HorizontalPodAutoscaler's decision for one KEDA external metric with an `AverageValue` target.

Modelled on the HPA controller (k8s.io/kubernetes pkg/controller/podautoscaler): the replica
proposal of an external per-pod metric, then `behavior` — stabilisation windows first, then the
rate limits of the scaling policies — then min/max replicas. `Behavior` takes the same fields as the
HPA's `spec.behavior` (camelCase), with the same defaults.
"""

from __future__ import annotations

import functools
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
    # The unstabilised proposals of each window as (time, proposal), oldest first, kept only while one could
    # still be the window's extreme: rising proposals for the scale-up window's lowest, falling ones for the
    # scale-down window's highest (a sliding minimum and maximum, so a sync costs O(1), not the window's length).
    _lows: deque[tuple[float, int]] = field(default_factory=deque)
    _highs: deque[tuple[float, int]] = field(default_factory=deque)
    _up_events: deque[tuple[float, int]] = field(default_factory=deque)  # (time, replicas added), oldest first
    _down_events: deque[tuple[float, int]] = field(default_factory=deque)  # (time, replicas removed), oldest first

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
        # Events are kept in time order: drop from the front those no policy's period reaches any more.
        # (This runs at every sync of every replay, so the common case, nothing to drop, costs one comparison.)
        oldest = now - self._longest_period
        for events in (self._up_events, self._down_events):
            while events and events[0][0] <= oldest:
                events.popleft()
        return desired

    @functools.cached_property
    def _longest_period(self) -> int:
        return max(p.period_seconds for r in (self.behavior.scale_up, self.behavior.scale_down) for p in r.policies)

    def _stabilise(self, now: float, proposal: int, current: int) -> int:
        """Scale up no further than the lowest, down no further than the highest proposal of each
        direction's stabilisation window (the current proposal included)."""
        up = _sliding(self._lows, now, self.behavior.scale_up.stabilization_window_seconds, proposal, min)
        down = _sliding(self._highs, now, self.behavior.scale_down.stabilization_window_seconds, proposal, max)
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


def _sliding(kept: deque[tuple[float, int]], now: float, window: int, proposal: int, extreme) -> int:
    """The `extreme` (min or max) of the proposals made within `window` seconds before `now` and of
    `proposal`, which joins them. `kept` holds only the proposals that can still be the extreme, oldest
    first, so its front is the window's extreme."""
    while kept and kept[0][0] <= now - window:
        kept.popleft()
    result = extreme(proposal, kept[0][1]) if kept else proposal
    while kept and extreme(kept[-1][1], proposal) == proposal:  # outlived and matched by the new one
        kept.pop()
    kept.append((now, proposal))
    return result


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
