"""The alternative every user already has: reactive scaling with headroom (a lower HPA target).

Raising the observed value by h (the answer is observed x (1 + h)) traces a curve of cost against
shortfall. A forecasting policy is worth its keep only below that curve: fewer shortfalls for the same
replica-hours, or the same shortfalls for fewer. These functions put a policy's outcome against the
curve: the equal-cost ratio (its shortfall over headroom's at the same replica-hours) and the
replica-hours each needs to reach a shortfall target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Headroom levels of the curve: 0 (plain reactive) to +150 %.
HEADROOMS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5)
# Added to both sides of a ratio, so that two near-zero shortfalls do not swing it: 0.5 point of
# under-provisioned time, 0.1 point of unserved demand.
SLACK = {"underprovisioned_fraction": 0.005, "unserved_fraction": 0.001}
SHORTFALLS = tuple(SLACK)


@dataclass(frozen=True)
class Point:
    """One policy's outcome: what it cost and how often (and how much) it was short."""

    replica_hours: float
    underprovisioned_fraction: float
    unserved_fraction: float


def at_cost(curve: Sequence[Point], replica_hours: float, shortfall: str) -> float:
    """The curve's shortfall at `replica_hours`, linear between its points. Beyond its ends the end
    point stands: cheaper than plain reactive, headroom cannot go (its shortfall there is reactive's);
    dearer than +150 %, the curve is taken as flat."""
    costs, values = _sorted(curve, shortfall)
    return float(np.interp(replica_hours, costs, values))


def equal_cost_ratio(policy: Point, curve: Sequence[Point], shortfall: str) -> float:
    """The policy's shortfall over the curve's at the policy's replica-hours, each plus SLACK.
    Below 1: the policy beats headroom at equal cost; above 1: headroom would have done better."""
    slack = SLACK[shortfall]
    return (getattr(policy, shortfall) + slack) / (at_cost(curve, policy.replica_hours, shortfall) + slack)


def cost_to_reach(curve: Sequence[Point], target: float, shortfall: str) -> float | None:
    """The fewest replica-hours at which the curve's shortfall is at most `target`, linear between the
    last point above the target and the first at or below it; None when no point reaches it."""
    costs, values = _sorted(curve, shortfall)
    for i, (cost, value) in enumerate(zip(costs, values, strict=True)):
        if value <= target:
            if i == 0:
                return float(cost)
            c0, v0 = costs[i - 1], values[i - 1]
            return float(c0 + (cost - c0) * (v0 - target) / (v0 - value))
    return None


def _sorted(curve: Sequence[Point], shortfall: str) -> tuple[np.ndarray, np.ndarray]:
    if not curve:
        raise ValueError("an empty curve")
    points = sorted(curve, key=lambda p: p.replica_hours)
    return (np.array([p.replica_hours for p in points]), np.array([getattr(p, shortfall) for p in points]))
