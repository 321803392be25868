"""The control loop replayed over a demand trace: KEDA polls, the HPA syncs, pods start, and what it cost.

Time advances in HPA sync periods. At each tick: KEDA polls the policy when a polling interval has
passed (the HPA uses the latest polled value: KEDA's cached metrics), the HPA syncs and the Deployment
follows at once, then the tick is accounted with the demand at its start and the pods ready by then.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from ..types import Series
from .hpa import HPA, Behavior
from .pods import Pods


class Demand:
    """The trace as a demand curve: linear between samples (missing samples skipped)."""

    def __init__(self, trace: Series) -> None:
        present = ~np.isnan(trace.values)
        self.timestamps = trace.timestamps[present].astype(np.float64)
        self.values = trace.values[present]

    def at(self, t: np.ndarray | float) -> np.ndarray | float:
        return np.interp(t, self.timestamps, self.values)

    def peak(self, start: float, end: float) -> float:
        """The highest demand in [start, end]: at an end of the window or at a sample inside it."""
        lo, hi = np.searchsorted(self.timestamps, [start, end], side="right")
        inside = self.values[lo:hi]
        return float(max(self.at(start), self.at(end), inside.max() if inside.size else -math.inf))


class Policy(Protocol):
    def metric(self, now: float) -> float | None: ...


@dataclass(frozen=True)
class Cluster:
    """The HPA and the Deployment: the same for every policy of a comparison."""

    target_value: float | None = None  # the trigger's targetValue, the HPA's AverageValue target (None: automatic)
    capacity: float | None = None  # demand one ready replica serves (None: the target value)
    startup_delay: float = 120.0
    polling_interval: float = 30.0
    sync_period: float = 15.0
    min_replicas: int = 1
    max_replicas: int = 100
    tolerance: float = 0.1
    behavior: Behavior = Behavior()


@dataclass(frozen=True)
class Outcome:
    underprovisioned_fraction: float  # share of the time demand exceeded the ready capacity
    unserved_fraction: float  # demand above the ready capacity / all demand
    replica_hours: float  # every pod, ready or starting, costs
    overprovision_mean: float  # mean idle ready capacity, in replicas
    scale_events: int  # syncs that changed the replica count

    def row(self, trace: str, policy: str) -> dict:
        return {"trace": trace, "policy": policy, **asdict(self)}


@dataclass(frozen=True)
class Run:
    times: np.ndarray  # tick starts
    demand: np.ndarray
    replicas: np.ndarray  # pods that exist (cost)
    ready: np.ndarray  # pods that serve
    metrics: np.ndarray  # the value the HPA used at each tick (NaN: none)
    outcome: Outcome


def simulate(demand: Demand, policy: Policy, cluster: Cluster, start: float, end: float) -> Run:
    """Replay [start, end) beginning with the replicas the demand at `start` needs, all ready."""
    if cluster.target_value is None or cluster.capacity is None:
        raise ValueError("the cluster needs a target value and a capacity (compare.resolve sets them)")
    dt = cluster.sync_period
    times = np.arange(start, end, dt)
    load = np.asarray(demand.at(times), dtype=np.float64)
    first = min(max(math.ceil(load[0] / cluster.capacity), cluster.min_replicas), cluster.max_replicas)
    hpa = HPA(cluster.target_value, cluster.min_replicas, cluster.max_replicas, cluster.tolerance, cluster.behavior)
    pods = Pods(first, cluster.startup_delay)
    replicas = np.empty(times.size, np.int64)
    ready = np.empty(times.size, np.int64)
    metrics = np.full(times.size, np.nan)
    metric, next_poll, events = None, start, 0
    for i, now in enumerate(times.tolist()):
        if now >= next_poll:
            metric = policy.metric(now)
            next_poll += cluster.polling_interval
        if metric is not None:  # a failed poll: the HPA cannot read the metric and keeps the count
            current = len(pods)
            desired = hpa.sync(now, metric, current)
            if desired != current:
                pods.scale_to(desired, now)
                events += 1
            metrics[i] = metric
        replicas[i], ready[i] = len(pods), pods.ready(now)
    return Run(times, load, replicas, ready, metrics, outcome(load, replicas, ready, cluster.capacity, dt, events))


def outcome(load: np.ndarray, replicas: np.ndarray, ready: np.ndarray, capacity: float, dt: float,
            events: int) -> Outcome:
    served = ready * capacity
    short = np.maximum(load - served, 0.0)
    total = float(load.sum())
    return Outcome(
        underprovisioned_fraction=float(np.mean(short > 1e-9 * max(capacity, 1.0))),
        unserved_fraction=float(short.sum() / total) if total > 0 else 0.0,
        replica_hours=float(replicas.sum() * dt / 3600),
        overprovision_mean=float(np.mean(np.maximum(served - load, 0.0)) / capacity),
        scale_events=events,
    )
